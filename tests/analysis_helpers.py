"""Helpers shared by the analysis tests: clinical rows and the ground truth of complete grades."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pyarrow as pa

from immunotox.analysis import CLINICAL_SCHEMA, ard_value

T0 = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)
CATEGORY = {
    "any": lambda g: g >= 1,
    "1-2": lambda g: 1 <= g <= 2,
    ">=3": lambda g: g >= 3,
    "5": lambda g: g == 5,
}


def clinical_row(pid: str, **kw: Any) -> dict[str, Any]:
    """A valid clinical row (axi-cel, LBCL, 60 years, infused at T0, followed one year)."""
    row: dict[str, Any] = dict.fromkeys(CLINICAL_SCHEMA.names)
    row.update(
        patient_id=pid,
        product="axi-cel",
        indication="LBCL",
        age_years=60.0,
        infusion_time=T0,
        last_followup=T0 + dt.timedelta(days=365),
    )
    row.update(kw)
    return row


def clinical_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=CLINICAL_SCHEMA)


def assert_complete_counts_equal_truth(
    ard: pl.DataFrame, truth: pl.DataFrame, patients: pl.DataFrame
) -> list[str]:
    """ASTCT CRS ``n_complete`` of every category (all patients) equals the simulator's truth.

    A complete grade is one the timeline marks complete, or a death from CRS (grade 5). Returns
    the patients with a complete grade.
    """
    pats = patients.filter(pl.col("scale") == "astct2019:crs")
    complete = set(pats.filter(pl.col("complete"))["patient_id"].to_list()) | set(
        truth.filter(pl.col("crs_grade") == 5)["patient_id"].to_list()
    )
    grades = truth.filter(pl.col("patient_id").is_in(list(complete)))["crs_grade"].to_list()
    for label, test in CATEGORY.items():
        got = ard_value(
            ard,
            analysis="incidence",
            group="astct2019:crs",
            stratum="all",
            category=label,
            statistic="n_complete",
        )
        assert got == sum(1 for g in grades if test(g)), label
    return sorted(complete)
