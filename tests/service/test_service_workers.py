"""Several server processes on PostgreSQL (``immunotox serve --workers N``, ``IMMUNOTOX_WORKERS``):
the setting and its refusals, the settings handed to the workers by environment, the regrader
woken by ``NOTIFY`` from any process (and still regrading on its cycle when a notification is
lost), logins valid on every worker, and the lifecycle (SIGTERM, a killed server: no orphan)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from immunotox.app import create_app
from immunotox.jurisdiction import parse_jurisdiction
from immunotox.service import background, queue
from immunotox.service.config import Settings, SettingsError, settings_environment
from immunotox.service.db import Database
from immunotox.service.pgtest import PgServer
from tests.service.conftest import PASSWORD, Template, seed_template
from tests.service.test_service_process import server
from tests.service.test_service_regrader_process import alert_kinds, alive, children, post_single, wait_for

H = dt.timedelta(hours=1)
PG = "postgresql+psycopg://u:pw@127.0.0.1:5432/d"
# three processes importing the application at once (the regrader, two workers): on a loaded
# 2-core machine the first answer took up to 70 s (a safety net, not a measure)
START = 180.0

# --- the setting ------------------------------------------------------------------------------


def test_workers_default_to_one_and_more_are_refused_on_sqlite_and_with_an_inline_regrader() -> None:
    assert Settings.from_env({}).workers == 1
    assert Settings.from_env({"IMMUNOTOX_WORKERS": "2", "IMMUNOTOX_DATABASE_URL": PG}).workers == 2
    with pytest.raises(SettingsError, match=r"^--workers / IMMUNOTOX_WORKERS = 2: expected 1 on SQLite"):
        Settings.from_env({"IMMUNOTOX_WORKERS": "2"})
    with pytest.raises(SettingsError, match=r"IMMUNOTOX_WORKERS = 0: must be >= 1"):
        Settings.from_env({"IMMUNOTOX_WORKERS": "0", "IMMUNOTOX_DATABASE_URL": PG})
    with pytest.raises(
        SettingsError, match=r"IMMUNOTOX_WORKERS = 3: expected 1 with IMMUNOTOX_REGRADER = 'inline'"
    ):
        Settings(database_url=PG, regrader="inline").with_(workers=3)
    # the sweeps run in one process only: with several workers, in the regrader process even when
    # there is no regrader (grading off, the benchmark floor)
    assert Settings(database_url=PG, grading=False, workers=2).regrader_process
    assert not Settings(database_url=PG, grading=False).regrader_process


def test_the_settings_reach_the_workers_whole_through_the_environment() -> None:
    settings = Settings(
        database_url=PG,
        workers=2,
        grading=False,
        sweep_seconds=7.5,
        jurisdiction=parse_jurisdiction("FR"),
        trusted_proxies="10.0.0.0/8",
        secure_cookies=True,
    )
    env = settings_environment(settings)
    assert Settings.from_env(env) == settings
    assert Settings.from_env(settings_environment(Settings())) == Settings()


def test_serve_refuses_several_workers_on_sqlite_naming_the_option(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from immunotox.cli.main import app as cli

    r = CliRunner().invoke(cli, ["serve", "--db", f"sqlite:///{tmp_path / 's.db'}", "--workers", "2"])
    assert r.exit_code == 2
    assert "--workers / IMMUNOTOX_WORKERS = 2: expected 1 on SQLite" in r.output
    assert not (tmp_path / "s.db").exists()  # refused before anything is created
    demo = CliRunner().invoke(cli, ["serve", "--demo", "--workers", "2"])
    assert demo.exit_code == 2
    assert "--workers = 2: expected 1 with --demo" in demo.output


def test_serve_hands_several_workers_the_factory_and_its_settings_by_environment(
    pg_template: Template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from immunotox.cli.main import app as cli

    url = pg_template.fresh_url(tmp_path)
    runs: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setenv("IMMUNOTOX_SWEEP_SECONDS", "11")
    monkeypatch.setattr(background.RegraderProcess, "start", lambda self: self)
    monkeypatch.setattr(background.RegraderProcess, "stop", lambda self: None)
    monkeypatch.setattr(uvicorn, "run", lambda target, **k: runs.append((target, k)))
    for var in settings_environment(Settings()):  # serve sets them all: restored after the test
        if var != "IMMUNOTOX_SWEEP_SECONDS":
            monkeypatch.setenv(var, "")  # empty: unset for Settings.from_env
    r = CliRunner().invoke(cli, ["serve", "--db", url, "--workers", "2", "--no-grading"])
    assert r.exit_code == 0, r.output
    [(target, options)] = runs
    assert target == "immunotox.app:served_app"
    assert options["factory"] is True and options["workers"] == 2
    got = Settings.from_env()
    assert (got.database_url, got.workers, got.grading, got.sweep_seconds) == (url, 2, False, 11.0)
    assert "2 server processes" in r.output


# --- the wake-up by NOTIFY ----------------------------------------------------------------------


@contextmanager
def regrader_running(settings: Settings) -> Iterator[Callable[[], int]]:
    """:func:`.background.run_regrader` in a thread (as in its process), stopped by closing its
    stream; yields a function counting its LISTEN connections."""
    read_fd, write_fd = os.pipe()
    stream = os.fdopen(read_fd, "rb")
    done: list[int] = []
    thread = threading.Thread(
        target=lambda: done.append(asyncio.run(background.run_regrader(settings, stream)))
    )
    thread.start()
    db = Database(settings)

    def listening() -> int:
        with db.engine.connect() as c:
            return int(
                c.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE query = :q"),
                    {"q": f"LISTEN {background.NOTIFY_CHANNEL}"},
                ).scalar_one()
            )

    try:
        yield listening
    finally:
        os.close(write_fd)
        thread.join(timeout=30)
        stream.close()
        db.dispose()
    assert done == [0]


def single_write(app: Any, template: Template) -> None:
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        at = (dt.datetime.now(dt.UTC) - H).isoformat()
        r = client.post(
            "/api/v1/patients/P-A1/observations",
            json={"code": "temperature", "value": 38.9, "unit": "Cel", "time": at},
            headers={"Authorization": f"Bearer {template.tokens['nurse_a']}"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["grading"] == "queued"


def test_a_single_write_wakes_the_regrader_by_notify_long_before_its_cycle(
    pg_template: Template, tmp_path: Path
) -> None:
    url = pg_template.fresh_url(tmp_path)
    # a cycle of an hour: only the notification can grade the write within the test
    settings = Settings(database_url=url, sweep_seconds=0, regrade_seconds=3600, workers=2)
    notify = background.wakeup_hook(settings, None)
    assert isinstance(notify, background.NotifyWakeup)
    app = create_app(settings, regrader_wakeup=notify)
    with regrader_running(settings) as listening:
        wait_for(lambda: listening() == 1)
        single_write(app, pg_template)
        wait_for(lambda: queue.pending(app.state.db) == 0)
    notify.close()
    assert notify.dropped == 0
    with app.state.db.session() as s:
        kinds = s.execute(text("SELECT kind, grade FROM alert WHERE patient_id = 'P-A1'")).all()
    assert [tuple(k) for k in kinds] == [("new_toxicity", 1)]


def test_a_lost_notification_is_regraded_by_the_cycle(pg_template: Template, tmp_path: Path) -> None:
    url = pg_template.fresh_url(tmp_path)
    settings = Settings(database_url=url, sweep_seconds=0, regrade_seconds=0.5, workers=2)
    lost: list[set[str]] = []
    app = create_app(settings, regrader_wakeup=lost.append)  # the notification never leaves
    with regrader_running(settings) as listening:
        wait_for(lambda: listening() == 1)
        single_write(app, pg_template)
        assert lost == [{"P-A1"}]
        wait_for(lambda: queue.pending(app.state.db) == 0)


def test_a_notification_that_cannot_be_sent_is_dropped_not_raised() -> None:
    from immunotox.service.pgtest import free_port

    notify = background.NotifyWakeup(
        Settings(database_url=f"postgresql+psycopg://u@127.0.0.1:{free_port()}/d")
    )
    notify({"P-A1"})  # nothing listens on that port: the write that called it is not failed
    notify({"P-A2"})
    assert notify.dropped == 2


def test_a_worker_stops_itself_when_its_parent_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    parents = iter([100, 100, 1])  # the parent, then init once it is gone
    monkeypatch.setattr(background.os, "getppid", lambda: next(parents, 1))
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(background.os, "kill", lambda pid, sig: sent.append((pid, sig)))
    background.end_with_parent(period=0.01).join(timeout=10)
    assert sent == [(os.getpid(), signal.SIGTERM)]


def test_a_worker_whose_server_died_before_it_watched_stops_at_once() -> None:
    # the server (IMMUNOTOX_SERVER_PID) is gone by the time the worker has built its app: its
    # parent is then init or a subreaper, and watching that would never end
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    code = (
        "import time\n"
        "from immunotox.service import background\n"
        "background.end_with_parent(period=0.01)\n"
        "time.sleep(30)\n"
    )
    env = dict(os.environ, **{background.SERVER_PID_ENV: str(gone.pid)})
    done = subprocess.run([sys.executable, "-c", code], env=env, timeout=25, capture_output=True)
    assert done.returncode == -signal.SIGTERM, done.stderr


# --- `immunotox serve --workers 2` ------------------------------------------------------------------


@pytest.fixture
def pg_served(pg_server: PgServer) -> tuple[str, dict[str, str]]:
    url = pg_server.create_database(f"workers_{int(time.time() * 1000)}")
    return url, seed_template(url)


def descendants(pid: int) -> list[int]:
    out = []
    for c in children(pid):
        out += [c, *descendants(c)]
    return out


@pytest.mark.slow
def test_two_workers_grade_through_one_regrader_share_logins_and_stop_together(
    pg_served: tuple[str, dict[str, str]],
) -> None:
    url, tokens = pg_served
    env = {"IMMUNOTOX_WORKERS": "2", "IMMUNOTOX_REGRADE_SECONDS": "3600"}
    with server(url, extra_env=env, start_timeout=START) as (proc, base):
        procs = wait_for(lambda: len(found := children(proc.pid)) >= 3 and found)
        assert isinstance(procs, list)
        regraders = [p for p in procs if "regrader" in Path(f"/proc/{p}/cmdline").read_text()]
        assert len(regraders) == 1
        # a login answered by one process is valid on every one: tokens and sessions are rows
        r = httpx.post(f"{base}/api/v1/auth/token", json={"username": "doc_a", "password": PASSWORD})
        assert r.status_code == 200, r.text
        fresh = r.json()["access_token"]
        for _ in range(12):  # a new connection each: accepted by either worker
            me = httpx.get(f"{base}/api/v1/auth/me", headers={"Authorization": f"Bearer {fresh}"})
            assert me.status_code == 200 and me.json()["username"] == "doc_a"
        # single writes through new connections: graded at once by the one regrader (cycle: 1 h)
        expected: list[tuple[str, int]] = []
        for (code, value, unit), alert in (
            (("temperature", 38.9, "Cel"), ("new_toxicity", 1)),
            (("sbp", 84, "mm[Hg]"), ("grade_increase", 2)),
        ):
            with httpx.Client(base_url=base, timeout=30) as client:
                post_single(client, tokens["nurse_a"], code, value, unit)
            expected = sorted([*expected, alert])
            with httpx.Client(base_url=base, timeout=30) as client:
                wait_for(partial(lambda want, c: alert_kinds(c, fresh) == want, expected, client))
        with httpx.Client(base_url=base, timeout=30) as client:
            assert client.get("/health").json()["regrade_queue"] == 0
        everyone = descendants(proc.pid)
        proc.terminate()
        assert proc.wait(timeout=30) == 0
        for pid in everyone:
            wait_for(lambda pid=pid: not alive(pid), timeout=30)


@pytest.mark.slow
def test_a_killed_server_leaves_neither_workers_nor_regrader_behind(
    pg_served: tuple[str, dict[str, str]],
) -> None:
    url, _tokens = pg_served
    with server(url, extra_env={"IMMUNOTOX_WORKERS": "2"}, start_timeout=START) as (proc, _base):
        wait_for(lambda: len(children(proc.pid)) >= 3)
        everyone = descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)  # no shutdown at all
        proc.wait()
        for pid in everyone:
            wait_for(lambda pid=pid: not alive(pid), timeout=30)
