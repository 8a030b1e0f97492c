"""The demo ward (``immunotox serve --demo``) and the bootstrap commands."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import warnings
from pathlib import Path

from sqlalchemy import text

from immunotox.app import create_app
from immunotox.service import demo
from immunotox.service.config import Settings
from immunotox.service.db import Database, migrate
from tests.service.conftest import ManualClock

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

START = dt.datetime(2025, 6, 1, 8, 0, tzinfo=dt.UTC)


def test_builtin_ward_grade_rises_and_alert_fires_as_the_clock_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    migrate(url)
    settings = Settings(database_url=url, sweep_seconds=0, demo=True)
    ward = demo.builtin_ward(START)
    assert [r["time"] for r in ward.rows] == sorted(r["time"] for r in ward.rows)
    db = Database(settings)
    try:
        stored = demo.seed(db, settings, ward, START)
        assert stored > 0
        with db.engine.connect() as conn:
            before = conn.execute(
                text(
                    "SELECT grade FROM current_grade WHERE patient_id = 'DEMO-01' AND scale = 'astct2019:crs'"
                )
            ).scalar()
        assert before == 0
        clock = ManualClock(START)
        replayer = demo.Replayer(db, settings, clock, ward.rows, START)
        clock.advance(hours=1, minutes=30)
        assert replayer.step() > 0
        with db.engine.connect() as conn:
            grade = conn.execute(
                text(
                    "SELECT grade FROM current_grade WHERE patient_id = 'DEMO-01' AND scale = 'astct2019:crs'"
                )
            ).scalar()
            kinds = [r[0] for r in conn.execute(text("SELECT kind FROM alert WHERE patient_id = 'DEMO-01'"))]
        assert grade == 2  # fever 38.9 °C and SBP 84 mmHg in an adult: ASTCT grade 2
        assert "new_toxicity" in kinds
        assert replayer.step() == 0  # nothing new until the clock moves
    finally:
        db.dispose()


def test_demo_accounts_log_in_and_see_their_scope(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    migrate(url)
    settings = Settings(database_url=url, sweep_seconds=0, demo=True)
    db = Database(settings)
    try:
        demo.seed(db, settings, demo.builtin_ward(START), START)
    finally:
        db.dispose()
    with TestClient(create_app(settings, clock=ManualClock(START))) as c:
        seen = {}
        for a in demo.ACCOUNTS:
            r = c.post("/api/v1/auth/token", json={"username": a.username, "password": a.password})
            assert r.status_code == 200, a.username
            h = {"Authorization": f"Bearer {r.json()['access_token']}"}
            seen[a.username] = sorted(p["id"] for p in c.get("/api/v1/patients", headers=h).json())
    assert seen["medecin"] == ["DEMO-01", "DEMO-02", "DEMO-03", "DEMO-04"]
    assert seen["infirmiere"] == ["DEMO-01", "DEMO-02"]
    assert seen["infirmier-b"] == ["DEMO-03", "DEMO-04"]
    assert seen["patient"] == ["DEMO-01"]


def test_simulated_ward_places_a_crs_onset_early_in_the_demo() -> None:
    ward = demo.simulated_ward(START, n_patients=6, seed=7)
    assert ward.source == "immunotox.simulate" and len(ward.patients) == 6
    assert {p.unit_id for p in ward.patients} == {"hemato-a", "hemato-b"}
    first = ward.patients[0].id
    early = [
        r
        for r in ward.rows
        if r["patient_id"] == first
        and r["code"] == "temperature"
        and START <= r["time"] <= START + dt.timedelta(hours=2)
    ]
    assert any(float(r["value"]) >= 38.0 for r in early)


def test_create_unit_and_user_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'boot.db'}"
    exe = [sys.executable, "-m", "immunotox"]
    env = dict(os.environ, NEW_PW="a long password")
    r = subprocess.run(
        [*exe, "create-unit", "hemato-a", "--name", "Hématologie A", "--db", url],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [
            *exe,
            "create-user",
            "chef",
            "--role",
            "physician",
            "--unit",
            "hemato-a",
            "--password-env",
            "NEW_PW",
            "--db",
            url,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [
            *exe,
            "create-user",
            "x",
            "--role",
            "nurse",
            "--unit",
            "nowhere",
            "--password-env",
            "NEW_PW",
            "--db",
            url,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert r.returncode == 2 and r.stderr.startswith("error: --unit = 'nowhere'")
    with TestClient(create_app(Settings(database_url=url, sweep_seconds=0))) as c:
        r = c.post("/api/v1/auth/token", json={"username": "chef", "password": "a long password"})
        assert r.status_code == 200 and r.json()["user"]["unit_ids"] == ["hemato-a"]
