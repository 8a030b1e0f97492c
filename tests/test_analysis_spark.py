"""The analyses with the timeline outputs read and reduced by Spark give the same ARD (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from immunotox.analysis import analyze, read_clinical
from immunotox.simulate import clinical_table, simulate_cohort, write_observations
from immunotox.timeline import run_timeline
from immunotox.timeline._spark import spark_unavailable

why = spark_unavailable()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(why is not None, reason=why or "")]


def test_spark_ard_equals_embedded(tmp_path: Path) -> None:
    cohort = simulate_cohort(80, days=30, seed=23)
    obs = tmp_path / "obs.parquet"
    write_observations(cohort.observations, obs)
    run_timeline(obs, "astct2019:crs,lee2014:crs,astct2019:icans", tmp_path / "results")
    clinical = read_clinical(clinical_table(cohort.truth, cohort.observations, seed=23))
    embedded = analyze(tmp_path / "results", clinical, observations=obs, min_cell=3)
    spark = analyze(tmp_path / "results", clinical, observations=obs, min_cell=3, engine="spark")
    assert embedded.ard.height > 1000
    assert spark.ard.equals(embedded.ard)
    assert spark.curves.equals(embedded.curves)
    assert spark.meta == embedded.meta
