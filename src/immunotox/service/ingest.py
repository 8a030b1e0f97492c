"""Ingest: check incoming rows, append them to the event stream, then regrade and alert.

No FastAPI import: routes, the FHIR import and the demo ward all go through
:func:`prepare` -> :func:`store` -> :func:`after_write`, in one transaction, so that an
acknowledged write always has its grades, its alerts and its audit entry.

Checks (each failure names the field, e.g. ``observations.3.value``):

* the code is a canonical code or a LOINC alias; the value fits its type, range and tokens;
  a quantity carries a UCUM unit, converted to the canonical unit (the sent value and unit are
  kept in ``source_value``/``source_unit``);
* ``time`` is not later than now + the tolerated skew; ``end_time`` (interval codes only) is
  not before ``time``; a dose comes with its UCUM unit;
* a laboratory result may carry its reference interval (``ref_low``/``ref_high``, in the
  result's unit, converted with it): both finite, not negative, ``ref_low < ref_high``, the
  result's unit given (:func:`immunotox.labs.check_reference`);
* a correction (``supersedes``) names an existing event of the same patient and code that is
  not already superseded; ``status = entered_in_error`` retracts it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select
from sqlalchemy.orm import Session

from .. import labs, plausibility
from ..errors import FindingError
from ..jurisdiction import Jurisdiction
from ..messages import error as E
from . import alerts, audit, codes, grading, queue
from .config import Settings
from .db import REGRADE_WAKE, insert_rows, without_null_columns
from .grades import Grade
from .models import Alert, ClinicalEvent, Patient
from .schemas import EventPublic
from .transitions import raise_transition_alerts

KIND_FOR_SOURCE = {"observation", "administration", "assessment", "event", "attribute", "report"}


@dataclass
class Row:
    """One checked row ready to append."""

    patient_id: str
    kind: str
    code: str
    time: dt.datetime
    value: str
    value_num: float | None
    unit: str
    end_time: dt.datetime | None = None
    dose: float | None = None
    dose_unit: str | None = None
    source_value: str | None = None
    source_unit: str | None = None
    ref_low: float | None = None
    ref_high: float | None = None
    status: str = "final"
    supersedes_id: int | None = None
    assessment_id: int | None = None
    external_id: str | None = None
    note: str | None = None
    field_prefix: str = ""


def prepare(
    patient_id: str,
    raw: dict[str, Any],
    *,
    now: dt.datetime,
    settings: Settings,
    prefix: str = "",
    allowed_codes: frozenset[str] | None = None,
) -> Row:
    """Check one incoming row (a dict with the contract's columns) and normalise it."""
    code_in = raw["code"]
    spec = codes.resolve(code_in, f"{prefix}code")
    if allowed_codes is not None and spec.name not in allowed_codes:
        raise FindingError(
            f"{prefix}code",
            code_in,
            E("service.code_not_here"),
            E("service.codes_allowed", values=str(sorted(allowed_codes))),
        )
    time: dt.datetime = raw["time"]
    skew = dt.timedelta(minutes=settings.max_future_minutes)
    if time > now + skew:
        raise FindingError(
            f"{prefix}time",
            time.isoformat(),
            E("service.time_future", now=now.isoformat(timespec="seconds")),
            E("service.time_future_hint"),
        )
    earliest, _until = plausibility.time_window()  # the future is refused above
    if time < earliest:
        raise FindingError(
            f"{prefix}time",
            time.isoformat(),
            E("service.time_window", window=plausibility.time_window_text()),
            E("service.time_window_hint"),
        )
    end_time: dt.datetime | None = raw.get("end_time")
    if end_time is not None:
        if not spec.interval:
            raise FindingError(
                f"{prefix}end_time", end_time.isoformat(), E("service.end_not_interval", name=spec.name)
            )
        if end_time < time:
            raise FindingError(f"{prefix}end_time", end_time.isoformat(), E("service.end_before_start"))
        if end_time > now + skew:
            raise FindingError(f"{prefix}end_time", end_time.isoformat(), E("service.end_future"))
    status = raw.get("status") or "final"
    if status == "entered_in_error" and raw.get("supersedes") is None:
        raise FindingError(f"{prefix}status", status, E("service.retraction_target"))
    norm = codes.normalize(spec, raw["value"], raw.get("unit"), prefix)
    ref = labs.check_reference(spec, raw.get("ref_low"), raw.get("ref_high"), raw.get("unit"), prefix)
    dose, dose_unit = codes.check_dose(raw.get("dose"), raw.get("dose_unit"), prefix)
    if dose is not None and spec.resource != "administration":
        raise FindingError(f"{prefix}dose", dose, E("service.not_an_administration", name=spec.name))
    return Row(
        patient_id=patient_id,
        kind=spec.resource,
        code=spec.name,
        time=time,
        value=norm.value,
        value_num=norm.value_num,
        unit=norm.unit,
        end_time=end_time,
        dose=dose,
        dose_unit=dose_unit,
        source_value=norm.source_value,
        source_unit=norm.source_unit,
        ref_low=ref.low if ref is not None else None,
        ref_high=ref.high if ref is not None else None,
        status=status,
        supersedes_id=raw.get("supersedes"),
        external_id=raw.get("external_id"),
        note=raw.get("note"),
        field_prefix=prefix,
    )


def store(
    session: Session,
    rows: Sequence[Row],
    *,
    user_id: int | None,
    source: str,
    now: dt.datetime,
) -> list[EventPublic]:
    """Append ``rows`` (after checking corrections); return the stored events with their ids."""
    targets = {r.supersedes_id for r in rows if r.supersedes_id is not None}
    if targets:
        found = {e.id: e for e in session.scalars(select(ClinicalEvent).where(ClinicalEvent.id.in_(targets)))}
        already = set(
            session.scalars(
                select(ClinicalEvent.supersedes_id).where(ClinicalEvent.supersedes_id.in_(targets))
            )
        )
        seen: set[int] = set()
        for r in rows:
            if r.supersedes_id is None:
                continue
            f = f"{r.field_prefix}supersedes"
            old = found.get(r.supersedes_id)
            if old is None or old.patient_id != r.patient_id:
                raise FindingError(f, r.supersedes_id, E("service.no_such_event"))
            if old.code != r.code:
                shown = {"old": repr(old.code), "new": repr(r.code)}
                differs = E("service.event_code_differs", event=str(old.id), **shown)
                raise FindingError(f, r.supersedes_id, differs)
            if r.supersedes_id in already or r.supersedes_id in seen:
                raise FindingError(
                    f, r.supersedes_id, E("service.already_superseded"), E("service.correct_latest")
                )
            seen.add(r.supersedes_id)
    values: list[dict[str, Any]] = [
        {
            "patient_id": r.patient_id,
            "kind": r.kind,
            "code": r.code,
            "time": r.time,
            "end_time": r.end_time,
            "value": r.value,
            "value_num": r.value_num,
            "unit": r.unit,
            "dose": r.dose,
            "dose_unit": r.dose_unit,
            "source_value": r.source_value,
            "source_unit": r.source_unit,
            "ref_low": r.ref_low,
            "ref_high": r.ref_high,
            "source": source,
            "status": r.status,
            "supersedes_id": r.supersedes_id,
            "assessment_id": r.assessment_id,
            "external_id": r.external_id,
            "note": r.note,
            "recorded_at": now,
            "recorded_by": user_id,
        }
        for r in rows
    ]
    if not values:
        return []
    session.flush()  # pending ORM rows (an assessment) before the Core insert that refers to them
    ids = _insert_events(session, values)
    return [EventPublic(id=i, **v) for i, v in zip(ids, values, strict=True)]


_EVENTS = cast(Table, ClinicalEvent.__table__)
# the statements of _insert_events, built once (the same for every write)
_INSERT = insert(_EVENTS)
_LAST_ID = select(func.coalesce(func.max(_EVENTS.c.id), 0))
_IDS_AFTER = select(_EVENTS.c.id).where(_EVENTS.c.id > bindparam("before")).order_by(_EVENTS.c.id)


def _insert_events(session: Session, values: list[dict[str, Any]]) -> list[int]:
    """Insert rows in one statement; return their ids in the order of ``values``.

    Columns empty in every row are left out (:func:`.db.without_null_columns`: stored NULL all
    the same). One row (every single write): one INSERT, its id the inserted primary key (on
    SQLite the cursor's ``lastrowid``: the id column is SQLite's rowid; on PostgreSQL
    ``RETURNING id``). Several rows on PostgreSQL: one ``INSERT ... SELECT FROM unnest(...)
    RETURNING id`` with an array parameter per column (:func:`.db.insert_rows`). SQLite has no
    arrays, so the rows are inserted with one executemany inside the write transaction (BEGIN
    IMMEDIATE: no other writer), and their ids are the ids above the largest one before the
    insert, in insertion order.
    """
    conn = session.connection()
    if len(values) == 1:
        row = without_null_columns(_EVENTS, values)[0]
        (new_id,) = conn.execute(_INSERT, row).inserted_primary_key or (None,)
        ids = [new_id] if new_id is not None else []
    elif conn.dialect.name != "sqlite":
        ids = insert_rows(conn, _EVENTS, values, returning_ids=True)
    else:
        before = conn.execute(_LAST_ID).scalar_one()
        conn.execute(_INSERT, without_null_columns(_EVENTS, values))
        ids = list(conn.execute(_IDS_AFTER, {"before": before}).scalars())
    if len(ids) != len(values):  # pragma: no cover - would mean another writer inside our transaction
        raise RuntimeError(f"inserted {len(values)} events but found {len(ids)} ids")
    return ids


@dataclass
class AfterWrite:
    grades: dict[str, list[Grade]] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)


def apply_regrade(
    session: Session,
    patients: Sequence[Patient],
    touch: grading.Touch,
    *,
    now: dt.datetime,
    ctx: audit.RequestContext,
    jurisdiction: Jurisdiction | None = None,
) -> tuple[dict[str, list[Grade]], list[Alert]]:
    """Regrade ``touch`` and raise the alerts its transitions call for (with recommendations for
    the site's ``jurisdiction``)."""
    result = grading.regrade(session, patients, now=now, touch=touch)
    alerted = raise_transition_alerts(session, patients, result, now=now, ctx=ctx, jurisdiction=jurisdiction)
    return result.grades, alerted


def after_write(
    session: Session,
    patients: Sequence[Patient],
    events: Sequence[EventPublic],
    *,
    now: dt.datetime,
    settings: Settings,
    ctx: audit.RequestContext,
    defer: bool = False,
    wake: bool = False,
) -> AfterWrite:
    """Regrade the patients whose relevant data changed, raise alerts, close resolved ones.

    Only patients with at least one new event of a code a scale reads are regraded, and only
    over the windows the findings need (see :mod:`.grading`). With ``defer`` (batch ingest, and
    single writes of the API unless ``?regrade=now``) the regrade is queued in the same
    transaction and done by the background regrader (:mod:`.queue`); dose limits and
    overdue-assessment closures are always checked at once. ``wake`` (a single write): once the
    write commits, the background regrader is woken for these patients at once instead of at its
    next cycle (:class:`.queue.Wakeup`); batches leave their pairs to the cycle, to coalesce.
    """
    out = AfterWrite()
    if not settings.grading or not events:
        return out
    by_id = {p.id: p for p in patients}
    touch = grading.touched_keys(patients, events)
    if touch and defer:
        queue.enqueue_at_commit(session, touch, now=now)
        out.queued = sorted({pid for pid, _ in touch.latest})
        if wake:
            session.info.setdefault(REGRADE_WAKE, set()).update(out.queued)
    elif touch:
        ids = sorted({pid for pid, _ in touch.latest})
        out.grades, out.alerts = apply_regrade(
            session, [by_id[pid] for pid in ids], touch, now=now, ctx=ctx, jurisdiction=settings.jurisdiction
        )
    toci: dict[str, list[EventPublic]] = {}
    for e in events:
        if e.code == "tocilizumab" and e.status == "final":
            toci.setdefault(e.patient_id, []).append(e)
    for pid, new in toci.items():
        p = by_id[pid]
        for spec in alerts.dose_limit_specs(session, p, new, p.weight_kg, settings.jurisdiction):
            a = alerts.raise_alert(session, spec, now=now, ctx=ctx)
            if a is not None:
                out.alerts.append(a)
    ice = sorted({e.patient_id for e in events if e.code in alerts.ICE_CODES and e.status == "final"})
    if ice:
        alerts.resolve_missing_assessments(session, ice, now=now, ctx=ctx)
    return out
