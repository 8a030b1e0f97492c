"""Administration: create and change users (roles, units, passwords), create care units, audited.

Only an admin creates users, sets roles and units. The JSON API (``/api/v1/users``,
``/api/v1/units``) calls these; any other front end that administers accounts calls them too,
so every caller gets the same checks (role and links, password rules, an admin never demoting
themself), the same audit entries and idempotency. A password never reaches the audit trail or
the idempotency fingerprint.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ...messages import error as E
from .. import auth
from ..models import CareUnit, Patient, User, UserUnit
from ..problems import conflict, field_error, forbidden, not_found
from ..schemas import UnitCreate, UnitPublic, UserCreate, UserPublic, UserUpdate
from . import base
from .base import Call, Written, user_public

#: what only an admin may do (``errors.access.<key>`` of data/messages.toml)
AdminOnly = Literal["create_users", "change_users", "create_units", "list_users"]


def require_admin(principal: auth.Principal, what: AdminOnly, action: str = "admin") -> None:
    """403 unless ``principal`` is an admin (``what``: the key of what only an admin may do,
    ``errors.access.<what>``); a refused write (``action``) is audited as denied."""
    if principal.role != "admin":
        exc = forbidden(E("access.admin_only", what=E(f"access.{what}")))
        exc.denied = {"actor": principal, "action": action, "outcome": "denied"}
        raise exc


def units_of(s: Session, user_id: int) -> list[str]:
    """The units a user works in."""
    return list(s.scalars(select(UserUnit.unit_id).where(UserUnit.user_id == user_id)))


def check_role_links(s: Session, role: str, unit_ids: list[str], patient_id: str | None) -> None:
    """A patient account names its (existing) patient record and no unit; a staff account names
    no patient record and, for clinical roles, at least one unit; every unit exists."""
    if role == "patient":
        if patient_id is None:
            raise field_error("patient_id", E("service.patient_account_record"))
        if s.get(Patient, patient_id) is None:
            raise field_error("patient_id", E("service.no_patient_record", patient=repr(patient_id)))
        if unit_ids:
            raise field_error("unit_ids", E("service.patient_account_units"))
    else:
        if patient_id is not None:
            raise field_error("patient_id", E("service.staff_account_record", role=repr(role)))
        if role in auth.STAFF and not unit_ids:
            raise field_error("unit_ids", E("service.staff_account_units", role=role))
    for i, u in enumerate(unit_ids):
        if s.get(CareUnit, u) is None:
            raise field_error(f"unit_ids.{i}", E("service.no_unit", unit=repr(u)))


def _check_password(password: str, role: str, username: str) -> str:
    """The hash of an acceptable password, or a 422 naming the rule it breaks."""
    problem = auth.password_problem(password, role, username)
    if problem is not None:
        raise field_error("password", problem)
    return auth.hash_password(password)


def create_user(call: Call, body: UserCreate) -> Written:
    """A new account with its role, units or patient record (admin)."""
    principal, now = call.principal, call.now

    def work(s: Session, payload: bytes) -> tuple[int, UserPublic]:
        require_admin(principal, "create_users", "user.create")
        if s.scalars(select(User.id).where(User.username == body.username)).first() is not None:
            raise conflict(E("service.username_taken", username=repr(body.username)), "username")
        check_role_links(s, body.role, body.unit_ids, body.patient_id)
        password_hash = _check_password(body.password, body.role, body.username)
        user = User(
            username=body.username,
            password_hash=password_hash,
            role=body.role,
            display_name=body.display_name,
            patient_id=body.patient_id,
            locale=body.locale,
            created_at=now,
            updated_at=now,
        )
        s.add(user)
        s.flush()
        units = sorted(set(body.unit_ids))
        s.add_all(UserUnit(user_id=user.id, unit_id=u) for u in units)
        details = {"role": body.role, "unit_ids": units, "patient_id": body.patient_id}
        base.audited(s, call, "user.create", entity_type="user", entity_id=user.id, details=details)
        return 201, user_public(user, units)  # as stored: each unit once, sorted

    return base.write(call, body.model_copy(update={"password": "***"}), work)


def update_user(call: Call, user_id: int, body: UserUpdate) -> Written:
    """Change a user's name, role, units, locale, password or active flag (admin); an admin may
    not demote or deactivate their own account, nor turn a patient account into a staff one."""
    principal, now = call.principal, call.now

    def work(s: Session, payload: bytes) -> tuple[int, UserPublic]:
        require_admin(principal, "change_users", "user.update")
        user = s.get(User, user_id)
        if user is None:
            raise not_found(E("access.record_user", user=str(user_id)))
        changes = body.model_dump(exclude_unset=True)
        if user.id == principal.user_id and (
            changes.get("role", "admin") != "admin" or changes.get("active") is False
        ):
            raise field_error("role", E("service.admin_self"))
        role = changes.get("role") or user.role
        units = changes["unit_ids"] if changes.get("unit_ids") is not None else units_of(s, user.id)
        check_role_links(s, role, units, user.patient_id if role == "patient" else None)
        if role != "patient" and user.patient_id is not None:
            raise field_error("role", E("service.patient_to_staff"))
        for name in ("display_name", "role", "active", "locale"):
            if changes.get(name) is not None:
                setattr(user, name, changes[name])
        if changes.get("password"):
            user.password_hash = _check_password(changes["password"], role, user.username)
        if changes.get("unit_ids") is not None:
            s.execute(delete(UserUnit).where(UserUnit.user_id == user.id))
            units = sorted(set(units))  # as stored: each unit once, sorted
            s.add_all(UserUnit(user_id=user.id, unit_id=u) for u in units)
        user.updated_at = now
        shown = {k: v for k, v in changes.items() if k != "password"}
        if "password" in changes:
            shown["password"] = "changed"
        base.audited(s, call, "user.update", entity_type="user", entity_id=user.id, details=shown)
        return 200, user_public(user, units)

    return base.write(call, body.model_copy(update={"password": None}), work)


def create_unit(call: Call, body: UnitCreate) -> Written:
    """A new care unit (admin)."""
    principal, now = call.principal, call.now

    def work(s: Session, payload: bytes) -> tuple[int, UnitPublic]:
        require_admin(principal, "create_units", "unit.create")
        if s.get(CareUnit, body.id) is not None:
            raise conflict(E("service.unit_exists", unit=repr(body.id)), "id")
        s.add(CareUnit(id=body.id, name=body.name, phone=body.phone, created_at=now))
        base.audited(s, call, "unit.create", entity_type="unit", entity_id=body.id, payload=payload)
        return 201, UnitPublic(id=body.id, name=body.name, phone=body.phone)

    return base.write(call, body, work)
