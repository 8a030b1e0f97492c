"""Login (token), logout, who am I, password change."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import select

from .. import audit, auth
from ..deps import ClockDep, CtxDep, CurrentUser, DbDep, SettingsDep
from ..models import User, UserUnit
from ..problems import field_error, responses, unauthorized
from ..schemas import LoginIn, PasswordChangeIn, TokenOut, UserPublic

router = APIRouter(prefix="/auth", tags=["auth"])

ERRORS = responses(401, 422)


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


@router.post("/token", response_model=TokenOut, responses=ERRORS, summary="Log in: get an API token")
def login(body: LoginIn, db: DbDep, clock: ClockDep, settings: SettingsDep, ctx: CtxDep) -> TokenOut:
    """Exchange a user name and password for a bearer token (``Authorization: Bearer <token>``)."""
    now = clock.now()
    with db.writing() as s:
        user = auth.authenticate(s, body.username, body.password)
        if user is None:
            audit.record(
                s,
                actor=None,
                actor_name=body.username[:64],
                action="auth.login",
                ctx=ctx,
                now=now,
                outcome="denied",
            )
            failed = True
        else:
            failed = False
            issued = auth.issue_token(s, user, now=now, ttl_hours=settings.token_ttl_hours)
            units = list(s.scalars(select(UserUnit.unit_id).where(UserUnit.user_id == user.id)))
            audit.record(
                s,
                actor=None,
                actor_name=user.username,
                action="auth.login",
                ctx=ctx,
                now=now,
                entity_type="user",
                entity_id=user.id,
            )
            out = TokenOut(
                access_token=issued.token, expires_at=issued.expires_at, user=user_public(user, units)
            )
    if failed:
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
