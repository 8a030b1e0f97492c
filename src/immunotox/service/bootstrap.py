"""Creating the first units and users outside the API (CLI ``create-user``, demo, tests).

Each creation is audited with the actor ``system`` (or the name given), like any write.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, auth
from .models import CareUnit, User, UserUnit


def ensure_unit(
    session: Session, unit_id: str, name: str, *, now: dt.datetime, phone: str | None = None
) -> CareUnit:
    """The unit ``unit_id``, created if absent."""
    unit = session.get(CareUnit, unit_id)
    if unit is None:
        unit = CareUnit(id=unit_id, name=name, phone=phone, created_at=now)
        session.add(unit)
        audit.record(
            session,
            actor=None,
            action="unit.create",
            ctx=audit.SYSTEM,
            now=now,
            entity_type="unit",
            entity_id=unit_id,
        )
        session.flush()
    return unit


def create_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    *,
    now: dt.datetime,
    unit_ids: Iterable[str] = (),
    patient_id: str | None = None,
    display_name: str = "",
    locale: str = "fr",
) -> User:
    """Create a user (refuses an existing user name or an unknown role)."""
    if role not in auth.ROLES:
        raise ValueError(f"role {role!r}: expected one of {list(auth.ROLES)}")
    if session.scalars(select(User.id).where(User.username == username)).first() is not None:
        raise ValueError(f"user name {username!r} is taken")
    user = User(
        username=username,
        password_hash=auth.hash_password(password),
        role=role,
        display_name=display_name or username,
        patient_id=patient_id,
        locale=locale,
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    session.flush()
    units = sorted(set(unit_ids))
    session.add_all(UserUnit(user_id=user.id, unit_id=u) for u in units)
    audit.record(
        session,
        actor=None,
        action="user.create",
        ctx=audit.SYSTEM,
        now=now,
        entity_type="user",
        entity_id=user.id,
        details={"role": role, "unit_ids": units, "patient_id": patient_id},
    )
    return user
