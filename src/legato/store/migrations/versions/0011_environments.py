"""Environments and incremental windows: each run records the environment it ran in; the
store keeps facts about itself (the environment it belongs to); incremental extracts keep
the window each run or partition read, so a re-run reads the same rows.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("environment", sa.String(), nullable=True))
    op.create_table(
        "store_facts",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("set_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_store_facts"),
    )
    op.create_table(
        "cursor_windows",
        sa.Column("pipeline", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("scope", sa.String(), nullable=False),
        sa.Column("low", sa.Text(), nullable=True),
        sa.Column("high", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pipeline", "name", "scope", name="pk_cursor_windows"),
    )
    op.create_index(
        "ix_cursor_windows_pipeline_name_created_at",
        "cursor_windows",
        ["pipeline", "name", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_cursor_windows_pipeline_name_created_at", table_name="cursor_windows")
    op.drop_table("cursor_windows")
    op.drop_table("store_facts")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("environment")
