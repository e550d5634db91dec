"""Partition status: each partition's newest run and its state, kept as runs are created and
change state, filled here from the runs already stored.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None

# The newest run is the one with the greatest id, as it was when the status was grouped from
# the runs on each read; it last changed when it finished, else started, else was created.
# One pass over the runs on each backend: a join of the runs with their grouped maximum ran
# for more than nine minutes on PostgreSQL over a million runs just copied in (no statistics
# yet), holding the migration lock all along.
_FILL_POSTGRESQL = """
INSERT INTO partition_status (pipeline, partition, run_id, state, updated_at)
SELECT DISTINCT ON (pipeline, partition) pipeline, partition, id, state,
       COALESCE(finished_at, started_at, created_at)
FROM runs WHERE partition IS NOT NULL
ORDER BY pipeline, partition, id DESC
"""
# SQLite takes the bare columns of a row with max() from the row holding the maximum.
_FILL_SQLITE = """
INSERT INTO partition_status (pipeline, partition, run_id, state, updated_at)
SELECT pipeline, partition, max(id), state, COALESCE(finished_at, started_at, created_at)
FROM runs WHERE partition IS NOT NULL
GROUP BY pipeline, partition
"""


def upgrade() -> None:
    op.create_table(
        "partition_status",
        sa.Column("pipeline", sa.String(), nullable=False),
        sa.Column("partition", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pipeline", "partition", name="pk_partition_status"),
    )
    op.create_index(
        "ix_partition_status_pipeline_state_partition",
        "partition_status",
        ["pipeline", "state", "partition"],
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.execute(_FILL_POSTGRESQL if postgresql else _FILL_SQLITE)


def downgrade() -> None:
    op.drop_index("ix_partition_status_pipeline_state_partition", table_name="partition_status")
    op.drop_table("partition_status")
