"""What every use case shares: the caller (:class:`Call`), access checks, the idempotent write
transaction, and rows as the public schemas.

The use cases (:mod:`.alerts`, :mod:`.events`, :mod:`.patients`, :mod:`.users`,
:mod:`.recommend`) hold the service's business logic; the JSON API routes
(:mod:`immunotox.service.routes`) and the web UI's forms (the ``web`` package) call them alike,
so both get the same checks, ingest, grading, alerts, audit entries and idempotency. Nothing here
knows HTTP: a caller says who writes, when, and which request the write answers
(``target``, with its idempotency ``key``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ...errors import FindingError
from ...messages import error as E
from .. import audit, auth, grades, grading
from ..audit import RequestContext
from ..config import Settings
from ..db import Database
from ..grades import Grade
from ..models import Alert, AuditEvent, ClinicalEvent, CurrentGrade, IdempotencyRecord, Patient, User
from ..problems import ApiError, conflict, field_error, forbidden, from_finding, not_found, problem
from ..schemas import (
    AlertPublic,
    AuditPublic,
    EventPublic,
    GradePublic,
    PatientPublic,
    RuleHitPublic,
    UserPublic,
)

Need = Literal["read", "clinical", "manage", "self_report", "alerts"]
IDEMPOTENCY_HEADER = "Idempotency-Key"

_CHECKS: dict[str, Callable[[auth.Principal, Patient], bool]] = {
    "clinical": auth.can_write_clinical,
    "manage": lambda p, pt: auth.can_manage_patient(p, pt.unit_id),
    "self_report": auth.can_self_report,
    "alerts": auth.can_act_on_alerts,
}


@dataclass(frozen=True)
class Call:
    """Who asks, when, through which request: ``target`` is the request's method and path
    (``"POST /patients/p1/observations"``), fingerprinted with the body under ``key`` (the
    request's idempotency key, None for a write that is not to be replayed)."""

    db: Database
    principal: auth.Principal
    ctx: RequestContext
    now: dt.datetime
    settings: Settings
    target: str
    key: str | None = None


@dataclass(frozen=True)
class Written:
    """The answer of a write: its status and JSON content; ``replayed`` when an earlier request
    with the same idempotency key is answered again (nothing stored)."""

    status: int
    content: Any
    replayed: bool = False


def get_patient(
    session: Session,
    principal: auth.Principal,
    patient_id: str,
    need: Need = "read",
    *,
    action: str = "",
) -> Patient:
    """The patient, if ``principal`` may read it (else 404, not revealing that it exists) and has
    ``need`` (else 403). A refused write carries its audit entry, recorded by :func:`write` once
    the refused transaction has been rolled back."""
    patient = session.get(Patient, patient_id)
    if patient is None or not auth.can_read_patient(principal, patient):
        exc = not_found(E("access.record_patient", patient=repr(patient_id)))
        if need != "read":
            exc.denied = _denied(principal, action, patient_id)
        raise exc
    if need != "read" and not _CHECKS[need](principal, patient):
        exc = forbidden(
            E(
                "access.role_patient",
                role=repr(principal.role),
                action=action or need,
                patient=repr(patient_id),
            )
        )
        exc.denied = _denied(principal, action, patient_id)
        raise exc
    return patient


def _denied(principal: auth.Principal, action: str, patient_id: str) -> dict[str, Any]:
    return {
        "actor": principal,
        "action": action or "access",
        "entity_type": "patient",
        "entity_id": patient_id,
        "patient_id": patient_id,
        "outcome": "denied",
    }


def audited(s: Session, call: Call, action: str, **where: Any) -> None:
    """Append the audit entry of the call's ``action`` (who, when and from where: the call's);
    ``where`` names the entity, patient, payload and details (:func:`..audit.record`)."""
    audit.record(s, actor=call.principal, action=action, ctx=call.ctx, now=call.now, **where)


def fingerprint(target: str, body: BaseModel | None) -> tuple[str, bytes]:
    """SHA-256 of the method, path and canonical JSON of the parsed body (and that JSON)."""
    payload = body.model_dump_json().encode() if body is not None else b""
    h = hashlib.sha256(f"{target}\n".encode() + payload).hexdigest()
    return h, payload


def check_key(key: str | None) -> str | None:
    """An idempotency key as given, or a 422 naming the header when it is not 1-200 printable
    ASCII characters without spaces."""
    if key is None:
        return None
    if not (1 <= len(key) <= 200) or not all(0x21 <= ord(c) <= 0x7E for c in key):
        raise field_error(f"header.{IDEMPOTENCY_HEADER}", E("service.key_format"))
    return key


def write(call: Call, body: BaseModel | None, work: Callable[[Session, bytes], tuple[int, Any]]) -> Written:
    """Run ``work`` in one write transaction, honouring the call's idempotency key.

    ``work(session, payload)`` returns ``(status, response model)``. With a key, the response is
    stored in the same transaction; a repeat of the same request returns it again (``replayed``)
    and stores nothing; the same key on a different request is refused (422). Without a key,
    each request is a new write.
    """
    key = check_key(call.key)
    fp, payload = fingerprint(call.target, body)
    pending: list[dict[str, Any]] = []
    try:
        return _write(call.db, call.principal, key, fp, payload, call.now, work, pending)
    finally:
        for denied in pending:  # after the refused transaction has released the write lock
            audit.record_separately(call.db, ctx=call.ctx, now=call.now, payload=payload, **denied)


def _write(
    db: Database,
    principal: auth.Principal,
    key: str | None,
    fp: str,
    payload: bytes,
    now: dt.datetime,
    work: Callable[[Session, bytes], tuple[int, Any]],
    pending: list[dict[str, Any]],
) -> Written:
    for attempt in (1, 2):
        try:
            with db.writing() as s:
                if key is not None:
                    rec = s.scalars(
                        select(IdempotencyRecord).where(
                            IdempotencyRecord.user_id == principal.user_id, IdempotencyRecord.key == key
                        )
                    ).first()
                    if rec is not None:
                        if rec.fingerprint != fp:
                            raise field_error(f"header.{IDEMPOTENCY_HEADER}", E("service.key_reused"))
                        return Written(rec.status_code, json.loads(rec.response_body), replayed=True)
                try:
                    status, model = work(s, payload)
                except FindingError as exc:
                    raise from_finding(exc) from None
                except ApiError as exc:
                    denied = exc.denied
                    if denied is not None:
                        pending.append(denied)
                    raise
                content = to_jsonable_python(model)
                if key is not None:
                    s.add(
                        IdempotencyRecord(
                            user_id=principal.user_id,
                            key=key,
                            fingerprint=fp,
                            status_code=status,
                            response_body=json.dumps(content),
                            created_at=now,
                        )
                    )
            return Written(status, content)
        except IntegrityError as exc:
            if key is not None and attempt == 1:
                continue  # a concurrent twin committed first: the retry replays its response
            raise conflict(E("service.write_conflict", constraint=_constraint(exc))) from None
    raise problem(500, "Internal error", E("http.idempotent_write"), code="internal-error")


def _constraint(exc: IntegrityError) -> str:
    text = str(exc.orig).splitlines()[0] if exc.orig is not None else "constraint"
    return text[:200]


# ----------------------------------------------------------------------------- row -> schema
def day_of(patient: Patient, now: dt.datetime) -> int | None:
    if patient.infusion_at is None:
        return None
    return (now - patient.infusion_at).days


def patient_public(p: Patient, now: dt.datetime) -> PatientPublic:
    return PatientPublic(
        id=p.id,
        unit_id=p.unit_id,
        display_name=p.display_name,
        birth_date=p.birth_date,
        sex=p.sex,
        therapy_class=p.therapy_class,
        product=p.product,
        indication=p.indication,
        indication_text=p.indication_text,
        weight_kg=p.weight_kg,
        infusion_at=p.infusion_at,
        day=day_of(p, now),
        pathway_phase=p.pathway_phase,
        active=p.active,
        created_at=p.created_at,
        updated_at=p.updated_at,
    )


def event_public(e: ClinicalEvent | EventPublic) -> EventPublic:
    """The event as the API shows it: a stored row, or an event just appended (already one)."""
    return e if isinstance(e, EventPublic) else EventPublic.model_validate(e, from_attributes=True)


def grade_public(g: Grade, computed_at: dt.datetime, episode_id: int | None = None) -> GradePublic:
    r = g.result
    return GradePublic(
        scale=g.scale,
        title=r.title,
        version=r.version,
        time=g.time,
        computed_at=computed_at,
        grade=r.grade,
        grade_range=r.grade_range,
        complete=r.complete,
        status=r.status,
        deciding_domains=r.deciding_domains,
        missing=r.missing,
        reasons=r.reasons,
        fired=[RuleHitPublic(**h.model_dump()) for h in r.fired],
        notes=r.notes,
        sources=r.sources,
        inputs=g.inputs,
        engine=g.engine,
        episode_id=episode_id,
        texts=r.texts,
    )


def current_grades(
    session: Session, patient: Patient, now: dt.datetime, fresh: Sequence[Grade] = ()
) -> list[GradePublic]:
    """The patient's grades with explanations built from the latest values: ``fresh`` grades
    (just computed by a write) as they are, the other scales recomputed from the stored events;
    episode ids from the stored current grades."""
    stored = {
        c.scale: c for c in session.scalars(select(CurrentGrade).where(CurrentGrade.patient_id == patient.id))
    }
    have = {g.scale: g for g in fresh}
    missing = [s for s in grades.all_scales_of(patient) if s not in have]
    if missing:
        for g in grading.compute(session, [patient], missing).get(patient.id, []):
            have[g.scale] = g
    out = []
    for scale in sorted(have):
        cur = stored.get(scale)
        out.append(
            grade_public(have[scale], cur.computed_at if cur else now, cur.episode_id if cur else None)
        )
    return out


def alert_public(a: Alert) -> AlertPublic:
    return AlertPublic(
        id=a.id,
        patient_id=a.patient_id,
        kind=a.kind,
        priority=a.priority,
        status=a.status,
        title=a.title,
        message=a.message,
        title_fr=a.title_fr,
        message_fr=a.message_fr,
        scale=a.scale,
        grade=a.grade,
        episode_id=a.episode_id,
        params=a.params,
        recommendation=a.recommendation,
        target_role=a.target_role,
        triggered_at=a.triggered_at,
        created_at=a.created_at,
        acknowledged_at=a.acknowledged_at,
        acknowledged_by=a.acknowledged_by,
        ack_comment=a.ack_comment,
        escalation_level=a.escalation_level,
        escalated_at=a.escalated_at,
        resolved_at=a.resolved_at,
        resolved_reason=a.resolved_reason,
    )


def user_public(user: User, unit_ids: list[str]) -> UserPublic:
    return UserPublic(
        id=user.id,
        username=user.username,
        role=user.role,
        display_name=user.display_name,
        unit_ids=sorted(unit_ids),
        patient_id=user.patient_id,
        locale=user.locale,
        active=user.active,
    )


def audit_public(a: AuditEvent) -> AuditPublic:
    return AuditPublic(
        id=a.id,
        at=a.at,
        actor_username=a.actor_username,
        actor_role=a.actor_role,
        action=a.action,
        outcome=a.outcome,
        entity_type=a.entity_type,
        entity_id=a.entity_id,
        patient_id=a.patient_id,
        request_id=a.request_id,
        client_ip=a.client_ip,
        user_agent=a.user_agent,
        payload_sha256=a.payload_sha256,
        details=a.details,
    )
