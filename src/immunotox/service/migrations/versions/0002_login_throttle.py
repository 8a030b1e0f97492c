"""Login throttling: failed logins counted per user name and address, and per address.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07

One row per counted key (``scope`` ``name``: a user name from an address; ``address``: an address
whatever the name, ``username = ''``), updated in place by every worker of the service
(:mod:`immunotox.service.throttle`). Not an event table: rows are deleted on success, by an
admin, or once forgotten (indexed by the last failure); the audit trail keeps the history.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", TS, nullable=False),
        sa.Column("last_failure_at", TS, nullable=False),
        sa.Column("blocked_until", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_throttle")),
        sa.UniqueConstraint(
            "scope", "username", "address", name=op.f("uq_login_throttle_scope_username_address")
        ),
    )
    op.create_index("ix_login_throttle_last_failure_at", "login_throttle", ["last_failure_at"])


def downgrade() -> None:
    op.drop_index("ix_login_throttle_last_failure_at", table_name="login_throttle")
    op.drop_table("login_throttle")
