"""Assets, checks and lineage: each materialization of an asset (per partition, with its
metadata), each data-quality check's result, and the outbox of OpenLineage events.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "materializations",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("asset", sa.String(), nullable=False),
        sa.Column("partition", sa.String(), nullable=True),
        sa.Column("pipeline", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("task_key", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_materializations"),
    )
    op.create_index("ix_materializations_asset_id", "materializations", ["asset", "id"])
    op.create_index(
        "ix_materializations_asset_partition_id", "materializations", ["asset", "partition", "id"]
    )
    op.create_index("ix_materializations_run_id", "materializations", ["run_id"])
    op.create_table(
        "check_results",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("check_name", sa.String(), nullable=False),
        sa.Column("asset", sa.String(), nullable=True),
        sa.Column("pipeline", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("task_key", sa.String(), nullable=False),
        sa.Column("partition", sa.String(), nullable=True),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("failed_count", sa.BigInteger(), nullable=True),
        sa.Column("total_count", sa.BigInteger(), nullable=True),
        sa.Column("sample", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_check_results"),
    )
    op.create_index("ix_check_results_asset_check_name_id", "check_results",
                    ["asset", "check_name", "id"])
    op.create_index("ix_check_results_run_id", "check_results", ["run_id"])
    op.create_table(
        "lineage_events",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("event_type", sa.String(20), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_at", sa.DateTime(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_lineage_events"),
    )
    op.create_index("ix_lineage_events_state_next_at", "lineage_events", ["state", "next_at"])


def downgrade() -> None:
    op.drop_index("ix_lineage_events_state_next_at", table_name="lineage_events")
    op.drop_table("lineage_events")
    op.drop_index("ix_check_results_run_id", table_name="check_results")
    op.drop_index("ix_check_results_asset_check_name_id", table_name="check_results")
    op.drop_table("check_results")
    op.drop_index("ix_materializations_run_id", table_name="materializations")
    op.drop_index("ix_materializations_asset_partition_id", table_name="materializations")
    op.drop_index("ix_materializations_asset_id", table_name="materializations")
    op.drop_table("materializations")
