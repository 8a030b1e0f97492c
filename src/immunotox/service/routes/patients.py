"""Patients (admitted and changed by :mod:`..usecases.patients`), their current grades, grade
history, episodes, recommendations and audit trail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from ...messages import error as E
from .. import auth
from ..deps import ClockDep, CurrentUser, DbDep, SettingsDep
from ..grades import range_from_columns
from ..models import AuditEvent, Episode, GradeRecord, Patient
from ..openapi import rules
from ..problems import forbidden, responses
from ..schemas import (
    AuditPublic,
    EpisodePublic,
    GradeHistoryItem,
    GradePublic,
    PatientCreate,
    PatientPublic,
    PatientUpdate,
    RecommendationsOut,
)
from ..usecases import patients
from ..usecases import recommend as recommend_case
from ..usecases.base import audit_public, current_grades, get_patient, patient_public
from . import _http
from ._problems import accept_lang

router = APIRouter(prefix="/patients", tags=["patients"])
ERRORS = responses(401, 403, 404, 409, 422)
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("", response_model=list[PatientPublic], responses=ERRORS, summary="Patients I may see")
def list_patients(
    principal: CurrentUser,
    db: DbDep,
    clock: ClockDep,
    unit_id: Annotated[str | None, Query(max_length=64)] = None,
    active: bool | None = None,
) -> list[PatientPublic]:
    """Staff: the patients of their units (optionally one unit); admin: every patient; patient: self."""
    now = clock.now()
    with db.session() as s:
        q = select(Patient).order_by(Patient.unit_id, Patient.id)
        if principal.role == "patient":
            q = q.where(Patient.id == (principal.patient_id or ""))
        else:
            units = auth.visible_units(principal)
            if units is not None:
                q = q.where(Patient.unit_id.in_(units))
        if unit_id is not None:
            q = q.where(Patient.unit_id == unit_id)
        if active is not None:
            q = q.where(Patient.active.is_(active))
        return [patient_public(p, now) for p in s.scalars(q)]


@router.post(
    "",
    status_code=201,
    response_model=PatientPublic,
    responses=ERRORS,
    summary="Admit a patient",
    openapi_extra=rules("patient"),
)
def create_patient(body: PatientCreate, call: _http.CallDep) -> JSONResponse:
    """Admin, or a physician of the patient's unit."""
    return _http.respond(patients.create_patient(call, body))


@router.get("/{patient_id}", response_model=PatientPublic, responses=ERRORS, summary="One patient")
def read_patient(patient_id: str, principal: CurrentUser, db: DbDep, clock: ClockDep) -> PatientPublic:
    with db.session() as s:
        return patient_public(get_patient(s, principal, patient_id), clock.now())


@router.patch(
    "/{patient_id}",
    response_model=PatientPublic,
    responses=ERRORS,
    summary="Change a patient's record",
    openapi_extra=rules("patient"),
)
def update_patient(patient_id: str, body: PatientUpdate, call: _http.CallDep) -> JSONResponse:
    """Administrative data only (unit, therapy, weight, day 0, phase); clinical data are events."""
    return _http.respond(patients.update_patient(call, patient_id, body))


@router.get(
    "/{patient_id}/grades", response_model=list[GradePublic], responses=ERRORS, summary="Current grades"
)
def patient_grades(patient_id: str, principal: CurrentUser, db: DbDep, clock: ClockDep) -> list[GradePublic]:
    """The latest grade on each scale, with the rules that fired, what is missing and sources."""
    with db.session() as s:
        p = get_patient(s, principal, patient_id)
        return current_grades(s, p, clock.now())


@router.get(
    "/{patient_id}/grades/history",
    response_model=list[GradeHistoryItem],
    responses=ERRORS,
    summary="Grade history",
)
def grade_history(
    patient_id: str,
    principal: CurrentUser,
    db: DbDep,
    scale: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 500,
) -> list[GradeHistoryItem]:
    """Every clinically meaningful grade change, oldest first."""
    with db.session() as s:
        get_patient(s, principal, patient_id)
        q = select(GradeRecord).where(GradeRecord.patient_id == patient_id)
        if scale is not None:
            q = q.where(GradeRecord.scale == scale)
        rows = list(s.scalars(q.order_by(GradeRecord.id.desc()).limit(limit)))
        rows.reverse()
        return [
            GradeHistoryItem(
                id=r.id,
                scale=r.scale,
                time=r.time,
                computed_at=r.computed_at,
                grade=r.grade,
                grade_range=range_from_columns(r.status, r.grade_lo, r.grade_hi),
                status=r.status,
                complete=r.complete,
                missing=r.missing,
                engine=r.engine,
                episode_id=r.episode_id,
            )
            for r in rows
        ]


@router.get(
    "/{patient_id}/episodes", response_model=list[EpisodePublic], responses=ERRORS, summary="Episodes"
)
def episodes(patient_id: str, principal: CurrentUser, db: DbDep) -> list[EpisodePublic]:
    with db.session() as s:
        get_patient(s, principal, patient_id)
        rows = s.scalars(select(Episode).where(Episode.patient_id == patient_id).order_by(Episode.onset_at))
        return [
            EpisodePublic(
                id=e.id,
                scale=e.scale,
                onset_at=e.onset_at,
                peak_grade=e.peak_grade,
                peak_at=e.peak_at,
                last_positive_at=e.last_positive_at,
                resolved_at=e.resolved_at,
                active=e.resolved_at is None,
            )
            for e in rows
        ]


@router.get(
    "/{patient_id}/recommendations",
    response_model=RecommendationsOut,
    responses=ERRORS,
    summary="Recommended management for the current grades",
)
def recommendations(
    request: Request,
    patient_id: str,
    principal: CurrentUser,
    db: DbDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> RecommendationsOut:
    """The texts (actions, warnings, notes) are in the language the request accepts
    (``Accept-Language``: fr or en, English by default); the amounts and ids are the same."""
    with db.session() as s:
        return recommend_case.recommendations(
            s,
            principal,
            patient_id,
            now=clock.now(),
            lang=accept_lang(request),
            jurisdiction=settings.jurisdiction,
        )


@router.get("/{patient_id}/audit", response_model=list[AuditPublic], responses=ERRORS, summary="Audit trail")
def patient_audit(
    patient_id: str, principal: CurrentUser, db: DbDep, limit: Limit = 200
) -> list[AuditPublic]:
    """Admin, or a physician of the patient's unit: who did what on this record, newest first."""
    with db.session() as s:
        p = get_patient(s, principal, patient_id)
        if not auth.can_read_audit(principal, p):
            raise forbidden(E("access.audit_unit"))
        rows = s.scalars(
            select(AuditEvent)
            .where(AuditEvent.patient_id == patient_id)
            .order_by(AuditEvent.id.desc())
            .limit(limit)
        )
        return [audit_public(a) for a in rows]
