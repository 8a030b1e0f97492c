"""Login (token, throttled), logout, who am I, password change; throttled logins (admin)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import select

from .. import audit, auth, throttle
from ..deps import ClockDep, CtxDep, CurrentUser, DbDep, DbId, SettingsDep
from ..models import LoginThrottle, User, UserUnit
from ..problems import field_error, forbidden, not_found, responses, too_many_requests, unauthorized
from ..schemas import LoginIn, PasswordChangeIn, ThrottlePublic, TokenOut, UserPublic
from ..usecases.base import user_public

router = APIRouter(prefix="/auth", tags=["auth"])

ERRORS = responses(401, 422)


@router.post(
    "/token",
    response_model=TokenOut,
    responses=responses(401, 422, 429),
    summary="Log in: get an API token",
)
def login(body: LoginIn, db: DbDep, clock: ClockDep, settings: SettingsDep, ctx: CtxDep) -> TokenOut:
    """Exchange a user name and password for a bearer token (``Authorization: Bearer <token>``).

    After too many failures for this user name from this address (or from this address), the
    next attempts are refused with 429 and ``Retry-After`` until the wait is over (docs/security.md).
    """
    now = clock.now()
    with db.writing() as s:
        outcome = throttle.login(s, settings, body.username, body.password, now=now, ctx=ctx)
        user = outcome.user
        if user is not None:
            issued = auth.issue_token(s, user, now=now, ttl_hours=settings.token_ttl_hours)
            units = list(s.scalars(select(UserUnit.unit_id).where(UserUnit.user_id == user.id)))
            out = TokenOut(
                access_token=issued.token, expires_at=issued.expires_at, user=user_public(user, units)
            )
    if outcome.retry_after is not None:
        raise too_many_requests(
            f"too many failed logins: try again in {outcome.retry_after} s (the account is not locked)",
            outcome.retry_after,
        )
    if user is None:
        raise unauthorized("wrong user name or password")
    return out


@router.post("/logout", status_code=204, responses=ERRORS, summary="Revoke the current token")
def logout(principal: CurrentUser, db: DbDep, clock: ClockDep, ctx: CtxDep) -> Response:
    now = clock.now()
    with db.writing() as s:
        auth.revoke_token(s, principal.token_id, now=now)
        audit.record(
            s,
            actor=principal,
            action="auth.logout",
            ctx=ctx,
            now=now,
            entity_type="user",
            entity_id=principal.user_id,
        )
    resp = Response(status_code=204)
    resp.delete_cookie(auth.SESSION_COOKIE)
    return resp


@router.get("/me", response_model=UserPublic, responses=ERRORS, summary="The current user")
def me(principal: CurrentUser) -> UserPublic:
    return UserPublic(
        id=principal.user_id,
        username=principal.username,
        role=principal.role,
        display_name=principal.display_name,
        unit_ids=sorted(principal.unit_ids),
        patient_id=principal.patient_id,
        locale=principal.locale,
        active=True,
    )


@router.post("/password", status_code=204, responses=ERRORS, summary="Change my password")
def change_password(
    body: PasswordChangeIn, principal: CurrentUser, db: DbDep, clock: ClockDep, ctx: CtxDep
) -> Response:
    now = clock.now()
    with db.writing() as s:
        user = s.get(User, principal.user_id)
        if user is None or not auth.verify_password(user.password_hash, body.current_password):
            wrong = True
        else:
            wrong = False
            problem = auth.password_problem(body.new_password, user.role, user.username)
            if problem is not None:
                raise field_error("new_password", problem)
            user.password_hash = auth.hash_password(body.new_password)
            user.updated_at = now
            audit.record(
                s,
                actor=principal,
                action="user.password",
                ctx=ctx,
                now=now,
                entity_type="user",
                entity_id=user.id,
            )
    if wrong:
        raise field_error("current_password", "does not match")
    return Response(status_code=204)


# ----------------------------------------------------------------------------- throttling (admin)
def _throttle_admin(principal: auth.Principal, db: DbDep, ctx: CtxDep, clock: ClockDep, action: str) -> None:
    if principal.role != "admin":
        audit.record_separately(
            db, actor=principal, action=action, ctx=ctx, now=clock.now(), outcome="denied"
        )
        raise forbidden("only an admin may see or clear login throttling")


@router.get(
    "/throttles",
    response_model=list[ThrottlePublic],
    responses=responses(401, 403),
    summary="Failed logins counted for throttling (admin)",
)
def list_throttles(
    principal: CurrentUser, db: DbDep, clock: ClockDep, settings: SettingsDep, ctx: CtxDep
) -> list[ThrottlePublic]:
    """User names and addresses with failed logins not yet forgotten; those that must wait first."""
    _throttle_admin(principal, db, ctx, clock, "auth.throttle.list")
    now = clock.now()
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


@router.delete(
    "/throttles/{throttle_id}",
    status_code=204,
    responses=responses(401, 403, 404),
    summary="Clear a throttled user name or address (admin)",
)
def clear_throttle(
    throttle_id: DbId, principal: CurrentUser, db: DbDep, clock: ClockDep, ctx: CtxDep
) -> Response:
    """Forget the counted failures: the next attempt goes ahead at once (audited)."""
    _throttle_admin(principal, db, ctx, clock, "auth.throttle.clear")
    now = clock.now()
    with db.writing() as s:
        row = s.get(LoginThrottle, throttle_id)
        if row is None:
            raise not_found(f"login throttle {throttle_id}")
        audit.record(
            s,
            actor=principal,
            action="auth.throttle.clear",
            ctx=ctx,
            now=now,
            entity_type="login_throttle",
            entity_id=row.id,
            details={
                "scope": row.scope,
                "username": row.username or None,
                "address": row.address,
                "failures": row.failures,
            },
        )
        s.delete(row)
    return Response(status_code=204)
