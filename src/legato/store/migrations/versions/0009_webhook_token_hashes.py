"""Webhook tokens kept as their SHA-256 only: the tokens stored in clear until now are
replaced by their hashes, so a copy of the store no longer hands out working tokens. Callers
keep their tokens: a token is checked against its hash.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

_states = sa.table(
    "trigger_states",
    sa.column("pipeline", sa.String),
    sa.column("name", sa.String),
    sa.column("token", sa.String),
)


def upgrade() -> None:
    conn = op.get_bind()
    found = conn.execute(
        sa.select(_states.c.pipeline, _states.c.name, _states.c.token).where(
            _states.c.token.is_not(None)
        )
    ).all()
    for pipeline, name, token in found:
        digest = hashlib.sha256(str(token).encode("utf-8", "surrogatepass")).hexdigest()
        conn.execute(
            sa.update(_states)
            .where(_states.c.pipeline == pipeline, _states.c.name == name)
            .values(token=digest)
        )


def downgrade() -> None:
    # A hash cannot be turned back into its token: webhooks need new tokens after this.
    op.execute(sa.update(_states).values(token=None))
