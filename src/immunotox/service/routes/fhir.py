"""FHIR R4 endpoints: import a Bundle, export a patient's record, grades and toxicities."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from ...messages import error as E
from .. import audit, auth, fhir, ingest
from ..deps import ClockDep, CtxDep, CurrentUser, DbDep, SettingsDep
from ..models import CareUnit, Patient
from ..openapi import rules
from ..problems import field_error, forbidden, refused, responses
from ..usecases import base as c
from . import _http

router = APIRouter(prefix="/fhir", tags=["fhir"])
ERRORS = responses(401, 403, 404, 409, 422)
FHIR_JSON = "application/fhir+json"
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # FHIR R4 datatype id


class ImportEntryOut(BaseModel):
    index: int
    resource_type: str
    resource_id: str | None
    outcome: str = Field(description="created, exists, stored, duplicate or skipped")
    reason: str | None
    reason_fr: str | None = Field(default=None, description="The reason in French")
    event_ids: list[int]


class ImportOut(BaseModel):
    fhir_release: str
    patients_created: list[str]
    events_stored: int
    counts: dict[str, int]
    entries: list[ImportEntryOut]
    patients_regraded: list[str]
    alerts_raised: int


@router.post(
    "/Bundle",
    status_code=201,
    response_model=ImportOut,
    responses=ERRORS,
    summary="Import a FHIR R4 Bundle (Patient, Observation, MedicationAdministration)",
    openapi_extra=rules("fhir_import", "time", "unit", "ref_range", "dose"),
)
def import_bundle(
    request: Request,
    principal: CurrentUser,
    db: DbDep,
    clock: ClockDep,
    settings: SettingsDep,
    ctx: CtxDep,
    bundle: Annotated[dict[str, Any], Body(description="A FHIR R4 Bundle (JSON)")],
    unit_id: Annotated[
        str | None, Query(max_length=64, description="Unit of patients the bundle creates")
    ] = None,
) -> JSONResponse:
    """All or nothing; each problem names its place (``entry.3.resource.valueQuantity.value``).
    Re-importing the same resources stores nothing twice."""
    now = clock.now()

    class _Body(BaseModel):
        bundle: dict[str, Any]
        unit_id: str | None

    def work(s: Session, payload: bytes) -> tuple[int, ImportOut]:
        if principal.role not in auth.CLINICAL_WRITERS:
            exc = forbidden(E("access.role_import", role=repr(principal.role)))
            exc.denied = {"actor": principal, "action": "fhir.import", "outcome": "denied"}
            raise exc
        if unit_id is not None:
            if s.get(CareUnit, unit_id) is None:
                raise field_error("query.unit_id", E("service.no_unit", unit=repr(unit_id)))
            if not auth.can_manage_patient(principal, unit_id):
                raise forbidden(E("access.role_admit", role=repr(principal.role), unit=repr(unit_id)))
        try:
            report = fhir.import_bundle(
                s,
                bundle,
                unit_id=unit_id,
                writable=lambda p: auth.can_write_clinical(principal, p),
                user_id=principal.user_id,
                now=now,
                settings=settings,
            )
        except fhir.FhirImportError as exc:  # every problem, in the language the request accepts
            raise refused(exc.problems, title="Invalid FHIR bundle", code="invalid-fhir") from None
        pids = sorted({e.patient_id for e in report.events} | set(report.patients_created))
        patients = list(s.scalars(select(Patient).where(Patient.id.in_(pids))))
        aw = ingest.after_write(s, patients, report.events, now=now, settings=settings, ctx=ctx)
        audit.record(
            s,
            actor=principal,
            action="fhir.import",
            ctx=ctx,
            now=now,
            entity_type="bundle",
            entity_id=str(bundle.get("id") or "")[:64] or None,
            payload=payload,
            details={
                "counts": report.counts(),
                "patients_created": report.patients_created,
                "events": len(report.events),
            },
        )
        return 201, ImportOut(
            fhir_release=fhir.FHIR_RELEASE,
            patients_created=report.patients_created,
            events_stored=len(report.events),
            counts=report.counts(),
            entries=[
                ImportEntryOut(
                    index=e.index,
                    resource_type=e.resource_type,
                    resource_id=e.resource_id,
                    outcome=e.outcome,
                    reason=e.reason_text("en"),
                    reason_fr=e.reason_text("fr"),
                    event_ids=e.event_ids,
                )
                for e in report.entries
            ],
            patients_regraded=sorted(aw.grades),
            alerts_raised=len(aw.alerts),
        )

    return _http.write(request, db, principal, ctx, now, _Body(bundle=bundle, unit_id=unit_id), work)


@router.get(
    "/Patient/{patient_id}/$everything",
    responses={**ERRORS, 200: {"content": {FHIR_JSON: {}}, "description": "A FHIR R4 collection Bundle"}},
    summary="Export a patient: record, events, grades (Observation) and toxicities (AdverseEvent)",
    openapi_extra=rules("fhir_id"),
)
def export_patient(patient_id: str, principal: CurrentUser, db: DbDep, clock: ClockDep) -> JSONResponse:
    with db.session() as s:
        p = c.get_patient(s, principal, patient_id)
        if not FHIR_ID.match(p.id):
            raise field_error("path.patient_id", E("service.not_a_fhir_id", id=repr(p.id)))
        return JSONResponse(fhir.export_patient(s, p, now=clock.now()), media_type=FHIR_JSON)
