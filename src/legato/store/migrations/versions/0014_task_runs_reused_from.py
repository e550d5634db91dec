"""An index on the task runs that reuse another run's result, so that retention can tell,
per run, whether a run made since still reads its results.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index(
        "ix_task_runs_reused_from",
        "task_runs",
        ["reused_from"],
        sqlite_where=sa.text("reused_from IS NOT NULL"),
        postgresql_where=sa.text("reused_from IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_task_runs_reused_from", table_name="task_runs")
