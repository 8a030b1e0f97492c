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


def test_simulated_ward_grades_the_checkpoint_inhibitor_hepatitis_completely(tmp_path: Path) -> None:
    """Issue 17: the demo's patients have a sex and their laboratory results carry the site's
    reference interval for that sex and age, so the ASCO 2021 hepatitis needs no upper limit of
    normal (only the bedside finding of liver dysfunction stays missing) and the CTCAE ALT term is
    a complete grade; a checkpoint-inhibitor patient's liver tests, at grade 1 before the start,
    reach grade 2 (AST or ALT > 3 x ULN) 45 simulated minutes after it, with its alert, while the
    other one's colitis reaches grade 2 at 30 minutes."""
    from immunotox import labs

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    migrate(url)
    settings = Settings(database_url=url, sweep_seconds=0, demo=True)
    ward = demo.simulated_ward(START, n_patients=4, seed=7)
    ici = [p for p in ward.patients if p.therapy_class == "checkpoint_inhibitor"]
    assert len(ici) == 2 and all(p.sex in ("female", "male") for p in ward.patients)
    colitis_pid, liver = ici[0].id, ici[1]
    assert liver.birth_date is not None
    age = (START.date() - liver.birth_date).days // 365.25
    ratios = []
    for code in ("alt", "ast"):
        iv = labs.default_interval(code, liver.sex, age)
        assert iv is not None
        rows = [r for r in ward.rows if r["patient_id"] == liver.id and r["code"] == code]
        assert rows and all((r["ref_low"], r["ref_high"]) == (iv.low, iv.high) for r in rows)
        ratios += [(r["time"], float(r["value"]) / iv.high) for r in rows]
    assert min(t for t, x in ratios if x > 3) == START + dt.timedelta(minutes=45)
    assert 1 < max(x for t, x in ratios if t <= START) <= 3  # grade 1 before the start

    def state(pid: str, scale: str) -> tuple[tuple[object, ...] | None, list[tuple[str, int]]]:
        with db.engine.connect() as conn:
            g = conn.execute(
                text(
                    "SELECT r.grade, r.grade_lo, r.complete, r.missing FROM current_grade c"
                    " JOIN grade_record r ON r.id = c.grade_record_id"
                    " WHERE c.patient_id = :p AND c.scale = :s"
                ),
                {"p": pid, "s": scale},
            ).first()
            alerts = conn.execute(
                text("SELECT kind, grade FROM alert WHERE patient_id = :p AND scale = :s ORDER BY id"),
                {"p": pid, "s": scale},
            ).all()
        return (tuple(g) if g is not None else None), [(k, gr) for k, gr in alerts]

    db = Database(settings)
    try:
        demo.seed(db, settings, ward, START)
        with db.engine.connect() as conn:
            sexes = dict(conn.execute(text("SELECT id, sex FROM patient")).all())
        assert sexes == {p.id: p.sex for p in ward.patients}
        hepatitis = "asco2021:hepatitis"
        assert state(liver.id, hepatitis)[0] == (1, 1, False, '["liver_dysfunction"]')
        alt_term = state(liver.id, "ctcae5:alanine-aminotransferase-increased")[0]
        assert alt_term is not None and alt_term[2] and alt_term[0] == alt_term[1]
        clock = ManualClock(START)
        replayer = demo.Replayer(db, settings, clock, ward.rows, START)
        clock.advance(hours=1)  # 30 s of demo at 120x
        replayer.step()
        grade, alerts = state(liver.id, hepatitis)
        assert grade == (2, 2, False, '["liver_dysfunction"]') and alerts[-1] == ("grade_increase", 2)
        grade, alerts = state(colitis_pid, "asco2021:colitis")
        assert grade is not None and grade[0] == 2 and alerts[-1] == ("grade_increase", 2)
    finally:
        db.dispose()
