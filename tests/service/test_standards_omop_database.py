"""OMOP tables in a database (issue 21): ``read_omop`` and ``immunotox timeline`` given a
SQLAlchemy URL read the same rows as from the folder - on SQLite and on a real PostgreSQL server
(the service tests' session server, ``pg_server`` of ``tests/service/conftest.py``: Debian's
``postgresql`` package; skipped with the reason only when its binaries are absent)."""

from __future__ import annotations

import csv
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from immunotox.service.pgtest import PgServer
from immunotox.simulate import simulate_cohort
from immunotox.standards import StandardsError, grade_omop, read_omop, write_omop

Cli = Callable[..., subprocess.CompletedProcess[str]]
SCALES = "astct2019:crs,astct2019:icans"
OUTPUTS = ("grades", "daily_max", "episodes", "patients")


def _type(column: str) -> sa.types.TypeEngine[object]:
    """The column type an OMOP database gives (CDM v5.4 DDL: dates, date-times, integers, numbers)."""
    if column.endswith("_datetime"):
        return sa.DateTime(timezone=True)
    if column.endswith("_date"):
        return sa.Date()
    if column in ("value_as_number", "quantity"):
        return sa.Float()
    if (
        column.endswith(("_concept_id", "_of_birth"))
        or column in ("person_id", "visit_occurrence_id")
        or (
            column.endswith("_id")
            and column.removesuffix("_id")
            in (
                "measurement",
                "observation",
                "drug_exposure",
                "device_exposure",
                "procedure_occurrence",
                "visit_detail",
                "concept",
            )
        )
    ):
        return sa.BigInteger()
    return sa.Text()


def load_folder(folder: Path, url: str, schema: str | None = None) -> None:
    """Copy every CSV table of ``folder`` into the database at ``url`` with typed columns."""
    import datetime as dt

    engine = sa.create_engine(url)
    meta = sa.MetaData(schema=schema)
    with engine.begin() as conn:
        if schema is not None:
            conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
        for path in sorted(folder.glob("*.csv")):
            with path.open(newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
                cols = list(rows[0]) if rows else []
            if not cols:
                continue
            table = sa.Table(path.stem, meta, *(sa.Column(c, _type(c)) for c in cols))
            table.create(conn)

            def cell(c: str, v: str) -> object:
                if v == "":
                    return None
                t = _type(c)
                if isinstance(t, sa.DateTime):
                    return dt.datetime.fromisoformat(v)
                if isinstance(t, sa.Date):
                    return dt.date.fromisoformat(v)
                if isinstance(t, sa.Float):
                    return float(v)
                if isinstance(t, sa.BigInteger):
                    return int(v)
                return v

            conn.execute(table.insert(), [{c: cell(c, r[c]) for c in cols} for r in rows])
    engine.dispose()


@pytest.fixture(scope="module")
def omop_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("omop")
    cohort = simulate_cohort(25, days=10, seed=8, products=["axi-cel", "cilta-cel"])
    counts = write_omop(cohort.observations, folder)
    assert counts["VISIT_DETAIL"] > 0  # the simulated ICU stays
    return folder


def _same_read(folder: Path, url: str) -> None:
    a, b = read_omop(folder), read_omop(url)
    assert a.rejected_rows == b.rejected_rows == 0
    assert a.source_rows == b.source_rows
    assert [f.split(".")[0].lower() for f, _ in a.provenance] == [f.lower() for f, _ in b.provenance]
    assert [r for _, r in a.provenance] == [r for _, r in b.provenance]
    ga, gb = grade_omop(folder, SCALES), grade_omop(url, SCALES)
    for name in OUTPUTS:
        ta, tb = getattr(ga, name), getattr(gb, name)
        assert ta.num_rows > 0 and ta.equals(tb), name


def test_sqlite_database_reads_as_the_folder(omop_folder: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cdm.db'}"
    load_folder(omop_folder, url)
    _same_read(omop_folder, url)


@pytest.mark.slow
def test_postgresql_database_reads_as_the_folder(omop_folder: Path, pg_server: PgServer) -> None:
    url = pg_server.create_database("cdm")
    load_folder(omop_folder, url, schema="cdm54")
    _same_read(omop_folder, url + "?schema=cdm54")


def test_cli_timeline_on_a_database_url(cli: Cli, omop_folder: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cdm.db'}"
    load_folder(omop_folder, url)
    for src, out in ((str(omop_folder), tmp_path / "a"), (url, tmp_path / "b")):
        r = cli("timeline", src, "--scales", SCALES, "--out", str(out))
        assert r.returncode == 0, r.stderr
    for name in OUTPUTS:
        a = pq.read_table(tmp_path / "a" / f"{name}.parquet")
        b = pq.read_table(tmp_path / "b" / f"{name}.parquet")
        assert a.num_rows > 0 and a.equals(b), name
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["input"] == url and summary["rejected_rows"] == 0


def test_a_database_without_omop_tables_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    sa.create_engine(url).connect().close()
    with pytest.raises(StandardsError, match="no PERSON table"):
        read_omop(url)
    with pytest.raises(StandardsError, match="cannot open the database"):
        read_omop("nosuchdialect://x/y")


def test_a_password_in_the_url_is_never_echoed(tmp_path: Path) -> None:
    with pytest.raises(StandardsError) as exc:
        read_omop("postgresql+psycopg://user:s3cret@127.0.0.1:1/cdm")
    assert "s3cret" not in str(exc.value) and "user:***@" in str(exc.value)
