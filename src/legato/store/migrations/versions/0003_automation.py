"""Automation: run queue order and origin, schedules, triggers, backfills and pools.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("queue_position", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("origin", sa.String(), nullable=True))
        batch.add_column(sa.Column("backfill_id", sa.String(32), nullable=True))
    op.create_index(
        "ix_runs_state_priority_queue_position", "runs", ["state", "priority", "queue_position"]
    )
    op.create_index("ix_runs_pipeline_partition", "runs", ["pipeline", "partition"])
    op.create_index("ix_runs_backfill_id", "runs", ["backfill_id"])
    op.create_index("ix_events_kind_new_state_id", "events", ["kind", "new_state", "id"])

    op.create_table(
        "schedule_states",
        sa.Column("pipeline", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("cursor", sa.DateTime(), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pipeline", "name", name="pk_schedule_states"),
    )
    op.create_table(
        "trigger_states",
        sa.Column("pipeline", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("token", sa.String(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pipeline", "name", name="pk_trigger_states"),
    )
    op.create_table(
        "trigger_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("pipeline", sa.String(), nullable=False),
        sa.Column("trigger", sa.String(), nullable=False),
        sa.Column("event_key", sa.String(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_trigger_events"),
    )
    op.create_index(
        "uq_trigger_events_pipeline_trigger_event_key",
        "trigger_events",
        ["pipeline", "trigger", "event_key"],
        unique=True,
    )
    op.create_table(
        "backfills",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("pipeline", sa.String(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("keys", sa.Text(), nullable=False),
        sa.Column("next_index", sa.Integer(), nullable=False),
        sa.Column("max_concurrent", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_backfills"),
    )
    op.create_table(
        "pool_claims",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("task_key", sa.String(), nullable=False),
        sa.Column("pool", sa.String(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "task_key", name="pk_pool_claims"),
    )
    op.create_index("ix_pool_claims_pool", "pool_claims", ["pool"])
    op.create_table(
        "pools",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_pools"),
    )


def downgrade() -> None:
    for table in ("pools", "pool_claims", "backfills", "trigger_events"):
        op.drop_table(table)
    op.drop_table("trigger_states")
    op.drop_table("schedule_states")
    op.drop_index("ix_events_kind_new_state_id", "events")
    op.drop_index("ix_runs_backfill_id", "runs")
    op.drop_index("ix_runs_pipeline_partition", "runs")
    op.drop_index("ix_runs_state_priority_queue_position", "runs")
    with op.batch_alter_table("runs") as batch:
        for col in ("backfill_id", "origin", "queue_position", "priority"):
            batch.drop_column(col)
