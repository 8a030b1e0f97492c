"""The regrade queue becomes append-only: one row per write and (patient, scale) pair.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

Until 0003 the queue held one row per (patient, scale) pair, its primary key, upserted by every
write that touched the pair and deleted by the regrader's claim. On PostgreSQL the upsert and
the claim lock that row until their transaction commits, so a write of a pair waited for any
other write of it, and for a regrader chunk storing it (docs/benchmarks.md, issue 19). From
0004 each write appends its own rows (an ``id`` key; an index on the pair for the regrader,
which coalesces a pair's rows and deletes exactly those it read). The queued regrades are kept:
upgrade copies every row (it becomes the pair's only row), downgrade coalesces each pair's rows
back into one (the latest times, the 'full' flag of any row, the oldest ``queued_at``). The
rows are moved through Python, with their values as stored, so that the old and new tables
never exist together (their primary keys have the same name, which PostgreSQL refuses).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
COLUMNS = ("patient_id", "scale", "latest", "interval_start", "full", "queued_at")
# untyped: the values go back as they were read (SQLite's timestamps are text)
RAW = sa.table("regrade_queue", *(sa.column(c) for c in COLUMNS))


def _columns() -> list[sa.schema.SchemaItem]:
    return [
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("scale", sa.String(length=64), nullable=False),
        sa.Column("latest", TS, nullable=True),
        sa.Column("interval_start", TS, nullable=True),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("queued_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_regrade_queue_patient_id_patient")
        ),
    ]


def _take_rows() -> list[dict[str, Any]]:
    rows = op.get_bind().execute(sa.select(*RAW.c)).all()
    op.drop_table("regrade_queue")
    return [dict(zip(COLUMNS, r, strict=True)) for r in rows]


def _put_rows(rows: list[dict[str, Any]]) -> None:
    if rows:
        op.get_bind().execute(sa.insert(RAW), rows)


def upgrade() -> None:
    rows = _take_rows()
    op.create_table(
        "regrade_queue",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        *_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_regrade_queue")),
    )
    op.create_index("ix_regrade_queue_patient_scale", "regrade_queue", ["patient_id", "scale"])
    _put_rows(rows)


def _later(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else max(a, b)


def downgrade() -> None:
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for row in _take_rows():
        old = pairs.setdefault((row["patient_id"], row["scale"]), row)
        if old is not row:
            old["latest"] = _later(old["latest"], row["latest"])
            old["interval_start"] = _later(old["interval_start"], row["interval_start"])
            old["full"] = bool(old["full"]) or bool(row["full"])
            old["queued_at"] = min(old["queued_at"], row["queued_at"])
    op.create_table(
        "regrade_queue",
        *_columns(),
        sa.PrimaryKeyConstraint("patient_id", "scale", name=op.f("pk_regrade_queue")),
    )
    _put_rows(list(pairs.values()))
