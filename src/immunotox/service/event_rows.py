"""Which stored events a grade reads, loaded for many (patient, scale) pairs in a few queries.

Each scale reads the codes its live plan names (:func:`immunotox.timeline.live.live_plan`, from
the derivations of ``data/observations.toml``): point codes over their validity window before the
evaluation time, interval codes and whole-record codes (age, death) up to it, masking therapies
since the onset of the CRS course in progress. Superseded and retracted events are excluded. The
evaluation time of a (patient, scale) is the time of the latest event of a code the scale reads
(the end of an interval counts).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, select, union_all
from sqlalchemy.orm import Session, aliased

from ..timeline import live
from . import labs
from .grades import IRAE_SCALES, SCALES
from .models import ClinicalEvent

# what each scale reads and over which windows: the timeline engine's live plan of the scale
# (the derivations of data/observations.toml); a row of another code never regrades
PLANS: dict[str, live.LivePlan] = {s: live.live_plan(s) for s in (*SCALES, *IRAE_SCALES)}
SCALE_CODES: dict[str, frozenset[str]] = {s: lp.reads for s, lp in PLANS.items()}
SCALE_CODES.update(labs.SCALE_CODES)  # CTCAE laboratory terms (:mod:`.labs`)
RELEVANT_CODES: frozenset[str] = frozenset().union(*SCALE_CODES.values())


COURSE_SCALE = live.COURSE_SCALE
"""The scale whose open episode is the CRS course that bounds fever masking."""

# A loaded event row: the SQLAlchemy Row of _COLS (attributes patient_id, id, code, time,
# end_time, value, value_num, assessment_id, ref_low, ref_high), used as is (no copy per row).
_Row = Any


@dataclass
class Loaded:
    """The evaluation time of one (patient, scale) and the rows loaded for it."""

    t: dt.datetime
    rows: list[_Row] = field(default_factory=list)


@functools.cache
def is_current_event() -> Any:
    """SQL condition: the event is final and no later event supersedes it (built once: an
    aliased ORM construct costs milliseconds; SQL expressions are immutable and shareable)."""
    sup = aliased(ClinicalEvent)
    return and_(
        ClinicalEvent.status == "final",
        ~exists().where(sup.supersedes_id == ClinicalEvent.id),
    )


_COLS = (
    ClinicalEvent.patient_id,
    ClinicalEvent.id,
    ClinicalEvent.code,
    ClinicalEvent.time,
    ClinicalEvent.end_time,
    ClinicalEvent.value,
    ClinicalEvent.value_num,
    ClinicalEvent.assessment_id,
    ClinicalEvent.ref_low,  # a laboratory result's own reference interval (organ grades: .organ_labs)
    ClinicalEvent.ref_high,
)


def _rows(session: Session, stmt: Any, params: dict[str, Any] | None = None) -> Iterable[tuple[str, _Row]]:
    for row in session.execute(stmt, params or {}):
        yield row.patient_id, row


@functools.cache
def _window_groups(scale: str) -> tuple[tuple[dt.timedelta, tuple[str, ...]], ...]:
    groups: dict[dt.timedelta, list[str]] = defaultdict(list)
    for code, w in sorted(PLANS[scale].windows.items()):
        groups[w].append(code)
    return tuple((w, tuple(cs)) for w, cs in sorted(groups.items()))


@functools.cache
def _load_statement(scales: tuple[str, ...], masking: bool) -> Any:
    """The (cached) UNION ALL that loads what :func:`load` needs, by each scale's live plan
    (:func:`immunotox.timeline.live.live_plan`). Every branch is "patient IN .. AND code IN ..
    AND time range", answered by the (patient_id, code, time) index — never by a scan of a
    patient's whole history."""
    cur = is_current_event()
    pid, code, time = ClinicalEvent.patient_id, ClinicalEvent.code, ClinicalEvent.time
    hi: Any = bindparam("hi")
    branches: list[Any] = []
    for i, scale in enumerate(scales):
        lp = PLANS[scale]
        ids: Any = bindparam(f"p{i}", expanding=True)
        for j, (_w, cs) in enumerate(_window_groups(scale)):  # each code over its own window
            branches.append(
                select(*_COLS).where(
                    pid.in_(ids), code.in_(cs), time > bindparam(f"lo{i}_{j}"), time <= hi, cur
                )
            )
        # intervals (no lower bound: an infusion may have started days ago; few rows) and the
        # codes read over the whole record (age, death)
        whole = sorted(lp.intervals | lp.record)
        if whole:
            branches.append(select(*_COLS).where(pid.in_(ids), code.in_(whole), time <= hi, cur))
    if masking:  # masking therapies since the onset of the CRS course in progress
        masked: Any = bindparam("masked", expanding=True)
        branches.append(
            select(*_COLS).where(
                pid.in_(masked),
                code.in_(sorted(PLANS[COURSE_SCALE].masking)),
                time >= bindparam("since"),
                time <= hi,
                cur,
            )
        )
    return union_all(*branches)


def evaluation_times(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dt.datetime]:
    """Evaluation time of each (patient, scale) from the stored events (the full path)."""
    keys = list(keys)
    if not keys:
        return {}
    ids = sorted({pid for pid, _ in keys})
    latest: dict[tuple[str, str], dt.datetime] = {}
    stmt = (
        select(
            ClinicalEvent.patient_id,
            ClinicalEvent.code,
            func.max(ClinicalEvent.time),
            func.max(ClinicalEvent.end_time),
        )
        .where(ClinicalEvent.patient_id.in_(ids), ClinicalEvent.code.in_(RELEVANT_CODES), is_current_event())
        .group_by(ClinicalEvent.patient_id, ClinicalEvent.code)
    )
    for pid, code, t_max, end_max in session.execute(stmt):
        t = max(x for x in (t_max, end_max) if x is not None)
        latest[(pid, code)] = t
    out: dict[tuple[str, str], dt.datetime] = {}
    for pid, scale in keys:
        ts = [t for (p, code), t in latest.items() if p == pid and code in SCALE_CODES[scale]]
        if ts:
            out[(pid, scale)] = max(ts)
    return out


def load(
    session: Session,
    times: dict[tuple[str, str], dt.datetime],
    course_onsets: dict[str, dt.datetime] | None = None,
) -> dict[tuple[str, str], Loaded]:
    """The rows each (patient, scale) needs at its time, for all of them in a few queries
    (``course_onsets``: onset of each patient's CRS course in progress, for fever masking)."""
    course_onsets = course_onsets or {}
    if not times:
        return {}
    states = {k: Loaded(t=t) for k, t in times.items()}
    hi = max(times.values())
    by_pid: dict[str, list[tuple[str, Loaded]]] = defaultdict(list)
    for (pid, s), st in states.items():
        by_pid[pid].append((s, st))
    scales = tuple(sorted({s for _, s in times}))
    masked_ids = sorted({pid for pid, s in times if s == COURSE_SCALE and pid in course_onsets})
    params: dict[str, Any] = {"hi": hi}
    for i, scale in enumerate(scales):
        params[f"p{i}"] = sorted({pid for pid, s in times if s == scale})
        lo = min(t for (_, s), t in times.items() if s == scale)
        for j, (w, _codes) in enumerate(_window_groups(scale)):
            params[f"lo{i}_{j}"] = lo - w
    if masked_ids:
        params["masked"] = masked_ids
        params["since"] = min(course_onsets[pid] for pid in masked_ids)
    for pid, row in _rows(session, _load_statement(scales, bool(masked_ids)), params):
        for scale, st in by_pid[pid]:
            if row.code in SCALE_CODES[scale] and (row.time <= st.t or row.code in PLANS[scale].record):
                st.rows.append(row)
    return states
