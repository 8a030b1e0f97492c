"""The event stream: observations (single and batch), administrations, assessments, self-reports.

Every write is appended (never edited), checked field by field, audited, and idempotent with
``Idempotency-Key``; its regrade is queued in the same transaction for the background regrader
(``?regrade=now``: regraded and alerted in that transaction, before the answer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from fastapi.types import DecoratedCallable
from pydantic import BaseModel, Field
from sqlalchemy import select

from ...errors import FindingError
from .. import codes
from ..deps import CurrentUser, DbDep, DbId
from ..models import Assessment, ClinicalEvent
from ..openapi import rules
from ..problems import from_finding, responses
from ..schemas import (
    AdministrationIn,
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
    UtcDatetime,
)
from ..usecases import base as c
from ..usecases import events as cases
from . import _http

router = APIRouter(tags=["events"])
CodeParam = Annotated[
    str,
    Field(
        description="A canonical code or a LOINC alias (any case)",
        json_schema_extra={"enum": codes.accepted_codes()},
    ),
]
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


RegradeParam = Annotated[
    Literal["background", "now"],
    Query(
        description="background (default): the regrade is queued with the write, in its transaction, "
        "for the background regrader, which stores the grades and raises the alerts within "
        "IMMUNOTOX_REGRADE_SECONDS (the answer says grading = queued; GET /patients/{id}/grades "
        "recomputes them at once); now: regraded in the request, the answer carries the grades and "
        "the alerts raised (bedside entry)"
    ),
]


def checks(*names: str) -> dict[str, Any]:
    """``openapi_extra`` of a write: the ``Idempotency-Key`` header and the rules it checks."""
    return {**IDEM, **rules(*names, "idempotency")}


#: The rules a row of the observation contract is checked against.
ROW_RULES = ("time", "end_time", "unit", "ref_range", "dose", "supersedes")


def appends(
    path: str, model: type[BaseModel], rule_names: tuple[str, ...], summary: str
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """The route of a write that appends events: ``POST path``, 201 with ``model``, idempotent,
    documenting the rules ``rule_names`` it checks."""
    return router.post(
        path,
        status_code=201,
        response_model=model,
        responses=ERRORS,
        openapi_extra=checks(*rule_names),
        summary=summary,
    )


# ----------------------------------------------------------------------------- observations
@appends(
    "/patients/{patient_id}/observations",
    IngestOut,
    ROW_RULES,
    "Record one observation (or administration, or correction)",
)
def post_observation(
    patient_id: str,
    body: ObservationIn,
    call: _http.CallDep,
    regrade: RegradeParam = "background",
) -> JSONResponse:
    """One row of the observation contract. A correction names the event it supersedes."""
    return _http.respond(cases.record_observation(call, patient_id, body, regrade))


@appends(
    "/observations/batch",
    BatchOut,
    ROW_RULES,
    "Record up to 1000 rows for one or more patients (all or nothing; regraded in the background)",
)
def post_batch(
    body: ObservationBatchIn,
    call: _http.CallDep,
    regrade: RegradeParam = "background",
) -> JSONResponse:
    """A batch is stored entirely or not at all; every bad row is listed (``observations.<i>.<field>``)."""
    return _http.respond(cases.record_batch(call, body, regrade))


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
    code: Annotated[list[CodeParam] | None, Query(max_length=50)] = None,
    since: UtcDatetime | None = None,
    until: UtcDatetime | None = None,
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
                    canon.append(codes.resolve(k, f"query.code.{i}").name)
                except FindingError as exc:
                    raise from_finding(exc) from None
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
@appends(
    "/patients/{patient_id}/administrations",
    IngestOut,
    ("time", "end_time", "dose"),
    "Record a drug given or an oxygen support started",
)
def post_administration(
    patient_id: str,
    body: AdministrationIn,
    call: _http.CallDep,
    regrade: RegradeParam = "background",
) -> JSONResponse:
    """Tocilizumab, corticosteroids, antipyretics, vasopressors (interval), oxygen (interval)…

    A recorded dose is never refused for clinical reasons (it was given): reaching or exceeding
    a dose limit raises an alert instead.
    """
    return _http.respond(cases.record_administration(call, patient_id, body, regrade))


@appends(
    "/patients/{patient_id}/administrations/{event_id}/stop",
    IngestOut,
    ("stop", "end_time"),
    "Stop a running infusion or oxygen support",
)
def stop_administration(
    patient_id: str,
    event_id: DbId,
    body: StopIn,
    call: _http.CallDep,
    regrade: RegradeParam = "background",
) -> JSONResponse:
    """Appends a copy of the running row with its ``end_time``, superseding it."""
    return _http.respond(cases.stop_administration(call, patient_id, event_id, body, regrade))


# ----------------------------------------------------------------------------- assessments
@appends(
    "/patients/{patient_id}/assessments",
    AssessmentOut,
    ("time", "assessment"),
    "Record a bedside neurological assessment (ICE item by item, CAPD, neuro signs)",
)
def post_assessment(
    patient_id: str,
    body: AssessmentIn,
    call: _http.CallDep,
    regrade: RegradeParam = "background",
) -> JSONResponse:
    """The ICE score is computed from its five items when all are given (a given total must
    match their sum); a partial ICE is stored as its items and grades as a range."""
    return _http.respond(cases.record_assessment(call, patient_id, body, regrade))


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
        return [cases.assessment_public(a, events.get(a.id, [])) for a in rows]


# ----------------------------------------------------------------------------- self-reports
@appends(
    "/patients/{patient_id}/self-reports",
    SelfReportOut,
    ("time", "unit", "self_report"),
    "A patient reports temperature and symptoms; returns the triage answer",
)
def post_self_report(patient_id: str, body: SelfReportIn, call: _http.CallDep) -> JSONResponse:
    """Stored as ``temperature`` and ``symptom`` rows (source ``patient``). A report whose
    triage is "call now" raises a ``patient_report`` alert for the unit."""
    return _http.respond(cases.self_report(call, patient_id, body))
