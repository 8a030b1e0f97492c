"""Fixtures of the service tests: a real database per test, on SQLite and on PostgreSQL.

PostgreSQL is a real server (Debian's ``postgresql`` package) started once per session by
:class:`immunotox.service.pgtest.PgServer` on a temporary directory and a free port; tests that
use it are skipped, with the reason, only when the server binaries are absent.

Each backend gets a *template* database, migrated and seeded once (units, patients, users, API
tokens); every test gets a fresh copy (SQLite: a file copy; PostgreSQL: ``CREATE DATABASE ...
TEMPLATE``), so tests never see each other's data and argon2 hashing runs once per session.
"""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from immunotox.app import create_app
from immunotox.service import bootstrap
from immunotox.service.auth import issue_token
from immunotox.service.config import Settings
from immunotox.service.db import Clock, Database, migrate
from immunotox.service.models import Patient, User
from immunotox.service.pgtest import PgServer, PgUnavailable

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette warns that httpx will be replaced by httpx2
    from fastapi.testclient import TestClient

T0 = dt.datetime(2025, 3, 10, 12, 0, tzinfo=dt.UTC)
PASSWORD = "correct horse battery"

# username -> (role, units, patient)
USERS: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    "admin": ("admin", (), None),
    "doc_a": ("physician", ("unit-a",), None),
    "nurse_a": ("nurse", ("unit-a",), None),
    "doc_b": ("physician", ("unit-b",), None),
    "nurse_b": ("nurse", ("unit-b",), None),
    "pat_a1": ("patient", (), "P-A1"),
    "pat_b1": ("patient", (), "P-B1"),
}


class ManualClock(Clock):
    """A clock the test moves by hand."""

    def __init__(self, t: dt.datetime) -> None:
        self.t = t

    def now(self) -> dt.datetime:
        return self.t

    def advance(self, **kw: float) -> dt.datetime:
        self.t += dt.timedelta(**kw)
        return self.t


def seed_template(url: str) -> dict[str, str]:
    """Migrate and seed ``url``; return an API token per user."""
    migrate(url)
    db = Database(Settings(database_url=url))
    tokens: dict[str, str] = {}
    try:
        with db.writing() as s:
            bootstrap.ensure_unit(s, "unit-a", "Unit A", now=T0, phone="+33 1 11 11 11 11")
            bootstrap.ensure_unit(s, "unit-b", "Unit B", now=T0, phone="+33 1 22 22 22 22")
            s.add_all(
                [
                    Patient(
                        id="P-A1",
                        unit_id="unit-a",
                        display_name="Adult A1",
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
                        display_name="Child A2",
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
                        display_name="Adult B1",
                        birth_date=dt.date(1955, 1, 1),
                        therapy_class="checkpoint_inhibitor",
                        product="pembrolizumab",
                        weight_kg=80.0,
                        infusion_at=T0 - dt.timedelta(days=20),
                        created_at=T0,
                        updated_at=T0,
                    ),
                ]
            )
            s.flush()
            for name, (role, units, patient) in USERS.items():
                user = bootstrap.create_user(
                    s, name, PASSWORD, role, now=T0, unit_ids=units, patient_id=patient
                )
                tokens[name] = issue_token(s, user, now=T0, ttl_hours=24 * 365 * 10).token
        if db.dialect == "sqlite":
            with db.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.dispose()
    return tokens


@dataclass
class Template:
    backend: str
    tokens: dict[str, str]
    sqlite_path: Path | None = None
    pg: PgServer | None = None
    pg_name: str | None = None
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def fresh_url(self, tmp_path: Path) -> str:
        n = next(self.counter)
        if self.backend == "sqlite":
            assert self.sqlite_path is not None
            target = tmp_path / f"test-{n}.db"
            shutil.copy(self.sqlite_path, target)
            return f"sqlite:///{target}"
        assert self.pg is not None
        import psycopg

        name = f"t_{n}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.pg.port} user=postgres dbname=postgres", autocommit=True
        ) as c:
            c.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.pg_name}"')
        return self.pg.url(name)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    try:
        server = PgServer()
    except PgUnavailable as exc:
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    path = tmp_path_factory.mktemp("template") / "template.db"
    tokens = seed_template(f"sqlite:///{path}")
    return Template("sqlite", tokens, sqlite_path=path)


@pytest.fixture(scope="session")
def pg_template(pg_server: PgServer) -> Template:
    url = pg_server.create_database("template_seeded")
    tokens = seed_template(url)
    return Template("postgresql", tokens, pg=pg_server, pg_name="template_seeded")


@pytest.fixture(params=["sqlite", "postgresql"])
def template(request: pytest.FixtureRequest) -> Template:
    name = "sqlite_template" if request.param == "sqlite" else "pg_template"
    tpl: Template = request.getfixturevalue(name)
    return tpl


@dataclass
class Service:
    """A running app on a fresh database, with helpers to call it as a given user."""

    client: TestClient
    clock: ManualClock
    db: Database
    settings: Settings
    tokens: dict[str, str]
    backend: str

    def h(self, user: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}", **extra}

    def get(self, user: str, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self.h(user, **kw.pop("headers", {})), **kw)

    def post(self, user: str, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.post(path, json=json, headers=self.h(user, **kw.pop("headers", {})), **kw)

    def patch(self, user: str, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.patch(path, json=json, headers=self.h(user, **kw.pop("headers", {})), **kw)

    def obs(
        self,
        user: str,
        pid: str,
        code: str,
        value: Any,
        unit: str | None = None,
        *,
        at: dt.datetime | None = None,
        **kw: Any,
    ) -> Any:
        body = {
            "code": code,
            "value": value,
            "unit": unit,
            "time": (at or self.clock.now()).isoformat(),
            **kw,
        }
        return self.post(user, f"/api/v1/patients/{pid}/observations", body)

    def sql(self, statement: str) -> list[Any]:
        with self.db.engine.connect() as conn:
            return list(conn.execute(text(statement)).all())

    def user_id(self, name: str) -> int:
        with self.db.session() as s:
            uid = s.query(User.id).filter(User.username == name).scalar()
            assert uid is not None
            return int(uid)


def make_service(template: Template, tmp_path: Path, **settings: Any) -> Iterator[Service]:
    url = template.fresh_url(tmp_path)
    cfg = Settings(database_url=url, **{"sweep_seconds": 0, "regrade_seconds": 0, **settings})
    clock = ManualClock(T0)
    app = create_app(cfg, clock=clock)
    with TestClient(app) as client:
        yield Service(client, clock, app.state.db, cfg, template.tokens, template.backend)


@pytest.fixture
def svc(template: Template, tmp_path: Path) -> Iterator[Service]:
    """The service on SQLite and on PostgreSQL (each test runs on both)."""
    yield from make_service(template, tmp_path)


@pytest.fixture
def sqlite_svc(sqlite_template: Template, tmp_path: Path) -> Iterator[Service]:
    """The service on SQLite only (for tests whose subject is not the database)."""
    yield from make_service(sqlite_template, tmp_path)
