"""The stored grades: the current grade of each (patient, scale) with its open episode, the grade
history, and the locks and statements that write them (SQLAlchemy Core, built once)."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, insert, select, update
from sqlalchemy.orm import Session

from .episodes import OpenEpisode
from .grades import Grade, stored_range
from .models import CurrentGrade, Episode, GradeRecord, Patient


@dataclass
class StoredGrade:
    """The stored current grade of one (patient, scale) and its open episode."""

    time: dt.datetime
    fingerprint: str
    clinical: str
    grade: int | None
    episode_id: int | None
    grade_record_id: int
    episode: OpenEpisode | None = None


@functools.cache
def _current_statement() -> Any:
    """Current grades of some patients with their open episode (one query)."""
    ids: Any = bindparam("ids", expanding=True)
    return (
        select(
            CurrentGrade.patient_id,
            CurrentGrade.scale,
            CurrentGrade.time,
            CurrentGrade.fingerprint,
            CurrentGrade.clinical,
            CurrentGrade.grade,
            CurrentGrade.episode_id,
            CurrentGrade.grade_record_id,
            Episode.onset_at,
            Episode.peak_grade,
            Episode.peak_at,
            Episode.last_positive_at,
            Episode.quiet_since,
        )
        .outerjoin(Episode, and_(Episode.id == CurrentGrade.episode_id, Episode.resolved_at.is_(None)))
        .where(CurrentGrade.patient_id.in_(ids))
    )


def current_state(session: Session, ids: Sequence[str]) -> dict[tuple[str, str], StoredGrade]:
    """The stored current grades of ``ids`` with their open episodes (one query)."""
    out: dict[tuple[str, str], StoredGrade] = {}
    for row in session.execute(_current_statement(), {"ids": list(ids)}):
        ep = OpenEpisode(row[6], row[8], row[9], row[10], row[11], row[12]) if row[8] is not None else None
        out[(row[0], row[1])] = StoredGrade(row[2], row[3], row[4], row[5], row[6], row[7], ep)
    return out


@functools.cache
def light_update_statement() -> Any:
    table = cast(Table, CurrentGrade.__table__)
    return (
        update(table)
        .where(table.c.patient_id == bindparam("p"), table.c.scale == bindparam("s"))
        .values(time=bindparam("t"), computed_at=bindparam("at"), fingerprint=bindparam("fp"))
    )


def lock_patients(session: Session, ids: Sequence[str]) -> None:
    """PostgreSQL: lock the patients' rows (``FOR NO KEY UPDATE``, sorted: no deadlock) so that
    two regrades of one patient never interleave. SQLite writers are serialised already."""
    if ids and session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(Patient.id)
            .where(Patient.id.in_(sorted(ids)))
            .order_by(Patient.id)
            .with_for_update(key_share=True)
        )


def same_state(a: StoredGrade | None, b: StoredGrade | None) -> bool:
    """True when two reads of a stored current grade agree (nothing regraded in between)."""
    if a is None or b is None:
        return a is b
    return (a.time, a.fingerprint, a.clinical, a.episode_id) == (
        b.time,
        b.fingerprint,
        b.clinical,
        b.episode_id,
    )


_RECORD_COLUMNS = (
    "patient_id", "scale", "time", "computed_at", "grade", "grade_lo", "grade_hi", "status",
    "complete", "missing", "result", "inputs", "engine", "episode_id",
)  # fmt: skip


_CURRENT_COLUMNS = (
    "time", "computed_at", "grade", "grade_lo", "grade_hi", "status", "complete", "missing",
    "engine", "episode_id", "grade_record_id", "fingerprint", "clinical",
)  # fmt: skip


@functools.cache
def store_statements() -> tuple[Any, Any, Any]:
    """Core statements of :func:`store`, built once with bind parameters (an ORM ``insert()
    .values(...)`` built per call costs about a millisecond of cache-key work)."""
    record = cast(Table, GradeRecord.__table__)
    current = cast(Table, CurrentGrade.__table__)
    ins_record = (
        insert(record).values({c: bindparam(f"b_{c}") for c in _RECORD_COLUMNS}).returning(record.c.id)
    )
    cols: dict[str, Any] = {c: bindparam(f"b_{c}") for c in _CURRENT_COLUMNS}
    ins_current = insert(current).values(
        {"patient_id": bindparam("b_patient_id"), "scale": bindparam("b_scale"), **cols}
    )
    upd_current = (
        update(current)
        .where(current.c.patient_id == bindparam("b_patient_id"), current.c.scale == bindparam("b_scale"))
        .values(cols)
    )
    return ins_record, ins_current, upd_current


def store(
    session: Session, g: Grade, cur: StoredGrade | None, episode_id: int | None, now: dt.datetime
) -> int:
    """Write a new clinical state: a history record and the current grade (Core statements)."""
    ins_record, ins_current, upd_current = store_statements()
    conn = session.connection()
    r = g.result
    common = {
        "b_patient_id": g.patient_id,
        "b_scale": g.scale,
        "b_time": g.time,
        "b_computed_at": now,
        "b_grade": r.grade,
        "b_grade_lo": stored_range(r)[0],
        "b_grade_hi": stored_range(r)[1],
        "b_status": r.status,
        "b_complete": r.complete,
        "b_missing": list(r.missing),
        "b_engine": g.engine,
        "b_episode_id": episode_id,
    }
    record_id = cur.grade_record_id if cur is not None else None
    if cur is None or cur.clinical != g.clinical:
        record_id = conn.execute(
            ins_record, {**common, "b_result": g.result_json, "b_inputs": g.inputs}
        ).scalar_one()
    params = {**common, "b_grade_record_id": record_id, "b_fingerprint": g.key, "b_clinical": g.clinical}
    conn.execute(ins_current if cur is None else upd_current, params)
    assert record_id is not None
    return int(record_id)
