"""Database tables (SQLAlchemy 2, typed declarative).

Two families:

* **Events — appended, never edited** (the event-stream core): :class:`ClinicalEvent`
  (observations, administrations, assessment items, self-reports, in the long format of the
  observation contract), :class:`Assessment` (groups the items of one bedside assessment) and
  :class:`AuditEvent`. A correction is a *new* event whose ``supersedes_id`` names the event it
  replaces (``status = 'entered_in_error'`` retracts it). UPDATE and DELETE on these tables are
  refused twice: by the mapper events at the bottom of this module and by database triggers
  installed by the first migration.
* **Derived or administrative state**: grades (:class:`GradeRecord` history and
  :class:`CurrentGrade`), :class:`Episode`, :class:`Alert` (state changes are audited),
  patients, users, units, tokens, idempotency records.

All timestamps are timezone-aware UTC (:class:`~immunotox.service.db.UTCDateTime`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column

from .db import UTCDateTime, utcnow

# Integer ids that are 64-bit on PostgreSQL and SQLite's rowid alias on SQLite.
BigId = BigInteger().with_variant(Integer, "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class AppendOnlyError(RuntimeError):
    """An attempt to update or delete a row of an append-only table."""


# ----------------------------------------------------------------------------- organisation
class CareUnit(Base):
    __tablename__ = "care_unit"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    patient_id: Mapped[str | None] = mapped_column(ForeignKey("patient.id"), default=None)
    locale: Mapped[str] = mapped_column(String(8), default="fr")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserUnit(Base):
    """Units a staff member works in (they see only these units' patients)."""

    __tablename__ = "user_unit"

    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), primary_key=True)
    unit_id: Mapped[str] = mapped_column(ForeignKey("care_unit.id"), primary_key=True)


class AuthToken(Base):
    """An opaque bearer token (``kind='api'``) or a browser session (``kind='session'``).

    Only the SHA-256 of the token is stored. Sessions also keep the SHA-256 of their CSRF token.
    """

    __tablename__ = "auth_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    kind: Mapped[str] = mapped_column(String(16), default="api")
    csrf_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)


# ----------------------------------------------------------------------------- patients
class Patient(Base):
    __tablename__ = "patient"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    unit_id: Mapped[str] = mapped_column(ForeignKey("care_unit.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    birth_date: Mapped[dt.date | None] = mapped_column(Date, default=None)
    sex: Mapped[str | None] = mapped_column(String(16), default=None)
    therapy_class: Mapped[str] = mapped_column(String(32))
    product: Mapped[str | None] = mapped_column(String(64), default=None)
    indication: Mapped[str | None] = mapped_column(String(64), default=None)
    indication_text: Mapped[str | None] = mapped_column(String(200), default=None)
    weight_kg: Mapped[float | None] = mapped_column(Float, default=None)
    infusion_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    pathway_phase: Mapped[str | None] = mapped_column(String(32), default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# ----------------------------------------------------------------------------- event stream
class Assessment(Base):
    """One bedside assessment (ICE, CAPD, neurological); its items are ClinicalEvents."""

    __tablename__ = "assessment"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    time: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), default=None)
    source: Mapped[str] = mapped_column(String(16), default="api")
    comment: Mapped[str | None] = mapped_column(Text, default=None)


class ClinicalEvent(Base):
    """One row of the observation contract: an observation, administration or item.

    ``value`` is the contract's string value; ``value_num`` the number in the canonical unit
    ``unit`` (null for tokens); ``source_value``/``source_unit`` keep what the client sent when
    a conversion happened (nothing lost).
    """

    __tablename__ = "clinical_event"
    __table_args__ = (
        Index("ix_clinical_event_patient_code_time", "patient_id", "code", "time"),
        Index("ix_clinical_event_patient_time", "patient_id", "time"),
        UniqueConstraint("patient_id", "external_id", name="uq_clinical_event_patient_external"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"))
    kind: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(32))
    time: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    end_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    value: Mapped[str] = mapped_column(String(200))
    value_num: Mapped[float | None] = mapped_column(Float, default=None)
    unit: Mapped[str] = mapped_column(String(32), default="")
    dose: Mapped[float | None] = mapped_column(Float, default=None)
    dose_unit: Mapped[str | None] = mapped_column(String(32), default=None)
    source_value: Mapped[str | None] = mapped_column(String(200), default=None)
    source_unit: Mapped[str | None] = mapped_column(String(32), default=None)
    ref_low: Mapped[float | None] = mapped_column(Float, default=None)
    ref_high: Mapped[float | None] = mapped_column(Float, default=None)
    source: Mapped[str] = mapped_column(String(16), default="api")
    status: Mapped[str] = mapped_column(String(24), default="final")
    supersedes_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("clinical_event.id"), unique=True, default=None
    )
    assessment_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("assessment.id"), default=None)
    external_id: Mapped[str | None] = mapped_column(String(200), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), default=None)


class IdempotencyRecord(Base):
    """The stored response of a write made with an ``Idempotency-Key`` (per user)."""

    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_record_user_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# ----------------------------------------------------------------------------- derived
class Episode(Base):
    """A toxicity episode on one scale: from the first positive grade to resolution."""

    __tablename__ = "episode"
    __table_args__ = (Index("ix_episode_patient_scale", "patient_id", "scale"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"))
    scale: Mapped[str] = mapped_column(String(64))
    onset_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    peak_grade: Mapped[int] = mapped_column(Integer)
    peak_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_positive_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    quiet_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class GradeState:
    """The clinical state of a grade, the columns :class:`GradeRecord` and :class:`CurrentGrade`
    share (declared once): when it was evaluated and computed, the grade or its range, its status,
    whether every input was there and which were missing, the engine and the episode."""

    time: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    grade: Mapped[int | None] = mapped_column(Integer, default=None)
    grade_lo: Mapped[int] = mapped_column(Integer)
    grade_hi: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    complete: Mapped[bool] = mapped_column(Boolean)
    missing: Mapped[list[str]] = mapped_column(Json, default=list)
    engine: Mapped[str] = mapped_column(String(40))
    episode_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("episode.id"), default=None)


class GradeRecord(GradeState, Base):
    """A grade as computed at one evaluation time (a row is added only when it changes), with its
    full explanation (``result``) and the findings it read (``inputs``)."""

    __tablename__ = "grade_record"
    __table_args__ = (Index("ix_grade_record_patient_scale_time", "patient_id", "scale", "time"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"))
    scale: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(Json)
    inputs: Mapped[dict[str, Any]] = mapped_column(Json)


class CurrentGrade(GradeState, Base):
    """The latest grade of a patient on a scale (one row each): what a ward overview reads.

    Small on purpose (it is rewritten at every regrade): the clinical state (grade, range,
    status, missing inputs, episode) changes with its :class:`GradeRecord`, which holds the full
    explanation; a new value that leaves the state unchanged only moves ``time`` and
    ``fingerprint``. Readers of one patient recompute the explanation with the latest values.
    """

    __tablename__ = "current_grade"

    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"), primary_key=True)
    scale: Mapped[str] = mapped_column(String(64), primary_key=True)
    grade_record_id: Mapped[int] = mapped_column(BigId, ForeignKey("grade_record.id"))
    fingerprint: Mapped[str] = mapped_column(String(64))
    clinical: Mapped[str] = mapped_column(String(64))


class RegradeQueue(Base):
    """Patients and scales waiting for the background regrader (batch ingest, single writes).

    Append-only: every write adds its own row per (patient, scale) pair it touches, in the same
    transaction as its events, so a crash never loses a regrade, and no row is shared by two
    writers (an upsert of one row per pair made every write of a pair wait, on PostgreSQL, for
    the commit of any other transaction that had written or deleted that row). The regrader
    coalesces a pair's rows and claims them by deleting exactly the rows it read, in the
    transaction that stores the grades: a row added meanwhile stays for the next pass.
    """

    __tablename__ = "regrade_queue"
    __table_args__ = (Index("ix_regrade_queue_patient_scale", "patient_id", "scale"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"))
    scale: Mapped[str] = mapped_column(String(64))
    latest: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    interval_start: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    full: Mapped[bool] = mapped_column(Boolean, default=False)
    queued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Alert(Base):
    __tablename__ = "alert"
    __table_args__ = (Index("ix_alert_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patient.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(16))
    priority_rank: Mapped[int] = mapped_column(Integer)
    dedup_key: Mapped[str] = mapped_column(String(255), unique=True)
    scale: Mapped[str | None] = mapped_column(String(64), default=None)
    grade: Mapped[int | None] = mapped_column(Integer, default=None)
    episode_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("episode.id"), default=None)
    title: Mapped[str] = mapped_column(String(300))
    message: Mapped[str] = mapped_column(Text)
    title_fr: Mapped[str] = mapped_column(String(300))
    message_fr: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    recommendation: Mapped[dict[str, Any] | None] = mapped_column(Json, default=None)
    target_role: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open")
    triggered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), default=None)
    ack_comment: Mapped[str | None] = mapped_column(Text, default=None)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    resolved_reason: Mapped[str | None] = mapped_column(String(200), default=None)


class AuditEvent(Base):
    """One entry of the append-only audit trail: who did what, when, from where."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_at", "at"),
        Index("ix_audit_event_patient_at", "patient_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_user_id: Mapped[int | None] = mapped_column(Integer, default=None)
    actor_username: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16), default="ok")
    entity_type: Mapped[str | None] = mapped_column(String(32), default=None)
    entity_id: Mapped[str | None] = mapped_column(String(64), default=None)
    patient_id: Mapped[str | None] = mapped_column(String(64), default=None)
    request_id: Mapped[str | None] = mapped_column(String(64), default=None)
    client_ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(300), default=None)
    payload_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    details: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class LoginThrottle(Base):
    """Failed logins counted for throttling (:mod:`immunotox.service.throttle`): of one user name
    from one address (``scope='name'``) or from one address whatever the name (``scope='address'``,
    ``username=''``). Shared by every worker through the database; a successful login deletes the
    name's row, an admin may delete any row."""

    __tablename__ = "login_throttle"
    __table_args__ = (
        UniqueConstraint("scope", "username", "address"),
        Index("ix_login_throttle_last_failure_at", "last_failure_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(16))
    username: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    first_failure_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_failure_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    blocked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)


APPEND_ONLY_TABLES: tuple[str, ...] = ("clinical_event", "assessment", "audit_event")


def _refuse(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    raise AppendOnlyError(
        f"{target.__tablename__} is append-only: record a correction (a new row with supersedes_id) "
        "instead of editing or deleting"
    )


for _cls in (ClinicalEvent, Assessment, AuditEvent):
    event.listen(_cls, "before_update", _refuse)
    event.listen(_cls, "before_delete", _refuse)
