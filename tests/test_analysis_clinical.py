"""The clinical table: its bad-input rules and the simulator's --clinical-out."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from immunotox.analysis import CLINICAL_SCHEMA, AnalysisError, read_clinical
from immunotox.cli.main import app
from immunotox.simulate import clinical_table, simulate_cohort

from .analysis_helpers import T0
from .analysis_helpers import clinical_row as _row
from .analysis_helpers import clinical_table as _table


def test_bad_rows_are_rejected_with_field_row_and_reason() -> None:
    day = dt.timedelta(days=1)
    rows = [
        _row("P1"),
        _row("P2", death_date=T0 - day, death_cause="infection"),  # death before infusion
        _row("P3", best_response="CR", response_date=T0 - day),  # response before infusion
        _row("P1"),  # duplicate id
        _row("P5", product="not-a-car-t"),  # unknown product
        _row("P6", progression_date=T0 + 400 * day),  # censored before the event
        _row("P7", product="Yescarta", death_date=T0 + day, death_cause="crs", last_followup=T0 + day),
        _row("P8", death_date=T0 + day),  # death without its cause
        _row("P8"),  # P8's first row was rejected: this one is not a duplicate
    ]
    clin = read_clinical(_table(rows), label="clinical.parquet")
    assert clin.table["patient_id"].to_list() == ["P1", "P7", "P8"]
    assert clin.table["product"].to_list() == ["axi-cel", "axi-cel", "axi-cel"]  # brand resolved to the id
    got = clin.rejects.select("row", "column", "reason").rows()
    assert got == [
        (2, "death_date", "before_infusion"),
        (3, "response_date", "before_infusion"),
        (4, "patient_id", "duplicate_patient_id"),
        (5, "product", "unknown_product"),
        (6, "last_followup", "after_followup"),
        (8, "death_cause", "death_without_cause"),
    ]
    assert clin.rejects.filter(pl.col("row") == 4)["detail"][0] == "first at row 1"
    assert set(clin.rejects["file"].to_list()) == {"clinical.parquet"}


def test_missing_column_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "clinical.csv"
    pl.DataFrame({"patient_id": ["P1"], "product": ["axi-cel"]}).write_csv(path)
    with pytest.raises(AnalysisError) as err:
        read_clinical(path)
    msg = str(err.value)
    assert msg.startswith("--clinical = 'clinical.csv': missing column(s) indication, age_years, sex,")
    assert "\n" not in msg


def test_csv_times_and_numbers_are_parsed_and_bad_ones_rejected(tmp_path: Path) -> None:
    path = tmp_path / "clinical.csv"
    rows = [_row("P1", easix=1.5), _row("P2")]
    frame = pl.from_arrow(_table(rows))
    assert isinstance(frame, pl.DataFrame)
    text = frame.with_columns(pl.col(pl.Datetime).dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    text = text.with_columns(
        pl.when(pl.col("patient_id") == "P2")
        .then(pl.lit("high"))
        .otherwise(pl.col("easix").cast(pl.String))
        .alias("easix")
    )
    text.write_csv(path)
    clin = read_clinical(path)
    assert clin.table["patient_id"].to_list() == ["P1"]
    assert clin.table["infusion_time"][0] == T0
    assert clin.rejects.select("row", "column", "value", "reason").rows() == [
        (2, "easix", "high", "bad_value")
    ]


@pytest.fixture(scope="module")
def cohort():  # type: ignore[no-untyped-def]
    return simulate_cohort(120, days=30, seed=5)


def test_simulated_clinical_table_is_valid_deterministic_and_keeps_the_truths_deaths(cohort) -> None:  # type: ignore[no-untyped-def]
    table = clinical_table(cohort.truth, cohort.observations, seed=5)
    assert table.schema.equals(CLINICAL_SCHEMA)
    assert table.equals(clinical_table(cohort.truth, cohort.observations, seed=5))
    clin = read_clinical(table)
    assert clin.rejects.height == 0 and clin.table.height == 120
    truth = pl.from_arrow(cohort.truth)
    assert isinstance(truth, pl.DataFrame)
    joined = clin.table.join(truth, on="patient_id")
    early = joined.filter(pl.col("death_time").is_not_null())
    assert early["death_date"].to_list() == early["death_time"].to_list()
    assert early["death_cause"].to_list() == early["death_cause_right"].to_list()
    late = joined.filter(pl.col("death_time").is_null() & pl.col("death_date").is_not_null())
    assert (late["death_date"] > late["followup_end"]).all()  # alive in the observations
    # baseline scores from the day-0 laboratory values, never zero-filled
    assert clin.table["easix"].null_count() == 0 and (clin.table["easix"] > 0).all()


def test_cli_clinical_out(tmp_path: Path) -> None:
    runner = CliRunner()
    obs, clin = tmp_path / "obs.parquet", tmp_path / "clinical.parquet"
    r = runner.invoke(
        app, ["simulate", "--patients", "20", "--seed", "3", "--out", str(obs), "--clinical-out", str(clin)]
    )
    assert r.exit_code == 0, r.output
    assert read_clinical(clin).table.height == 20
    r = runner.invoke(app, ["simulate", "--patients", "20", "--clinical-out", str(clin)])
    assert r.exit_code == 2
    assert "--out = None: --truth, --bad-rows and --clinical-out need --out" in r.output
