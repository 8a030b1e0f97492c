"""Laboratory reference intervals: ``ref_low`` and ``ref_high`` on the event stream.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

A laboratory result may carry the reference interval its laboratory reported with it (the API's
``ref_low``/``ref_high``, FHIR ``Observation.referenceRange``), stored in the code's canonical
unit beside ``value_num``. Nullable columns added to the append-only ``clinical_event`` table (an
``ALTER TABLE ... ADD COLUMN`` on both SQLite and PostgreSQL: no row is rewritten, the
append-only triggers stay in place); existing rows carry no interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("clinical_event", sa.Column("ref_low", sa.Float(), nullable=True))
    op.add_column("clinical_event", sa.Column("ref_high", sa.Float(), nullable=True))


def downgrade() -> None:
    # a plain DROP COLUMN (SQLite >= 3.35, PostgreSQL): a batch copy of the table would lose the
    # append-only triggers on SQLite
    op.execute("ALTER TABLE clinical_event DROP COLUMN ref_high")
    op.execute("ALTER TABLE clinical_event DROP COLUMN ref_low")
