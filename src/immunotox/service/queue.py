"""The regrade queue: batch ingest acknowledges at once, the background regrader catches up.

A batch of observations (a device gateway, a lab interface) is checked and appended, and a row per
(patient, scale) pair it touches is appended to ``regrade_queue`` **in the same transaction** — so
a crash after the acknowledgement never loses a regrade. The queue is append-only: no row is shared
by two writers, so on PostgreSQL no write waits for another write's (or the regrader's) lock on a
queue row. The regrader (:mod:`.background`: the regrader process of ``immunotox serve``, or a task
of the app; every ``regrade_seconds``, and once at start-up for leftovers) coalesces the rows of
each queued pair, computes the pairs' grades and the recommendations of their alerts without
holding the write lock, then claims them (by deleting exactly the rows it read) and stores the
results in short transactions of at most ``WRITE_CHUNK`` pairs, raising the alerts their
transitions call for; a row appended meanwhile stays queued, and its pair is regraded again. A
single write wakes it for its patient once committed (:class:`Wakeup`). Coalescing is the point:
the queries of one pass serve every patient queued since the last one, so grading costs little more
than storing.

Single writes of the API (one observation, an assessment, an administration or its stop) queue
their pairs the same way unless sent with ``?regrade=now`` (docs/service.md, "The write path");
self-reports, FHIR imports and the web forms are regraded synchronously and answer with the new
grades. Readers never wait for the queue: a patient's grades are recomputed from the stored
events when read.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import threading
import time
from collections.abc import Collection, Iterable, Iterator
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, and_, bindparam, delete, event, func, select, true
from sqlalchemy.orm import Session

from ..jurisdiction import Jurisdiction
from . import audit, grade_store, grading
from .db import Clock, Database, insert_rows
from .models import Patient, RegradeQueue
from .transitions import Ahead, raise_transition_alerts, recommend_ahead, still_valid

CLAIM_LIMIT = 2000  # pairs per pass (a pass stays short; the next one follows at once)
WRITE_CHUNK = 50  # pairs per write transaction of a pass (the lock is released between them)


def enqueue(session: Session, touch: grading.Touch, *, now: dt.datetime) -> None:
    """Append a row per touched pair (the regrader coalesces the rows of a pair: the latest
    times, and the 'full' flag of any row, :func:`_coalesce`)."""
    if not touch:
        return
    rows = [
        {
            "patient_id": pid,
            "scale": scale,
            "latest": latest,
            "interval_start": touch.starts.get((pid, scale)),
            "full": (pid, scale) in touch.full,
            "queued_at": now,
        }
        for (pid, scale), latest in sorted(touch.latest.items())
    ]
    insert_rows(session.connection(), cast(Table, RegradeQueue.__table__), rows)


PENDING = "regrade_pending"  # Session.info key: touches to queue just before the commit


def enqueue_at_commit(session: Session, touch: grading.Touch, *, now: dt.datetime) -> None:
    """Queue the touched pairs as the last statement of the write's transaction (just before its
    commit, same transaction: a crash after the acknowledgement still never loses a regrade; a
    rollback queues nothing).

    Written when the queue held one row per pair, upserted by every write: on PostgreSQL the
    upsert locked the row until the commit and every other write of the pair waited for it, so
    it was done last (docs/benchmarks.md, issue 19, lane svc). The append-only queue locks no
    shared row; the writes keep queueing last, which costs nothing.
    """
    if touch:
        session.info.setdefault(PENDING, []).append((touch, now))


@event.listens_for(Session, "before_commit")
def _enqueue_pending(session: Session) -> None:
    for touch, now in session.info.pop(PENDING, ()):
        enqueue(session, touch, now=now)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(PENDING, None)


def drain(
    db: Database,
    clock: Clock,
    *,
    limit: int = CLAIM_LIMIT,
    queued_before: dt.datetime | None = None,
    patients: Collection[str] | None = None,
    yield_gil: bool = False,
    chunk: int = WRITE_CHUNK,
) -> int:
    """One pass of the regrader. Returns the pairs processed.

    Everything CPU-bound is done in a *read* transaction, without the write lock (requests keep
    writing): the grades, and the recommendations of the grades that may raise an alert
    (:func:`.transitions.recommend_ahead`). Then short write transactions, one per ``chunk``
    pairs (whole patients; the lock is released between them), each claim the queued pairs that
    did not change meanwhile, check that no other regrade touched them, and store the grades
    and the alerts. A pair that changed is left (or put back) in the queue for the next pass; a
    recommendation computed from a state that changed is computed again under the lock.
    ``patients``: only their queued pairs (a pass woken by single writes, :class:`Wakeup`).
    ``yield_gil``: give the interpreter to request threads between pairs.
    """
    pause = (lambda: time.sleep(0)) if yield_gil else None
    with db.session() as rs:
        snapshot = _peek(rs, limit, queued_before, patients)
        if not snapshot:
            return 0
        touch = grading.Touch(
            latest={(row.patient_id, row.scale): row.latest for row in snapshot},
            full={(row.patient_id, row.scale) for row in snapshot if row.full},
            starts={
                (row.patient_id, row.scale): row.interval_start
                for row in snapshot
                if row.interval_start is not None
            },
        )
        ids = sorted({pid for pid, _ in touch.latest})
        found = list(rs.scalars(select(Patient).where(Patient.id.in_(ids))))
        rs.expunge_all()
        planned = grading.plan(rs, found, touch, pause=pause)
        now = clock.now()
        ahead = recommend_ahead(rs, found, planned, now=now, jurisdiction=db.settings.jurisdiction)
    for part in _chunks(snapshot, chunk):
        in_part = {row.patient_id for row in part}
        mine = [p for p in found if p.id in in_part]
        with db.writing() as ws:
            _store(ws, clock, part, sorted(in_part), mine, touch, planned, ahead, db.settings.jurisdiction)
    return len(snapshot)


def _chunks(snapshot: list[Row], size: int) -> Iterator[list[Row]]:
    """``snapshot`` in parts of about ``size`` pairs, never splitting a patient."""
    by_patient: dict[str, list[Row]] = {}
    for row in snapshot:
        by_patient.setdefault(row.patient_id, []).append(row)
    part: list[Row] = []
    for rows in by_patient.values():
        if part and len(part) + len(rows) > size:
            yield part
            part = []
        part += rows
    if part:
        yield part


def _store(
    ws: Session,
    clock: Clock,
    part: list[Row],
    ids: list[str],
    patients: list[Patient],
    touch: grading.Touch,
    planned: grading.Plan,
    ahead: Ahead,
    jurisdiction: Jurisdiction | None,
) -> None:
    """The write of one chunk: claim, check, store, alert (nothing CPU-bound but the checks)."""
    grade_store.lock_patients(ws, ids)
    claimed = _claim_unchanged(ws, part)
    now_current = grade_store.current_state(ws, ids)
    mine = set(ids)
    ok = [
        key
        for key in planned.grades
        if key[0] in mine
        and (key in claimed or key not in touch.latest)
        and grade_store.same_state(planned.current.get(key), now_current.get(key))
    ]
    stale = {key for key in claimed if key not in ok}
    if stale:  # regraded by someone else meanwhile: do it again next pass, from the database
        enqueue(ws, grading.Touch(dict.fromkeys(stale), set(stale)), now=clock.now())
    valid = still_valid(ahead, planned, now_current, ids, ok)
    planned_now = grading.Plan(grades=planned.grades, current=now_current, mid=planned.mid)
    result = grading.commit(ws, planned_now, now=clock.now(), keys=ok)
    raise_transition_alerts(
        ws,
        patients,
        result,
        now=clock.now(),
        ctx=audit.SYSTEM,
        jurisdiction=jurisdiction,
        ahead=valid,
    )


class Row(NamedTuple):
    """A queued pair: its rows coalesced (:func:`_coalesce`), and the ids of those rows."""

    patient_id: str
    scale: str
    latest: dt.datetime | None
    interval_start: dt.datetime | None
    full: bool
    ids: frozenset[int]


def _later(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    """The later of two times, None meaning 'no time given' (the other one is kept)."""
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _coalesce(rows: Iterable[Any]) -> dict[tuple[str, str], Row]:
    """The rows of each pair (id, patient, scale, latest, interval start, full) as one: the latest
    times, the 'full' flag of any of them, and their ids (what the claim deletes)."""
    out: dict[tuple[str, str], Row] = {}
    for rid, pid, scale, latest, start, full in rows:
        old = out.get((pid, scale))
        if old is None:
            out[(pid, scale)] = Row(pid, scale, latest, start, bool(full), frozenset((rid,)))
        else:
            out[(pid, scale)] = Row(
                pid,
                scale,
                _later(old.latest, latest),
                _later(old.interval_start, start),
                old.full or bool(full),
                old.ids | {rid},
            )
    return out


def _peek(
    session: Session, limit: int, queued_before: dt.datetime | None, patients: Collection[str] | None
) -> list[Row]:
    """Up to ``limit`` queued pairs, the longest waiting first (a pair waits since its oldest
    row; ``queued_before``: pairs with a row queued by then), each with all its rows."""
    table = cast(Table, RegradeQueue.__table__)
    cond = table.c.queued_at <= queued_before if queued_before is not None else true()
    if patients is not None:
        cond = and_(cond, table.c.patient_id.in_(sorted(patients)))
    first = func.min(table.c.queued_at)
    pairs = [
        (r[0], r[1])
        for r in session.execute(
            select(table.c.patient_id, table.c.scale)
            .where(cond)
            .group_by(table.c.patient_id, table.c.scale)
            .order_by(first, table.c.patient_id, table.c.scale)
            .limit(limit)
        )
    ]
    if not pairs:
        return []
    read, _remove = _claim_statements()
    rows = _coalesce(session.execute(read, {"ids": sorted({pid for pid, _ in pairs})}))
    return [rows[pair] for pair in pairs if pair in rows]


@functools.cache
def _claim_statements() -> tuple[Any, Any]:
    """Read a patient's queued rows, and delete rows by id, built once (an expanding ``IN`` is
    rendered and compiled on every call otherwise: ~10 ms inside the write lock for a pass of
    50 pairs)."""
    table = cast(Table, RegradeQueue.__table__)
    read = select(
        table.c.id,
        table.c.patient_id,
        table.c.scale,
        table.c.latest,
        table.c.interval_start,
        table.c.full,
    ).where(table.c.patient_id.in_(bindparam("ids", expanding=True)))
    remove = delete(table).where(table.c.id.in_(bindparam("rows", expanding=True)))
    return read, remove


def _claim_unchanged(session: Session, snapshot: list[Row]) -> set[tuple[str, str]]:
    """Delete the rows of the queued pairs that are still as in ``snapshot`` (no row added or
    claimed since); return those pairs. A pair queued again meanwhile keeps all its rows (its
    plan is out of date: the next pass grades it); a row appended after this read (PostgreSQL:
    a write committed while the chunk is stored) is not deleted, so its pair is regraded again."""
    read, remove = _claim_statements()
    ids = sorted({row.patient_id for row in snapshot})
    now_rows = _coalesce(session.execute(read, {"ids": ids}))
    same = [
        row
        for row in snapshot
        if (now := now_rows.get((row.patient_id, row.scale))) is not None and now.ids == row.ids
    ]
    if same:
        session.connection().execute(remove, {"rows": sorted(i for row in same for i in row.ids)})
    return {(row.patient_id, row.scale) for row in same}


class Wakeup:
    """Wakes the background regrader when a single write has queued its regrade.

    ``Database.on_regrade_queued`` is set to an instance: a write calls it (from its thread) after its
    commit with the patients it queued (in the regrader process, the thread reading the server's
    wake-up lines calls it: :class:`.background.RegraderProcess`); :meth:`wait` (in the regrader's
    event loop) returns them at once, or an empty set after ``timeout``. Several writes before the
    regrader looks are served by one pass; batches do not wake it (their pairs wait for the cycle,
    to coalesce). ``passes`` counts the woken passes done (:meth:`passed`), for tests to wait on.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()
        self._mutex = threading.Lock()
        self._ids: set[str] = set()
        self._done = threading.Condition()
        self.passes = 0

    def __call__(self, patient_ids: set[str]) -> None:
        with self._mutex:
            self._ids |= patient_ids
        with contextlib.suppress(RuntimeError):  # the loop is closed: the app is stopping
            self._loop.call_soon_threadsafe(self._event.set)

    async def wait(self, timeout: float) -> set[str]:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()
        with self._mutex:
            ids, self._ids = self._ids, set()
        return ids

    def passed(self) -> None:
        with self._done:
            self.passes += 1
            self._done.notify_all()

    def wait_passes(self, n: int, timeout: float) -> bool:
        """Block until ``n`` woken passes are done (False after ``timeout`` seconds)."""
        with self._done:
            return self._done.wait_for(lambda: self.passes >= n, timeout)


def drain_all(db: Database, clock: Clock) -> int:
    """Drain until the queue is empty (start-up, tests)."""
    total = 0
    while True:
        n = drain(db, clock)
        total += n
        if n < CLAIM_LIMIT:
            return total


def pending(db: Database) -> int:
    """Pairs waiting in the queue."""
    table = cast(Table, RegradeQueue.__table__)
    pairs = select(table.c.patient_id, table.c.scale).distinct().subquery()
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(pairs)) or 0)
