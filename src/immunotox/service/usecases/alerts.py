"""Alert transitions: acknowledge (with a comment, stopping escalation) and resolve, audited."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...messages import error as E
from .. import audit, auth
from ..models import Alert, Patient
from ..problems import field_error, forbidden, not_found
from ..schemas import AckIn, AlertPublic, ResolveIn
from . import base
from .base import Call, Written


def visible_alerts(
    s: Session,
    principal: auth.Principal,
    *,
    status: str = "active",
    unit_id: str | None = None,
    patient_id: str | None = None,
    limit: int = 200,
) -> list[tuple[Alert, Patient]]:
    """The alerts of the units ``principal`` may see, with their patients, highest priority
    first, then newest; ``status`` ``active`` is open or acknowledged, ``all`` any."""
    q = select(Alert, Patient).join(Patient, Patient.id == Alert.patient_id)
    units = auth.visible_units(principal)
    if units is not None:
        q = q.where(Patient.unit_id.in_(units))
    if unit_id is not None:
        q = q.where(Patient.unit_id == unit_id)
    if patient_id is not None:
        q = q.where(Alert.patient_id == patient_id)
    if status == "active":
        q = q.where(Alert.status.in_(("open", "acknowledged")))
    elif status != "all":
        q = q.where(Alert.status == status)
    q = q.order_by(Alert.priority_rank.desc(), Alert.created_at.desc(), Alert.id.desc()).limit(limit)
    return [(a, p) for a, p in s.execute(q).all()]


def alert_for(
    s: Session, principal: auth.Principal, alert_id: int, need: base.Need, action: str
) -> tuple[Alert, Patient]:
    """The alert and its patient, or 404 when either is not the principal's to see."""
    alert = s.get(Alert, alert_id)
    if alert is None or not auth.can_read_alerts(principal):
        raise not_found(E("access.record_alert", alert=str(alert_id)))
    try:
        p = base.get_patient(s, principal, alert.patient_id, need, action=action)
    except Exception:
        raise not_found(E("access.record_alert", alert=str(alert_id))) from None
    return alert, p


def acknowledge(call: Call, alert_id: int, body: AckIn) -> Written:
    """Stops escalation; the comment and the acknowledging user go to the audit trail."""
    principal, now = call.principal, call.now

    def work(s: Session, payload: bytes) -> tuple[int, AlertPublic]:
        alert, p = alert_for(s, principal, alert_id, "read", "alert.acknowledge")
        if not auth.can_act_on_alerts(principal, p):
            raise forbidden(E("access.role_acknowledge", role=repr(principal.role)))
        if alert.status != "open":
            status = E(f"service.alert_{alert.status}")  # acknowledged or resolved
            problem = E("service.alert_not_open", alert=str(alert_id), status=status)
            raise field_error("alert_id", problem, 409)
        alert.status = "acknowledged"
        alert.acknowledged_at = now
        alert.acknowledged_by = principal.user_id
        alert.ack_comment = body.comment
        audit.record(
            s,
            actor=principal,
            action="alert.acknowledge",
            ctx=call.ctx,
            now=now,
            entity_type="alert",
            entity_id=alert.id,
            patient_id=alert.patient_id,
            payload=payload,
            details={"comment": body.comment, "escalation_level": alert.escalation_level},
        )
        return 200, base.alert_public(alert)

    return base.write(call, body, work)


def resolve(call: Call, alert_id: int, body: ResolveIn) -> Written:
    """Closes the alert with its reason (audited); an alert already resolved is a 409."""
    principal, now = call.principal, call.now

    def work(s: Session, payload: bytes) -> tuple[int, AlertPublic]:
        alert, p = alert_for(s, principal, alert_id, "read", "alert.resolve")
        if not auth.can_act_on_alerts(principal, p):
            raise forbidden(E("access.role_resolve", role=repr(principal.role)))
        if alert.status == "resolved":
            raise field_error("alert_id", E("service.alert_already_resolved", alert=str(alert_id)), 409)
        alert.status = "resolved"
        alert.resolved_at = now
        alert.resolved_reason = body.reason
        audit.record(
            s,
            actor=principal,
            action="alert.resolve",
            ctx=call.ctx,
            now=now,
            entity_type="alert",
            entity_id=alert.id,
            patient_id=alert.patient_id,
            payload=payload,
            details={"reason": body.reason},
        )
        return 200, base.alert_public(alert)

    return base.write(call, body, work)
