"""Continuous grading: stored events -> findings -> grades, episodes and grade transitions.

This is the service's internal interface to grading (:func:`regrade_patient`,
:func:`regrade`). Its first implementation (``engine = "service-window-v1"``) reconstructs the
findings of each scale from the latest stored events with the documented validity windows
below, then calls the grading core (``immunotox.get_scale(...).grade(findings)``). It is meant
to be replaced by the timeline engine's per-patient path without changing its callers.

Evaluation time
    Each scale is graded "as of" ``t`` = the time of the patient's latest event of a code that
    scale reads (the end of an interval counts as an event): CRS as of the latest vital sign,
    oxygen or drug row, ICANS as of the latest neurological assessment. A replayed or imported
    history grades as it would have live, and a stale record shows its age instead of silently
    ageing out (overdue assessments raise their own alert, see :mod:`.alerts`).

Incremental regrading
    A write regrades only the scales whose codes it touched, for the patients it touched;
    ``t`` moves to the latest of the stored grade's time and the new events (a correction or a
    retraction recomputes it from the database). The windows load only the rows they need, in a
    fixed number of queries per request whatever the number of patients, and the grading of a
    set of findings is memoised (a pure function of the findings).

Validity windows (``(t - w, t]``, both on event time; superseded and retracted events excluded)

==========================  ====================================================================
finding                     reconstruction
==========================  ====================================================================
``temperature_c``           highest temperature in the last 6 h (vitals every 4 h leave one reading)
``sbp_mmhg``                lowest systolic pressure in the last 6 h
``vasopressors``            drugs of vasopressor rows running at t; ``[]`` when none runs
``oxygen``                  most intensive device running at t (the vocabulary's intensity order,
                            as the timeline engine); ``none`` when no device runs
(interval rows)             a row runs over [time, end_time); a row without end_time runs until
                            the next row of the same code (oxygen) or of the same drug
                            (vasopressor). Administrations and oxygen support are recorded on the
                            ward, so their record is taken as complete: no running row means none
                            (the rule of the vocabulary's ``data/observations.toml``)
``o2_flow_l_min``           latest oxygen flow in the last 12 h (not passed when the device is none)
``fever_masked``            true when an antipyretic, tocilizumab, corticosteroid or anakinra was
                            given at or after the onset of the CRS episode in progress (an episode
                            opens at the first grade >= 1, which requires fever); false when no CRS
                            episode is in progress (no CRS course: nothing to mask) or no such drug
                            was given since its onset (the rule of the timeline engine:
                            masking lasts for the CRS course)
``age_years``               from the birth date, else the latest ``age`` row
``ice_score`` / items       the latest ICE in the last 12 h (the total when given; otherwise the
                            items of that assessment, a partial ICE giving a grade range)
``capd_score``              latest in the last 12 h
``consciousness``           latest in the last 12 h
``seizure``, ``motor``,     latest in the last 24 h
``raised_icp_signs``
``cerebral_edema``          latest in the last 72 h (imaging is not repeated every shift)
``death_due_to_*``          a ``death`` row at or before t: true when its cause is the scale's
==========================  ====================================================================

Episodes (interim, engine-independent rule): an episode opens at the first grade >= 1 (the
grade the known findings establish), its peak is the highest such grade, and it resolves when
the grade has stayed 0 for 24 h (``resolved_at`` = the first 0). A grade that is not
assessable neither opens nor closes an episode.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, exists, func, insert, select, union_all, update
from sqlalchemy.orm import Session, aliased

from ..catalogue import all_scales, get_scale
from ..errors import FindingError
from ..result import GradeResult
from ..timeline import live
from . import labs
from .models import ClinicalEvent, CurrentGrade, Episode, GradeRecord, Patient

ENGINE = "service-window-v1"
CRS, ICANS = "astct2019:crs", "astct2019:icans"
SCALES: tuple[str, ...] = (CRS, ICANS)
NO_RANGE = (-1, -1)
"""``grade_lo``/``grade_hi`` stored for a not-applicable grade (no range; the columns are not null)."""


def stored_range(r: GradeResult) -> tuple[int, int]:
    """The (grade_lo, grade_hi) columns of a result: :data:`NO_RANGE` when it has no range."""
    return NO_RANGE if r.grade_range is None else r.grade_range


def range_from_columns(status: str, lo: int, hi: int) -> tuple[int, int] | None:
    """The grade range read back from the columns (``None`` for a not-applicable grade)."""
    return None if status == "not_applicable" else (lo, hi)


# ASTCT 2019 grades toxicities of immune effector cell therapies (CAR-T) and T-cell engagers;
# checkpoint-inhibitor immune-related adverse events are graded with the ASCO 2021 organ scales
# (asco2021:<organ>, the grades the asco2021-ici management tables key on) that the vocabulary
# can reconstruct from the record: those with at least one derivable finding (data decides: a
# scale joins when its findings get a derivation in data/observations.toml). No ASTCT grade is
# computed for a checkpoint-inhibitor patient, no irAE grade for a CAR-T patient.
IRAE_SCALES: tuple[str, ...] = tuple(
    s for s in all_scales() if s.startswith("asco2021:") and live.live_plan(s).reads
)
SCALES_BY_THERAPY: dict[str, tuple[str, ...]] = {
    "car_t": SCALES,
    "bispecific": SCALES,
    "checkpoint_inhibitor": IRAE_SCALES,
}

# what each scale reads and over which windows: the timeline engine's live plan of the scale
# (the derivations of data/observations.toml); a row of another code never regrades
PLANS: dict[str, live.LivePlan] = {s: live.live_plan(s) for s in (*SCALES, *IRAE_SCALES)}
SCALE_CODES: dict[str, frozenset[str]] = {s: lp.reads for s, lp in PLANS.items()}
SCALE_CODES.update(labs.SCALE_CODES)  # CTCAE laboratory terms (:mod:`.labs`)
RELEVANT_CODES: frozenset[str] = frozenset().union(*SCALE_CODES.values())
COURSE_SCALE = live.COURSE_SCALE
"""The scale whose open episode is the CRS course that bounds fever masking."""


@dataclass(frozen=True)
class Grade:
    """One grade of one patient on one scale, as of ``time``, with the inputs it used."""

    patient_id: str
    scale: str
    time: dt.datetime
    result: GradeResult
    inputs: dict[str, Any]
    engine: str = ENGINE
    clinical: str = ""  # clinical fingerprint (see :func:`grade_findings`)
    result_json: dict[str, Any] = field(default_factory=dict)
    key: str = ""  # fingerprint of everything shown: findings, the events used, the time

    @property
    def grade(self) -> int | None:
        return self.result.grade

    def clinical_fingerprint(self) -> str:
        """Changes when the grade, its range, status, missing inputs or deciding rules change."""
        return self.clinical

    def fingerprint(self) -> str:
        """Changes when anything shown to a person changes (values in the explanation included)."""
        return self.key


@dataclass
class Transition:
    """What a regrade changed for one patient and scale (read by the alert rules)."""

    grade: Grade
    previous: int | None
    episode: OpenEpisode | None
    opened: bool = False
    peak_raised: bool = False
    resolved: bool = False


@dataclass
class OpenEpisode:
    """An episode in progress, as the regrade reads and updates it."""

    id: int
    onset_at: dt.datetime
    peak_grade: int
    peak_at: dt.datetime
    last_positive_at: dt.datetime
    quiet_since: dt.datetime | None
    resolved_at: dt.datetime | None = None


@dataclass
class _Current:
    """The stored current grade of one (patient, scale) and its open episode."""

    time: dt.datetime
    fingerprint: str
    clinical: str
    grade: int | None
    episode_id: int | None
    grade_record_id: int
    episode: OpenEpisode | None = None


@dataclass
class Outcome:
    grades: dict[str, list[Grade]] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)


# ----------------------------------------------------------------------------- grading (memoised)
def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(name: str, value: Any) -> Any:
    if name == "ice_items" or name in labs.QUANTITIES:  # a dict, frozen
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value


@functools.lru_cache(maxsize=16384)
def _graded(scale_id: str, key: tuple[tuple[str, Any], ...]) -> tuple[GradeResult, dict[str, Any], str]:
    findings = {k: _thaw(k, v) for k, v in key}
    result = get_scale(scale_id).grade(findings)
    r = result
    clinical = json.dumps(
        [r.grade, list(stored_range(r)), r.status, r.missing, r.deciding_domains, [h.rule for h in r.fired]]
    )
    result_json = r.model_dump(mode="json")
    return result, result_json, hashlib.sha256(clinical.encode()).hexdigest()


def grade_findings(scale_id: str, findings: dict[str, Any]) -> tuple[GradeResult, dict[str, Any], str]:
    """(result, its JSON, clinical fingerprint) for ``findings`` — a pure, memoised function.

    A set of findings that contradicts itself (a stored-data inconsistency) is graded without
    the offending finding, and the problem is reported by the caller.
    """
    return _graded(scale_id, _freeze(findings))


# ----------------------------------------------------------------------------- loading
# A loaded event row: the SQLAlchemy Row of _COLS (attributes patient_id, id, code, time,
# end_time, value, value_num, assessment_id), used as is (no copy per row).
_Row = Any


@dataclass
class _State:
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
    """The (cached) UNION ALL that loads what :func:`_load` needs, by each scale's live plan
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


def _times_from_db(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dt.datetime]:
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


def _load(
    session: Session,
    times: dict[tuple[str, str], dt.datetime],
    course_onsets: dict[str, dt.datetime] | None = None,
) -> dict[tuple[str, str], _State]:
    """The rows each (patient, scale) needs at its time, for all of them in a few queries
    (``course_onsets``: onset of each patient's CRS course in progress, for fever masking)."""
    course_onsets = course_onsets or {}
    if not times:
        return {}
    states = {k: _State(t=t) for k, t in times.items()}
    hi = max(times.values())
    by_pid: dict[str, list[tuple[str, _State]]] = defaultdict(list)
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
            if row.code in SCALE_CODES[scale] and row.time <= st.t:
                st.rows.append(row)
    return states


def _age(patient: Patient, t: dt.datetime) -> tuple[float, str] | None:
    """The patient's age at ``t`` from the birth date (None: the timeline's rule, the latest
    ``age`` row, applies)."""
    if patient.birth_date is None:
        return None
    bd, d = patient.birth_date, t.date()
    years = d.year - bd.year - ((d.month, d.day) < (bd.month, bd.day))
    return float(max(years, 0)), "birth date"


def _grade_one(patient: Patient, scale_id: str, st: _State, course_onset: dt.datetime | None) -> Grade:
    snap = live.derive(
        PLANS[scale_id],
        st.rows,
        st.t,
        age=_age(patient, st.t),
        course_onset=course_onset if scale_id == COURSE_SCALE else None,
    )
    findings = dict(snap.findings)
    inputs: dict[str, Any] = {
        k: {"value": e.value, "rule": e.rule, "events": list(e.rows)} for k, e in snap.evidence.items()
    }
    return _grade_from(patient.id, scale_id, st.t, findings, inputs)


def _lab_grades(
    session: Session, by_id: dict[str, Patient], times: dict[tuple[str, str], dt.datetime]
) -> dict[tuple[str, str], Grade]:
    """The CTCAE laboratory grades of ``times``' pairs (:mod:`.labs`; a pair without a result is left out)."""
    found = labs.lab_findings(session, by_id, times, is_current_event())
    return {k: _grade_from(k[0], k[1], times[k], f, i) for k, (f, i) in sorted(found.items())}


def _grade_from(
    patient_id: str, scale_id: str, t: dt.datetime, findings: dict[str, Any], inputs: dict[str, Any]
) -> Grade:
    """Grade reconstructed ``findings`` (memoised) and fingerprint what is shown."""
    try:
        result, result_json, clinical = grade_findings(scale_id, findings)
    except FindingError as exc:  # stored data contradicting itself: say so, grade without it
        inputs["error"] = str(exc)
        findings.pop(exc.field.split(".")[0], None)
        result, result_json, clinical = grade_findings(scale_id, findings)
    used = sorted({i for item in inputs.values() if isinstance(item, dict) for i in item.get("events", [])})
    key = hashlib.blake2b(
        repr((scale_id, sorted(findings.items()), used, t.isoformat(), ENGINE, inputs.get("error"))).encode(),
        digest_size=16,
    ).hexdigest()
    return Grade(patient_id, scale_id, t, result, inputs, ENGINE, clinical, result_json, key)


def scales_of(patient: Patient) -> tuple[str, ...]:
    return SCALES_BY_THERAPY.get(patient.therapy_class, SCALES)


def all_scales_of(patient: Patient) -> tuple[str, ...]:
    """:func:`scales_of` and the CTCAE laboratory terms (graded once a result of their analyte
    is recorded, for every therapy class: :mod:`.labs`)."""
    return (*scales_of(patient), *labs.LAB_SCALES)


def compute(
    session: Session, patients: Sequence[Patient], scales: Sequence[str] | None = None
) -> dict[str, list[Grade]]:
    """The grades of ``patients`` (on ``scales``, default all) recomputed from the stored events;
    nothing is stored. This is what a reader sees: the latest values in every explanation."""
    keys = [(p.id, s) for p in patients for s in all_scales_of(p) if scales is None or s in scales]
    times = _times_from_db(session, [(p.id, s) for p in patients for s in all_scales_of(p)])
    for pid, s in keys:
        if (pid, s) not in times and not labs.is_lab(s):  # no data: not assessable as of the latest
            other = [t for (p2, _s2), t in times.items() if p2 == pid]
            if other:
                times[(pid, s)] = max(other)
    current = _current(session, [p.id for p in patients])
    onsets = {
        pid: c.episode.onset_at
        for (pid, s), c in current.items()
        if s == COURSE_SCALE and c.episode is not None
    }
    lab_times = {k: times[k] for k in keys if k in times and labs.is_lab(k[1])}
    states = _load(session, {k: times[k] for k in keys if k in times and k not in lab_times}, onsets)
    by_lab = _lab_grades(session, {p.id: p for p in patients}, lab_times)
    out: dict[str, list[Grade]] = {}
    for p in patients:
        out[p.id] = [
            _grade_one(p, s, states[(p.id, s)], onsets.get(p.id)) for s in scales_of(p) if (p.id, s) in states
        ] + [by_lab[(p.id, s)] for s in labs.LAB_SCALES if (p.id, s) in by_lab]
    return out


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


def current_state(session: Session, ids: Sequence[str]) -> dict[tuple[str, str], _Current]:
    """The stored current grades of ``ids`` with their open episodes (one query)."""
    return _current(session, ids)


def _current(session: Session, ids: Sequence[str]) -> dict[tuple[str, str], _Current]:
    out: dict[tuple[str, str], _Current] = {}
    for row in session.execute(_current_statement(), {"ids": list(ids)}):
        ep = OpenEpisode(row[6], row[8], row[9], row[10], row[11], row[12]) if row[8] is not None else None
        out[(row[0], row[1])] = _Current(row[2], row[3], row[4], row[5], row[6], row[7], ep)
    return out


@functools.cache
def _episode_update_statement() -> Any:
    table = cast(Table, Episode.__table__)
    return (
        update(table)
        .where(table.c.id == bindparam("i"))
        .values(
            peak_grade=bindparam("peak"),
            peak_at=bindparam("peak_at"),
            last_positive_at=bindparam("last"),
            quiet_since=bindparam("quiet"),
            resolved_at=bindparam("resolved"),
            updated_at=bindparam("at"),
        )
    )


@functools.cache
def _light_update_statement() -> Any:
    table = cast(Table, CurrentGrade.__table__)
    return (
        update(table)
        .where(table.c.patient_id == bindparam("p"), table.c.scale == bindparam("s"))
        .values(time=bindparam("t"), computed_at=bindparam("at"), fingerprint=bindparam("fp"))
    )


# ----------------------------------------------------------------------------- storing
Key = tuple[str, str]
Touched = dict[Key, dt.datetime | None]


@dataclass
class Touch:
    """What a write (or the queue) asks to regrade.

    ``latest``: per (patient, scale), the latest time the new events reach (an interval's end
    included; None = recompute from the database); ``full``: pairs whose evaluation time must be
    recomputed from the database (corrections, retractions); ``starts``: the latest start of an
    interval that arrived with its end (a vasopressor infusion charted afterwards): the pair is
    also graded at that start, so a peak inside the interval reaches the history, the episode
    and the alerts even though the current grade is the one after its end.
    """

    latest: Touched = field(default_factory=dict)
    full: set[Key] = field(default_factory=set)
    starts: dict[Key, dt.datetime] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.latest)


def touched_keys(patients: Sequence[Patient], events: Sequence[Any] | None) -> Touch:
    """Which (patient, scale) pairs ``events`` touch (see :class:`Touch`); all pairs of
    ``patients`` (to recompute from the database) when ``events`` is None."""
    out = Touch()
    by_id = {p.id: p for p in patients}
    if events is None:
        for p in patients:
            for s in (*scales_of(p), *labs.LAB_SCALES):  # a lab scale without results is dropped
                out.latest[(p.id, s)] = None
                out.full.add((p.id, s))
        return out
    for e in events:
        owner = by_id.get(e.patient_id)
        if owner is None or e.code not in RELEVANT_CODES:
            continue
        for s in (*scales_of(owner), *labs.LAB_SCALES):
            if e.code not in SCALE_CODES[s]:
                continue
            key = (owner.id, s)
            t = max(e.time, e.end_time) if e.end_time is not None else e.time
            prev = out.latest.get(key)
            out.latest[key] = t if prev is None else max(prev, t)
            if e.end_time is not None and e.end_time > e.time:
                start = out.starts.get(key)
                out.starts[key] = e.time if start is None else max(start, e.time)
            if e.supersedes_id is not None or e.status != "final":
                out.full.add(key)  # a correction may move t back: recompute it
    return out


@dataclass
class Plan:
    """The grades computed for some (patient, scale) pairs and the stored state they were
    compared with — the read half of a regrade (no write, no lock)."""

    grades: dict[tuple[str, str], Grade] = field(default_factory=dict)
    current: dict[tuple[str, str], _Current] = field(default_factory=dict)
    mid: dict[tuple[str, str], Grade] = field(default_factory=dict)  # at an interval's start


def plan(
    session: Session,
    patients: Sequence[Patient],
    touch: Touch,
    *,
    current: dict[tuple[str, str], _Current] | None = None,
    pause: Callable[[], None] | None = None,
) -> Plan:
    """Compute the grades of the touched pairs (and of the scales a touched patient was never
    graded on); reads only. ``pause`` is called between pairs."""
    by_id = {p.id: p for p in patients}
    touched = {k: v for k, v in touch.latest.items() if k[0] in by_id}
    full = set(touch.full)
    if not touched:
        return Plan()
    ids = sorted({pid for pid, _ in touched})
    if current is None:
        current = _current(session, ids)
    # a scale never graded for a touched patient gets its first grade now (often "not
    # assessable": e.g. ICANS before any neurological assessment), so absence is explicit
    latest: dict[str, dt.datetime] = {}
    for (pid, _s), t_new in touched.items():
        if t_new is not None:
            latest[pid] = max(latest.get(pid, t_new), t_new)
    for pid in ids:
        for s in scales_of(by_id[pid]):
            if (pid, s) not in touched and (pid, s) not in current:
                touched[(pid, s)] = None
                full.add((pid, s))
    times: dict[tuple[str, str], dt.datetime] = {}
    for key, t_new in touched.items():
        cur = current.get(key)
        if key in full or cur is None or t_new is None:
            full.add(key)
        else:
            times[key] = max(cur.time, t_new)
    times.update(_times_from_db(session, full))
    for key in full:
        if key not in times and key[0] in latest and not labs.is_lab(key[1]):
            times[key] = latest[key[0]]
    onsets = {
        pid: c.episode.onset_at
        for (pid, s), c in current.items()
        if s == COURSE_SCALE and c.episode is not None
    }
    lab_times = {k: t for k, t in times.items() if labs.is_lab(k[1])}
    states = _load(session, {k: t for k, t in times.items() if k not in lab_times}, onsets)
    out = Plan(current=current)
    for key in sorted(states):
        if pause is not None:
            pause()
        out.grades[key] = _grade_one(by_id[key[0]], key[1], states[key], onsets.get(key[0]))
    out.grades.update(_lab_grades(session, by_id, lab_times))
    mids = {
        key: start
        for key, start in touch.starts.items()
        if key in times and start < times[key] and (key not in current or start > current[key].time)
    }
    if mids:
        for key, st in _load(session, mids, onsets).items():
            out.mid[key] = _grade_one(by_id[key[0]], key[1], st, onsets.get(key[0]))
    return out


def commit(
    session: Session, planned: Plan, *, now: dt.datetime, keys: Iterable[tuple[str, str]] | None = None
) -> Outcome:
    """The write half of a regrade: episodes, current grades and history for the planned pairs
    (``keys``, default all) whose grade changed — at an interval's start first when planned, then
    at the evaluation time. ``planned.current`` must be the stored state as it is now."""
    out = Outcome()
    light: dict[Key, dict[str, Any]] = {}
    episode_updates: dict[int, dict[str, Any]] = {}
    for key in sorted(planned.grades if keys is None else keys):
        g = planned.grades[key]
        out.grades.setdefault(key[0], []).append(g)
        cur = planned.current.get(key)
        for step in (planned.mid.get(key), g):
            if step is not None:
                cur = _step(session, step, cur, now, out, light, episode_updates)
    if episode_updates:
        session.connection().execute(_episode_update_statement(), list(episode_updates.values()))
    if light:
        session.connection().execute(_light_update_statement(), list(light.values()))
    return out


def _step(
    session: Session,
    g: Grade,
    cur: _Current | None,
    now: dt.datetime,
    out: Outcome,
    light: dict[Key, dict[str, Any]],
    episode_updates: dict[int, dict[str, Any]],
) -> _Current | None:
    """Apply one graded state to the stored current grade; return the new stored state."""
    key = (g.patient_id, g.scale)
    if cur is not None and cur.fingerprint == g.key:
        return cur
    ep = cur.episode if cur is not None else None
    tr, changed = _episode_step(session, g, ep, cur, now)
    for oe in changed:
        episode_updates[oe.id] = {
            "i": oe.id,
            "peak": oe.peak_grade,
            "peak_at": oe.peak_at,
            "last": oe.last_positive_at,
            "quiet": oe.quiet_since,
            "resolved": oe.resolved_at,
            "at": now,
        }
    open_ep = tr.episode if tr.episode is not None and tr.episode.resolved_at is None else None
    episode_id = open_ep.id if open_ep is not None else None
    if cur is not None and cur.clinical == g.clinical and cur.episode_id == episode_id:
        # same clinical state: move the evaluation time; the explanation with its latest
        # values is recomputed on read, so the large JSON columns are not rewritten
        light[key] = {"p": key[0], "s": key[1], "t": g.time, "at": now, "fp": g.key}
        record_id = cur.grade_record_id
    else:
        light.pop(key, None)
        record_id = _store(session, g, cur, episode_id, now)
    out.transitions.append(tr)
    return _Current(g.time, g.key, g.clinical, g.grade, episode_id, record_id, open_ep)


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


def same_state(a: _Current | None, b: _Current | None) -> bool:
    """True when two reads of a stored current grade agree (nothing regraded in between)."""
    if a is None or b is None:
        return a is b
    return (a.time, a.fingerprint, a.clinical, a.episode_id) == (
        b.time,
        b.fingerprint,
        b.clinical,
        b.episode_id,
    )


def regrade(
    session: Session,
    patients: Sequence[Patient],
    *,
    now: dt.datetime,
    events: Sequence[Any] | None = None,
    touch: Touch | None = None,
) -> Outcome:
    """Regrade, store what changed, update episodes; return grades and transitions.

    With ``events`` (the rows a write just stored), only the scales whose codes they touch are
    regraded (incremental path); with ``touch``, those pairs; with neither, every scale of every
    patient (full path). Runs in the caller's write transaction (:func:`plan` then
    :func:`commit`), so a write and the grades it causes commit together; on PostgreSQL the
    patients' rows are locked first (:func:`lock_patients`).
    """
    if touch is None:
        touch = touched_keys(patients, events)
    if not touch:
        return Outcome()
    lock_patients(session, sorted({pid for pid, _ in touch.latest}))
    return commit(session, plan(session, patients, touch), now=now)


def _episode_step(
    session: Session, g: Grade, ep: OpenEpisode | None, cur: _Current | None, now: dt.datetime
) -> tuple[Transition, list[OpenEpisode]]:
    """Apply grade ``g`` to the open episode ``ep`` by the timeline's episode rule
    (:func:`immunotox.timeline.live.step_episode`); returns the transition and the stored
    episodes it changed (a new one is inserted here)."""
    previous = cur.grade if cur is not None else None
    tr = Transition(grade=g, previous=previous, episode=ep)
    course = (
        None
        if ep is None
        else live.course_of(ep.onset_at, ep.peak_grade, ep.peak_at, ep.last_positive_at, ep.quiet_since)
    )
    step = live.step_episode(course, g.time, g.grade)
    changed: list[OpenEpisode] = []
    if ep is not None and step.closed is not None and step.closed.resolved_at is not None:
        ep.resolved_at = live.from_us(step.closed.resolved_at)
        tr.resolved = True
        changed.append(ep)
    c = step.course
    if step.opened and c is not None:
        value = c.peak
        new_id = session.execute(
            insert(Episode)
            .values(
                patient_id=g.patient_id,
                scale=g.scale,
                onset_at=g.time,
                peak_grade=value,
                peak_at=g.time,
                last_positive_at=g.time,
                updated_at=now,
            )
            .returning(Episode.id)
        ).scalar_one()
        tr.episode = OpenEpisode(new_id, g.time, value, g.time, g.time, None)
        tr.opened = True
    elif ep is not None and c is not None:
        ep.peak_grade = c.peak
        ep.peak_at = live.from_us(c.peak_at)
        ep.last_positive_at = live.from_us(c.last_positive)
        ep.quiet_since = None if c.quiet_since is None else live.from_us(c.quiet_since)
        tr.peak_raised = step.peak_raised
        changed.append(ep)
    return tr, changed


_RECORD_COLUMNS = (
    "patient_id", "scale", "time", "computed_at", "grade", "grade_lo", "grade_hi", "status",
    "complete", "missing", "result", "inputs", "engine", "episode_id",
)  # fmt: skip
_CURRENT_COLUMNS = (
    "time", "computed_at", "grade", "grade_lo", "grade_hi", "status", "complete", "missing",
    "engine", "episode_id", "grade_record_id", "fingerprint", "clinical",
)  # fmt: skip


@functools.cache
def _store_statements() -> tuple[Any, Any, Any]:
    """Core statements of :func:`_store`, built once with bind parameters (an ORM ``insert()
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


def _store(session: Session, g: Grade, cur: _Current | None, episode_id: int | None, now: dt.datetime) -> int:
    """Write a new clinical state: a history record and the current grade (Core statements)."""
    ins_record, ins_current, upd_current = _store_statements()
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


def regrade_patient(session: Session, patient_id: str, *, now: dt.datetime | None = None) -> list[Grade]:
    """Regrade one patient and store the result (the interface the timeline engine will serve)."""
    from .db import utcnow

    found = session.get(Patient, patient_id)
    if found is None:
        return []
    patient: Patient = found
    return regrade(session, [patient], now=now or utcnow()).grades.get(patient_id, [])
