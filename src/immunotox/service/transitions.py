"""Alerts from grade transitions, each with the recommended management for the alerted grade.

Called by the write path (:mod:`.ingest`, regrade at once) and by the background regrader
(:mod:`.queue`, deferred regrade) after :func:`.grading.regrade`. The regrader computes the
recommendations before its write transaction (:func:`recommend_ahead`, no lock held) and hands
them over; a pair whose stored state changed meanwhile is recommended again under the lock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..jurisdiction import Jurisdiction
from . import alerts, audit, grading, labs, recommend
from .grade_store import StoredGrade
from .grades import Grade
from .models import Alert, Patient

Key = tuple[str, str]
Ahead = dict[Key, dict[str, Any] | None]
"""Recommendations computed before the write, per (patient, scale) of the planned grade."""


def recommend_ahead(
    session: Session,
    patients: Sequence[Patient],
    planned: grading.Plan,
    *,
    now: dt.datetime,
    jurisdiction: Jurisdiction | None = None,
) -> Ahead:
    """The recommendations of the planned grades that may raise an alert (a grade >= 1 that
    changes the stored state and may open an episode or raise its peak), computed in a read
    transaction. Each is computed with the patient's current grades as they will be once
    ``planned`` is stored, as :func:`raise_transition_alerts` would under the lock; it is valid
    only while the patient's stored grades are those of ``planned.current`` (:func:`still_valid`).
    A transition this prediction missed is recommended under the lock, as before."""
    by_id = {p.id: p for p in patients}
    after: dict[str, dict[str, int | None]] = {}
    for (pid, scale), cur in planned.current.items():
        after.setdefault(pid, {})[scale] = cur.grade
    for (pid, scale), g in planned.grades.items():
        after.setdefault(pid, {})[scale] = g.grade
    out: Ahead = {}
    for key, g in sorted(planned.grades.items()):
        patient = by_id.get(key[0])
        if patient is None or not _may_alert(planned, key, patient):
            continue
        out[key] = recommend.for_grade(
            session, patient, g.result, now=now, jurisdiction=jurisdiction, current=after[key[0]]
        )
    return out


def _may_alert(planned: grading.Plan, key: Key, patient: Patient) -> bool:
    steps = [s for s in (planned.mid.get(key), planned.grades[key]) if s is not None]
    cur = planned.current.get(key)
    if cur is not None and all(s.key == cur.fingerprint for s in steps):
        return False  # nothing to store: no transition
    ep = cur.episode if cur is not None else None
    return any(
        s.grade is not None
        and s.grade >= 1
        and (ep is None or s.grade > ep.peak_grade or ep.quiet_since is not None)
        and labs.should_alert(patient, s.scale, s.grade, s.time)
        for s in steps
    )


def still_valid(
    ahead: Ahead,
    planned: grading.Plan,
    now_current: dict[Key, StoredGrade],
    ids: Sequence[str],
    keys: Sequence[Key],
) -> Ahead:
    """The recommendations of ``ahead`` for the patients ``ids`` whose stored grades are still
    those ``planned`` was computed from (``now_current``, read under the lock) and whose planned
    grades are all being stored (``keys``); the others are computed again under the lock."""
    mine, stored = set(ids), set(keys)
    moved = {pid for pid, s in planned.grades if pid in mine and (pid, s) not in stored}
    for k in {k for k in planned.current if k[0] in mine} | set(now_current):
        a, b = planned.current.get(k), now_current.get(k)
        if (a is None, a.grade if a else None) != (b is None, b.grade if b else None):
            moved.add(k[0])
    return {k: v for k, v in ahead.items() if k[0] in mine and k[0] not in moved}


def raise_transition_alerts(
    session: Session,
    patients: Sequence[Patient],
    result: grading.Outcome,
    *,
    now: dt.datetime,
    ctx: audit.RequestContext,
    jurisdiction: Jurisdiction | None = None,
    ahead: Ahead | None = None,
) -> list[Alert]:
    """Raise the alerts of ``result``'s transitions, each with the recommendation for the site's
    ``jurisdiction`` (``IMMUNOTOX_JURISDICTION``), in English and French (taken from ``ahead``
    when computed there, see :func:`recommend_ahead`)."""
    by_id = {p.id: p for p in patients}
    raised: list[Alert] = []
    # CTCAE laboratory terms alert as the lab alert policy says (therapy class, phase, grade)
    transitions = [
        tr
        for tr in result.transitions
        if labs.should_alert(by_id[tr.grade.patient_id], tr.grade.scale, tr.grade.grade, tr.grade.time)
    ]
    for spec in alerts.specs_for_transitions(transitions):
        spec = labs.with_policy(by_id[spec.patient_id], spec)
        spec = _with_recommendation(
            session,
            by_id[spec.patient_id],
            spec,
            result.grades.get(spec.patient_id, []),
            now,
            jurisdiction,
            ahead or {},
        )
        a = alerts.raise_alert(session, spec, now=now, ctx=ctx)
        if a is not None:
            raised.append(a)
    return raised


def _with_recommendation(
    session: Session,
    patient: Patient,
    spec: alerts.AlertSpec,
    grades: Sequence[Grade],
    now: dt.datetime,
    jurisdiction: Jurisdiction | None,
    ahead: Ahead,
) -> alerts.AlertSpec:
    """Attach the recommended management for the alerted grade (when the module is present)."""
    if spec.scale is None:
        return spec
    if session.scalar(select(Alert.id).where(Alert.dedup_key == spec.dedup_key)) is not None:
        return spec  # will be deduplicated: no need to compute
    fresh = next((g for g in grades if g.scale == spec.scale), None)
    if fresh is None:
        return spec
    key = (patient.id, spec.scale)
    if key in ahead:
        rec = ahead[key]
        return replace(spec, recommendation=rec) if rec is not None else spec
    rec = recommend.for_grade(session, patient, fresh.result, now=now, jurisdiction=jurisdiction)
    return replace(spec, recommendation=rec) if rec is not None else spec
