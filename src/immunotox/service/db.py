"""Database plumbing: engines for SQLite and PostgreSQL, sessions, migrations, the clock.

* **SQLite** (default): WAL journal, foreign keys on, ``synchronous`` from the settings (FULL by
  default: a committed write survives a crash of the process *and* of the machine), a busy
  timeout, and write transactions opened with ``BEGIN IMMEDIATE`` (:func:`write_session`) so
  that two concurrent writers queue on the lock instead of failing with "database is locked"
  when a read transaction tries to upgrade. WAL checkpoints run in the background
  (:meth:`Database.checkpoint`), not in the request that fills the WAL.
* **PostgreSQL** (production): ``postgresql+psycopg://`` (psycopg 3), READ COMMITTED.

The schema is created and upgraded only by Alembic (:func:`migrate`); the migrations ship inside
the package (``service/migrations``) so ``immunotox serve`` can migrate on first start.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import functools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import resources
from typing import Any

from sqlalchemy import DateTime, Engine, String, Table, bindparam, create_engine, event, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from .config import Settings

UTC = dt.UTC


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    """``value`` in UTC; a naive datetime is read as UTC (the observation contract's rule)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on every back end.

    PostgreSQL stores ``timestamptz``; SQLite stores ISO text without offset, always UTC. Values
    come back timezone-aware (UTC) from both.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return as_utc(value)


def insert_rows(
    conn: Connection, table: Table, values: Sequence[Mapping[str, Any]], *, returning_ids: bool = False
) -> list[int]:
    """Insert ``values`` (dicts with the same keys, columns of ``table``), the columns empty in
    every row left out (:func:`without_null_columns`). PostgreSQL: one statement whatever their
    number, :func:`unnest_insert`; with ``returning_ids``, the new rows' ids in the order of
    ``values``. Other databases (SQLite): one executemany, without ids (SQLite cannot order
    RETURNING rows by parameter: a caller that needs them reads them itself, as
    ``ingest._insert_events`` does)."""
    if not values:
        return []
    values = without_null_columns(table, values)
    if conn.dialect.name != "postgresql":
        if returning_ids:
            raise ValueError(f"insert_rows: ids in parameter order on {conn.dialect.name}: PostgreSQL only")
        conn.execute(table.insert(), values)
        return []
    columns = tuple(c.name for c in table.c if c.name in values[0])
    params = {name: [v[name] for v in values] for name in columns}
    result = conn.execute(unnest_insert(table, columns, returning_ids), params)
    # the ids are drawn row by row in the ORDER BY of the statement: ascending = values' order
    return sorted(result.scalars()) if returning_ids else []


def without_null_columns(table: Table, values: Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
    """``values`` without the columns that are None in every row and that an INSERT leaves NULL
    when omitted (no default of any kind): the same rows stored, with fewer values to bind
    (a batch of observations leaves about half of ``clinical_event``'s columns empty)."""
    empty = [
        name
        for name in _null_when_omitted(table)
        if name in values[0] and all(v[name] is None for v in values)
    ]
    if not empty:
        return values
    return [{k: x for k, x in v.items() if k not in empty} for v in values]


@functools.cache
def _null_when_omitted(table: Table) -> tuple[str, ...]:
    return tuple(
        c.name
        for c in table.c
        if c.nullable and not c.primary_key and c.default is None and c.server_default is None
    )


@functools.cache
def unnest_insert(table: Table, columns: tuple[str, ...], returning_ids: bool) -> Any:
    """``INSERT INTO table (columns) SELECT * FROM unnest(:c1, :c2, …) WITH ORDINALITY ORDER BY
    ordinality [RETURNING id]`` (PostgreSQL), built once per table and column set.

    One parameter per column: the column's values for every row as an array, each value going
    through the column type's own bind processing (:class:`UTCDateTime` included). The statement
    text is then the same whatever the number of rows: psycopg parses it once and caches it,
    where SQLAlchemy's multi-row ``VALUES`` (one placeholder per row and column, 2,200 for a batch
    of 100 events) is a new text for psycopg to split on every call (about half of the served
    CPU of a batch, docs/benchmarks.md, lane svcover). The ids are drawn in the ``ORDER BY``
    order, as SQLAlchemy's own sorted multi-row insert relies on.
    """

    def array(name: str) -> Any:
        kind = table.c[name].type
        # no length in the array's cast (a cast to VARCHAR(n) would truncate, not refuse): the
        # column's own type checks the length on assignment, as for a plain INSERT
        item = String() if isinstance(kind, String) else kind
        return bindparam(name, type_=ARRAY(item))

    rows = (
        func.unnest(*(array(name) for name in columns))
        .table_valued(*columns, with_ordinality="ordinality")
        .render_derived()
    )
    stmt = insert(table).from_select(
        list(columns), select(*(rows.c[name] for name in columns)).order_by(rows.c.ordinality)
    )
    return stmt.returning(table.c.id) if returning_ids else stmt


class Clock:
    """The service's notion of *now*.

    The real clock in production; the demo ward runs a :class:`SimulatedClock` so that
    accelerated replay, overdue checks and "time since last vitals" agree.
    """

    def now(self) -> dt.datetime:
        return utcnow()


class SimulatedClock(Clock):
    """A clock that starts at ``start`` and runs ``speed`` times faster than real time."""

    def __init__(self, start: dt.datetime, speed: float) -> None:
        self._start = as_utc(start)
        self._speed = speed
        self._t0 = utcnow()
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            elapsed = utcnow() - self._t0
            return self._start + elapsed * self._speed


class FairLock:
    """A re-entrant lock granted in arrival order (first come, first served).

    ``threading.RLock`` is not fair: a thread that releases it and asks again at once (the
    background regrader between passes, a client streaming batches) usually gets it back before
    a thread that has been waiting, so under sustained writes one request can wait for many
    others' transactions - the multi-second single-write stalls of the service benchmark. Here
    each waiter queues behind those already waiting and the lock is handed over to the first of
    them on release (no barging), so a write waits at most for the writes queued before it.
    """

    _HANDOFF = -1  # owner while the lock passes to the next waiter

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._owner: int | None = None
        self._count = 0
        self._waiters: collections.deque[threading.Lock] = collections.deque()

    def acquire(self) -> bool:
        me = threading.get_ident()
        with self._mutex:
            if self._owner == me:
                self._count += 1
                return True
            if self._owner is None:
                self._owner, self._count = me, 1
                return True
            gate = threading.Lock()
            gate.acquire()
            self._waiters.append(gate)
        gate.acquire()  # released by the thread that hands the lock over
        with self._mutex:
            self._owner, self._count = me, 1
        return True

    def release(self) -> None:
        with self._mutex:
            if self._owner != threading.get_ident():
                raise RuntimeError("cannot release a lock held by another thread")
            self._count -= 1
            if self._count:
                return
            if self._waiters:
                self._owner = self._HANDOFF
                self._waiters.popleft().release()
            else:
                self._owner = None

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


REGRADE_WAKE = "regrade_wake"  # Session.info key: patients whose queued regrade is wanted soon

WAL_AUTOCHECKPOINT_PAGES = 20000  # about 80 MB of WAL before a request has to checkpoint itself


def make_engine(settings: Settings) -> Engine:
    """An engine for ``settings.database_url`` with the pragmas and begin hooks above."""
    settings.check()
    url = settings.database_url
    if url.startswith("sqlite"):
        return _sqlite_engine(url, settings.sqlite_synchronous.upper())
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _sqlite_engine(url: str, synchronous: str) -> Engine:
    # isolation_level=None hands transaction control to SQLAlchemy's begin hook below
    # (the documented pysqlite recipe), so BEGIN IMMEDIATE can be chosen per session.
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "isolation_level": None, "timeout": 30},
        pool_size=8,
        max_overflow=16,
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA busy_timeout=30000")
        # checkpoints run in the background (Database.checkpoint, called by the app every second)
        # rather than in the request that happens to fill the WAL; this is only the safety net
        cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


class Database:
    """An engine and its session factory."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            FairLock() if self.dialect == "sqlite" else contextlib.nullcontext()
        )
        # called with the patients whose regrade a committed single write queued (the app's
        # background regrader sets it to wake up at once: service/queue.py, Wakeup; or the
        # regrader process's pipe: service/background.py, RegraderProcess.wake)
        self.on_regrade_queued: Callable[[set[str]], None] | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        """A session for reading (SQLite: deferred transaction)."""
        return self._factory()

    def write_session(self) -> Session:
        """A session for writing (SQLite: ``BEGIN IMMEDIATE`` takes the write lock up front)."""
        s = self._factory()
        if self.dialect == "sqlite":
            s.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        return s

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A write session committed on success and rolled back on error.

        On SQLite, writers of this process first queue on an in-process lock: SQLite's own busy
        handler sleeps in growing steps (up to 100 ms) while it waits, which would add those
        sleeps to every write that meets another one (the background regrader, a concurrent
        request); the lock hands over at once, in arrival order (:class:`FairLock`). Other
        processes still meet the busy timeout.
        """
        with self._write_lock:
            s = self.write_session()
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise
            finally:
                s.close()
        woken = s.info.pop(REGRADE_WAKE, None)
        if woken and self.on_regrade_queued is not None:
            self.on_regrade_queued(woken)

    def checkpoint(self) -> None:
        """Copy committed WAL pages into the database file (SQLite; no-op elsewhere).

        PASSIVE: never waits for, nor blocks, readers and writers. Durability does not depend on
        it (a commit is durable once in the WAL); it keeps the WAL short off the request path.
        """
        if self.dialect != "sqlite":
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def dispose(self) -> None:
        self.engine.dispose()


def migrations_dir() -> str:
    """Filesystem path of the Alembic scripts shipped in the package."""
    return str(resources.files("immunotox.service").joinpath("migrations"))


def alembic_config(database_url: str) -> Any:
    """An Alembic ``Config`` pointing at the packaged migrations and ``database_url``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", migrations_dir())
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def migrate(database_url: str, revision: str = "head") -> None:
    """Create or upgrade the schema of ``database_url`` to ``revision`` (idempotent)."""
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def current_revision(database_url: str) -> str | None:
    """The Alembic revision the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(Settings(database_url=database_url))
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
