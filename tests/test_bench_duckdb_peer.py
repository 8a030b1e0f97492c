"""The DuckDB SQL peer of ``benchmarks/cohort.py`` grades ASTCT CRS and ICANS as the engine does.

The peer (``benchmarks/duckdb_peer.py``) is an independent SQL implementation; the benchmark's
``speedup_vs_duckdb_sql`` only means something if it computes the same grades. On a simulated
cohort (CRS and ICANS of every grade, fever masking, oxygen and vasopressors, LOINC codes), every
assessment's grade, lower and upper bound and completeness equal the embedded engine's.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import polars as pl
import pyarrow.parquet as pq

from immunotox.simulate import simulate_cohort
from immunotox.timeline import grade_observations

PEER = Path(__file__).resolve().parents[1] / "benchmarks" / "duckdb_peer.py"


def _peer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("duckdb_peer", PEER)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_sql_peer_grades_equal_the_engine(tmp_path: Path) -> None:
    obs = simulate_cohort(80, seed=3, loinc_fraction=0.05).observations
    pq.write_table(obs, tmp_path / "in.parquet")
    _peer().run(str(tmp_path / "in.parquet"), str(tmp_path / "grades.parquet"))
    got = pl.read_parquet(tmp_path / "grades.parquet")
    got = got.with_columns(pl.col("time").dt.replace_time_zone("UTC"))
    want = pl.from_arrow(grade_observations(obs, "astct2019:crs,astct2019:icans").grades)
    assert isinstance(want, pl.DataFrame)
    want = want.select(got.columns)
    got = got.with_columns([pl.col(k).cast(want.schema[k]) for k in got.columns])
    keys = ["patient_id", "scale", "time"]
    assert got.sort(keys).equals(want.sort(keys))
    # the cohort is not trivial: CRS up to grade 3 or more, ICANS lower bounds, both scales
    crs = want.filter(pl.col("scale") == "astct2019:crs")
    icans = want.filter(pl.col("scale") == "astct2019:icans")
    assert crs["grade"].max() >= 3  # type: ignore[operator]
    assert icans["grade"].max() >= 2  # type: ignore[operator]
    assert not icans["complete"].all()
