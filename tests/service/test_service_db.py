"""Migrations, settings, the code vocabulary and the PostgreSQL test server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text

from immunotox.errors import FindingError, UnitError
from immunotox.service import codes
from immunotox.service.config import Settings, SettingsError
from immunotox.service.db import alembic_config, as_utc, current_revision, make_engine, migrate
from immunotox.service.models import Base
from immunotox.service.pgtest import PgServer, find_binary


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    pg: PgServer = request.getfixturevalue("pg_server")
    return pg.create_database(f"mig_{abs(hash(str(tmp_path))) % 10**8}")


def test_migrations_create_exactly_the_models_and_downgrade_cleanly(empty_url: str) -> None:
    assert current_revision(empty_url) is None
    migrate(empty_url)
    migrate(empty_url)  # idempotent
    assert current_revision(empty_url) == "0004"
    engine = make_engine(Settings(database_url=empty_url))
    try:
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert diff == []
    finally:
        engine.dispose()
    command.downgrade(alembic_config(empty_url), "base")
    assert current_revision(empty_url) is None
    migrate(empty_url)
    assert current_revision(empty_url) == "0004"


def _unit_and_patient(conn: Connection, t: str) -> None:
    """Unit 'u' and CAR-T patient 'p', created at ``t``, written in SQL (the migrations' tests
    run before the ORM's tables exist at their final revision)."""
    conn.execute(text(f"INSERT INTO care_unit (id, name, created_at) VALUES ('u', 'U', '{t}')"))
    conn.execute(
        text(
            "INSERT INTO patient (id, unit_id, display_name, therapy_class, active, created_at,"
            f" updated_at) VALUES ('p', 'u', '', 'car_t', true, '{t}', '{t}')"
        )
    )


def test_migration_0003_keeps_the_rows_and_the_append_only_triggers(empty_url: str) -> None:
    """Reference intervals (0003) are added to a stream that already holds events: the rows are
    kept with no interval, and UPDATE stays refused (a table copy would drop the triggers)."""
    command.upgrade(alembic_config(empty_url), "0002")
    engine = make_engine(Settings(database_url=empty_url))
    t = "2025-03-10 12:00:00+00:00"
    try:
        with engine.begin() as conn:
            _unit_and_patient(conn, t)
            conn.execute(
                text(
                    "INSERT INTO clinical_event (patient_id, kind, code, time, value, value_num, unit,"
                    f" source, status, recorded_at) VALUES ('p', 'observation', 'alt', '{t}', '25', 25,"
                    f" 'U/L', 'api', 'final', '{t}')"
                )
            )
        migrate(empty_url)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT value_num, ref_low, ref_high FROM clinical_event")).all()
            assert [tuple(r) for r in rows] == [(25.0, None, None)]
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text("UPDATE clinical_event SET ref_high = 40"))
    finally:
        engine.dispose()
    command.downgrade(alembic_config(empty_url), "0002")
    assert current_revision(empty_url) == "0002"


def test_migration_0004_keeps_the_queued_regrades(empty_url: str) -> None:
    """The regrade queue becomes append-only (0004): a regrade queued before the upgrade (left by
    a crash) is still queued after it, and a downgrade coalesces a pair's rows back into one."""
    command.upgrade(alembic_config(empty_url), "0003")
    engine = make_engine(Settings(database_url=empty_url))
    t, later = "2025-03-10 12:00:00+00:00", "2025-03-10 13:00:00+00:00"
    try:
        with engine.begin() as conn:
            _unit_and_patient(conn, t)
            conn.execute(
                text(
                    'INSERT INTO regrade_queue (patient_id, scale, latest, interval_start, "full",'
                    f" queued_at) VALUES ('p', 'astct2019:crs', '{t}', NULL, false, '{t}')"
                )
            )
        migrate(empty_url)
        queue_rows = text(
            'SELECT patient_id, scale, latest, interval_start, "full", queued_at FROM regrade_queue'
        )
        with engine.begin() as conn:
            before = [tuple(r) for r in conn.execute(queue_rows)]
            assert [r[:2] for r in before] == [("p", "astct2019:crs")]
            # a second write of the pair appends its own row
            conn.execute(
                text(
                    'INSERT INTO regrade_queue (patient_id, scale, latest, interval_start, "full",'
                    f" queued_at) VALUES ('p', 'astct2019:crs', '{later}', NULL, true, '{later}')"
                )
            )
            assert conn.execute(text("SELECT count(*) FROM regrade_queue")).scalar() == 2
        command.downgrade(alembic_config(empty_url), "0003")
        with engine.connect() as conn:
            (pid, scale, latest, start, full, queued_at), *more = conn.execute(queue_rows).all()
        assert more == [] and (pid, scale, start, bool(full)) == ("p", "astct2019:crs", None, True)
        assert as_utc(_timestamp(latest)) == dt.datetime(2025, 3, 10, 13, tzinfo=dt.UTC)
        assert as_utc(_timestamp(queued_at)) == dt.datetime(2025, 3, 10, 12, tzinfo=dt.UTC)
    finally:
        engine.dispose()


def _timestamp(value: object) -> dt.datetime:
    """A timestamp read without the model's types (SQLite: ISO text)."""
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    migrate(url)
    engine = make_engine(Settings(database_url=url))
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    finally:
        engine.dispose()


def test_settings_from_environment() -> None:
    s = Settings.from_env(
        {
            "IMMUNOTOX_DATABASE_URL": "postgresql+psycopg://u@h/db",
            "IMMUNOTOX_GRADING": "off",
            "IMMUNOTOX_ESCALATION_MINUTES": "15",
        }
    )
    assert (s.database_url, s.grading, s.escalation_minutes, s.is_sqlite) == (
        "postgresql+psycopg://u@h/db",
        False,
        15.0,
        False,
    )
    assert Settings.from_env({}).database_url == "sqlite:///./immunotox.db"
    with pytest.raises(SettingsError, match="IMMUNOTOX_GRADING = 'maybe'"):
        Settings.from_env({"IMMUNOTOX_GRADING": "maybe"})
    with pytest.raises(SettingsError, match="IMMUNOTOX_ESCALATION_MINUTES"):
        Settings.from_env({"IMMUNOTOX_ESCALATION_MINUTES": "-1"})
    with pytest.raises(SettingsError, match="only sqlite"):
        Settings.from_env({"IMMUNOTOX_DATABASE_URL": "mysql://x"})
    with pytest.raises(SettingsError, match="SYNCHRONOUS"):
        Settings.from_env({"IMMUNOTOX_SQLITE_SYNCHRONOUS": "sometimes"})


def test_jurisdiction_setting_is_explicit_and_checked() -> None:
    """IMMUNOTOX_JURISDICTION: a code or an ISO country; unset means none (never a default);
    an unknown value stops start-up naming the variable."""
    assert Settings.from_env({}).jurisdiction is None
    fr = Settings.from_env({"IMMUNOTOX_JURISDICTION": "FR"}).jurisdiction
    assert fr is not None and fr.code == "EU"
    us = Settings.from_env({}, jurisdiction="us").jurisdiction
    assert us is not None and us.code == "US"
    with pytest.raises(SettingsError, match=r"^IMMUNOTOX_JURISDICTION = 'Mars': unknown jurisdiction"):
        Settings.from_env({"IMMUNOTOX_JURISDICTION": "Mars"})


def test_naive_times_are_utc() -> None:
    assert as_utc(dt.datetime(2025, 1, 1, 12)) == dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC)
    paris = dt.timezone(dt.timedelta(hours=1))
    assert as_utc(dt.datetime(2025, 1, 1, 13, tzinfo=paris)) == dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("code", "value", "unit", "canon", "canon_unit"),
    [
        ("temperature", 38.0, "Cel", "38", "Cel"),
        ("8310-5", "100.4", "[degF]", "38", "Cel"),  # LOINC alias; 100.4 °F = 38.0 °C
        ("creatinine", 88.4, "umol/L", "0.9999808", "mg/dL"),  # 113.12 g/mol
        ("platelets", 75000, "/uL", "75", "10*9/L"),
        ("crp", 3.0, "mg/dL", "30", "mg/L"),
        ("vasopressor", "Noradrenaline", None, "norepinephrine", ""),
        ("raised_icp_signs", "TRUE", None, "true", ""),
        ("ice_score", 7.0, None, "7", ""),
    ],
)
def test_codes_normalize_to_the_canonical_form(
    code: str, value: object, unit: str | None, canon: str, canon_unit: str
) -> None:
    n = codes.normalize(codes.resolve(code), value, unit)
    assert (n.value, n.unit) == (canon, canon_unit)


@pytest.mark.parametrize(
    ("code", "value", "unit", "field", "error"),
    [
        ("temperature", 45.1, "Cel", "value", FindingError),
        ("temperature", 24.9, "Cel", "value", FindingError),
        ("temperature", 38, "mg", "unit", UnitError),
        ("temperature", 38, "furlong", "unit", UnitError),
        ("spo2", float("nan"), "%", "value", FindingError),
        ("ice_score", 7.5, None, "value", FindingError),
        ("ice_score", 7, "%", "unit", FindingError),
        ("seizure", "yes", None, "value", FindingError),
        ("fluid_bolus", "NaCl 0.9%", None, "value", FindingError),
    ],
)
def test_codes_refuse_bad_values_naming_the_field(
    code: str, value: object, unit: str | None, field: str, error: type
) -> None:
    with pytest.raises(error) as exc:
        codes.normalize(codes.resolve(code), value, unit)
    assert exc.value.field == field


def test_range_edges_are_inclusive() -> None:
    assert codes.normalize(codes.resolve("temperature"), 45.0, "Cel").value == "45"
    assert codes.normalize(codes.resolve("temperature"), 25.0, "Cel").value == "25"


def test_every_contract_code_is_known() -> None:
    contract = {
        *("temperature", "sbp", "dbp", "map", "heart_rate", "resp_rate", "spo2", "oxygen", "o2_flow", "fio2"),
        *("vasopressor", "antipyretic", "tocilizumab", "corticosteroid", "anakinra", "fluid_bolus"),
        *("ice_score", "ice_orientation", "ice_naming", "ice_commands", "ice_writing", "ice_attention"),
        *("capd_score", "consciousness", "seizure", "motor", "cerebral_edema", "raised_icp_signs"),
        *("anc", "wbc", "lymphocytes", "platelets", "hemoglobin", "crp", "ferritin", "ldh", "creatinine"),
        *("alt", "ast", "bilirubin", "fibrinogen", "il6", "infusion", "death", "age", "weight"),
    }
    assert contract <= set(codes.vocabulary())
    loinc = (
        "8310-5 8480-6 8462-4 8478-0 8867-4 59408-5 2708-6 3151-8 3150-0 751-8 26499-4 777-3 26515-7 718-7 "
        "1988-5 2276-4 2532-0 2160-0 1742-6 1920-8 1975-2 3255-7"
    )
    assert set(loinc.split()) <= set(codes.loinc_index())


def test_postgres_binaries_are_found_when_installed() -> None:
    found = find_binary("initdb")
    if found is None:
        pytest.skip("PostgreSQL server binaries not installed")
    assert Path(found).name == "initdb"
