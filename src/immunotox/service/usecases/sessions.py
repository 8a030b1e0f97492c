"""Sessions: log in (throttled), log out, change one's own password; the login throttle's admin
view. Every step is audited.

The JSON API (``/api/v1/auth/...``: a bearer token) and the web UI's login and logout forms (a
browser session with its CSRF token) call these: one road for the credentials check, the
throttling (:mod:`immunotox.service.throttle`), the token and the audit entries. ``via`` names the
front end in the audit entry's details when it is not the API.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from ...messages import error as E
from .. import audit, auth, throttle
from ..audit import RequestContext
from ..config import Settings
from ..db import Database
from ..models import LoginThrottle, User
from ..problems import field_error, forbidden, not_found
from ..schemas import ThrottlePublic, UserPublic
from .base import user_public
from .users import units_of


@dataclass(frozen=True)
class LoggedIn:
    """A successful login: the user as the API shows it and the token issued."""

    user: UserPublic
    issued: auth.IssuedToken


@dataclass(frozen=True)
class Throttled:
    """Too many failed logins: the next attempt must wait ``retry_after`` seconds."""

    retry_after: int


def _via(via: str | None) -> dict[str, Any] | None:
    return {"via": via} if via else None


def _audit(
    s: Session, who: auth.Principal, ctx: RequestContext, now: dt.datetime, action: str, **where: Any
) -> None:
    audit.record(s, actor=who, action=action, ctx=ctx, now=now, **where)


def log_in(
    db: Database,
    settings: Settings,
    ctx: RequestContext,
    now: dt.datetime,
    username: str,
    password: str,
    *,
    kind: Literal["api", "session"] = "api",
    via: str | None = None,
) -> LoggedIn | Throttled | None:
    """One login attempt: a token of ``kind`` (a session also gets its CSRF token) when the
    credentials are right, :class:`Throttled` when the attempt must wait (the password is not
    checked), None for a wrong user name or password. Audited either way."""
    with db.writing() as s:
        outcome = throttle.login(s, settings, username, password, now=now, ctx=ctx, details=_via(via))
        if outcome.retry_after is not None:
            return Throttled(outcome.retry_after)
        user = outcome.user
        if user is None:
            return None
        issued = auth.issue_token(s, user, now=now, ttl_hours=settings.token_ttl_hours, kind=kind)
        return LoggedIn(user_public(user, units_of(s, user.id)), issued)


def log_out(
    db: Database, principal: auth.Principal, ctx: RequestContext, now: dt.datetime, *, via: str | None = None
) -> None:
    """Revoke the principal's token or session (audited)."""
    with db.writing() as s:
        auth.revoke_token(s, principal.token_id, now=now)
        where = {"entity_type": "user", "entity_id": principal.user_id, "details": _via(via)}
        _audit(s, principal, ctx, now, "auth.logout", **where)


def change_password(
    db: Database, principal: auth.Principal, ctx: RequestContext, now: dt.datetime, current: str, new: str
) -> None:
    """The principal's own password, when ``current`` is right and ``new`` follows the rules
    (a 422 naming ``current_password`` or ``new_password`` otherwise); audited."""
    with db.writing() as s:
        user = s.get(User, principal.user_id)
        if user is None or not auth.verify_password(user.password_hash, current):
            wrong = True
        else:
            wrong = False
            problem = auth.password_problem(new, user.role, user.username)
            if problem is not None:
                raise field_error("new_password", problem)
            user.password_hash = auth.hash_password(new)
            user.updated_at = now
            _audit(s, principal, ctx, now, "user.password", entity_type="user", entity_id=user.id)
    if wrong:
        raise field_error("current_password", E("service.password_mismatch"))


# ----------------------------------------------------------------------------- throttling (admin)
def _throttle_admin(
    db: Database, principal: auth.Principal, ctx: RequestContext, now: dt.datetime, action: str
) -> None:
    if principal.role != "admin":
        audit.record_separately(db, actor=principal, action=action, ctx=ctx, now=now, outcome="denied")
        raise forbidden(E("access.admin_only", what=E("access.manage_throttles")))


def throttles(
    db: Database, settings: Settings, principal: auth.Principal, ctx: RequestContext, now: dt.datetime
) -> list[ThrottlePublic]:
    """User names and addresses with failed logins not yet forgotten, those that must wait
    first (admin; a refusal is audited)."""
    _throttle_admin(db, principal, ctx, now, "auth.throttle.list")
    with db.session() as s:
        return [
            ThrottlePublic(
                id=r.id,
                scope="name" if r.scope == "name" else "address",
                username=r.username if r.scope == "name" else None,
                address=r.address,
                failures=r.failures,
                first_failure_at=r.first_failure_at,
                last_failure_at=r.last_failure_at,
                blocked_until=r.blocked_until,
                retry_after=throttle.wait_seconds(r.blocked_until, now),
            )
            for r in throttle.live_rows(s, settings, now)
        ]


def clear_throttle(
    db: Database, principal: auth.Principal, ctx: RequestContext, now: dt.datetime, throttle_id: int
) -> None:
    """Forget the counted failures of one user name or address: the next attempt goes ahead at
    once (admin; audited, a refusal too)."""
    _throttle_admin(db, principal, ctx, now, "auth.throttle.clear")
    with db.writing() as s:
        row = s.get(LoginThrottle, throttle_id)
        if row is None:
            raise not_found(E("access.record_throttle", throttle=str(throttle_id)))
        forgotten = {"scope": row.scope, "username": row.username or None, "address": row.address}
        details = {**forgotten, "failures": row.failures}
        _audit(
            s,
            principal,
            ctx,
            now,
            "auth.throttle.clear",
            entity_type="login_throttle",
            entity_id=row.id,
            details=details,
        )
        s.delete(row)
