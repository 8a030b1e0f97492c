"""The regrader in a process of its own (``IMMUNOTOX_REGRADER``, ``immunotox serve``): started
after the migration, woken by single writes, restarted if it dies, stopped with the server, and
the app of the factory running no regrader of its own in that mode."""

from __future__ import annotations

import datetime as dt
import io
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest

from immunotox.app import create_app
from immunotox.service import background, queue
from immunotox.service.config import Settings, SettingsError
from immunotox.service.pgtest import PgServer
from tests.service.conftest import ManualClock, Template, seed_template
from tests.service.test_service_process import server

H = dt.timedelta(hours=1)
STORED = (
    "SELECT c.scale, r.grade FROM current_grade c JOIN grade_record r ON r.id = c.grade_record_id "
    "WHERE c.patient_id = ?"
)

# --- settings --------------------------------------------------------------------------------


def test_the_regrader_setting_is_read_checked_and_resolved() -> None:
    assert Settings.from_env({}).regrader == "process"
    assert Settings.from_env({"IMMUNOTOX_REGRADER": "inline"}).regrader == "inline"
    with pytest.raises(SettingsError, match="IMMUNOTOX_REGRADER = 'thread'"):
        Settings.from_env({"IMMUNOTOX_REGRADER": "thread"})
    pg = "postgresql+psycopg://u@127.0.0.1:5432/d"
    assert Settings().regrader_process and Settings(database_url=pg).regrader_process
    assert not Settings(regrader="inline").regrader_process
    # no regrader at all: no process either
    assert not Settings(database_url=pg, grading=False).regrader_process
    assert not Settings(regrade_seconds=0).regrader_process


def test_the_regrader_process_gets_the_database_url_by_environment_never_on_its_command_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a command line is readable by every local user (/proc/<pid>/cmdline, ps); a PostgreSQL URL
    # may hold a password: it goes to the child in its environment (readable by its owner only)
    url = "postgresql+psycopg://ward:s3cret-pw@127.0.0.1:5432/immunotox"
    monkeypatch.setenv("IMMUNOTOX_DATABASE_URL", "sqlite:///elsewhere.db")
    monkeypatch.setenv("IMMUNOTOX_SWEEP_SECONDS", "7")
    proc = background.RegraderProcess(Settings(database_url=url))
    assert not any("s3cret-pw" in part for part in proc.command)
    assert proc.command[-1] == "regrader"
    assert proc.env["IMMUNOTOX_DATABASE_URL"] == url  # the server's URL, not the environment's
    assert proc.env["IMMUNOTOX_SWEEP_SECONDS"] == "7"  # the rest of the server's environment


# --- the wake-up pipe ------------------------------------------------------------------------


class Recorder(queue.Wakeup):
    """A Wakeup that records what it is given (no event loop)."""

    def __init__(self) -> None:
        self.got: list[set[str]] = []

    def __call__(self, patient_ids: set[str]) -> None:
        self.got.append(patient_ids)


def test_wake_lines_are_atomic_pipe_writes_and_read_back_whole() -> None:
    many = {f"P-{i:05d}-{'x' * 40}" for i in range(300)}  # ~15 kB of ids: several lines
    lines = background.wake_lines(many) + background.wake_lines({"P-A1", "odd id \n é"})
    assert len(lines) > 3
    assert all(len(line) <= background.WAKE_MAX_BYTES and line.endswith(b"\n") for line in lines)
    assert all(line.count(b"\n") == 1 for line in lines)
    rec = Recorder()
    background.read_wakeups(io.BytesIO(b"".join(lines) + b"not json\n"), rec)
    assert set().union(*rec.got[:-1]) == many
    assert rec.got[-1] == {"P-A1", "odd id \n é"}


# --- the app of the factory when the regrader runs elsewhere ------------------------------------


def test_an_app_told_the_regrader_runs_elsewhere_runs_no_pass_and_wakes_it(
    template: Template, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    woken: list[set[str]] = []
    url = template.fresh_url(tmp_path)
    cfg = Settings(database_url=url, sweep_seconds=0, regrade_seconds=0.05)
    app = create_app(cfg, clock=ManualClock(dt.datetime.now(dt.UTC)), regrader_wakeup=woken.append)
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {template.tokens['nurse_a']}"}
        at = (dt.datetime.now(dt.UTC) - H).isoformat()
        body = {"code": "temperature", "value": 38.9, "unit": "Cel", "time": at}
        r = client.post("/api/v1/patients/P-A1/observations", json=body, headers=headers)
        assert r.status_code == 201, r.text
        assert r.json()["grading"] == "queued"
        assert woken == [{"P-A1"}]
        assert not hasattr(app.state, "regrade_wakeup")
        time.sleep(0.3)  # six cycles of a regrader, had the app started one: the pair stays
        assert queue.pending(app.state.db) == 1


# --- the process under `immunotox serve` ---------------------------------------------------------


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (Linux /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid and stat[0] != "Z":
                out.append(int(d.name))
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return stat[0] != "Z"


def wait_for(what: Callable[[], object], timeout: float = 60.0) -> object:
    """Poll ``what`` until it is truthy (the timeout is a safety net, not a measure)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def alert_kinds(client: httpx.Client, token: str) -> list[tuple[str, int]]:
    out = client.get("/api/v1/alerts", params={"status": "all"}, headers={"Authorization": f"Bearer {token}"})
    return sorted((a["kind"], a["grade"]) for a in out.json())


def post_single(client: httpx.Client, token: str, code: str, value: float, unit: str) -> None:
    at = (dt.datetime.now(dt.UTC) - H).isoformat()
    r = client.post(
        "/api/v1/patients/P-A1/observations",
        json={"code": code, "value": value, "unit": unit, "time": at},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["grading"] == "queued"


@pytest.fixture(params=["sqlite", "postgresql"])
def served_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'proc.db'}"
    else:
        pg: PgServer = request.getfixturevalue("pg_server")
        url = pg.create_database(f"regrader_{int(time.time() * 1000)}")
    yield url, seed_template(url)


@pytest.mark.slow
def test_serve_grades_in_its_regrader_process_restarts_it_and_stops_it(
    served_url: tuple[str, dict[str, str]],
) -> None:
    url, tokens = served_url
    # a regrade cycle of an hour: only the wake-up through the pipe can grade a single write soon
    env = {"IMMUNOTOX_REGRADER": "process", "IMMUNOTOX_REGRADE_SECONDS": "3600"}
    with server(url, extra_env=env) as (proc, base):
        first = wait_for(lambda: children(proc.pid))
        assert isinstance(first, list) and len(first) == 1
        child = first[0]
        assert "regrader" in Path(f"/proc/{child}/cmdline").read_text()
        client = httpx.Client(base_url=base, timeout=30)
        nurse, doc = tokens["nurse_a"], tokens["doc_a"]
        post_single(client, nurse, "temperature", 38.9, "Cel")
        wait_for(lambda: alert_kinds(client, doc) == [("new_toxicity", 1)])
        assert client.get("/health").json()["regrade_queue"] == 0

        # the regrader dies: the server restarts it, and a write meanwhile is graded by the new one
        os.kill(child, signal.SIGKILL)
        post_single(client, nurse, "sbp", 84, "mm[Hg]")
        renewed = wait_for(lambda: [c for c in children(proc.pid) if c != child])
        assert isinstance(renewed, list)
        assert not alive(child)
        wait_for(lambda: alert_kinds(client, doc) == [("grade_increase", 2), ("new_toxicity", 1)])
        assert client.get("/health").json()["regrade_queue"] == 0
        client.close()

        # SIGTERM: the server stops gracefully and takes its regrader with it
        proc.terminate()
        assert proc.wait(timeout=30) == 0
        wait_for(lambda: not alive(renewed[0]), timeout=30)
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    assert f"regrader process {child} exited with status -9; restarting it" in err


@pytest.mark.slow
def test_a_killed_server_leaves_no_regrader_behind(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'orphan.db'}"
    seed_template(url)
    with server(url, extra_env={"IMMUNOTOX_REGRADER": "process"}) as (proc, _base):
        found = wait_for(lambda: children(proc.pid))
        assert isinstance(found, list)
        os.kill(proc.pid, signal.SIGKILL)  # no shutdown at all: the pipe closes with the process
        proc.wait()
        wait_for(lambda: not alive(found[0]), timeout=30)


@pytest.mark.slow
def test_killing_the_regrader_mid_load_loses_no_regrade(tmp_path: Path) -> None:
    """Batches keep arriving while the regrader is killed twice: every pair queued is graded in
    the end (queue rows are deleted only with the grades they produced)."""
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    tokens = seed_template(url)
    headers = {"Authorization": f"Bearer {tokens['nurse_a']}"}
    stop = threading.Event()
    sent = [0]

    def load(base: str) -> None:
        with httpx.Client(base_url=base, timeout=30, headers=headers) as client:
            while not stop.is_set():
                at = dt.datetime.now(dt.UTC) - H + dt.timedelta(milliseconds=sent[0])
                rows = [
                    {
                        "patient_id": pid,
                        "code": "temperature",
                        "value": 38.0 + sent[0] % 20 / 10,
                        "unit": "Cel",
                        "time": at.isoformat(),
                    }
                    for pid in ("P-A1", "P-A2")
                ]
                r = client.post("/api/v1/observations/batch", json={"observations": rows})
                assert r.status_code == 201, r.text
                sent[0] += 1

    env = {"IMMUNOTOX_REGRADER": "process", "IMMUNOTOX_REGRADE_SECONDS": "0.05"}
    with server(url, extra_env=env) as (proc, base):
        worker = threading.Thread(target=load, args=(base,))
        worker.start()
        try:
            for _ in range(2):
                wait_for(lambda: sent[0] >= 20)
                sent_before = sent[0]
                found = wait_for(lambda: children(proc.pid))
                assert isinstance(found, list)
                os.kill(found[0], signal.SIGKILL)
                wait_for(partial(lambda pid: not alive(pid), found[0]))
                wait_for(partial(lambda n: sent[0] >= n + 20, sent_before))  # the load went on
        finally:
            stop.set()
            worker.join(timeout=30)
        assert sent[0] >= 40
        client = httpx.Client(base_url=base, timeout=30)
        wait_for(lambda: client.get("/health").json()["regrade_queue"] == 0)
        # the stored grades are those a reader recomputes from every stored event
        for pid in ("P-A1", "P-A2"):
            read = client.get(f"/api/v1/patients/{pid}/grades", headers=headers).json()
            recomputed = {g["scale"]: g["grade"] for g in read}
            with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
                stored = dict(conn.execute(STORED, (pid,)))
            assert stored, pid
            assert stored == {k: v for k, v in recomputed.items() if k in stored}, pid
            assert stored["astct2019:crs"] == recomputed["astct2019:crs"] >= 1, pid
        client.close()


@pytest.mark.parametrize(
    ("mode", "expected"), [("process", ["migrated", "start", "run", "stop"]), ("inline", ["run"])]
)
def test_serve_starts_the_regrader_after_the_migration_and_stops_it_after_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, expected: list[str]
) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from immunotox.cli.main import app as cli
    from immunotox.service import app as service_app
    from immunotox.service import db as service_db

    order: list[str] = []
    url = f"sqlite:///{tmp_path / 's.db'}"
    monkeypatch.setenv("IMMUNOTOX_REGRADER", mode)

    def start(self: background.RegraderProcess) -> background.RegraderProcess:
        order.extend(
            ["migrated" if service_db.current_revision(url) is not None else "not migrated", "start"]
        )
        return self

    monkeypatch.setattr(background.RegraderProcess, "start", start)
    monkeypatch.setattr(background.RegraderProcess, "stop", lambda self: order.append("stop"))
    monkeypatch.setattr(uvicorn, "run", lambda app, **k: order.append("run"))
    monkeypatch.setattr(service_app, "freeze_startup_heap", lambda: None)  # not in the test process
    r = CliRunner().invoke(cli, ["serve", "--db", url, "--no-access-log"])
    assert r.exit_code == 0, r.output
    assert order == expected
