"""The service's in-process write lock (SQLite) is granted in arrival order and is re-entrant.

An unfair lock let a thread that releases and re-acquires at once (the background regrader
between passes, a client streaming batches) overtake a waiting single write again and again:
the multi-second single-write stalls of the service benchmark's mixed phase.
"""

from __future__ import annotations

import threading
import time

import pytest

from immunotox.service.config import Settings
from immunotox.service.db import Database, FairLock


def test_waiters_get_the_lock_in_arrival_order() -> None:
    lock = FairLock()
    order: list[int] = []
    lock.acquire()
    threads = []
    for i in range(6):
        t = threading.Thread(target=lambda i=i: (lock.acquire(), order.append(i), lock.release()))
        t.start()
        threads.append(t)
        while len(lock._waiters) < i + 1:  # each waiter queued before the next one starts
            time.sleep(0.001)
    lock.release()
    for t in threads:
        t.join()
    assert order == [0, 1, 2, 3, 4, 5]


def test_a_releasing_thread_cannot_barge_ahead_of_a_waiter() -> None:
    lock = FairLock()
    got: list[str] = []
    lock.acquire()
    waiter = threading.Thread(target=lambda: (lock.acquire(), got.append("waiter"), lock.release()))
    waiter.start()
    while not lock._waiters:
        time.sleep(0.001)
    lock.release()
    lock.acquire()  # the releasing thread asks again at once: it queues behind the waiter
    got.append("again")
    lock.release()
    waiter.join()
    assert got == ["waiter", "again"]


def test_reentrant_and_owner_checked() -> None:
    lock = FairLock()
    with lock, lock:
        assert lock._count == 2
    assert lock._owner is None
    lock.acquire()
    errors: list[BaseException] = []

    def other() -> None:
        try:
            lock.release()
        except RuntimeError as exc:
            errors.append(exc)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    lock.release()
    assert len(errors) == 1 and "another thread" in str(errors[0])


def test_sqlite_database_writes_queue_on_the_fair_lock(tmp_path: pytest.TempPathFactory) -> None:
    db = Database(Settings(database_url=f"sqlite:///{tmp_path}/x.db"))
    try:
        assert isinstance(db._write_lock, FairLock)
    finally:
        db.dispose()
