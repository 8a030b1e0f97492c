"""Admit a patient and change a patient's administrative record, audited.

The JSON API (``POST /api/v1/patients``, ``PATCH /api/v1/patients/{id}``) calls these; any other
front end that admits or edits patients calls them too, so every caller gets the same access
checks, the same product/therapy/weight/age checks (:func:`immunotox.service.recommend.check_patient`),
the same audit entries and idempotency. Clinical data are events (:mod:`.events`), not patient
fields.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from ...messages import error as E
from .. import auth, recommend
from ..models import CareUnit, Patient
from ..problems import conflict, field_error, forbidden
from ..schemas import PatientCreate, PatientPublic, PatientUpdate
from . import base
from .base import Call, Written

#: Fields a change may leave out but never set to null.
NOT_NULL = ("unit_id", "display_name", "therapy_class", "active")
#: Furthest ahead a planned infusion may be.
INFUSION_HORIZON = dt.timedelta(days=366)


def create_patient(call: Call, body: PatientCreate) -> Written:
    """Admin, or a physician of the patient's unit: the unit must exist, the id be new, the
    infusion at most a year ahead and the product, therapy class, weight and age accepted."""
    principal, now = call.principal, call.now

    def work(s: Session, payload: bytes) -> tuple[int, PatientPublic]:
        if not auth.can_manage_patient(principal, body.unit_id):
            exc = forbidden(E("access.role_admit", role=repr(principal.role), unit=repr(body.unit_id)))
            exc.denied = {
                "actor": principal,
                "action": "patient.create",
                "outcome": "denied",
                "patient_id": body.id,
            }
            raise exc
        _check_unit(s, body.unit_id)
        if s.get(Patient, body.id) is not None:
            raise conflict(E("service.patient_exists", patient=repr(body.id)), "id")
        if body.infusion_at is not None and body.infusion_at > now + INFUSION_HORIZON:
            raise field_error("infusion_at", E("service.infusion_horizon"))
        recommend.check_patient(body.product, body.therapy_class, body.weight_kg, body.birth_date, now.date())
        p = Patient(**body.model_dump(), created_at=now, updated_at=now)
        s.add(p)
        s.flush()
        base.audited(
            s, call, "patient.create", entity_type="patient", entity_id=p.id, patient_id=p.id, payload=payload
        )
        return 201, base.patient_public(p, now)

    return base.write(call, body, work)


def update_patient(call: Call, patient_id: str, body: PatientUpdate) -> Written:
    """Administrative data only (unit, therapy, weight, day 0, phase): the fields given are
    changed, the audit entry keeps their values before and after."""
    principal, now = call.principal, call.now

    def work(s: Session, payload: bytes) -> tuple[int, PatientPublic]:
        p = base.get_patient(s, principal, patient_id, "manage", action="patient.update")
        changes = body.model_dump(exclude_unset=True)
        for name in NOT_NULL:
            if name in changes and changes[name] is None:
                raise field_error(name, E("service.not_null"))
        if "unit_id" in changes and changes["unit_id"] != p.unit_id:
            _check_unit(s, changes["unit_id"])
            if not auth.can_manage_patient(principal, changes["unit_id"]):
                raise forbidden(E("access.move_patient", unit=repr(changes["unit_id"])))
        recommend.check_patient(
            changes.get("product", p.product) if "product" in changes or "therapy_class" in changes else None,
            changes.get("therapy_class", p.therapy_class),
            changes.get("weight_kg"),
            changes.get("birth_date"),
            now.date(),
        )
        before = {k: _plain(getattr(p, k)) for k in changes}
        for k, v in changes.items():
            setattr(p, k, v)
        p.updated_at = now
        after = {k: _plain(v) for k, v in changes.items()}
        details = {"before": before, "after": after}
        base.audited(
            s,
            call,
            "patient.update",
            entity_type="patient",
            entity_id=p.id,
            patient_id=p.id,
            payload=payload,
            details=details,
        )
        return 200, base.patient_public(p, now)

    return base.write(call, body, work)


def _check_unit(s: Session, unit_id: str) -> None:
    if s.get(CareUnit, unit_id) is None:
        raise field_error("unit_id", E("service.no_unit", unit=repr(unit_id)))


def _plain(v: Any) -> Any:
    return v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v
