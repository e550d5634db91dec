"""Initial schema: runs, task_runs, attempts, events, snapshots.

Revision ID: 0001
Revises:
Create Date: 2024-06-01

Tables are spelled out here rather than taken from ``legato.store.schema`` so that later edits
to the schema module cannot change what this revision did. Timestamps are naive UTC
``DateTime`` columns (the ``UTCDateTime`` decorator in the schema module adds the time zone).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_ID = sa.String(32)
_STATE = sa.String(20)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", _ID, nullable=False),
        sa.Column("pipeline", sa.String(), nullable=False),
        sa.Column("state", _STATE, nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("partition", sa.String(), nullable=True),
        sa.Column("code_version", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("parent_run_id", _ID, nullable=True),
        sa.Column("rerun_kind", sa.String(), nullable=True),
        sa.Column("lease_owner", sa.String(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("run_key", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.UniqueConstraint("run_key", name="uq_runs_run_key"),
    )
    op.create_index("ix_runs_pipeline_created_at", "runs", ["pipeline", "created_at"])
    op.create_index("ix_runs_state", "runs", ["state"])
    op.create_index("ix_runs_created_at", "runs", ["created_at"])

    op.create_table(
        "task_runs",
        sa.Column("run_id", _ID, nullable=False),
        sa.Column("task_key", sa.String(), nullable=False),
        sa.Column("node", sa.String(), nullable=False),
        sa.Column("map_index", sa.Integer(), nullable=True),
        sa.Column("state", _STATE, nullable=False),
        sa.Column("attempt", sa.Integer(), server_default="0", nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("result_uri", sa.Text(), nullable=True),
        sa.Column("result_format", sa.String(), nullable=True),
        sa.Column("item_count", sa.Integer(), nullable=True),
        sa.Column("reused_from", _ID, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "task_key", name="pk_task_runs"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_task_runs_run_id_runs", ondelete="CASCADE"
        ),
    )

    op.create_table(
        "attempts",
        sa.Column("run_id", _ID, nullable=False),
        sa.Column("task_key", sa.String(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("log_path", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "task_key", "number", name="pk_attempts"),
        sa.ForeignKeyConstraint(
            ["run_id", "task_key"],
            ["task_runs.run_id", "task_runs.task_key"],
            name="fk_attempts_task_runs",
            ondelete="CASCADE",
        ),
    )

    op.create_table(
        "events",
        # INTEGER PRIMARY KEY on SQLite aliases the rowid; BIGSERIAL-style on PostgreSQL.
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", _ID, nullable=False),
        sa.Column("task_key", sa.String(), nullable=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("old_state", _STATE, nullable=True),
        sa.Column("new_state", _STATE, nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_events_run_id_runs", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_events_run_id_id", "events", ["run_id", "id"])

    op.create_table(
        "snapshots",
        sa.Column("pipeline", sa.String(), nullable=False),
        sa.Column("code_version", sa.String(), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pipeline", "code_version", name="pk_snapshots"),
    )


def downgrade() -> None:
    op.drop_table("snapshots")
    op.drop_index("ix_events_run_id_id", table_name="events")
    op.drop_table("events")
    op.drop_table("attempts")
    op.drop_table("task_runs")
    op.drop_index("ix_runs_created_at", table_name="runs")
    op.drop_index("ix_runs_state", table_name="runs")
    op.drop_index("ix_runs_pipeline_created_at", table_name="runs")
    op.drop_table("runs")
