"""Alerts from grade transitions, each with the recommended management for the alerted grade.

Called by the write path (:mod:`.ingest`, regrade at once) and by the background regrader
(:mod:`.queue`, deferred regrade) after :func:`.grading.regrade`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..jurisdiction import Jurisdiction
from . import alerts, audit, grading, labs, recommend
from .grades import Grade
from .models import Alert, Patient


def raise_transition_alerts(
    session: Session,
    patients: Sequence[Patient],
    result: grading.Outcome,
    *,
    now: dt.datetime,
    ctx: audit.RequestContext,
    jurisdiction: Jurisdiction | None = None,
) -> list[Alert]:
    """Raise the alerts of ``result``'s transitions, each with the recommendation for the site's
    ``jurisdiction`` (``IMMUNOTOX_JURISDICTION``), in English and French."""
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
            session, by_id[spec.patient_id], spec, result.grades.get(spec.patient_id, []), now, jurisdiction
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
) -> alerts.AlertSpec:
    """Attach the recommended management for the alerted grade (when the module is present)."""
    if spec.scale is None:
        return spec
    if session.scalar(select(Alert.id).where(Alert.dedup_key == spec.dedup_key)) is not None:
        return spec  # will be deduplicated: no need to compute
    fresh = next((g for g in grades if g.scale == spec.scale), None)
    if fresh is None:
        return spec
    rec = recommend.for_grade(session, patient, fresh.result, now=now, jurisdiction=jurisdiction)
    return replace(spec, recommendation=rec) if rec is not None else spec
