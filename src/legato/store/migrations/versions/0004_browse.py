"""Browsing: runs-list indexes for the API and UI, and daemon heartbeats.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_runs_pipeline_id", "runs", ["pipeline", "id"])
    op.create_index("ix_runs_state_id", "runs", ["state", "id"])
    op.drop_index("ix_runs_state", table_name="runs")  # (state, id) serves it
    op.create_index("ix_runs_pipeline_state_id", "runs", ["pipeline", "state", "id"])
    op.create_index("ix_runs_partition_id", "runs", ["partition", "id"])
    op.create_table(
        "daemons",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("url", sa.String(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_daemons"),
    )


def downgrade() -> None:
    op.drop_table("daemons")
    op.drop_index("ix_runs_partition_id", table_name="runs")
    op.drop_index("ix_runs_pipeline_state_id", table_name="runs")
    op.create_index("ix_runs_state", "runs", ["state"])
    op.drop_index("ix_runs_state_id", table_name="runs")
    op.drop_index("ix_runs_pipeline_id", table_name="runs")
