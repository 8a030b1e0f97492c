"""What every use case shares: the caller (:class:`Call`), access checks, the idempotent write
transaction, and rows as the public schemas.

The use cases (:mod:`.alerts`, :mod:`.events`) hold the service's business logic; the JSON API
routes (:mod:`immunotox.service.routes`) and the web UI's forms (the ``web`` package) call them
alike, so both get the same checks, ingest, grading, alerts, audit entries and idempotency. Nothing
here knows HTTP: a caller says who writes, when, and which request the write answers
(``target``, with its idempotency ``key``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ...errors import FindingError
from .. import audit, auth, grades, grading
from ..audit import RequestContext
from ..config import Settings
from ..db import Database
from ..grades import Grade
from ..models import Alert, ClinicalEvent, CurrentGrade, IdempotencyRecord, Patient
from ..problems import ApiError, conflict, field_error, forbidden, from_finding, not_found
from ..schemas import AlertPublic, EventPublic, GradePublic, PatientPublic, RuleHitPublic

M = TypeVar("M", bound=BaseModel)
Need = Literal["read", "clinical", "manage", "self_report", "alerts"]
IDEMPOTENCY_HEADER = "Idempotency-Key"
log = logging.getLogger("immunotox.service")

_CHECKS: dict[str, Callable[[auth.Principal, Patient], bool]] = {
    "clinical": auth.can_write_clinical,
    "manage": lambda p, pt: auth.can_manage_patient(p, pt.unit_id),
    "self_report": auth.can_self_report,
    "alerts": auth.can_act_on_alerts,
}


@dataclass(frozen=True)
class Call:
    """Who asks, when, through which request: ``target`` is the request's method and path
    (``"POST /patients/p1/observations"``), fingerprinted with the body under ``key`` (the
    request's idempotency key, None for a write that is not to be replayed)."""

    db: Database
    principal: auth.Principal
    ctx: RequestContext
    now: dt.datetime
    settings: Settings
    target: str
    key: str | None = None


@dataclass(frozen=True)
class Written:
    """The answer of a write: its status and JSON content; ``replayed`` when an earlier request
    with the same idempotency key is answered again (nothing stored)."""

    status: int
    content: Any
    replayed: bool = False


def get_patient(
    session: Session,
    principal: auth.Principal,
    patient_id: str,
    need: Need = "read",
    *,
    action: str = "",
) -> Patient:
    """The patient, if ``principal`` may read it (else 404, not revealing that it exists) and has
    ``need`` (else 403). A refused write carries its audit entry, recorded by :func:`write` once
    the refused transaction has been rolled back."""
    patient = session.get(Patient, patient_id)
    if patient is None or not auth.can_read_patient(principal, patient):
        exc = not_found(f"patient {patient_id!r}")
        if need != "read":
            exc.denied = _denied(principal, action, patient_id)
        raise exc
    if need != "read" and not _CHECKS[need](principal, patient):
        exc = forbidden(f"role {principal.role!r} may not {action or need} for patient {patient_id!r}")
        exc.denied = _denied(principal, action, patient_id)
        raise exc
    return patient


def _denied(principal: auth.Principal, action: str, patient_id: str) -> dict[str, Any]:
    return {
        "actor": principal,
        "action": action or "access",
        "entity_type": "patient",
        "entity_id": patient_id,
        "patient_id": patient_id,
        "outcome": "denied",
    }


def fingerprint(target: str, body: BaseModel | None) -> tuple[str, bytes]:
    """SHA-256 of the method, path and canonical JSON of the parsed body (and that JSON)."""
    payload = body.model_dump_json().encode() if body is not None else b""
    h = hashlib.sha256(f"{target}\n".encode() + payload).hexdigest()
    return h, payload


def check_key(key: str | None) -> str | None:
    """An idempotency key as given, or a 422 naming the header when it is not 1-200 printable
    ASCII characters without spaces."""
    if key is None:
        return None
    if not (1 <= len(key) <= 200) or not all(0x21 <= ord(c) <= 0x7E for c in key):
        raise field_error(
            f"header.{IDEMPOTENCY_HEADER}", "must be 1-200 printable ASCII characters without spaces"
        )
    return key


@dataclass(frozen=True)
class Queued:
    """The answer of a single write whose regrade it queued in its own transaction
    (:func:`immunotox.service.ingest.after_write` with ``defer``): ``model`` has no grades yet
    and ``grading = "queued"``; :func:`write` regrades ``patient_id`` right after the commit and
    answers with the grades and alerts (``grading = "done"``)."""

    model: Any  # IngestOut or AssessmentOut
    patient_id: str


def regrades_after_commit(settings: Settings) -> bool:
    """Whether a single write queues its regrade and does it after its commit (:class:`Queued`):
    when a background regrader runs (``regrade_seconds > 0``) to finish what a crash between the
    two transactions leaves in the queue; otherwise it regrades inside its own transaction."""
    return settings.grading and settings.regrade_seconds > 0


def answer(model: M, patient_id: str, queued: Sequence[str]) -> M | Queued:
    """``model`` as a write's answer: :class:`Queued` when the write queued a regrade."""
    return Queued(model, patient_id) if queued else model


def grading_state(settings: Settings, queued: Sequence[str]) -> Literal["done", "queued", "off"]:
    return "off" if not settings.grading else "queued" if queued else "done"


def write(call: Call, body: BaseModel | None, work: Callable[[Session, bytes], tuple[int, Any]]) -> Written:
    """Run ``work`` in one write transaction, honouring the call's idempotency key.

    ``work(session, payload)`` returns ``(status, response model)``. With a key, the response is
    stored in the same transaction; a repeat of the same request returns it again (``replayed``)
    and stores nothing; the same key on a different request is refused (422). Without a key,
    each request is a new write.

    A single write that queued its regrade (``work`` returns a :class:`Queued` answer) is
    regraded right after its commit, in a second short transaction (:func:`_regrade`): the
    grading work is done outside the write lock, the grades are stored and the alerts raised,
    and the stored response is completed in that transaction, so that a replay answers the same.
    """
    key = check_key(call.key)
    fp, payload = fingerprint(call.target, body)
    pending: list[dict[str, Any]] = []
    try:
        written, queued = _write(call.db, call.principal, key, fp, payload, call.now, work, pending)
    finally:
        for denied in pending:  # after the refused transaction has released the write lock
            audit.record_separately(call.db, ctx=call.ctx, now=call.now, payload=payload, **denied)
    return written if queued is None else _regrade(call, key, written, queued)


def _regrade(call: Call, key: str | None, written: Written, queued: Queued) -> Written:
    """Regrade what the committed write queued (:func:`.queue.regrade_queued` for its patient:
    grades planned in a read transaction, then stored with their alerts in a short write
    transaction) and answer with the grades and alerts; the idempotency record is completed in
    that transaction. Should this fail or not finish (the pairs changed again meanwhile, or were
    claimed by the regrader), the write is still acknowledged with its answer as stored
    (``grading = "queued"``): the pairs stay queued for the background regrader, which also
    finishes them at start-up after a crash between the two transactions."""
    from .. import queue

    pid = queued.patient_id
    have: dict[str, Grade] = {}
    final: list[Any] = []

    def on_read(rs: Session, done: queue.Pass) -> None:
        patient = next(p for p in done.patients if p.id == pid)
        fresh = [g for (p, _s), g in done.planned.grades.items() if p == pid]
        have.update(response_grades(rs, patient, fresh))

    def on_write(ws: Session, done: queue.Pass) -> None:
        finished = done.queued <= done.stored
        raised = [alert_public(a) for a in done.alerts if a.patient_id == pid]
        model = queued.model.model_copy(
            update={
                "grades": publish(ws, pid, have, call.now),
                "alerts": [*queued.model.alerts, *raised],
                "grading": "done" if finished else "queued",
            }
        )
        content = to_jsonable_python(model)
        if key is not None:
            ws.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.user_id == call.principal.user_id, IdempotencyRecord.key == key)
                .values(response_body=json.dumps(content))
            )
        final.append(content)

    try:
        queue.regrade_queued(
            call.db, now=lambda: call.now, ctx=call.ctx, patient_ids=[pid], on_read=on_read, on_write=on_write
        )
    except Exception:  # the write is committed: acknowledge it; the queue keeps the regrade
        log.exception("regrade after the write failed; left to the background regrader")
        return written
    return Written(written.status, final[0], written.replayed) if final else written


def _write(
    db: Database,
    principal: auth.Principal,
    key: str | None,
    fp: str,
    payload: bytes,
    now: dt.datetime,
    work: Callable[[Session, bytes], tuple[int, Any]],
    pending: list[dict[str, Any]],
) -> tuple[Written, Queued | None]:
    for attempt in (1, 2):
        try:
            with db.writing() as s:
                if key is not None:
                    rec = s.scalars(
                        select(IdempotencyRecord).where(
                            IdempotencyRecord.user_id == principal.user_id, IdempotencyRecord.key == key
                        )
                    ).first()
                    if rec is not None:
                        if rec.fingerprint != fp:
                            raise field_error(
                                f"header.{IDEMPOTENCY_HEADER}",
                                "this key was already used for a different request; use a new key",
                            )
                        replay = Written(rec.status_code, json.loads(rec.response_body), replayed=True)
                        return replay, None
                try:
                    status, model = work(s, payload)
                except FindingError as exc:
                    raise from_finding(exc) from None
                except ApiError as exc:
                    denied = exc.denied
                    if denied is not None:
                        pending.append(denied)
                    raise
                queued = model if isinstance(model, Queued) else None
                content = to_jsonable_python(queued.model if queued is not None else model)
                if key is not None:
                    s.add(
                        IdempotencyRecord(
                            user_id=principal.user_id,
                            key=key,
                            fingerprint=fp,
                            status_code=status,
                            response_body=json.dumps(content),
                            created_at=now,
                        )
                    )
            return Written(status, content), queued
        except IntegrityError as exc:
            if key is not None and attempt == 1:
                continue  # a concurrent twin committed first: the retry replays its response
            raise conflict(f"the write conflicts with stored data ({_constraint(exc)})") from None
    raise ApiError(500, "Internal error", "idempotent write could not complete")


def _constraint(exc: IntegrityError) -> str:
    text = str(exc.orig).splitlines()[0] if exc.orig is not None else "constraint"
    return text[:200]


# ----------------------------------------------------------------------------- row -> schema
def day_of(patient: Patient, now: dt.datetime) -> int | None:
    if patient.infusion_at is None:
        return None
    return (now - patient.infusion_at).days


def patient_public(p: Patient, now: dt.datetime) -> PatientPublic:
    return PatientPublic(
        id=p.id,
        unit_id=p.unit_id,
        display_name=p.display_name,
        birth_date=p.birth_date,
        sex=p.sex,
        therapy_class=p.therapy_class,
        product=p.product,
        indication=p.indication,
        indication_text=p.indication_text,
        weight_kg=p.weight_kg,
        infusion_at=p.infusion_at,
        day=day_of(p, now),
        pathway_phase=p.pathway_phase,
        active=p.active,
        created_at=p.created_at,
        updated_at=p.updated_at,
    )


def event_public(e: ClinicalEvent | EventPublic) -> EventPublic:
    """The event as the API shows it: a stored row, or an event just appended (already one)."""
    return e if isinstance(e, EventPublic) else EventPublic.model_validate(e, from_attributes=True)


def grade_public(g: Grade, computed_at: dt.datetime, episode_id: int | None = None) -> GradePublic:
    r = g.result
    return GradePublic(
        scale=g.scale,
        title=r.title,
        version=r.version,
        time=g.time,
        computed_at=computed_at,
        grade=r.grade,
        grade_range=r.grade_range,
        complete=r.complete,
        status=r.status,
        deciding_domains=r.deciding_domains,
        missing=r.missing,
        reasons=r.reasons,
        fired=[RuleHitPublic(**h.model_dump()) for h in r.fired],
        notes=r.notes,
        sources=r.sources,
        inputs=g.inputs,
        engine=g.engine,
        episode_id=episode_id,
        texts=r.texts,
    )


def current_grades(
    session: Session, patient: Patient, now: dt.datetime, fresh: Sequence[Grade] = ()
) -> list[GradePublic]:
    """The patient's grades with explanations built from the latest values: ``fresh`` grades
    (just computed by a write) as they are, the other scales recomputed from the stored events;
    episode ids from the stored current grades."""
    return publish(session, patient.id, response_grades(session, patient, fresh), now)


def response_grades(session: Session, patient: Patient, fresh: Sequence[Grade] = ()) -> dict[str, Grade]:
    """Per scale, the ``fresh`` grade or the grade recomputed from the stored events (reads only)."""
    have = {g.scale: g for g in fresh}
    missing = [s for s in grades.all_scales_of(patient) if s not in have]
    if missing:
        for g in grading.compute(session, [patient], missing).get(patient.id, []):
            have[g.scale] = g
    return have


def publish(session: Session, patient_id: str, have: dict[str, Grade], now: dt.datetime) -> list[GradePublic]:
    """``have`` as the API shows it, with the stored current grades' times and episode ids."""
    stored = {
        c.scale: c for c in session.scalars(select(CurrentGrade).where(CurrentGrade.patient_id == patient_id))
    }
    out = []
    for scale in sorted(have):
        cur = stored.get(scale)
        out.append(
            grade_public(have[scale], cur.computed_at if cur else now, cur.episode_id if cur else None)
        )
    return out


def alert_public(a: Alert) -> AlertPublic:
    return AlertPublic(
        id=a.id,
        patient_id=a.patient_id,
        kind=a.kind,
        priority=a.priority,
        status=a.status,
        title=a.title,
        message=a.message,
        title_fr=a.title_fr,
        message_fr=a.message_fr,
        scale=a.scale,
        grade=a.grade,
        episode_id=a.episode_id,
        params=a.params,
        recommendation=a.recommendation,
        target_role=a.target_role,
        triggered_at=a.triggered_at,
        created_at=a.created_at,
        acknowledged_at=a.acknowledged_at,
        acknowledged_by=a.acknowledged_by,
        ack_comment=a.ack_comment,
        escalation_level=a.escalation_level,
        escalated_at=a.escalated_at,
        resolved_at=a.resolved_at,
        resolved_reason=a.resolved_reason,
    )
