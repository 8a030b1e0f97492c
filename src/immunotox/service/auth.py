"""Users, passwords, tokens, sessions and who may see or write what.

* Passwords are hashed with **argon2id** (argon2-cffi defaults); an unknown user name costs the
  same time as a wrong password (a dummy hash is verified).
* A login issues an opaque random token (256 bits). Only its SHA-256 is stored, so a database
  leak gives no usable token. ``kind='api'`` tokens go in ``Authorization: Bearer``;
  ``kind='session'`` tokens go in the ``immunotox_session`` cookie (HttpOnly, SameSite=Lax) and
  come with a CSRF token that every unsafe request must echo (header ``X-CSRF-Token``, or the
  form field of the same purpose checked by the web UI with :func:`check_csrf`).
* Roles: ``admin`` (users, units, audit; reads every unit), ``physician`` and ``nurse`` (their
  units' patients), ``patient`` (their own record; may self-report temperature, weight and
  symptoms). The rules are the functions at the bottom of this module; routes call them and
  never decide on their own.

This module has no FastAPI import (the web layer is in ``deps.py``).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Select, Table, bindparam, select
from sqlalchemy.orm import Session

from ..messages import Msg
from ..messages import error as E
from .models import AuthToken, Patient, User, UserUnit

Role = Literal["admin", "physician", "nurse", "patient"]
ROLES: tuple[Role, ...] = ("admin", "physician", "nurse", "patient")
STAFF: frozenset[str] = frozenset({"physician", "nurse"})
CLINICAL_WRITERS: frozenset[str] = frozenset({"physician", "nurse"})
SESSION_COOKIE = "immunotox_session"
CSRF_HEADER = "X-CSRF-Token"
MIN_PASSWORD_LENGTH = 8  # any account (a patient's); staff and admins: MIN_STAFF_PASSWORD_LENGTH
MIN_STAFF_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256  # longer is refused, never cut (argon2 hashes any length)
COMMON_PASSWORDS = "data/common_passwords.txt"

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("immunotox-dummy-password-for-timing")


def hash_password(password: str) -> str:
    """The argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords (lowercase; source and licence in the file's header)."""
    text = resources.files("immunotox.service").joinpath(COMMON_PASSWORDS).read_text("utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def password_problem(password: str, role: str, username: str | None = None) -> Msg | None:
    """Why ``password`` may not be set for an account of ``role`` (a message written in French and
    English, ``errors.auth.*`` of data/messages.toml), or None.

    Length over composition, no rule on character classes, a check against common passwords and
    no truncation (NIST SP 800-63B, 2017, §5.1.1.2; ANSSI with the CNIL, *Recommandations relatives
    à l'authentification multifacteur et aux mots de passe*, v2.0, 2021): at least 8 characters
    for a patient and 12 for staff and admins (a project decision: their accounts open many
    patients' records), at most 256, never cut; refused when it is one of the most common
    passwords (:func:`common_passwords`, compared in lowercase) or the user name itself.

    >>> password_problem("correct horse battery", "nurse")
    >>> password_problem("sunflower", "physician").text("en")
    'at least 12 characters for a physician account (a few words make a good one)'
    >>> password_problem("password1234", "nurse").text("fr")
    "l'un des mots de passe les plus courants : choisissez-en un autre"
    """
    least = MIN_PASSWORD_LENGTH if role == "patient" else MIN_STAFF_PASSWORD_LENGTH
    if len(password) < least:
        return E("auth.password_short", least=least, role=role)
    if len(password) > MAX_PASSWORD_LENGTH:
        return E("auth.password_long", most=MAX_PASSWORD_LENGTH)
    low = password.lower()
    if low in common_passwords():
        return E("auth.password_common")
    if username is not None and low == username.lower():
        return E("auth.password_username")
    return None


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    user_id: int
    username: str
    role: str
    display_name: str
    unit_ids: frozenset[str]
    patient_id: str | None
    locale: str
    token_id: int
    via: Literal["bearer", "cookie"]
    csrf_hash: str | None = None


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: dt.datetime
    csrf_token: str | None = None


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with these credentials, or None (constant work either way)."""
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        verify_password(_DUMMY_HASH, password)
        return None
    if not verify_password(user.password_hash, password) or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def issue_token(
    session: Session, user: User, *, now: dt.datetime, ttl_hours: float, kind: str = "api"
) -> IssuedToken:
    """Create a token (and, for a session, its CSRF token); only hashes are stored."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32) if kind == "session" else None
    expires = now + dt.timedelta(hours=ttl_hours)
    session.add(
        AuthToken(
            token_hash=sha256(token),
            user_id=user.id,
            kind=kind,
            csrf_hash=sha256(csrf) if csrf else None,
            created_at=now,
            expires_at=expires,
        )
    )
    return IssuedToken(token, expires, csrf)


def _token_query() -> Select[Any]:
    """The token, its user and the user's units by the token's SHA-256 (bound as ``digest``): one
    row per unit (one with ``unit_id`` NULL for a user of no unit). Built once: the statement is
    the same for every request."""
    t, u, uu = (cast(Table, m.__table__) for m in (AuthToken, User, UserUnit))
    return (
        select(
            t.c.id.label("token_id"),
            t.c.kind,
            t.c.csrf_hash,
            t.c.expires_at,
            t.c.revoked_at,
            u.c.id.label("user_id"),
            u.c.username,
            u.c.role,
            u.c.display_name,
            u.c.patient_id,
            u.c.locale,
            u.c.active,
            uu.c.unit_id,
        )
        .join(u, u.c.id == t.c.user_id)
        .outerjoin(uu, uu.c.user_id == u.c.id)
        .where(t.c.token_hash == bindparam("digest"))
    )


_TOKEN_QUERY = _token_query()


def resolve_token(
    session: Session, token: str, *, now: dt.datetime, via: Literal["bearer", "cookie"]
) -> Principal | None:
    """The principal of a valid, unexpired, unrevoked token of an active user, or None.

    A session token is accepted only from the cookie and an API token only from the header: every
    cookie-authenticated request therefore goes through the CSRF check, and an API token never
    rides along automatically with a browser request.

    Every request is authenticated here, so it reads the token, its user and the user's units in
    one Core query (no ORM objects): about a fifth of the CPU of loading them as ORM rows.
    """
    rows = session.connection().execute(_TOKEN_QUERY, {"digest": sha256(token)}).all()
    if not rows:
        return None
    r = rows[0]
    if r.revoked_at is not None or r.expires_at <= now or not r.active:
        return None
    if (r.kind == "session") != (via == "cookie"):
        return None
    return Principal(
        user_id=r.user_id,
        username=r.username,
        role=r.role,
        display_name=r.display_name,
        unit_ids=frozenset(x.unit_id for x in rows if x.unit_id is not None),
        patient_id=r.patient_id,
        locale=r.locale,
        token_id=r.token_id,
        via=via,
        csrf_hash=r.csrf_hash,
    )


def revoke_token(session: Session, token_id: int, *, now: dt.datetime) -> None:
    tok = session.get(AuthToken, token_id)
    if tok is not None and tok.revoked_at is None:
        tok.revoked_at = now


def check_csrf(principal: Principal, supplied: str | None) -> bool:
    """True when the request needs no CSRF token (bearer) or ``supplied`` matches the session's."""
    if principal.via == "bearer":
        return True
    if not supplied or principal.csrf_hash is None:
        return False
    return hmac.compare_digest(sha256(supplied), principal.csrf_hash)


# ----------------------------------------------------------------------------- access rules
def can_read_patient(p: Principal, patient: Patient) -> bool:
    """Admin: every patient; staff: their units' patients; patient: their own record."""
    if p.role == "admin":
        return True
    if p.role in STAFF:
        return patient.unit_id in p.unit_ids
    return p.role == "patient" and p.patient_id == patient.id


def can_manage_patient(p: Principal, patient_unit: str) -> bool:
    """Create or change a patient's administrative record: admin, or a physician of the unit."""
    return p.role == "admin" or (p.role == "physician" and patient_unit in p.unit_ids)


def can_write_clinical(p: Principal, patient: Patient) -> bool:
    """Record observations, assessments, administrations: physicians and nurses of the unit."""
    return p.role in CLINICAL_WRITERS and patient.unit_id in p.unit_ids


def can_self_report(p: Principal, patient: Patient) -> bool:
    """Self-reports: the patient on their own record, or staff of the unit on their behalf."""
    return (p.role == "patient" and p.patient_id == patient.id) or can_write_clinical(p, patient)


def can_read_alerts(p: Principal) -> bool:
    return p.role in STAFF or p.role == "admin"


def can_act_on_alerts(p: Principal, patient: Patient) -> bool:
    """Acknowledge or resolve an alert: physicians and nurses of the unit."""
    return can_write_clinical(p, patient)


def can_read_audit(p: Principal, patient: Patient | None) -> bool:
    """The whole trail: admin; one patient's trail: admin or a physician of the unit."""
    if p.role == "admin":
        return True
    return patient is not None and p.role == "physician" and patient.unit_id in p.unit_ids


def visible_units(p: Principal) -> frozenset[str] | None:
    """Units whose patients ``p`` may list (None = every unit)."""
    if p.role == "admin":
        return None
    if p.role in STAFF:
        return p.unit_ids
    return frozenset()
