"""The service as a real process: first start creates the database; SIGKILL loses no acknowledged write."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from immunotox.service.pgtest import free_port
from tests.service.conftest import seed_template


@contextmanager
def server(
    db_url: str, *, extra_env: dict[str, str] | None = None, start_timeout: float = 60.0
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    env = dict(os.environ, IMMUNOTOX_SWEEP_SECONDS="0", **(extra_env or {}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "immunotox", "serve", "--db", db_url, "--port", str(port), "--no-access-log"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not start within {start_timeout:g} s")
            time.sleep(0.1)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.slow
def test_serve_creates_and_migrates_the_sqlite_file_on_first_start(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "immunotox.db"
    path.parent.mkdir()
    assert not path.exists()
    with server(f"sqlite:///{path}") as (_proc, base):
        assert httpx.get(f"{base}/health").json() == {
            "status": "ok",
            "database": "sqlite",
            "migration": "0004",
            "regrade_queue": 0,
        }
        assert httpx.get(f"{base}/docs").status_code == 200
        assert httpx.get(f"{base}/api/v1/patients").status_code == 401
    assert path.exists()


def test_serve_with_an_unreachable_database_fails_in_one_line(cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("serve", "--db", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert r.returncode == 2
    assert r.stderr.startswith("error: database") and "Traceback" not in r.stderr


@pytest.mark.slow
def test_sigkill_mid_load_loses_no_acknowledged_observation(tmp_path: Path) -> None:
    db_path = tmp_path / "crash.db"
    url = f"sqlite:///{db_path}"
    tokens = seed_template(url)
    headers = {"Authorization": f"Bearer {tokens['nurse_a']}"}
    acknowledged: dict[str, int] = {}  # idempotency key -> stored event id
    sent: dict[str, dict[str, object]] = {}  # idempotency key -> the exact body sent
    lock = threading.Lock()
    stop = threading.Event()

    def load(worker: int, base: str) -> None:
        n = 0
        with httpx.Client(base_url=base, timeout=10) as client:
            while not stop.is_set():
                key = f"w{worker}-{n}"
                n += 1
                body = {
                    "code": "spo2",
                    "value": 90 + n % 10,
                    "unit": "%",
                    "time": dt.datetime.now(dt.UTC).isoformat(),
                    "note": key,
                }
                with lock:
                    sent[key] = body
                try:
                    r = client.post(
                        "/api/v1/patients/P-A1/observations",
                        json=body,
                        headers={**headers, "Idempotency-Key": key},
                    )
                except httpx.HTTPError:
                    return  # the server died under us: this request was never acknowledged
                if r.status_code == 201:
                    with lock:
                        acknowledged[key] = r.json()["stored"][0]["id"]

    with server(url) as (proc, base):
        workers = [threading.Thread(target=load, args=(i, base)) for i in range(4)]
        for w in workers:
            w.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < 150 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # mid-load: requests are in flight
        proc.wait()
        stop.set()
        for w in workers:
            w.join(timeout=30)
    assert len(acknowledged) >= 150, "the load did not get going"
    assert set(acknowledged) <= set(sent)

    with server(url) as (_proc, base):
        client = httpx.Client(base_url=base, timeout=30, headers=headers)
        rows = client.get("/api/v1/patients/P-A1/observations", params={"limit": 5000}).json()
        by_note = {r["note"]: r for r in rows}
        missing = [k for k, eid in acknowledged.items() if k not in by_note or by_note[k]["id"] != eid]
        assert missing == [], f"{len(missing)} acknowledged observations lost, e.g. {missing[:5]}"
        # a client retrying every request after the crash (same key, same body) stores each once:
        # acknowledged ones are replayed, the ones lost in flight are stored now
        replayed = 0
        for key, body in sent.items():
            r = client.post("/api/v1/patients/P-A1/observations", json=body, headers={"Idempotency-Key": key})
            assert r.status_code == 201, r.text
            replayed += r.headers.get("Idempotent-Replayed") == "true"
            if key in acknowledged:
                assert r.json()["stored"][0]["id"] == acknowledged[key]
        assert replayed >= len(acknowledged)
        rows = client.get("/api/v1/patients/P-A1/observations", params={"limit": 5000}).json()
        notes = [r["note"] for r in rows]
        assert len(notes) == len(set(notes)) and set(notes) == set(sent)
        assert client.get("/health").json()["status"] == "ok"
    import sqlite3

    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
