"""The append-only audit trail: who did what, when, from where, to which record.

Every write goes through :func:`record` in the same transaction as the write itself, so a write
without its audit entry cannot be committed. Refused writes (authorization, failed logins) are
recorded too, in their own transaction (:func:`record_separately`). Entries store stable action
codes (``observation.create``, ``alert.acknowledge``…), identifiers, the SHA-256 of the request
payload and small structured details — never rendered text and never passwords.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from .auth import Principal
from .models import AuditEvent

if TYPE_CHECKING:
    from .db import Database


@dataclass(frozen=True)
class RequestContext:
    """Where a request came from (filled by the HTTP middleware; 'system' for background work)."""

    request_id: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None


SYSTEM = RequestContext(request_id=None, client_ip=None, user_agent="immunotox-service")


def payload_digest(body: bytes | None) -> str | None:
    return hashlib.sha256(body).hexdigest() if body else None


_INSERT = insert(cast(Table, AuditEvent.__table__))  # built once: the same for every entry


def record(
    session: Session,
    *,
    actor: Principal | None,
    action: str,
    ctx: RequestContext,
    now: dt.datetime,
    entity_type: str | None = None,
    entity_id: str | int | None = None,
    patient_id: str | None = None,
    payload: bytes | None = None,
    outcome: str = "ok",
    details: dict[str, Any] | None = None,
    actor_name: str | None = None,
) -> None:
    """Append one audit entry to ``session`` (committed with the caller's transaction).

    A Core insert in the session's transaction, executed at once (every write records one: no
    ORM object to track, flush and expire for a row that is never read back in the transaction)."""
    values = dict(
        at=now,
        actor_user_id=actor.user_id if actor else None,
        actor_username=actor.username if actor else (actor_name or "system"),
        actor_role=actor.role if actor else "system",
        action=action,
        outcome=outcome,
        entity_type=entity_type,
        entity_id=str(entity_id) if entity_id is not None else None,
        patient_id=patient_id,
        request_id=ctx.request_id,
        client_ip=ctx.client_ip,
        user_agent=(ctx.user_agent or "")[:300] or None,
        payload_sha256=payload_digest(payload),
        details=details or {},
    )
    session.connection().execute(_INSERT, values)


def record_separately(db: Database, **kwargs: Any) -> None:
    """Record an entry in its own transaction (for refused or failed actions)."""
    with db.writing() as s:
        record(s, **kwargs)
