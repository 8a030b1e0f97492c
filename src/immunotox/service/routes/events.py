"""The event stream: observations (single and batch), administrations, assessments, self-reports.

Every write is appended (never edited), checked field by field, regraded and alerted in the
same transaction, audited, and idempotent with ``Idempotency-Key``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from ...errors import FindingError
from .. import audit, auth, codes, ingest, selfreport
from ..deps import ClockDep, CtxDep, CurrentUser, DbDep, DbId, SettingsDep
from ..ingest import StoredEvent
from ..models import Assessment, CareUnit, ClinicalEvent, Patient
from ..problems import field_error, forbidden, not_found, responses
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
from . import _common as c

router = APIRouter(tags=["events"])
ERRORS = responses(401, 403, 404, 409, 422)
IDEM = {
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "pattern": r"^[\x21-\x7e]{1,200}$"},
            "description": "Repeat the request with the same key: it is stored once and answered again",
        }
    ]
}


def _grades_and_alerts(
    s: Session, patient: Patient, aw: ingest.AfterWrite, now: dt.datetime
) -> tuple[list[Any], list[AlertPublic]]:
    """The patient's grades after a write that regraded it (none when grading is off or the write
    touched no graded code), and the alerts the write raised."""
    grades = c.current_grades(s, patient, now, aw.grades.get(patient.id, [])) if aw.grades else []
    return grades, [c.alert_public(a) for a in aw.alerts]


# ----------------------------------------------------------------------------- observations
@router.post(
    "/patients/{patient_id}/observations",
    status_code=201,
    response_model=IngestOut,
    responses=ERRORS,
    openapi_extra=IDEM,
    summary="Record one observation (or administration, or correction)",
)
def post_observation(
    patient_id: str,
    body: ObservationIn,
    request: Request,
    principal: CurrentUser,
    db: DbDep,
    clock: ClockDep,
    settings: SettingsDep,
    ctx: CtxDep,
) -> JSONResponse:
    """One row of the observation contract. A correction names the event it supersedes."""
    now = clock.now()

    def work(s: Session, payload: bytes) -> tuple[int, IngestOut]:
        p = c.get_patient(s, principal, patient_id, "clinical", action="observation.create")
        row = ingest.prepare(p.id, body.model_dump(), now=now, settings=settings)
        events = ingest.store(s, [row], user_id=principal.user_id, source="api", now=now)
        aw = ingest.after_write(s, [p], events, now=now, settings=settings, ctx=ctx)
        audit.record(
            s,
            actor=principal,
            action="observation.correct" if row.supersedes_id else "observation.create",
            ctx=ctx,
            now=now,
            entity_type="clinical_event",
            entity_id=events[0].id,
            patient_id=p.id,
            payload=payload,
            details={"code": row.code, "supersedes": row.supersedes_id},
        )
        grades, alerts = _grades_and_alerts(s, p, aw, now)
        return 201, IngestOut(stored=[c.event_public(e) for e in events], grades=grades, alerts=alerts)

    return c.write(request, db, principal, ctx, now, body, work)


@router.post(
    "/observations/batch",
    status_code=201,
    response_model=BatchOut,
    responses=ERRORS,
    openapi_extra=IDEM,
    summary="Record up to 1000 rows for one or more patients (all or nothing; regraded in the background)",
)
def post_batch(
    body: ObservationBatchIn,
    request: Request,
    principal: CurrentUser,
    db: DbDep,
    clock: ClockDep,
    settings: SettingsDep,
    ctx: CtxDep,
    regrade: Annotated[
        Literal["background", "now"],
        Query(
            description="background (default): queued for the background regrader, which keeps "
            "bulk ingest fast; now: regraded in the request, alerts raised before the answer "
            "(bedside entry of one patient's readings)"
        ),
    ] = "background",
) -> JSONResponse:
    """A batch is stored entirely or not at all; every bad row is listed (``observations.<i>.<field>``)."""
    now = clock.now()

    def work(s: Session, payload: bytes) -> tuple[int, BatchOut]:
        ids = sorted({o.patient_id for o in body.observations})
        patients = {p.id: p for p in s.scalars(select(Patient).where(Patient.id.in_(ids)))}
        for i, o in enumerate(body.observations):
            p = patients.get(o.patient_id)
            if p is None or not auth.can_read_patient(principal, p):
                raise field_error(f"observations.{i}.patient_id", f"no patient {o.patient_id!r}", 404)
            if not auth.can_write_clinical(principal, p):
                exc = forbidden(f"role {principal.role!r} may not record data for patient {p.id!r}")
                exc.denied = {
                    "actor": principal,
                    "action": "observation.batch",
                    "outcome": "denied",
                    "patient_id": p.id,
                }
                raise exc
        rows: list[ingest.Row] = []
        problems: list[tuple[str, str]] = []
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
                problems.append((exc.field, str(exc)))
        if problems:
            _raise_all(problems)
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

    return c.write(request, db, principal, ctx, now, body, work)


def _raise_all(problems: list[tuple[str, str]]) -> None:
    from ..problems import ApiError, ProblemItem, pointer

    items = [ProblemItem(field=f, pointer=pointer(f), message=m) for f, m in problems]
    detail = f"{problems[0][1]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
    raise ApiError(422, "Invalid input", detail, items, code="invalid-input")


@router.get(
    "/patients/{patient_id}/observations",
    response_model=list[EventPublic],
    responses=ERRORS,
    summary="The patient's event stream",
)
def list_observations(
    patient_id: str,
    principal: CurrentUser,
    db: DbDep,
    code: Annotated[list[str] | None, Query(max_length=50)] = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    include_superseded: bool = False,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[EventPublic]:
    """Rows ordered by time; by default only current rows (not superseded, not retracted)."""
    from ..db import as_utc

    with db.session() as s:
        c.get_patient(s, principal, patient_id)
        q = select(ClinicalEvent).where(ClinicalEvent.patient_id == patient_id)
        if code:
            canon = []
            for i, k in enumerate(code):
                try:
                    canon.append(codes.resolve(k, f"query.code.{i}").code)
                except FindingError as exc:
                    raise field_error(exc.field, str(exc)) from None
            q = q.where(ClinicalEvent.code.in_(canon))
        if since is not None:
            q = q.where(ClinicalEvent.time >= as_utc(since))
        if until is not None:
            q = q.where(ClinicalEvent.time <= as_utc(until))
        rows = list(s.scalars(q.order_by(ClinicalEvent.time, ClinicalEvent.id).limit(limit)))
        if not include_superseded:
            superseded = {r.supersedes_id for r in rows if r.supersedes_id is not None}
            superseded |= set(
                s.scalars(
                    select(ClinicalEvent.supersedes_id).where(
                        ClinicalEvent.patient_id == patient_id, ClinicalEvent.supersedes_id.is_not(None)
                    )
                )
            )
            rows = [r for r in rows if r.id not in superseded and r.status == "final"]
        return [c.event_public(r) for r in rows]


# ----------------------------------------------------------------------------- administrations
@router.post(
    "/patients/{patient_id}/administrations",
    status_code=201,
    response_model=IngestOut,
    responses=ERRORS,
    openapi_extra=IDEM,
    summary="Record a drug given or an oxygen support started",
)
def post_administration(
    patient_id: str,
    body: AdministrationIn,
    request: Request,
    principal: CurrentUser,
    db: DbDep,
    clock: ClockDep,
    settings: SettingsDep,
    ctx: CtxDep,
) -> JSONResponse:
    """Tocilizumab, corticosteroids, antipyretics, vasopressors (interval), oxygen (interval)…

    A recorded dose is never refused for clinical reasons (it was given): reaching or exceeding
    a dose limit raises an alert instead.
    """
    now = clock.now()

    def work(s: Session, payload: bytes) -> tuple[int, IngestOut]:
        p = c.get_patient(s, principal, patient_id, "clinical", action="administration.create")
        raw = body.model_dump(exclude={"o2_flow_l_min"})
        rows = [ingest.prepare(p.id, raw, now=now, settings=settings)]
        if body.o2_flow_l_min is not None:
            if body.code != "oxygen":
                raise field_error("o2_flow_l_min", "only for code 'oxygen'")
            rows.append(
                ingest.prepare(
                    p.id,
                    {"code": "o2_flow", "time": body.time, "value": body.o2_flow_l_min, "unit": "L/min"},
                    now=now,
                    settings=settings,
                )
            )
        events = ingest.store(s, rows, user_id=principal.user_id, source="api", now=now)
        aw = ingest.after_write(s, [p], events, now=now, settings=settings, ctx=ctx)
        audit.record(
            s,
            actor=principal,
            action="administration.create",
            ctx=ctx,
            now=now,
            entity_type="clinical_event",
            entity_id=events[0].id,
            patient_id=p.id,
            payload=payload,
            details={
                "code": body.code,
                "value": rows[0].value,
                "dose": body.dose,
                "dose_unit": body.dose_unit,
            },
        )
        grades, alerts = _grades_and_alerts(s, p, aw, now)
        return 201, IngestOut(stored=[c.event_public(e) for e in events], grades=grades, alerts=alerts)

    return c.write(request, db, principal, ctx, now, body, work)


@router.post(
    "/patients/{patient_id}/administrations/{event_id}/stop",
    status_code=201,
    response_model=IngestOut,
    responses=ERRORS,
    openapi_extra=IDEM,
    summary="Stop a running infusion or oxygen support",
)
def stop_administration(
    patient_id: str,
    event_id: DbId,
    body: StopIn,
    request: Request,
    principal: CurrentUser,
    db: DbDep,
    clock: ClockDep,
    settings: SettingsDep,
    ctx: CtxDep,
) -> JSONResponse:
    """Appends a copy of the running row with its ``end_time``, superseding it."""
    now = clock.now()

    def work(s: Session, payload: bytes) -> tuple[int, IngestOut]:
        p = c.get_patient(s, principal, patient_id, "clinical", action="administration.stop")
        old = s.get(ClinicalEvent, event_id)
        if old is None or old.patient_id != p.id:
            raise not_found(f"event {event_id} of patient {patient_id!r}")
        if old.code not in ("vasopressor", "oxygen"):
            raise field_error("event_id", f"event {event_id} ({old.code}) is not an interval")
        if old.end_time is not None:
            raise field_error("event_id", f"event {event_id} already has an end_time")
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
        events = ingest.store(s, [row], user_id=principal.user_id, source="api", now=now)
        aw = ingest.after_write(s, [p], events, now=now, settings=settings, ctx=ctx)
        audit.record(
            s,
            actor=principal,
            action="administration.stop",
            ctx=ctx,
            now=now,
            entity_type="clinical_event",
            entity_id=events[0].id,
            patient_id=p.id,
            payload=payload,
            details={"supersedes": old.id},
        )
        grades, alerts = _grades_and_alerts(s, p, aw, now)
        return 201, IngestOut(stored=[c.event_public(e) for e in events], grades=grades, alerts=alerts)

    return c.write(request, db, principal, ctx, now, body, work)


# ----------------------------------------------------------------------------- assessments
ITEM_CODES = {
    "orientation": "ice_orientation",
    "naming": "ice_naming",
    "commands": "ice_commands",
    "writing": "ice_writing",
    "attention": "ice_attention",
}
NEURO_FIELDS = ("consciousness", "seizure", "motor", "cerebral_edema", "raised_icp_signs")


def _assessment_public(a: Assessment, events: Sequence[ClinicalEvent | StoredEvent]) -> AssessmentPublic:
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


@router.post(
    "/patients/{patient_id}/assessments",
    status_code=201,
    response_model=AssessmentOut,
    responses=ERRORS,
    openapi_extra=IDEM,
    summary="Record a bedside neurological assessment (ICE item by item, CAPD, neuro signs)",
)
def post_assessment(
    patient_id: str,
    body: AssessmentIn,
    request: Request,
    principal: CurrentUser,
    db: DbDep,
    clock: ClockDep,
    settings: SettingsDep,
    ctx: CtxDep,
) -> JSONResponse:
    """The ICE score is computed from its five items when all are given (a given total must
    match their sum); a partial ICE is stored as its items and grades as a range."""
    now = clock.now()

    def work(s: Session, payload: bytes) -> tuple[int, AssessmentOut]:
        p = c.get_patient(s, principal, patient_id, "clinical", action="assessment.create")
        items = body.items.model_dump(exclude_none=True) if body.items else {}
        ice = body.ice_score
        if len(items) == len(ITEM_CODES):
            total = sum(items.values())
            if ice is not None and ice != total:
                raise field_error("ice_score", f"{ice} does not match the sum of the items ({total})")
            ice = total
        if body.kind == "ice" and ice is None and not items:
            raise field_error("items", "an ICE assessment needs its items or its total (ice_score)")
        if body.kind == "capd" and body.capd_score is None:
            raise field_error("capd_score", "a CAPD assessment needs capd_score")
        neuro = {k: getattr(body, k) for k in NEURO_FIELDS if getattr(body, k) is not None}
        if body.kind == "neuro" and not neuro:
            raise field_error("consciousness", "a neuro assessment needs at least one sign")
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
        aw = ingest.after_write(s, [p], events, now=now, settings=settings, ctx=ctx)
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
        return 201, AssessmentOut(assessment=_assessment_public(a, events), grades=grades, alerts=alerts)

    return c.write(request, db, principal, ctx, now, body, work)


@router.get(
    "/patients/{patient_id}/assessments",
    response_model=list[AssessmentPublic],
    responses=ERRORS,
    summary="The patient's assessments, newest first",
)
def list_assessments(
    patient_id: str, principal: CurrentUser, db: DbDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[AssessmentPublic]:
    with db.session() as s:
        c.get_patient(s, principal, patient_id)
        rows = list(
            s.scalars(
                select(Assessment)
                .where(Assessment.patient_id == patient_id)
                .order_by(Assessment.time.desc(), Assessment.id.desc())
                .limit(limit)
            )
        )
        events: dict[int, list[ClinicalEvent]] = {}
        if rows:
            for e in s.scalars(
                select(ClinicalEvent).where(ClinicalEvent.assessment_id.in_([a.id for a in rows]))
            ):
                assert e.assessment_id is not None
                events.setdefault(e.assessment_id, []).append(e)
        return [_assessment_public(a, events.get(a.id, [])) for a in rows]


# ----------------------------------------------------------------------------- self-reports
@router.post(
    "/patients/{patient_id}/self-reports",
    status_code=201,
    response_model=SelfReportOut,
    responses=ERRORS,
    openapi_extra=IDEM,
    summary="A patient reports temperature and symptoms; returns the triage answer",
)
def post_self_report(
    patient_id: str,
    body: SelfReportIn,
    request: Request,
    principal: CurrentUser,
    db: DbDep,
    clock: ClockDep,
    settings: SettingsDep,
    ctx: CtxDep,
) -> JSONResponse:
    """Stored as ``temperature`` and ``symptom`` rows (source ``patient``). A report whose
    triage is "call now" raises a ``patient_report`` alert for the unit."""
    now = clock.now()

    def work(s: Session, payload: bytes) -> tuple[int, SelfReportOut]:
        p = c.get_patient(s, principal, patient_id, "self_report", action="self_report.create")
        offered = selfreport.symptom_labels(p.therapy_class)
        for i, sym in enumerate(body.symptoms):
            if sym not in offered:
                raise field_error(
                    f"symptoms.{i}",
                    f"{sym!r} is not a self-report symptom for therapy class {p.therapy_class}; "
                    f"expected one of {list(offered)}",
                )
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

    return c.write(request, db, principal, ctx, now, body, work)
