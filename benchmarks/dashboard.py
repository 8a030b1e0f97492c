"""Web dashboard benchmark: server time to render the ward of 200 patients.

Usage::

    .venv/bin/python benchmarks/dashboard.py                       # 200 patients, 50 requests
    .venv/bin/python benchmarks/dashboard.py --patients 400 --requests 100

A fresh SQLite database in a temporary folder is seeded like the demo ward
(:mod:`immunotox.service.demo`): the synthetic generator's patients (``simulate_cohort``, seed 7),
placed between day 0 and day 6 after infusion, with their observations of the past days fed through
the service's ingest path in 2-hour chunks (grading, episodes and alerts on), so every row of the
ward has grades, a grade history, alerts and last-check times to show. A physician who sees both
units then asks for the pages in-process (FastAPI TestClient: routing, session cookie lookup, the
queries, the Jinja2 rendering — everything the server does; no network):

* ``ward``        ``GET /ward`` — the full page with one row per patient (the headline);
* ``poll_full``   ``GET /ward/poll`` with a stale stamp — the rows re-rendered as JSON;
* ``poll_same``   ``GET /ward/poll`` with the current stamp — the small "nothing changed" answer.

Each is requested ``--warmup`` times, then timed ``--requests`` times (``time.perf_counter``
around the request). The last line printed is exactly::

    patients=N dashboard_p50_ms=X dashboard_p95_ms=Y

Target (issue 6): the dashboard of 200 patients in under 300 ms of server time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

from immunotox.app import create_app
from immunotox.service.config import Settings
from immunotox.service.db import Clock, Database, migrate
from immunotox.service.demo import ACCOUNTS, seed, simulated_ward

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


class FixedClock(Clock):
    def __init__(self, t: dt.datetime) -> None:
        self.t = t

    def now(self) -> dt.datetime:
        return self.t


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[k]


def build(folder: Path, n_patients: int) -> tuple[Settings, dt.datetime, int]:
    url = f"sqlite:///{folder / 'bench.db'}"
    settings = Settings(database_url=url, sweep_seconds=0)
    migrate(url)
    start = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
    ward = simulated_ward(start, n_patients=n_patients, seed=7)
    db = Database(settings)
    try:
        stored = seed(db, settings, ward, start)
    finally:
        db.dispose()
    return settings, start, stored


def timed(client: TestClient, path: str, warmup: int, n: int) -> list[float]:
    for _ in range(warmup):
        assert client.get(path).status_code == 200
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        resp = client.get(path)
        out.append((time.perf_counter() - t0) * 1000)
        assert resp.status_code == 200, resp.text[:300]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args(argv)
    physician = next(a for a in ACCOUNTS if a.role == "physician")
    with tempfile.TemporaryDirectory(prefix="immunotox-dashboard-") as tmp:
        t0 = time.perf_counter()
        settings, start, stored = build(Path(tmp), args.patients)
        seed_s = time.perf_counter() - t0
        app = create_app(settings, clock=FixedClock(start))
        with TestClient(app) as client:
            page = client.get("/login").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert token is not None
            resp = client.post(
                "/login",
                data={
                    "username": physician.username,
                    "password": physician.password,
                    "csrf_token": token.group(1),
                },
                follow_redirects=False,
            )
            assert resp.status_code == 303, resp.text[:300]
            ward_html = client.get("/ward").text
            rows = ward_html.count('<tr data-patient="')
            stamp = re.search(r'data-stamp="([^"]+)"', ward_html)
            assert stamp is not None
            results = {
                "ward": timed(client, "/ward", args.warmup, args.requests),
                "poll_full": timed(client, "/ward/poll?stamp=stale", args.warmup, args.requests),
                "poll_same": timed(client, f"/ward/poll?stamp={stamp.group(1)}", args.warmup, args.requests),
            }
    print(f"seeded {args.patients} patients, {stored} observations in {seed_s:.1f} s; ward rows: {rows}")
    print(f"{'endpoint':<10} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, values in results.items():
        print(
            f"{name:<10} {statistics.median(values):8.1f} {percentile(values, 0.95):8.1f} {max(values):8.1f}"
        )
    ward = results["ward"]
    print(
        f"patients={rows} dashboard_p50_ms={statistics.median(ward):.1f} "
        f"dashboard_p95_ms={percentile(ward, 0.95):.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
