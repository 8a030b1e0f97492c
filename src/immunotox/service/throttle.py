"""Login throttling: online password guessing slowed down, without locking the team out.

A hard lock after N failures would let anyone lock out the physician on call by typing their
user name; so failed logins are counted and, past a free allowance, the next attempts must wait
(answered **429** with ``Retry-After``, before any password is checked; the worker never sleeps):

* per **user name and client address** (``scope='name'``), whether the account exists or not
  (the answers do not reveal which accounts exist): ``IMMUNOTOX_LOGIN_FREE_FAILURES`` (10)
  failures, then a wait of ``IMMUNOTOX_LOGIN_DELAY_SECONDS`` (60 s) doubled by each further
  failure up to ``IMMUNOTOX_LOGIN_MAX_DELAY_SECONDS`` (15 min). The same user name from another
  address is not held back: the physician on call logs in from the ward while someone guesses
  elsewhere. A successful login from the address clears the name's count there.
* per **client address** whatever the name (``scope='address'``): a larger allowance,
  ``IMMUNOTOX_LOGIN_ADDRESS_FREE_FAILURES`` (100), since a whole ward may share one address behind
  the hospital's NAT; a success does not clear it (one valid account must not buy unlimited
  guesses on the others).

Failures are forgotten after ``IMMUNOTOX_LOGIN_FORGET_HOURS`` (24 h) without one. The counts live
in the database (``login_throttle``), so every worker and process of the service shares them;
rows are updated under a row lock (PostgreSQL ``SELECT … FOR UPDATE``; SQLite has one writer).
Every refusal (``auth.login``, outcome ``throttled``), every start of a wait (``auth.throttle``)
and every clearing by an admin (``auth.throttle.clear``) is audited. The client address is the
peer, or the ``X-Forwarded-For`` client when the peer is a trusted proxy (:mod:`.deps`).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from . import audit, auth
from .audit import RequestContext
from .config import Settings
from .models import LoginThrottle, User

Scope = Literal["name", "address"]
UNKNOWN_ADDRESS = "unknown"
MAX_DOUBLINGS = 30  # 2**30 x the first delay is far past any maximum


@dataclass(frozen=True)
class LoginOutcome:
    """The user when the credentials are right; else ``retry_after`` (seconds) when the attempt
    was refused unchecked because it must wait, or neither for a wrong user name or password."""

    user: User | None = None
    retry_after: int | None = None


def _key(scope: Scope, username: str, address: str) -> tuple[str, str, str]:
    return (scope, username if scope == "name" else "", address)


def _keys(username: str, address: str) -> list[tuple[str, str, str]]:
    return [_key("name", username, address), _key("address", username, address)]


def _row(s: Session, key: tuple[str, str, str], *, lock: bool = False) -> LoginThrottle | None:
    scope, username, address = key
    q = select(LoginThrottle).where(
        LoginThrottle.scope == scope, LoginThrottle.username == username, LoginThrottle.address == address
    )
    return s.scalars(q.with_for_update() if lock else q).first()


def wait_seconds(blocked_until: dt.datetime | None, now: dt.datetime) -> int:
    """Whole seconds still to wait (0 when not blocked), rounded up: ``Retry-After``."""
    if blocked_until is None or blocked_until <= now:
        return 0
    return max(1, math.ceil((blocked_until - now).total_seconds()))


def delay_after(failures: int, free: int, settings: Settings) -> float:
    """Seconds to wait after ``failures`` failures with ``free`` allowed (0 below the allowance).

    >>> s = Settings()
    >>> [delay_after(n, 10, s) for n in (9, 10, 11, 12, 15, 40)]
    [0.0, 60.0, 120.0, 240.0, 900.0, 900.0]
    """
    if failures < free:
        return 0.0
    doublings = min(failures - free, MAX_DOUBLINGS)
    return float(min(settings.login_delay_seconds * 2**doublings, settings.login_max_delay_seconds))


def _free(scope: str, settings: Settings) -> int:
    return settings.login_free_failures if scope == "name" else settings.login_address_free_failures


def retry_after(s: Session, username: str, address: str, now: dt.datetime) -> tuple[int, str | None]:
    """Seconds the next attempt for ``username`` from ``address`` must wait, and the scope that
    holds it back (``(0, None)`` when it may go ahead)."""
    waits = [
        (wait_seconds(r.blocked_until, now), r.scope) for k in _keys(username, address) if (r := _row(s, k))
    ]
    return max(waits, default=(0, None))


def record_failure(
    s: Session, settings: Settings, username: str, address: str, *, now: dt.datetime, ctx: RequestContext
) -> None:
    """Count a failed login on both keys; audit the start of a wait. Rows forgotten for good (no
    failure for ``IMMUNOTOX_LOGIN_FORGET_HOURS``, no wait left) are deleted on the way, so that a
    spray of made-up user names does not grow the table without bound."""
    insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    forget = dt.timedelta(hours=settings.login_forget_hours)
    s.execute(
        delete(LoginThrottle).where(
            LoginThrottle.last_failure_at <= now - forget,
            (LoginThrottle.blocked_until.is_(None)) | (LoginThrottle.blocked_until <= now),
        )
    )
    for key in _keys(username, address):
        scope, name, addr = key
        s.execute(
            insert(LoginThrottle)
            .values(
                scope=scope,
                username=name,
                address=addr,
                failures=0,
                first_failure_at=now,
                last_failure_at=now,
            )
            .on_conflict_do_nothing(index_elements=["scope", "username", "address"])
        )
        row = _row(s, key, lock=True)
        assert row is not None
        if row.failures and row.last_failure_at <= now - forget:
            row.failures, row.first_failure_at, row.blocked_until = 0, now, None
        row.failures += 1
        row.last_failure_at = now
        delay = delay_after(row.failures, _free(scope, settings), settings)
        if delay > 0:
            row.blocked_until = now + dt.timedelta(seconds=delay)
            audit.record(
                s,
                actor=None,
                actor_name=username[:64] or "?",
                action="auth.throttle",
                ctx=ctx,
                now=now,
                outcome="throttled",
                entity_type="login_throttle",
                entity_id=row.id,
                details={"scope": scope, "failures": row.failures, "wait_seconds": int(delay)},
            )


def clear_name(s: Session, username: str, address: str) -> None:
    """Forget the failures of ``username`` from ``address`` (after a successful login there)."""
    scope, name, addr = _key("name", username, address)
    s.execute(
        delete(LoginThrottle).where(
            LoginThrottle.scope == scope, LoginThrottle.username == name, LoginThrottle.address == addr
        )
    )


def login(
    s: Session,
    settings: Settings,
    username: str,
    password: str,
    *,
    now: dt.datetime,
    ctx: RequestContext,
    details: dict[str, Any] | None = None,
) -> LoginOutcome:
    """One login attempt, throttled and audited (the API's and the web form's one road).

    Waiting: refused at once, the password unchecked. Otherwise the password is checked (an
    unknown user name costs the same argon2 verification, :func:`auth.authenticate`); a failure
    is counted, a success clears the name's count from this address. Runs in the caller's write
    transaction, which issues the token on success.
    """
    address = ctx.client_ip or UNKNOWN_ADDRESS

    def audited(outcome: str, name: str, **kw: Any) -> None:
        audit.record(
            s,
            actor=None,
            actor_name=name[:64] or "?",
            action="auth.login",
            ctx=ctx,
            now=now,
            outcome=outcome,
            **kw,
        )

    wait, scope = retry_after(s, username, address, now)
    if wait:
        audited("throttled", username, details={**(details or {}), "scope": scope, "retry_after": wait})
        return LoginOutcome(retry_after=wait)
    user = auth.authenticate(s, username, password)
    if user is None:
        audited("denied", username, details=details)
        record_failure(s, settings, username, address, now=now, ctx=ctx)
        return LoginOutcome()
    clear_name(s, username, address)
    audited("ok", user.username, entity_type="user", entity_id=user.id, details=details)
    return LoginOutcome(user=user)


def live_rows(s: Session, settings: Settings, now: dt.datetime) -> list[LoginThrottle]:
    """Counted failures not yet forgotten, those that hold attempts back first (admin view)."""
    since = now - dt.timedelta(hours=settings.login_forget_hours)
    rows = s.scalars(select(LoginThrottle).where(LoginThrottle.last_failure_at > since))
    return sorted(rows, key=lambda r: (-wait_seconds(r.blocked_until, now), r.scope, r.username, r.address))
