"""The service's background work: the regrader of queued pairs and the periodic sweeps.

Each is one loop, run either as a task of the served app (:func:`.app.create_service_app`, the
default, and what the tests and the demo use) or in a process of its own beside the server
(``immunotox serve``, unless ``IMMUNOTOX_REGRADER=inline``): the passes are the
same functions (:func:`regrade_loop`, :func:`.queue.drain`); only the process they run in
differs.

Why a process of its own: the server is one Python process, and grading is CPU-bound. As a task
of the app, every regrade pass competes with the requests for the interpreter lock, so under
sustained load (50 single writes/s while batches arrive at 1,000 observations/s) the requests
queue behind the passes (docs/benchmarks.md, issue 19). In its own process the regrader uses
the second core and the served process runs requests only.

The process (:class:`RegraderProcess`, started by ``immunotox serve`` after the migration):

* runs ``python -m immunotox regrader`` (a hidden command) with the server's environment and the
  server's database URL in ``IMMUNOTOX_DATABASE_URL``, never on its command line (a command line
  is readable by every local user, and a PostgreSQL URL may hold a password), which runs
  :func:`regrade_loop` and :func:`sweep_loop` until its standard input closes: the server
  closes it when it stops, and the system closes it when the server dies, however it dies (no
  orphan);
* on PostgreSQL, is woken by ``NOTIFY`` from any number of server processes (``immunotox serve
  --workers N``: :class:`NotifyWakeup` in each, :func:`listen_wakeups` in the regrader, which
  still regrades every cycle: a lost notification only delays its regrade);
* on SQLite (one server process), is woken by single writes through that pipe: the server
  writes the patients a committed single write queued (one line, at most ``PIPE_BUF`` bytes:
  written whole or not at all, never blocking the request; a wake-up that cannot be written is
  dropped, and its pairs, which are in the queue, are regraded at the next cycle);
* is restarted if it exits on its own (logged as an error each time, with its exit status; the
  restarted process drains what was queued meanwhile: the queue rows are written in the writes'
  transactions and deleted only by the transaction that stores their grades).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import IO, Any

from starlette.concurrency import run_in_threadpool

from .. import labs
from . import alerts, audit, queue
from .config import Settings
from .db import Clock, Database, make_engine

log = logging.getLogger("immunotox.service")

WAKE_GAP = 0.2  # seconds between two passes woken by single writes
PASS_LIMIT = 50  # (patient, scale) pairs per regrader pass: about 15 ms of write lock


def run_sweeps(db: Database, settings: Settings, clock: Clock) -> dict[str, int]:
    """One pass of the periodic checks (also called by tests and the demo)."""
    now = clock.now()
    with db.writing() as s:
        missing = alerts.sweep_missing_assessments(s, now=now, settings=settings, ctx=audit.SYSTEM)
        escalated = alerts.sweep_escalations(s, now=now, settings=settings, ctx=audit.SYSTEM)
    return {"missing_assessment": len(missing), "escalated": len(escalated)}


async def sweep_loop(db: Database, clock: Clock) -> None:
    """:func:`run_sweeps` every ``sweep_seconds``."""
    settings = db.settings
    while True:
        await asyncio.sleep(settings.sweep_seconds)
        try:
            await run_in_threadpool(run_sweeps, db, settings, clock)
        except Exception:  # a failed sweep must not stop the next one
            log.exception("periodic sweep failed")


async def regrade_loop(db: Database, clock: Clock, wakeup: queue.Wakeup, *, yield_gil: bool) -> None:
    """Every ``regrade_seconds``, regrade what was queued before the cycle began (coalescing the
    writes of the interval), in short passes: a pass holds the write lock, and waiting requests
    get their turn between passes. Between cycles, a single write wakes it at once for its
    patient (:class:`.queue.Wakeup`): its grades and alerts follow within a pass.
    ``yield_gil``: the passes share the process with request threads (the app's task)."""
    settings = db.settings
    loop = asyncio.get_running_loop()
    while True:
        await regrade_passes(db, clock, queued_before=clock.now(), yield_gil=yield_gil)
        deadline = loop.time() + settings.regrade_seconds
        while (left := deadline - loop.time()) > 0:
            woken = await wakeup.wait(left)
            if woken:
                await regrade_passes(db, clock, patients=woken, yield_gil=yield_gil)
                wakeup.passed()
                # the singles arriving meanwhile share the next woken pass (50 singles/s: ~10
                # per pass, not one pass each, whose fixed cost competes with the requests)
                await asyncio.sleep(min(WAKE_GAP, max(0.0, deadline - loop.time())))


async def regrade_passes(
    db: Database,
    clock: Clock,
    *,
    queued_before: dt.datetime | None = None,
    patients: set[str] | None = None,
    yield_gil: bool = True,
) -> None:
    """Passes of :func:`.queue.drain` until one finds fewer than :data:`PASS_LIMIT` pairs."""
    while True:
        try:
            n = await run_in_threadpool(
                partial(
                    queue.drain,
                    db,
                    clock,
                    limit=PASS_LIMIT,
                    queued_before=queued_before,
                    patients=patients,
                    yield_gil=yield_gil,
                )
            )
        except Exception:  # a failed pass is retried: the queue rows are still there
            log.exception("regrade pass failed")
            n = 0
        if n < PASS_LIMIT:
            return
        await asyncio.sleep(0.005)


# --- the regrader as a process of its own -------------------------------------------------

WAKE_MAX_BYTES = select.PIPE_BUF  # a write to a pipe of at most this many bytes is atomic
RESTART_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)  # seconds before each restart in a row
STABLE_SECONDS = 60.0  # a process that ran this long resets the delays


def wake_lines(patient_ids: set[str]) -> list[bytes]:
    """The wake-up lines for ``patient_ids``: JSON lists of ids, each line at most
    :data:`WAKE_MAX_BYTES` bytes (an id longer than that alone: never, ids are 64 characters)."""
    out: list[bytes] = []
    part: list[str] = []
    size = 3  # "[]\n"
    for pid in sorted(patient_ids):
        item = len(json.dumps(pid).encode()) + 2  # ", " between items
        if part and size + item > WAKE_MAX_BYTES:
            out.append(json.dumps(part).encode() + b"\n")
            part, size = [], 3
        part.append(pid)
        size += item
    if part:
        out.append(json.dumps(part).encode() + b"\n")
    return out


def read_wakeups(stream: IO[bytes], wakeup: queue.Wakeup) -> None:
    """Feed ``wakeup`` from the server's lines until the stream closes (the regrader process's
    standard input: closed when the server stops or dies)."""
    for line in stream:
        try:
            ids = {str(pid) for pid in json.loads(line)}
        except (ValueError, TypeError):  # never written by the server (a line cut by its death)
            log.warning("regrader process: unreadable wake-up line ignored")
            continue
        if ids:
            wakeup(ids)


PARENT_CHECK_SECONDS = 1.0


SERVER_PID_ENV = "IMMUNOTOX_SERVER_PID"  # set by ``serve`` for its workers: whose children they are


def end_with_parent(period: float = PARENT_CHECK_SECONDS, parent: int | None = None) -> threading.Thread:
    """Stop this process gracefully (SIGTERM to itself) once its parent is gone: a worker of
    ``immunotox serve --workers N`` whose server was killed outright (``SIGKILL``: no shutdown)
    must not go on serving, an orphan. The parent is checked every ``period`` seconds.

    ``parent``: the server's pid, by default ``IMMUNOTOX_SERVER_PID`` (set by ``serve`` before it
    starts any worker), else the parent now. Not the parent at the time of the call alone: a
    worker builds its app (and calls this) seconds after it starts, and a server killed in
    between would leave it watching its new parent (init) for ever, an orphan on the port."""
    if parent is None:
        given = os.environ.get(SERVER_PID_ENV, "")
        parent = int(given) if given.isdigit() else os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(period)
        log.warning("server process %d gone: worker %d stopping", parent, os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="end-with-parent", daemon=True)
    thread.start()
    return thread


# --- PostgreSQL: wake-ups from every server process (LISTEN/NOTIFY) ----------------------------

NOTIFY_CHANNEL = "immunotox_regrade"
LISTEN_RETRY_SECONDS = 1.0  # between two attempts to (re)open the regrader's LISTEN connection


def pg_connect(settings: Settings) -> Any:
    """A psycopg connection in autocommit mode to ``settings.database_url`` (PostgreSQL), with the
    arguments SQLAlchemy derives from the URL (the engine's own road; no connection is pooled)."""
    import psycopg

    engine = make_engine(settings)  # lazy: reads the URL, opens nothing
    try:
        cargs, cparams = engine.dialect.create_connect_args(engine.url)
    finally:
        engine.dispose()
    return psycopg.connect(*cargs, **cparams, autocommit=True)


class NotifyWakeup:
    """Wakes the regrader process through PostgreSQL ``NOTIFY`` (``immunotox serve`` on
    PostgreSQL: any number of server processes, each with one of these).

    Called by a write **after its commit** (``Database.on_regrade_queued``) with the patients it
    queued: ``pg_notify`` on the channel, one JSON list of ids per notification (the lines of
    :func:`wake_lines`, well under PostgreSQL's 8,000-byte payload limit), on a connection of its
    own in autocommit mode (one round trip; the write's pooled connection is back in its pool). A
    wake-up that cannot be sent (the database unreachable) is dropped and counted: its pairs are
    in the queue, and the regrader's cycle grades them. After the commit rather than inside the
    write's transaction: the hook is the write path's (``Database.writing``), and the pairs are
    durable before anyone is told; a notification is never about rows that were rolled back.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._conn: Any = None
        self.dropped = 0

    def __call__(self, patient_ids: set[str]) -> None:
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = pg_connect(self.settings)
                for line in wake_lines(patient_ids):
                    self._conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, line.decode().rstrip()))
            except Exception:  # the cycle regrades these pairs
                self.dropped += 1
                log.warning("regrader wake-up not sent (the regrade cycle will grade it)", exc_info=True)
                self._close()

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._close()


def listen_wakeups(settings: Settings, wakeup: queue.Wakeup, stopped: threading.Event) -> None:
    """Feed ``wakeup`` from the server processes' notifications until ``stopped`` (the regrader
    process on PostgreSQL). ``LISTEN`` on a connection of its own, reopened after a failure; a
    notification sent while it is closed is lost, and the regrader's cycle grades its pairs."""
    while not stopped.is_set():
        try:
            with pg_connect(settings) as conn:
                conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                while not stopped.is_set():
                    for n in conn.notifies(timeout=1.0):
                        read_wakeups(io.BytesIO(n.payload.encode()), wakeup)
        except Exception:
            if stopped.is_set():
                return
            log.warning("regrader process: its LISTEN connection failed; reopening it", exc_info=True)
            stopped.wait(LISTEN_RETRY_SECONDS)


def wakeup_hook(settings: Settings, background: RegraderProcess | None) -> Callable[[set[str]], None] | None:
    """The ``regrader_wakeup`` of a server process (:func:`.app.create_service_app`): None when the
    regrader and the sweeps run in the app (``settings.regrader_process`` false); else on SQLite
    the pipe of ``background`` (one server process), on PostgreSQL a :class:`NotifyWakeup` of this
    process (any number of server processes)."""
    if not settings.regrader_process:
        return None
    if settings.is_sqlite:
        assert background is not None, "SQLite: the one server process owns the regrader's pipe"
        return background.wake
    return NotifyWakeup(settings)


async def run_regrader(settings: Settings, stream: IO[bytes]) -> int:
    """The regrader process's work until ``stream`` closes (0), or a loop fails (1). Wake-ups
    arrive on ``stream`` (SQLite: from the one server process) or by ``LISTEN`` (PostgreSQL)."""
    labs.use_site_intervals(settings.reference_intervals or None)  # as the server's app does
    db = Database(settings)
    clock = Clock()
    loop = asyncio.get_running_loop()
    wakeup = queue.Wakeup(loop)
    closed = asyncio.Event()
    stopped = threading.Event()

    def reader() -> None:
        try:
            read_wakeups(stream, wakeup)
        finally:
            stopped.set()
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(closed.set)

    threading.Thread(target=reader, name="regrader-wakeups", daemon=True).start()
    if not settings.is_sqlite:
        listener = partial(listen_wakeups, settings, wakeup, stopped)
        threading.Thread(target=listener, name="regrader-listen", daemon=True).start()
    tasks: list[asyncio.Task[object]] = []
    if settings.grading and settings.regrade_seconds > 0:
        tasks.append(asyncio.create_task(regrade_loop(db, clock, wakeup, yield_gil=False), name="regrader"))
    if settings.sweep_seconds > 0:
        tasks.append(asyncio.create_task(sweep_loop(db, clock), name="sweeper"))
    stop: asyncio.Task[object] = asyncio.create_task(closed.wait())
    try:
        done, _ = await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in tasks if t in done]
        for t in failed:  # the loops never return: one that ended has failed
            log.error("regrader process: the %s loop stopped", t.get_name(), exc_info=t.exception())
        return 1 if failed else 0
    finally:
        for t in (stop, *tasks):
            t.cancel()
        for t in (stop, *tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        stopped.set()
        db.dispose()


def regrader_main(settings: Settings) -> int:
    """Entry point of the regrader process (``immunotox regrader``)."""
    # Ctrl-C in a terminal reaches the whole process group: the server stops this process
    # itself (it closes the pipe), after its own graceful shutdown
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(name)s: %(message)s")
    return asyncio.run(run_regrader(settings, sys.stdin.buffer))


class RegraderProcess:
    """The regrader as a child process of the server: started, woken, restarted, stopped.

    ``command``: the child's command line (default: ``python -m immunotox regrader``). It reads
    its settings from the environment, as the server did, with the server's database URL in
    ``IMMUNOTOX_DATABASE_URL`` (the URL may hold a password: never on a command line, which every
    local user can read).
    """

    def __init__(self, settings: Settings, command: list[str] | None = None) -> None:
        self.settings = settings
        self.command = command or [sys.executable, "-m", "immunotox", "regrader"]
        self.env = {**os.environ, "IMMUNOTOX_DATABASE_URL": settings.database_url}
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None
        self.restarts = 0
        self.dropped = 0  # wake-ups that could not be written (their pairs wait for the cycle)

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None else None

    def start(self) -> RegraderProcess:
        self._spawn()
        self._monitor = threading.Thread(target=self._watch, name="regrader-monitor", daemon=True)
        self._monitor.start()
        return self

    def _spawn(self) -> None:
        proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=self.env)
        assert proc.stdin is not None
        os.set_blocking(proc.stdin.fileno(), False)  # a wake-up never blocks a request
        with self._lock:
            self._proc = proc
        log.info("regrader process %d started", proc.pid)

    def _watch(self) -> None:
        streak = 0
        while True:
            proc = self._proc
            assert proc is not None
            started = time.monotonic()
            code = proc.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= STABLE_SECONDS:
                streak = 0
            delay = RESTART_DELAYS[min(streak, len(RESTART_DELAYS) - 1)]
            streak += 1
            log.error(
                "regrader process %d exited with status %s; restarting it in %g s "
                "(queued regrades wait for it: none is lost)",
                proc.pid,
                code,
                delay,
            )
            with self._lock:
                self._close_pipe(proc)
            if self._stopping.wait(delay):
                return
            try:
                self._spawn()
            except OSError:
                log.exception("regrader process: cannot restart it; retrying")
                self._proc = proc  # waited on again at once: the next delay applies
                continue
            self.restarts += 1

    def wake(self, patient_ids: set[str]) -> None:
        """Wake the regrader for ``patient_ids`` (called by a write after its commit)."""
        with self._lock:
            proc = self._proc
            if proc is None or proc.stdin is None or proc.stdin.closed:
                self.dropped += 1
                return
            fd = proc.stdin.fileno()
            for line in wake_lines(patient_ids):
                try:
                    os.write(fd, line)
                except OSError:  # full (the process is busy or stopped) or gone: the cycle
                    self.dropped += 1  # or the restarted process regrades these pairs
                    return

    @staticmethod
    def _close_pipe(proc: subprocess.Popen[bytes]) -> None:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()

    def stop(self, timeout: float = 20.0) -> int | None:
        """Close the pipe (the process ends after its current pass), wait, then terminate and
        kill if it does not. Returns its exit status."""
        self._stopping.set()
        with self._lock:
            proc = self._proc
            if proc is None:
                return None
            self._close_pipe(proc)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("regrader process %d did not stop in %g s: terminating it", proc.pid, timeout)
            proc.terminate()
            try:
                code = proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
        if self._monitor is not None:
            self._monitor.join(timeout=5)
        return code
