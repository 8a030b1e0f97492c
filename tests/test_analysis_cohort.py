"""Cohort analyses: simulate → timeline → analyze against the simulator's ground truth; the
denominator rules (not applicable, not determinable) on hand-made results; small-cell suppression."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.compute as pc
import pytest
from scipy import stats as sps

from immunotox.analysis import analyze, ard_value, read_clinical, suppress
from immunotox.simulate import clinical_table as simulated_clinical_table
from immunotox.simulate import load_profiles, simulate_cohort
from immunotox.simulate._io import write_table
from immunotox.timeline import run_timeline

from .analysis_helpers import T0, assert_complete_counts_equal_truth, clinical_row, clinical_table

SCALES = "astct2019:crs,lee2014:crs,astct2019:icans"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("cohort")
    cohort = simulate_cohort(400, days=30, seed=11)
    clin = simulated_clinical_table(cohort.truth, cohort.observations, seed=11)
    run_timeline(cohort.observations, SCALES, out / "results")
    truth = pl.from_arrow(cohort.truth)
    return {
        "analysis": analyze(out / "results", read_clinical(clin)),
        "truth": truth,
        "out": out,
        "cohort": cohort,
        "clinical": clin,
    }


def test_csv_outputs_and_csv_clinical_table_give_the_same_ard(simulated: dict[str, Any]) -> None:
    out = simulated["out"]
    run_timeline(simulated["cohort"].observations, SCALES, out / "results_csv", fmt="csv")
    write_table(simulated["clinical"], out / "clinical.csv")
    again = analyze(out / "results_csv", out / "clinical.csv")
    assert again.ard.equals(simulated["analysis"].ard)


def test_complete_incidence_counts_equal_the_ground_truth(simulated: dict[str, Any]) -> None:
    ard, truth = simulated["analysis"].ard, simulated["truth"]
    pats = pl.read_parquet(simulated["out"] / "results" / "patients.parquet")
    complete = assert_complete_counts_equal_truth(ard, truth, pats)
    assert len(complete) > 350
    for product in truth["product"].unique().to_list():
        part = truth.filter(pl.col("product") == product, pl.col("patient_id").is_in(complete))
        got = ard_value(
            ard,
            analysis="incidence",
            group="astct2019:crs",
            stratum=f"product={product}",
            category=">=3",
            statistic="n_complete",
        )
        assert got == sum(g >= 3 for g in part["crs_grade"].to_list())


def test_per_product_rates_agree_with_the_profiles_jointly(simulated: dict[str, Any]) -> None:
    """One chi-square goodness-of-fit test across products at the 1 % level (any-grade CRS)."""
    ard, truth = simulated["analysis"].ard, simulated["truth"]
    profiles = load_profiles().profiles
    chi2, df = 0.0, 0
    for key in truth["profile"].unique().sort().to_list():
        product = profiles[key].infusion[0]
        if len(profiles[key].infusion) > 1:
            continue  # anti-PD-1: two tokens, and CRS too rare for the approximation
        n = ard_value(
            ard,
            analysis="incidence",
            group="astct2019:crs",
            stratum=f"product={product}",
            category="any",
            statistic="n_patients",
        )
        x = ard_value(
            ard,
            analysis="incidence",
            group="astct2019:crs",
            stratum=f"product={product}",
            category="any",
            statistic="n_established",
        )
        assert n and x is not None
        p = profiles[key].crs.any.x
        chi2 += (x - n * p) ** 2 / (n * p * (1 - p))
        df += 1
    assert df >= 4
    assert sps.chi2.sf(chi2, df) > 0.01


def test_zero_rows_kept_and_bounds_side_by_side(simulated: dict[str, Any]) -> None:
    ard = simulated["analysis"].ard
    inc = ard.filter(pl.col("analysis") == "incidence")
    # every scale x stratum x category has its full set of statistics, zeros included
    per_cell = inc.group_by("group", "stratum", "category").len()
    assert per_cell["len"].min() == per_cell["len"].max() == 12
    assert (
        ard_value(
            ard,
            analysis="incidence",
            group="astct2019:icans",
            stratum="product=pembrolizumab",
            category="any",
            statistic="n_established",
        )
        == 0
    )
    # ICANS: imaging is not charted, so upper bounds exceed the established counts
    lo = ard_value(
        ard,
        analysis="incidence",
        group="astct2019:icans",
        stratum="all",
        category=">=3",
        statistic="n_established",
    )
    hi = ard_value(
        ard,
        analysis="incidence",
        group="astct2019:icans",
        stratum="all",
        category=">=3",
        statistic="n_upper_bound",
    )
    assert lo is not None and hi is not None and hi > lo


def test_agreement_counts_every_pair(simulated: dict[str, Any]) -> None:
    ard = simulated["analysis"].ard
    group = "astct2019:crs vs lee2014:crs"
    counts = [
        ard_value(ard, analysis="agreement", group=group, stratum="all", category="pairs", statistic=s)
        for s in ("n_complete_pairs", "n_lower_bound_pairs", "n_not_determinable_pairs")
    ]
    assert sum(c or 0 for c in counts) == 400


def test_outcomes_are_reported(simulated: dict[str, Any]) -> None:
    ard = simulated["analysis"].ard
    orr = ard_value(ard, analysis="response", group="ORR", stratum="all", category="rate", statistic="pct")
    assert orr is not None and 40 < orr < 95
    os12 = ard_value(
        ard, analysis="survival", group="OS", stratum="all", category="12 months", statistic="survival"
    )
    assert os12 is not None and 0 < os12 < 1
    assert ard["ard_id"].n_unique() == ard.height


# ------------------------------------------------------------------ hand-made results folder


def _results(tmp: Path, patients: list[dict[str, Any]]) -> Path:
    folder = tmp / "results"
    folder.mkdir()
    ts = pl.Datetime("us", "UTC")
    pl.DataFrame(
        patients,
        schema={
            "patient_id": pl.String,
            "scale": pl.String,
            "n_assessments": pl.Int32,
            "max_grade": pl.Int8,
            "max_grade_hi": pl.Int8,
            "complete": pl.Boolean,
            "n_episodes": pl.Int32,
            "first_onset": ts,
            "onset_day": pl.Int32,
            "day0": ts,
            "day0_source": pl.String,
        },
    ).write_parquet(folder / "patients.parquet")
    pl.DataFrame(
        schema={
            "patient_id": pl.String,
            "scale": pl.String,
            "episode": pl.Int32,
            "onset": ts,
            "onset_day": pl.Int32,
            "peak_grade": pl.Int8,
            "peak_time": ts,
            "resolution": ts,
            "duration_h": pl.Float64,
            "resolved": pl.Boolean,
            "last_positive": ts,
            "peak_grade_hi": pl.Int8,
            "complete": pl.Boolean,
        }
    ).write_parquet(folder / "episodes.parquet")
    pl.DataFrame(
        schema={
            "patient_id": pl.String,
            "scale": pl.String,
            "day": pl.Int32,
            "max_grade": pl.Int8,
            "max_grade_hi": pl.Int8,
            "complete": pl.Boolean,
            "n_assessments": pl.Int32,
        }
    ).write_parquet(folder / "daily_max.parquet")
    return folder


def _clinical(ids: list[str]) -> pl.DataFrame:
    frame = pl.from_arrow(clinical_table([clinical_row(pid) for pid in ids]))
    assert isinstance(frame, pl.DataFrame)
    return frame


def _p(pid: str, lo: int | None, hi: int | None, complete: bool) -> dict[str, Any]:
    return {
        "patient_id": pid,
        "scale": "icaht:late",
        "n_assessments": 3,
        "max_grade": lo,
        "max_grade_hi": hi,
        "complete": complete,
        "n_episodes": 0,
        "first_onset": None,
        "onset_day": None,
        "day0": T0,
        "day0_source": "infusion",
    }


def test_not_applicable_leaves_the_denominator_and_is_counted(tmp_path: Path) -> None:
    folder = _results(
        tmp_path,
        [
            _p("A", 3, 3, True),
            _p("B", 0, 0, True),
            _p("C", None, None, True),  # not applicable: no grade, nothing missing
            _p("D", 1, 4, False),  # lower bound
            _p("E", None, 4, False),  # not determinable
        ],
    )
    # F is in the clinical table but has no row at all: not determinable too
    ard = analyze(folder, read_clinical(_clinical(["A", "B", "C", "D", "E", "F"]))).ard

    def v(category: str, statistic: str) -> float | None:
        return ard_value(
            ard,
            analysis="incidence",
            group="icaht:late",
            stratum="all",
            category=category,
            statistic=statistic,
        )

    assert v(">=3", "n_patients") == 5
    assert v(">=3", "n_not_applicable") == 1
    assert v(">=3", "n_not_determinable") == 2
    assert v(">=3", "n_established") == 1  # A
    assert v(">=3", "n_upper_bound") == 4  # A, D, E, F
    assert v("any", "n_established") == 2  # A, D
    assert v("1-2", "n_established") == 0  # D is only "at least 1"
    assert v("1-2", "n_upper_bound") == 3  # D, E, F
    assert v(">=3", "pct_established") == pytest.approx(20.0)


def test_min_cell_masks_small_counts_and_a_complement() -> None:
    base = {"analysis": "incidence", "group": "s", "category": ">=3", "method": "m", "suppressed": False}
    rows = []
    for i, (stratum, n_est) in enumerate((("all", 13), ("product=a", 2), ("product=b", 5), ("product=c", 6))):
        rows.append(
            {
                **base,
                "ard_id": f"A{i}1",
                "stratum": stratum,
                "statistic": "n_established",
                "value": float(n_est),
                "n": 40,
            }
        )
        rows.append(
            {
                **base,
                "ard_id": f"A{i}2",
                "stratum": stratum,
                "statistic": "pct_established",
                "value": 1.0,
                "n": 40,
            }
        )
        rows.append(
            {
                **base,
                "ard_id": f"A{i}3",
                "stratum": stratum,
                "statistic": "n_patients",
                "value": 40.0,
                "n": 40,
            }
        )
    ard = pl.DataFrame(rows).select(
        "ard_id",
        "analysis",
        "group",
        "stratum",
        "category",
        "statistic",
        "value",
        "n",
        "method",
        "suppressed",
    )
    out = suppress(ard, 3)
    hidden = (
        out.filter(pl.col("value").is_null())
        .select("stratum", "statistic")
        .sort("stratum", "statistic")
        .rows()
    )
    # product=a (2 < 3) is masked with its percentage; product=b, the next smallest, too
    assert hidden == [
        ("product=a", "n_established"),
        ("product=a", "pct_established"),
        ("product=b", "n_established"),
        ("product=b", "pct_established"),
    ]
    assert out.filter(pl.col("statistic") == "n_patients")["value"].null_count() == 0
    assert np.array_equal(suppress(ard, 1)["value"].to_numpy(), ard["value"].to_numpy())


def test_a_status_column_marks_not_applicable(tmp_path: Path) -> None:
    folder = _results(tmp_path, [_p("A", 2, 2, True), _p("B", None, None, False), _p("C", 0, 0, True)])
    path = folder / "patients.parquet"
    frame = pl.read_parquet(path)
    frame.with_columns(
        pl.when(pl.col("patient_id") == "B")
        .then(pl.lit("not_applicable"))
        .otherwise(pl.lit("assessed"))
        .alias("status")
    ).write_parquet(path)
    ard = analyze(folder, read_clinical(_clinical(["A", "B", "C"]))).ard

    def v(statistic: str) -> float | None:
        return ard_value(
            ard, analysis="incidence", group="icaht:late", stratum="all", category="any", statistic=statistic
        )

    assert (v("n_patients"), v("n_not_applicable"), v("n_not_determinable"), v("n_established")) == (
        2,
        1,
        0,
        1,
    )


def test_min_cell_masks_the_complementary_grade_category() -> None:
    """any = (1-2) + (>=3): a masked >=3 next to a visible 1-2 would be recovered by subtraction."""
    base = {
        "analysis": "incidence",
        "group": "s",
        "stratum": "all",
        "method": "m",
        "suppressed": False,
        "n": 40,
    }
    rows = [
        {**base, "ard_id": f"A{i}", "category": c, "statistic": "n_established", "value": v}
        for i, (c, v) in enumerate((("any", 30.0), ("1-2", 28.0), (">=3", 2.0), ("5", 0.0)))
    ]
    ard = pl.DataFrame(rows).select(
        "ard_id",
        "analysis",
        "group",
        "stratum",
        "category",
        "statistic",
        "value",
        "n",
        "method",
        "suppressed",
    )
    out = suppress(ard, 3)
    assert out.filter(pl.col("value").is_null())["category"].sort().to_list() == ["1-2", ">=3"]


# ------------------------------------------------------------------------------- ICU days
def test_icu_days_merge_overlaps_clip_to_follow_up_and_count_open_stays() -> None:
    import datetime as dt

    from immunotox.analysis._cohort import icu_days

    day = dt.timedelta(days=1)
    clin = _clinical(["A", "B", "C"]).with_columns(
        pl.when(pl.col("patient_id") == "B")
        .then(pl.lit(T0 + 5 * day))
        .otherwise(None)
        .cast(pl.Datetime("us", "UTC"))
        .alias("death_date")
    )
    ts = pl.Datetime("us", "UTC")
    obs = pl.DataFrame(
        {
            "patient_id": ["A", "A", "B", "C"],
            "time": [T0 + day, T0 + 2 * day, T0 + day, T0 - day],
            "code": ["icu"] * 4,
            "end_time": [T0 + 3 * day, T0 + 4 * day, None, T0 + day / 2],
        },
        schema={"patient_id": pl.String, "time": ts, "code": pl.String, "end_time": ts},
    )
    days, n_open = icu_days(obs, clin)
    # A: days 1-3 and 2-4 overlap -> 3 days; B: open from day 1 to death on day 5 -> 4 days;
    # C: admitted the day before infusion, counted from infusion -> half a day
    assert days == {"A": 3.0, "B": 4.0, "C": 0.5}
    assert n_open == 1


def test_icu_days_of_the_simulated_cohort(simulated: dict[str, Any], tmp_path: Path) -> None:
    """Every simulated patient with CRS or ICANS grade >= 3 (and alive at the time) has an ICU
    stay; the management table reports them with their days."""
    obs = tmp_path / "obs.parquet"
    write_table(simulated["cohort"].observations, obs)
    res = analyze(simulated["out"] / "results", read_clinical(simulated["clinical"]), observations=obs)
    truth = simulated["truth"]
    rows = simulated["cohort"].observations
    icu = rows.filter(pc.equal(rows["code"], "icu"))
    admitted = set(icu.column("patient_id").to_pylist())
    severe = set(
        truth.filter((pl.col("crs_grade") >= 3) | (pl.col("icans_grade") >= 3))["patient_id"].to_list()
    )
    assert admitted and admitted <= severe
    n = ard_value(res.ard, analysis="management", group="icu", stratum="all", category="patients",
                  statistic="n_admitted")  # fmt: skip
    assert n == len(admitted)
    median = ard_value(res.ard, analysis="management", group="icu", stratum="all", category="icu days",
                       statistic="median")  # fmt: skip
    assert median is not None and median > 1.0
