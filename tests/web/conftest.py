"""Fixtures of the web UI tests: the real service app with the UI mounted, on a fresh SQLite
database per test (copied from a template migrated and seeded once), driven by TestClient
through the real login form, cookies and CSRF tokens."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from immunotox.app import create_app
from immunotox.jurisdiction import optional_jurisdiction
from immunotox.service import audit, bootstrap, ingest
from immunotox.service.config import Settings
from immunotox.service.db import Database, migrate
from immunotox.service.models import Alert, AuditEvent, ClinicalEvent, Patient
from immunotox.web import mount_web
from immunotox.web.security import CSRF_COOKIE, CSRF_FIELD
from tests.service.conftest import PASSWORD, T0, USERS, ManualClock

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PHONE_A = "+33 1 11 11 11 11"


def _feed(db: Database, settings: Settings, pid: str, rows: list[dict[str, Any]], now: dt.datetime) -> None:
    """Record rows through the service's ingest path (grading and alerts on)."""
    with db.writing() as s:
        patient = s.get(Patient, pid)
        assert patient is not None
        prepared = [ingest.prepare(pid, r, now=now, settings=settings) for r in rows]
        events = ingest.store(s, prepared, user_id=None, source="api", now=now)
        ingest.after_write(s, [patient], events, now=now, settings=settings, ctx=audit.SYSTEM)


def seed(url: str) -> None:
    migrate(url)
    settings = Settings(database_url=url, sweep_seconds=0)
    db = Database(settings)
    try:
        with db.writing() as s:
            bootstrap.ensure_unit(s, "unit-a", "Unité A", now=T0, phone=PHONE_A)
            bootstrap.ensure_unit(s, "unit-b", "Unité B", now=T0, phone="+33 1 22 22 22 22")
            s.add_all(
                [
                    Patient(
                        id="P-A1",
                        unit_id="unit-a",
                        display_name="Adulte A1",
                        birth_date=dt.date(1960, 5, 1),
                        therapy_class="car_t",
                        product="axi-cel",
                        weight_kg=70.0,
                        infusion_at=T0 - dt.timedelta(days=2),
                        created_at=T0,
                        updated_at=T0,
                    ),
                    Patient(
                        id="P-A2",
                        unit_id="unit-a",
                        display_name="Enfant A2",
                        birth_date=dt.date(2017, 1, 1),
                        therapy_class="car_t",
                        product="tisa-cel",
                        weight_kg=25.0,
                        infusion_at=T0 - dt.timedelta(days=1),
                        created_at=T0,
                        updated_at=T0,
                    ),
                    Patient(
                        id="P-B1",
                        unit_id="unit-b",
                        display_name="Adulte B1",
                        birth_date=dt.date(1955, 1, 1),
                        therapy_class="car_t",
                        product="axi-cel",
                        weight_kg=80.0,
                        infusion_at=T0 - dt.timedelta(days=3),
                        created_at=T0,
                        updated_at=T0,
                    ),
                ]
            )
            s.flush()
            for name, (role, units, patient) in USERS.items():
                bootstrap.create_user(
                    s, name, PASSWORD, role, now=T0, unit_ids=units, patient_id=patient, display_name=name
                )
        t = T0 - dt.timedelta(hours=1)
        # P-A1: a fever -> CRS grade 1 and a new-toxicity alert
        _feed(
            db,
            settings,
            "P-A1",
            [
                {"code": "temperature", "time": t, "value": 38.5, "unit": "Cel"},
                {"code": "sbp", "time": t, "value": 118, "unit": "mm[Hg]"},
                {"code": "spo2", "time": t, "value": 97, "unit": "%"},
            ],
            T0,
        )
        _feed(db, settings, "P-B1", [{"code": "temperature", "time": t, "value": 38.9, "unit": "Cel"}], T0)
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.dispose()


@pytest.fixture(scope="session")
def web_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("web-template") / "template.db"
    seed(f"sqlite:///{path}")
    return path


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')
KEY_RE = re.compile(r'name="form_key" value="([^"]+)"')


@dataclass
class Web:
    """The app with the UI on a fresh database, and helpers to drive it like a browser."""

    client: TestClient
    clock: ManualClock
    db: Database
    settings: Settings

    def login(self, user: str, password: str = PASSWORD) -> Any:
        page = self.client.get("/login")
        token = CSRF_RE.search(page.text)
        assert token is not None
        return self.client.post(
            "/login",
            data={"username": user, "password": password, CSRF_FIELD: token.group(1)},
            follow_redirects=False,
        )

    def csrf(self) -> str:
        token = self.client.cookies.get(CSRF_COOKIE)
        assert token, "no CSRF cookie: log in first"
        return str(token)

    def post(self, path: str, data: dict[str, Any], *, csrf: bool = True, **kw: Any) -> Any:
        body = dict(data)
        if csrf:
            body[CSRF_FIELD] = self.csrf()
        return self.client.post(path, data=body, follow_redirects=False, **kw)

    def events(self, pid: str, code: str) -> list[ClinicalEvent]:
        with self.db.session() as s:
            q = select(ClinicalEvent).where(ClinicalEvent.patient_id == pid, ClinicalEvent.code == code)
            return list(s.scalars(q.order_by(ClinicalEvent.id)))

    def alerts(self, pid: str | None = None) -> list[Alert]:
        with self.db.session() as s:
            q = select(Alert)
            if pid is not None:
                q = q.where(Alert.patient_id == pid)
            return list(s.scalars(q.order_by(Alert.id)))

    def audit(self, action: str) -> list[AuditEvent]:
        with self.db.session() as s:
            return list(
                s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))
            )


@pytest.fixture
def web(web_template: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Web]:
    """The app on a fresh copy of the seeded database; ``indirect`` parametrization with a
    jurisdiction code sets IMMUNOTOX_JURISDICTION (none by default)."""
    target = tmp_path / "web.db"
    shutil.copy(web_template, target)
    jurisdiction = optional_jurisdiction(getattr(request, "param", None))
    settings = Settings(database_url=f"sqlite:///{target}", sweep_seconds=0, jurisdiction=jurisdiction)
    clock = ManualClock(T0)
    app = create_app(settings, clock=clock)
    mount_web(app)
    with TestClient(app) as client:
        yield Web(client, clock, app.state.db, settings)
