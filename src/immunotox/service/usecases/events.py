"""Recording events: observations (one, or a batch), administrations and their stop, bedside
assessments, patients' self-reports.

Every write is appended (never edited), checked field by field, regraded and alerted in the
same transaction, audited, and idempotent under the call's key. A batch, and an observation, an
administration or an assessment sent with ``regrade="background"`` (the API's default), queue
their regrade in that transaction instead, for the background regrader.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...errors import FindingError
from ...messages import error as E
from .. import audit, auth, ingest, selfreport
from ..config import Settings
from ..models import Assessment, CareUnit, ClinicalEvent, Patient
from ..problems import field_error, forbidden, not_found, refused
from ..schemas import (
    AdministrationIn,
    AlertPublic,
    AssessmentIn,
    AssessmentOut,
    AssessmentPublic,
    BatchOut,
    EventPublic,
    IngestOut,
    ObservationBatchIn,
    ObservationIn,
    SelfReportIn,
    SelfReportOut,
    StopIn,
    TriagePublic,
)
from . import base as c
from .base import Call, Written


def _grades_and_alerts(
    s: Session, patient: Patient, aw: ingest.AfterWrite, now: dt.datetime
) -> tuple[list[Any], list[AlertPublic]]:
    """The patient's grades after a write that regraded it (none when grading is off or the write
    touched no graded code), and the alerts the write raised."""
    grades = c.current_grades(s, patient, now, aw.grades.get(patient.id, [])) if aw.grades else []
    return grades, [c.alert_public(a) for a in aw.alerts]


Regrade = Literal["background", "now"]


def _defer(settings: Settings, regrade: Regrade) -> bool:
    """Whether a write queues its regrade for the background regrader (one runs)."""
    return regrade == "background" and settings.regrade_seconds > 0


def _append(
    s: Session,
    call: Call,
    p: Patient,
    rows: list[ingest.Row],
    payload: bytes,
    action: str,
    details: Any,
    regrade: Regrade,
) -> IngestOut:
    """Append ``rows`` of patient ``p`` (source ``api``), regrade and alert (or queue the
    regrade), audit ``action``: the answer of a one-patient write."""
    events = ingest.store(s, rows, user_id=call.principal.user_id, source="api", now=call.now)
    defer = _defer(call.settings, regrade)
    aw = ingest.after_write(
        s, [p], events, now=call.now, settings=call.settings, ctx=call.ctx, defer=defer, wake=True
    )
    audit.record(
        s,
        actor=call.principal,
        action=action,
        ctx=call.ctx,
        now=call.now,
        entity_type="clinical_event",
        entity_id=events[0].id,
        patient_id=p.id,
        payload=payload,
        details=details,
    )
    grades, alerts = _grades_and_alerts(s, p, aw, call.now)
    stored = [c.event_public(e) for e in events]
    return IngestOut(stored=stored, grades=grades, alerts=alerts, grading=_grading(call.settings, aw))


def _grading(settings: Settings, aw: ingest.AfterWrite) -> Literal["done", "queued", "off"]:
    return "off" if not settings.grading else "queued" if aw.queued else "done"


ITEM_CODES = {
    "orientation": "ice_orientation",
    "naming": "ice_naming",
    "commands": "ice_commands",
    "writing": "ice_writing",
    "attention": "ice_attention",
}
NEURO_FIELDS = ("consciousness", "seizure", "motor", "cerebral_edema", "raised_icp_signs")


def assessment_public(a: Assessment, events: Sequence[ClinicalEvent | EventPublic]) -> AssessmentPublic:
    by = {e.code: e for e in events}
    items = {k: int(by[code].value_num or 0) for k, code in ITEM_CODES.items() if code in by}
    ice = by.get("ice_score")
    capd = by.get("capd_score")
    raised = by.get("raised_icp_signs")
    return AssessmentPublic(
        id=a.id,
        patient_id=a.patient_id,
        kind=a.kind,
        time=a.time,
        ice_score=int(ice.value_num or 0) if ice else None,
        items=items,
        capd_score=int(capd.value_num or 0) if capd else None,
        consciousness=by["consciousness"].value if "consciousness" in by else None,
        seizure=by["seizure"].value if "seizure" in by else None,
        motor=by["motor"].value if "motor" in by else None,
        cerebral_edema=by["cerebral_edema"].value if "cerebral_edema" in by else None,
        raised_icp_signs=(raised.value == "true") if raised else None,
        comment=a.comment,
        recorded_at=a.recorded_at,
        recorded_by=a.recorded_by,
        event_ids=[e.id for e in events],
    )


def record_observation(call: Call, patient_id: str, body: ObservationIn, regrade: Regrade = "now") -> Written:
    """One row of the observation contract; a correction names the event it supersedes.
    Regraded in the write's transaction, or queued for the background regrader
    (``regrade="background"``)."""
    principal, now, settings = call.principal, call.now, call.settings

    def work(s: Session, payload: bytes) -> tuple[int, IngestOut]:
        p = c.get_patient(s, principal, patient_id, "clinical", action="observation.create")
        row = ingest.prepare(p.id, body.model_dump(), now=now, settings=settings)
        action = "observation.correct" if row.supersedes_id else "observation.create"
        details = {"code": row.code, "supersedes": row.supersedes_id}
        return 201, _append(s, call, p, [row], payload, action, details, regrade)

    return c.write(call, body, work)


def record_batch(
    call: Call, body: ObservationBatchIn, regrade: Literal["background", "now"] = "background"
) -> Written:
    """Rows for one or more patients, stored entirely or not at all (every bad row listed as
    ``observations.<i>.<field>``); regraded in the background unless ``regrade="now"``."""
    principal, now, settings, ctx = call.principal, call.now, call.settings, call.ctx

    def work(s: Session, payload: bytes) -> tuple[int, BatchOut]:
        ids = sorted({o.patient_id for o in body.observations})
        patients = {p.id: p for p in s.scalars(select(Patient).where(Patient.id.in_(ids)))}
        for i, o in enumerate(body.observations):
            p = patients.get(o.patient_id)
            if p is None or not auth.can_read_patient(principal, p):
                raise field_error(
                    f"observations.{i}.patient_id", E("service.no_patient", patient=repr(o.patient_id)), 404
                )
            if not auth.can_write_clinical(principal, p):
                exc = forbidden(E("access.role_record", role=repr(principal.role), patient=repr(p.id)))
                exc.denied = {
                    "actor": principal,
                    "action": "observation.batch",
                    "outcome": "denied",
                    "patient_id": p.id,
                }
                raise exc
        rows: list[ingest.Row] = []
        problems: list[FindingError] = []
        for i, o in enumerate(body.observations):
            try:
                rows.append(
                    ingest.prepare(
                        o.patient_id,
                        o.model_dump(exclude={"patient_id"}),
                        now=now,
                        settings=settings,
                        prefix=f"observations.{i}.",
                    )
                )
            except FindingError as exc:
                problems.append(exc)
        if problems:  # one 422 naming every refused row, in the reader's language
            raise refused(problems)
        events = ingest.store(s, rows, user_id=principal.user_id, source="api", now=now)
        defer = regrade == "background" and settings.regrade_seconds > 0
        aw = ingest.after_write(
            s, list(patients.values()), events, now=now, settings=settings, ctx=ctx, defer=defer
        )
        audit.record(
            s,
            actor=principal,
            action="observation.batch",
            ctx=ctx,
            now=now,
            entity_type="clinical_event",
            entity_id=f"{events[0].id}-{events[-1].id}",
            payload=payload,
            details={"count": len(events), "patients": ids[:50]},
        )
        return 201, BatchOut(
            stored=len(events),
            ids=[e.id for e in events],
            grading="off" if not settings.grading else "queued" if aw.queued else "done",
            patients_regraded=sorted(aw.grades),
            patients_queued=aw.queued,
            alerts_raised=len(aw.alerts),
        )

    return c.write(call, body, work)


def record_administration(
    call: Call, patient_id: str, body: AdministrationIn, regrade: Regrade = "now"
) -> Written:
    """A drug given or an oxygen support started (never refused for clinical reasons: a dose
    limit reached raises an alert instead)."""
    principal, now, settings = call.principal, call.now, call.settings

    def work(s: Session, payload: bytes) -> tuple[int, IngestOut]:
        p = c.get_patient(s, principal, patient_id, "clinical", action="administration.create")
        raw = body.model_dump(exclude={"o2_flow_l_min"})
        rows = [ingest.prepare(p.id, raw, now=now, settings=settings)]
        if body.o2_flow_l_min is not None:
            if body.code != "oxygen":
                raise field_error("o2_flow_l_min", E("service.o2_flow_oxygen_only", code=repr(body.code)))
            rows.append(
                ingest.prepare(
                    p.id,
                    {"code": "o2_flow", "time": body.time, "value": body.o2_flow_l_min, "unit": "L/min"},
                    now=now,
                    settings=settings,
                )
            )
        action = "administration.create"
        return 201, _append(
            s,
            call,
            p,
            rows,
            payload,
            action,
            {
                "code": body.code,
                "value": rows[0].value,
                "dose": body.dose,
                "dose_unit": body.dose_unit,
            },
            regrade,
        )

    return c.write(call, body, work)


def stop_administration(
    call: Call, patient_id: str, event_id: int, body: StopIn, regrade: Regrade = "now"
) -> Written:
    """Appends a copy of the running row with its ``end_time``, superseding it."""
    principal, now, settings = call.principal, call.now, call.settings

    def work(s: Session, payload: bytes) -> tuple[int, IngestOut]:
        p = c.get_patient(s, principal, patient_id, "clinical", action="administration.stop")
        old = s.get(ClinicalEvent, event_id)
        if old is None or old.patient_id != p.id:
            raise not_found(E("access.record_event", event=str(event_id), patient=repr(patient_id)))
        if old.code not in ("vasopressor", "oxygen"):
            raise field_error("event_id", E("service.not_an_interval", event=str(event_id), code=old.code))
        if old.end_time is not None:
            raise field_error("event_id", E("service.already_ended", event=str(event_id)))
        newer = s.scalar(select(ClinicalEvent.id).where(ClinicalEvent.supersedes_id == old.id).limit(1))
        if newer is not None:  # already stopped or corrected: the body has no supersedes to name
            raise field_error("event_id", E("service.superseded_by", event=str(event_id), newer=str(newer)))
        row = ingest.prepare(
            p.id,
            {
                "code": old.code,
                "time": old.time,
                "value": old.value,
                "end_time": body.end_time,
                "dose": old.dose,
                "dose_unit": old.dose_unit,
                "supersedes": old.id,
                "note": old.note,
            },
            now=now,
            settings=settings,
        )
        action = "administration.stop"
        return 201, _append(s, call, p, [row], payload, action, {"supersedes": old.id}, regrade)

    return c.write(call, body, work)


def record_assessment(call: Call, patient_id: str, body: AssessmentIn, regrade: Regrade = "now") -> Written:
    """A bedside neurological assessment: ICE total from its five items (a given total must
    match their sum), a partial ICE stored as its items; CAPD; neuro signs."""
    principal, now, settings, ctx = call.principal, call.now, call.settings, call.ctx

    def work(s: Session, payload: bytes) -> tuple[int, AssessmentOut]:
        p = c.get_patient(s, principal, patient_id, "clinical", action="assessment.create")
        items = body.items.model_dump(exclude_none=True) if body.items else {}
        ice = body.ice_score
        if len(items) == len(ITEM_CODES):
            total = sum(items.values())
            if ice is not None and ice != total:
                raise field_error("ice_score", E("service.ice_sum", ice=ice, total=total))
            ice = total
        if body.kind == "ice" and ice is None and not items:
            raise field_error("items", E("service.ice_needs_items"))
        if body.kind == "capd" and body.capd_score is None:
            raise field_error("capd_score", E("service.capd_needs_score"))
        neuro = {k: getattr(body, k) for k in NEURO_FIELDS if getattr(body, k) is not None}
        if body.kind == "neuro" and not neuro:
            raise field_error("consciousness", E("service.neuro_needs_sign", fields=list(NEURO_FIELDS)))
        a = Assessment(
            patient_id=p.id,
            kind=body.kind,
            time=body.time,
            recorded_at=now,
            recorded_by=principal.user_id,
            source="api",
            comment=body.comment,
        )
        s.add(a)
        s.flush()
        raw: list[tuple[str, Any]] = [(ITEM_CODES[k], v) for k, v in items.items()]
        if ice is not None:
            raw.append(("ice_score", ice))
        if body.capd_score is not None:
            raw.append(("capd_score", body.capd_score))
        raw += list(neuro.items())
        rows = []
        for code, value in raw:
            row = ingest.prepare(
                p.id, {"code": code, "time": body.time, "value": value}, now=now, settings=settings
            )
            row.assessment_id = a.id
            rows.append(row)
        events = ingest.store(s, rows, user_id=principal.user_id, source="api", now=now)
        defer = _defer(settings, regrade)
        aw = ingest.after_write(s, [p], events, now=now, settings=settings, ctx=ctx, defer=defer, wake=True)
        audit.record(
            s,
            actor=principal,
            action="assessment.create",
            ctx=ctx,
            now=now,
            entity_type="assessment",
            entity_id=a.id,
            patient_id=p.id,
            payload=payload,
            details={"kind": body.kind, "ice_score": ice},
        )
        grades, alerts = _grades_and_alerts(s, p, aw, now)
        grading = _grading(settings, aw)
        out = assessment_public(a, events)
        return 201, AssessmentOut(assessment=out, grades=grades, alerts=alerts, grading=grading)

    return c.write(call, body, work)


def self_report(call: Call, patient_id: str, body: SelfReportIn) -> Written:
    """Stored as ``temperature`` and ``symptom`` rows; a "call now" triage raises a
    ``patient_report`` alert for the unit."""
    principal, now, settings, ctx = call.principal, call.now, call.settings, call.ctx

    def work(s: Session, payload: bytes) -> tuple[int, SelfReportOut]:
        p = c.get_patient(s, principal, patient_id, "self_report", action="self_report.create")
        offered = selfreport.symptom_labels(p.therapy_class)
        for i, sym in enumerate(body.symptoms):
            if sym not in offered:
                problem = E(
                    "service.symptom_not_offered",
                    symptom=repr(sym),
                    therapy_class=p.therapy_class,
                    values=str(list(offered)),
                )
                raise field_error(f"symptoms.{i}", problem)
        time = body.time or now
        rows: list[ingest.Row] = []
        temp_c: float | None = None
        if body.temperature is not None:
            row = ingest.prepare(
                p.id,
                {
                    "code": "temperature",
                    "time": time,
                    "value": body.temperature,
                    "unit": body.temperature_unit,
                },
                now=now,
                settings=settings,
                prefix="",
            )
            temp_c = row.value_num
            rows.append(row)
        for sym in body.symptoms:
            rows.append(
                ingest.prepare(
                    p.id, {"code": "symptom", "time": time, "value": sym}, now=now, settings=settings
                )
            )
        if not rows:
            rows.append(
                ingest.prepare(
                    p.id,
                    {"code": "symptom", "time": time, "value": "other", "note": body.note},
                    now=now,
                    settings=settings,
                )
            )
        elif body.note:
            rows[-1].note = body.note
        source = "patient" if principal.role == "patient" else "api"
        events = ingest.store(s, rows, user_id=principal.user_id, source=source, now=now)
        aw = ingest.after_write(s, [p], events, now=now, settings=settings, ctx=ctx)
        tri = selfreport.triage(p.therapy_class, temp_c, list(body.symptoms))
        unit = s.get(CareUnit, p.unit_id)
        alert = None
        if tri.decision == "call_now":
            from ..alerts import AlertSpec, raise_alert

            assert tri.priority is not None
            alert = raise_alert(
                s,
                AlertSpec(
                    patient_id=p.id,
                    kind="patient_report",
                    priority=tri.priority,
                    dedup_key=f"patient_report:{p.id}:{events[0].id}",
                    title="Patient report needs attention: "
                    + "; ".join(r.split(":")[0] for r in tri.reasons),
                    title_fr="Signalement du patient à traiter : "
                    + "; ".join(r.split(" :")[0] for r in tri.reasons_fr),
                    message="; ".join(tri.reasons) + (f". Note: {body.note}" if body.note else ""),
                    message_fr="; ".join(tri.reasons_fr) + (f". Note : {body.note}" if body.note else ""),
                    target_role="nurse",
                    triggered_at=time,
                    params={
                        "temperature_c": temp_c,
                        "symptoms": list(body.symptoms),
                        "event_ids": [e.id for e in events],
                    },
                ),
                now=now,
                ctx=ctx,
            )
        audit.record(
            s,
            actor=principal,
            action="self_report.create",
            ctx=ctx,
            now=now,
            entity_type="clinical_event",
            entity_id=events[0].id,
            patient_id=p.id,
            payload=payload,
            details={"decision": tri.decision, "symptoms": list(body.symptoms)},
        )
        del aw
        return 201, SelfReportOut(
            stored=[c.event_public(e) for e in events],
            triage=TriagePublic(
                decision=tri.decision,
                priority=tri.priority,
                answer=tri.answer,
                answer_fr=tri.answer_fr,
                detail=tri.detail,
                detail_fr=tri.detail_fr,
                reasons=tri.reasons,
                reasons_fr=tri.reasons_fr,
                sources=tri.sources,
                unit_phone=unit.phone if unit else None,
            ),
            alert=c.alert_public(alert) if alert is not None else None,
        )

    return c.write(call, body, work)
