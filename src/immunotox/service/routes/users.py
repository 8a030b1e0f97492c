"""Users and care units (administration). Only an admin creates users, sets roles and units
(the checks and writes are :mod:`..usecases.users`)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import select

from ...messages import error as E
from .. import auth
from ..deps import CurrentUser, DbDep, DbId
from ..models import CareUnit, Patient, User, UserUnit
from ..openapi import rules
from ..problems import not_found, responses
from ..schemas import UnitCreate, UnitPublic, UserCreate, UserPublic, UserUpdate
from ..usecases import users
from ..usecases.base import user_public
from . import _http

router = APIRouter(tags=["administration"])
ERRORS = responses(401, 403, 404, 409, 422)


@router.get("/users", response_model=list[UserPublic], responses=ERRORS, summary="List users (admin)")
def list_users(principal: CurrentUser, db: DbDep) -> list[UserPublic]:
    users.require_admin(principal, "list_users")
    with db.session() as s:
        units: dict[int, list[str]] = {}
        for uu in s.scalars(select(UserUnit)):
            units.setdefault(uu.user_id, []).append(uu.unit_id)
        return [user_public(u, units.get(u.id, [])) for u in s.scalars(select(User).order_by(User.id))]


@router.post(
    "/users",
    status_code=201,
    response_model=UserPublic,
    responses=ERRORS,
    summary="Create a user (admin)",
    openapi_extra=rules("user"),
)
def create_user(body: UserCreate, call: _http.CallDep) -> JSONResponse:
    return _http.respond(users.create_user(call, body))


@router.get(
    "/users/{user_id}", response_model=UserPublic, responses=ERRORS, summary="One user (admin or self)"
)
def get_user(user_id: DbId, principal: CurrentUser, db: DbDep) -> UserPublic:
    if principal.role != "admin" and principal.user_id != user_id:
        raise not_found(E("access.record_user", user=str(user_id)))
    with db.session() as s:
        user = s.get(User, user_id)
        if user is None:
            raise not_found(E("access.record_user", user=str(user_id)))
        return user_public(user, users.units_of(s, user.id))


@router.patch(
    "/users/{user_id}",
    response_model=UserPublic,
    responses=ERRORS,
    summary="Change a user (admin)",
    openapi_extra=rules("user"),
)
def update_user(user_id: DbId, body: UserUpdate, call: _http.CallDep) -> JSONResponse:
    return _http.respond(users.update_user(call, user_id, body))


@router.get("/units", response_model=list[UnitPublic], responses=ERRORS, summary="Care units")
def list_units(principal: CurrentUser, db: DbDep) -> list[UnitPublic]:
    with db.session() as s:
        rows = s.scalars(select(CareUnit).order_by(CareUnit.id))
        visible = auth.visible_units(principal)
        if principal.role == "patient":
            p = s.get(Patient, principal.patient_id) if principal.patient_id else None
            visible = frozenset({p.unit_id}) if p else frozenset()
        return [
            UnitPublic(id=u.id, name=u.name, phone=u.phone)
            for u in rows
            if visible is None or u.id in visible
        ]


@router.post(
    "/units", status_code=201, response_model=UnitPublic, responses=ERRORS, summary="Create a unit (admin)"
)
def create_unit(body: UnitCreate, call: _http.CallDep) -> JSONResponse:
    return _http.respond(users.create_unit(call, body))
