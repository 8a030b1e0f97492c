"""How long the background regrader holds the write lock, per write transaction (in process).

    .venv/bin/python benchmarks/regrader_lock.py [--patients N] [--batches B] [--repeat R]

A fresh SQLite ward (``benchmarks/service.py``'s seed and stream: 200 CAR-T patients, vital-sign
sets, an ICE every 4th set, some patients moving into CRS) receives ``--batches`` batches of 100
observations through the API (queued, not graded: no regrader runs), then the queue is drained
as the app's regrader drains it (passes of 50 pairs) and, on a second ward, as at start-up (one
pass of up to 2,000 pairs). Every write transaction of the drain is timed (the time inside
``Database.writing``: the write lock's hold). Each round prints the holds' count, p50, p99 and
max, the drain's total time and the alerts raised (after a warm-up round, not reported). Run it
against another checkout with ``PYTHONPATH=<checkout>/src`` to compare.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import text
from starlette.testclient import TestClient

from immunotox.service import queue
from immunotox.service.app import create_service_app
from immunotox.service.config import Settings
from immunotox.service.db import Clock, Database
from service import Stream, percentile, seed


def timed_writes(db: Database, holds: list[float]) -> None:
    """Time every write transaction of ``db`` (appended to ``holds``, in seconds)."""
    inner = db.writing

    @contextlib.contextmanager
    def writing() -> Iterator[Any]:
        t = time.perf_counter()
        with inner() as s:
            yield s
        holds.append(time.perf_counter() - t)

    db.writing = writing  # type: ignore[method-assign]


def one(mode: str, patients: int, batches: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/ward.db"
        token = seed(url, patients)
        settings = Settings(database_url=url, regrade_seconds=2, sweep_seconds=0)
        app = create_service_app(settings)  # no lifespan: no background regrader, the script drains
        client = TestClient(app)
        stream = Stream(patients, dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for _ in range(batches):
            body = json.dumps({"observations": stream.rows(100)}).encode()
            r = client.post("/api/v1/observations/batch", content=body, headers=headers)
            assert r.status_code == 201, r.text
        db: Database = app.state.db
        holds: list[float] = []
        timed_writes(db, holds)
        clock = Clock()
        t0 = time.perf_counter()
        pairs = 0
        if mode == "passes":
            while (n := queue.drain(db, clock, limit=50)) > 0:
                pairs += n
        else:
            pairs = queue.drain(db, clock, limit=2000)
        total = time.perf_counter() - t0
        with db.session() as s:
            alerts = s.execute(
                text("SELECT count(*) FROM alert WHERE kind IN ('new_toxicity', 'grade_increase')")
            ).scalar_one()
        db.dispose()
    return {
        "pairs": pairs,
        "writes": len(holds),
        "p50_ms": percentile(holds, 50) * 1000,
        "p99_ms": percentile(holds, 99) * 1000,
        "max_ms": max(holds, default=float("nan")) * 1000,
        "drain_s": total,
        "alerts": alerts,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)
    load = os.getloadavg()
    print(f"regrader lock holds: {args.patients} patients, {args.batches} batches of 100, load {load}")
    one("startup", args.patients, args.batches)  # warm-up (imports, caches), not reported
    for r in range(1, args.repeat + 1):
        for mode in ("passes", "startup"):
            x = one(mode, args.patients, args.batches)
            fields = [f"round={r}", f"mode={mode}", f"pairs={x['pairs']:.0f}", f"writes={x['writes']:.0f}"]
            fields += [f"hold_{k}={x[k]:.1f}" for k in ("p50_ms", "p99_ms", "max_ms")]
            fields += [f"drain_s={x['drain_s']:.2f}", f"alerts={x['alerts']:.0f}"]
            print(" ".join([*fields, f"load={os.getloadavg()[0]:.1f}"]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
