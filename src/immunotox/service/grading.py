"""Continuous grading: stored events -> findings -> grades, episodes and grade transitions.

This is the service's internal interface to grading (:func:`regrade`, :func:`compute`,
:func:`regrade_patient`; :func:`plan` and :func:`commit` are its read and write halves, which the
background regrader of :mod:`.queue` runs apart). It rebuilds no finding itself: for each touched
(patient, scale) it

1. finds the evaluation time and loads the rows the scale reads (:mod:`.event_rows`, from the
   scale's live plan in the timeline engine),
2. grades them (:func:`.grades.grade_at`: the timeline engine's per-patient entry point
   :func:`immunotox.timeline.live.derive`, then the grading core, memoised),
3. applies the timeline's episode rule to the stored open episode (:mod:`.episodes`),
4. stores what changed (:mod:`.grade_store`: current grade, grade history, episodes).

Evaluation time
    Each scale is graded "as of" ``t`` = the time of the patient's latest event of a code that
    scale reads (the end of an interval counts as an event): CRS as of the latest vital sign,
    oxygen or drug row, ICANS as of the latest neurological assessment. A replayed or imported
    history grades as it would have live, and a stale record shows its age instead of silently
    ageing out (overdue assessments raise their own alert, see :mod:`.alerts`).

Incremental regrading
    A write regrades only the scales whose codes it touched, for the patients it touched;
    ``t`` moves to the latest of the stored grade's time and the new events (a correction or a
    retraction recomputes it from the database). The rows load in a fixed number of queries per
    request whatever the number of patients, and the grading of a set of findings is memoised
    (a pure function of the findings).

The rules themselves (validity windows, running intervals, device intensity, fever masking, ICE
records, age, death, episodes) are those of ``data/observations.toml`` as the timeline engine
reads them; ``docs/timeline.md`` and ``docs/service.md`` state them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from . import episodes, labs, organ_labs
from .episodes import Transition
from .event_rows import COURSE_SCALE, RELEVANT_CODES, SCALE_CODES, evaluation_times, is_current_event, load
from .grade_store import StoredGrade, current_state, light_update_statement, lock_patients, store
from .grades import Grade, all_scales_of, grade_at, grade_from, scales_of
from .models import Patient


@dataclass
class Outcome:
    grades: dict[str, list[Grade]] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)


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
    current: dict[tuple[str, str], StoredGrade] = field(default_factory=dict)
    mid: dict[tuple[str, str], Grade] = field(default_factory=dict)  # at an interval's start


def plan(
    session: Session,
    patients: Sequence[Patient],
    touch: Touch,
    *,
    current: dict[tuple[str, str], StoredGrade] | None = None,
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
        current = current_state(session, ids)
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
    times.update(evaluation_times(session, full))
    for key in full:
        if key not in times and key[0] in latest and not labs.is_lab(key[1]):
            times[key] = latest[key[0]]
    onsets = {
        pid: c.episode.onset_at
        for (pid, s), c in current.items()
        if s == COURSE_SCALE and c.episode is not None
    }
    lab_times = {k: t for k, t in times.items() if labs.is_lab(k[1])}
    states = load(session, {k: t for k, t in times.items() if k not in lab_times}, onsets)
    out = Plan(current=current)
    ctxs = organ_labs.contexts(session, by_id, states, is_current_event())
    for key in sorted(states):
        if pause is not None:
            pause()
        out.grades[key] = grade_at(
            by_id[key[0]], key[1], states[key].t, states[key].rows, onsets.get(key[0]), ctxs.get(key[0])
        )
    out.grades.update(_lab_grades(session, by_id, lab_times))
    mids = {
        key: start
        for key, start in touch.starts.items()
        if key in times and start < times[key] and (key not in current or start > current[key].time)
    }
    if mids:
        for key, st in load(session, mids, onsets).items():
            out.mid[key] = grade_at(
                by_id[key[0]], key[1], st.t, st.rows, onsets.get(key[0]), ctxs.get(key[0])
            )
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
        session.connection().execute(episodes.update_statement(), list(episode_updates.values()))
    if light:
        session.connection().execute(light_update_statement(), list(light.values()))
    return out


def _step(
    session: Session,
    g: Grade,
    cur: StoredGrade | None,
    now: dt.datetime,
    out: Outcome,
    light: dict[Key, dict[str, Any]],
    episode_updates: dict[int, dict[str, Any]],
) -> StoredGrade | None:
    """Apply one graded state to the stored current grade; return the new stored state."""
    key = (g.patient_id, g.scale)
    if cur is not None and cur.fingerprint == g.key:
        return cur
    ep = cur.episode if cur is not None else None
    tr, changed = episodes.step(session, g, ep, cur.grade if cur is not None else None, now)
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
        record_id = store(session, g, cur, episode_id, now)
    out.transitions.append(tr)
    return StoredGrade(g.time, g.key, g.clinical, g.grade, episode_id, record_id, open_ep)


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


def compute(
    session: Session, patients: Sequence[Patient], scales: Sequence[str] | None = None
) -> dict[str, list[Grade]]:
    """The grades of ``patients`` (on ``scales``, default all) recomputed from the stored events;
    nothing is stored. This is what a reader sees: the latest values in every explanation."""
    keys = [(p.id, s) for p in patients for s in all_scales_of(p) if scales is None or s in scales]
    times = evaluation_times(session, [(p.id, s) for p in patients for s in all_scales_of(p)])
    for pid, s in keys:
        if (pid, s) not in times and not labs.is_lab(s):  # no data: not assessable as of the latest
            other = [t for (p2, _s2), t in times.items() if p2 == pid]
            if other:
                times[(pid, s)] = max(other)
    current = current_state(session, [p.id for p in patients])
    onsets = {
        pid: c.episode.onset_at
        for (pid, s), c in current.items()
        if s == COURSE_SCALE and c.episode is not None
    }
    lab_times = {k: times[k] for k in keys if k in times and labs.is_lab(k[1])}
    states = load(session, {k: times[k] for k in keys if k in times and k not in lab_times}, onsets)
    by_lab = _lab_grades(session, {p.id: p for p in patients}, lab_times)
    ctxs = organ_labs.contexts(session, {p.id: p for p in patients}, states, is_current_event())
    out: dict[str, list[Grade]] = {}
    for p in patients:
        out[p.id] = [
            grade_at(p, s, states[(p.id, s)].t, states[(p.id, s)].rows, onsets.get(p.id), ctxs.get(p.id))
            for s in scales_of(p)
            if (p.id, s) in states
        ] + [by_lab[(p.id, s)] for s in labs.LAB_SCALES if (p.id, s) in by_lab]
    return out


def _lab_grades(
    session: Session, by_id: dict[str, Patient], times: dict[tuple[str, str], dt.datetime]
) -> dict[tuple[str, str], Grade]:
    """The CTCAE laboratory grades of ``times``' pairs (:mod:`.labs`; a pair without a result is left out)."""
    found = labs.lab_findings(session, by_id, times, is_current_event())
    return {k: grade_from(k[0], k[1], times[k], f, i) for k, (f, i) in sorted(found.items())}


def regrade_patient(session: Session, patient_id: str, *, now: dt.datetime | None = None) -> list[Grade]:
    """Regrade one patient and store the result (the interface the timeline engine will serve)."""
    from .db import utcnow

    found = session.get(Patient, patient_id)
    if found is None:
        return []
    patient: Patient = found
    return regrade(session, [patient], now=now or utcnow()).grades.get(patient_id, [])
