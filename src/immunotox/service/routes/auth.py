"""Login (token, throttled), logout, who am I, password change; throttled logins (admin). The
steps themselves are :mod:`..usecases.sessions`, which the web UI's login and logout call too."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from ...messages import error as E
from .. import auth
from ..deps import ClockDep, CtxDep, CurrentUser, DbDep, DbId, SettingsDep
from ..problems import responses, too_many_requests, unauthorized
from ..schemas import LoginIn, PasswordChangeIn, ThrottlePublic, TokenOut, UserPublic
from ..usecases import sessions

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
    out = sessions.log_in(db, settings, ctx, clock.now(), body.username, body.password)
    if isinstance(out, sessions.Throttled):
        raise too_many_requests(E("auth.throttled", seconds=out.retry_after), out.retry_after)
    if out is None:
        raise unauthorized(E("auth.wrong_login"))
    return TokenOut(access_token=out.issued.token, expires_at=out.issued.expires_at, user=out.user)


@router.post("/logout", status_code=204, responses=ERRORS, summary="Revoke the current token")
def logout(principal: CurrentUser, db: DbDep, clock: ClockDep, ctx: CtxDep) -> Response:
    sessions.log_out(db, principal, ctx, clock.now())
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
    sessions.change_password(db, principal, ctx, clock.now(), body.current_password, body.new_password)
    return Response(status_code=204)


# ----------------------------------------------------------------------------- throttling (admin)
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
    return sessions.throttles(db, settings, principal, ctx, clock.now())


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
    sessions.clear_throttle(db, principal, ctx, clock.now(), throttle_id)
    return Response(status_code=204)
