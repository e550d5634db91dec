"""Single sign-on under way: the state a sign-in begun at an identity provider keeps until
the browser comes back, shared by every web process.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_states",
        sa.Column("state_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("browser_hash", sa.String(64), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("state_hash", name="pk_sign_in_states"),
    )
    op.create_index("ix_sign_in_states_expires_at", "sign_in_states", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_sign_in_states_expires_at", table_name="sign_in_states")
    op.drop_table("sign_in_states")
