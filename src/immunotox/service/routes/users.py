"""Users and care units (administration). Only an admin creates users, sets roles and units."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .. import audit, auth
from ..deps import ClockDep, CtxDep, CurrentUser, DbDep, DbId
from ..models import CareUnit, Patient, User, UserUnit
from ..openapi import rules
from ..problems import conflict, field_error, forbidden, not_found, responses
from ..schemas import UnitCreate, UnitPublic, UserCreate, UserPublic, UserUpdate
from ._http import write
from .auth import user_public

router = APIRouter(tags=["administration"])
ERRORS = responses(401, 403, 404, 409, 422)


def _admin(principal: auth.Principal, what: str, action: str = "admin") -> None:
    if principal.role != "admin":
        exc = forbidden(f"only an admin may {what}")
        exc.denied = {"actor": principal, "action": action, "outcome": "denied"}
        raise exc


def _units_of(s: Session, user_id: int) -> list[str]:
    return list(s.scalars(select(UserUnit.unit_id).where(UserUnit.user_id == user_id)))


def _check_role_links(s: Session, role: str, unit_ids: list[str], patient_id: str | None) -> None:
    if role == "patient":
        if patient_id is None:
            raise field_error("patient_id", "a patient account must name its patient record")
        if s.get(Patient, patient_id) is None:
            raise field_error("patient_id", f"no patient {patient_id!r}")
        if unit_ids:
            raise field_error("unit_ids", "a patient account has no units")
    else:
        if patient_id is not None:
            raise field_error(
                "patient_id", f"only a patient account links to a patient record (role {role!r})"
            )
        if role in auth.STAFF and not unit_ids:
            raise field_error("unit_ids", f"a {role} must work in at least one unit")
    for i, u in enumerate(unit_ids):
        if s.get(CareUnit, u) is None:
            raise field_error(f"unit_ids.{i}", f"no unit {u!r}")


@router.get("/users", response_model=list[UserPublic], responses=ERRORS, summary="List users (admin)")
def list_users(principal: CurrentUser, db: DbDep) -> list[UserPublic]:
    _admin(principal, "list users")
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
def create_user(
    body: UserCreate, request: Request, principal: CurrentUser, db: DbDep, clock: ClockDep, ctx: CtxDep
) -> JSONResponse:
    now = clock.now()

    def work(s: Session, payload: bytes) -> tuple[int, UserPublic]:
        _admin(principal, "create users", "user.create")
        if s.scalars(select(User.id).where(User.username == body.username)).first() is not None:
            raise conflict(f"user name {body.username!r} is taken", "username")
        _check_role_links(s, body.role, body.unit_ids, body.patient_id)
        problem = auth.password_problem(body.password, body.role, body.username)
        if problem is not None:
            raise field_error("password", problem)
        user = User(
            username=body.username,
            password_hash=auth.hash_password(body.password),
            role=body.role,
            display_name=body.display_name,
            patient_id=body.patient_id,
            locale=body.locale,
            created_at=now,
            updated_at=now,
        )
        s.add(user)
        s.flush()
        s.add_all(UserUnit(user_id=user.id, unit_id=u) for u in sorted(set(body.unit_ids)))
        audit.record(
            s,
            actor=principal,
            action="user.create",
            ctx=ctx,
            now=now,
            entity_type="user",
            entity_id=user.id,
            details={
                "role": body.role,
                "unit_ids": sorted(set(body.unit_ids)),
                "patient_id": body.patient_id,
            },
        )
        return 201, user_public(user, body.unit_ids)

    return write(request, db, principal, ctx, now, body.model_copy(update={"password": "***"}), work)


@router.get(
    "/users/{user_id}", response_model=UserPublic, responses=ERRORS, summary="One user (admin or self)"
)
def get_user(user_id: DbId, principal: CurrentUser, db: DbDep) -> UserPublic:
    if principal.role != "admin" and principal.user_id != user_id:
        raise not_found(f"user {user_id}")
    with db.session() as s:
        user = s.get(User, user_id)
        if user is None:
            raise not_found(f"user {user_id}")
        return user_public(user, _units_of(s, user.id))


@router.patch(
    "/users/{user_id}",
    response_model=UserPublic,
    responses=ERRORS,
    summary="Change a user (admin)",
    openapi_extra=rules("user"),
)
def update_user(
    user_id: DbId,
    body: UserUpdate,
    request: Request,
    principal: CurrentUser,
    db: DbDep,
    clock: ClockDep,
    ctx: CtxDep,
) -> JSONResponse:
    now = clock.now()

    def work(s: Session, payload: bytes) -> tuple[int, UserPublic]:
        _admin(principal, "change users, roles or units", "user.update")
        user = s.get(User, user_id)
        if user is None:
            raise not_found(f"user {user_id}")
        changes = body.model_dump(exclude_unset=True)
        if user.id == principal.user_id and (
            changes.get("role", "admin") != "admin" or changes.get("active") is False
        ):
            raise field_error("role", "an admin cannot demote or deactivate their own account")
        role = changes.get("role") or user.role
        units = changes["unit_ids"] if changes.get("unit_ids") is not None else _units_of(s, user.id)
        _check_role_links(s, role, units, user.patient_id if role == "patient" else None)
        if role != "patient" and user.patient_id is not None:
            raise field_error("role", "a patient account cannot become a staff account; create a new user")
        for name in ("display_name", "role", "active", "locale"):
            if changes.get(name) is not None:
                setattr(user, name, changes[name])
        if changes.get("password"):
            problem = auth.password_problem(changes["password"], role, user.username)
            if problem is not None:
                raise field_error("password", problem)
            user.password_hash = auth.hash_password(changes["password"])
        if changes.get("unit_ids") is not None:
            s.execute(delete(UserUnit).where(UserUnit.user_id == user.id))
            s.add_all(UserUnit(user_id=user.id, unit_id=u) for u in sorted(set(units)))
        user.updated_at = now
        shown = {k: v for k, v in changes.items() if k != "password"}
        if "password" in changes:
            shown["password"] = "changed"
        audit.record(
            s,
            actor=principal,
            action="user.update",
            ctx=ctx,
            now=now,
            entity_type="user",
            entity_id=user.id,
            details=shown,
        )
        return 200, user_public(user, units)

    return write(request, db, principal, ctx, now, body.model_copy(update={"password": None}), work)


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
def create_unit(
    body: UnitCreate, request: Request, principal: CurrentUser, db: DbDep, clock: ClockDep, ctx: CtxDep
) -> JSONResponse:
    now = clock.now()

    def work(s: Session, payload: bytes) -> tuple[int, UnitPublic]:
        _admin(principal, "create units", "unit.create")
        if s.get(CareUnit, body.id) is not None:
            raise conflict(f"unit {body.id!r} exists", "id")
        s.add(CareUnit(id=body.id, name=body.name, phone=body.phone, created_at=now))
        audit.record(
            s,
            actor=principal,
            action="unit.create",
            ctx=ctx,
            now=now,
            entity_type="unit",
            entity_id=body.id,
            payload=payload,
        )
        return 201, UnitPublic(id=body.id, name=body.name, phone=body.phone)

    return write(request, db, principal, ctx, now, body, work)
