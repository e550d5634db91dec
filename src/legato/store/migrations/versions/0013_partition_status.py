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
_FILL = """
INSERT INTO partition_status (pipeline, partition, run_id, state, updated_at)
SELECT r.pipeline, r.partition, r.id, r.state,
       COALESCE(r.finished_at, r.started_at, r.created_at)
FROM runs r
JOIN (SELECT max(id) AS id FROM runs WHERE partition IS NOT NULL
      GROUP BY pipeline, partition) newest ON newest.id = r.id
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
    op.execute(_FILL)


def downgrade() -> None:
    op.drop_index("ix_partition_status_pipeline_state_partition", table_name="partition_status")
    op.drop_table("partition_status")
