"""Alert inbox: list, read, acknowledge (with a comment), resolve; and the global audit trail."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select

from ...messages import error as E
from .. import auth
from ..deps import CurrentUser, DbDep, DbId
from ..models import AuditEvent
from ..openapi import rules
from ..problems import forbidden, responses
from ..schemas import AckIn, AlertPublic, AuditPublic, ResolveIn, UtcDatetime
from ..usecases import alerts
from ..usecases import base as c
from ..usecases.base import audit_public
from . import _http

router = APIRouter(tags=["alerts"])
ERRORS = responses(401, 403, 404, 409, 422)


@router.get("/alerts", response_model=list[AlertPublic], responses=ERRORS, summary="Alerts of my units")
def list_alerts(
    principal: CurrentUser,
    db: DbDep,
    status: Literal["open", "acknowledged", "resolved", "active", "all"] = "active",
    unit_id: Annotated[str | None, Query(max_length=64)] = None,
    patient_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AlertPublic]:
    """``active`` = open or acknowledged; highest priority first, then newest."""
    if not auth.can_read_alerts(principal):
        raise forbidden(E("access.alerts_care_team"))
    with db.session() as s:
        found = alerts.visible_alerts(
            s, principal, status=status, unit_id=unit_id, patient_id=patient_id, limit=limit
        )
        return [c.alert_public(a) for a, _ in found]


@router.get("/alerts/{alert_id}", response_model=AlertPublic, responses=ERRORS, summary="One alert")
def read_alert(alert_id: DbId, principal: CurrentUser, db: DbDep) -> AlertPublic:
    with db.session() as s:
        alert, _ = alerts.alert_for(s, principal, alert_id, "read", "alert.read")
        return c.alert_public(alert)


@router.post(
    "/alerts/{alert_id}/acknowledge",
    response_model=AlertPublic,
    responses=ERRORS,
    summary="Acknowledge an alert",
    openapi_extra=rules("alert_state"),
)
def acknowledge(
    alert_id: DbId,
    body: AckIn,
    call: _http.CallDep,
) -> JSONResponse:
    """Stops escalation; the comment and the acknowledging user go to the audit trail."""
    return _http.respond(alerts.acknowledge(call, alert_id, body))


@router.post(
    "/alerts/{alert_id}/resolve",
    response_model=AlertPublic,
    responses=ERRORS,
    summary="Resolve an alert",
    openapi_extra=rules("alert_state"),
)
def resolve(
    alert_id: DbId,
    body: ResolveIn,
    call: _http.CallDep,
) -> JSONResponse:
    return _http.respond(alerts.resolve(call, alert_id, body))


@router.get("/audit", response_model=list[AuditPublic], responses=ERRORS, summary="The audit trail (admin)")
def audit_trail(
    principal: CurrentUser,
    db: DbDep,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    patient_id: Annotated[str | None, Query(max_length=64)] = None,
    since: UtcDatetime | None = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AuditPublic]:
    """Newest first; page with ``before_id``."""
    from ..db import as_utc

    if not auth.can_read_audit(principal, None):
        raise forbidden(E("access.audit_full"))
    with db.session() as s:
        q = select(AuditEvent)
        if actor is not None:
            q = q.where(AuditEvent.actor_username == actor)
        if action is not None:
            q = q.where(AuditEvent.action == action)
        if patient_id is not None:
            q = q.where(AuditEvent.patient_id == patient_id)
        if since is not None:
            q = q.where(AuditEvent.at >= as_utc(since))
        if before_id is not None:
            q = q.where(AuditEvent.id < before_id)
        return [audit_public(a) for a in s.scalars(q.order_by(AuditEvent.id.desc()).limit(limit))]
