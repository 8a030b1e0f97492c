"""The streaming run: partitions, unsorted input, CSV, outputs, summary, injected bad rows."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from immunotox.simulate import simulate_cohort, write_cohort, write_observations
from immunotox.timeline import OUTPUTS, TimelineArgumentError, grade_observations, run_timeline, select_scales
from immunotox.timeline._run import memory_bytes, partition_rows

KEYS = {
    "grades": ["patient_id", "scale", "time"],
    "daily_max": ["patient_id", "scale", "day"],
    "episodes": ["patient_id", "scale", "episode"],
    "patients": ["patient_id", "scale"],
    "crosstab": ["scale_a", "scale_b", "grade_a", "grade_b"],
}
SCALES = ["astct2019:crs", "astct2019:icans", "penn:crs"]


def read(folder: Path, name: str) -> pa.Table:
    p = folder / f"{name}.parquet"
    if p.exists():
        return pq.read_table(p)
    return pacsv.read_csv(folder / f"{name}.csv")


def assert_outputs_equal(folder: Path, expected: object) -> None:
    for name, keys in KEYS.items():
        got = read(folder, name).sort_by([(k, "ascending") for k in keys])
        want = getattr(expected, name).sort_by([(k, "ascending") for k in keys])
        assert got.num_rows == want.num_rows, name
        assert got.cast(want.schema).equals(want), name


@pytest.fixture(scope="module")
def cohort() -> pa.Table:
    return simulate_cohort(30, seed=21, loinc_fraction=0.05).observations


def test_partitions_do_not_change_the_results(tmp_path: Path, cohort: pa.Table) -> None:
    path = tmp_path / "obs.parquet"
    pq.write_table(cohort, path, row_group_size=7_000)  # patients straddle row groups
    expected = grade_observations(cohort, SCALES)
    s = run_timeline(path, SCALES, tmp_path / "out", memory_limit="64MB", threads=2)
    assert s.partitions > 3 and not s.unsorted_input
    assert_outputs_equal(tmp_path / "out", expected)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["input_rows"] == cohort.num_rows == summary["accepted_rows"] + summary["rejected_rows"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [f"{o}.parquet" for o in OUTPUTS] + ["summary.json"]
    )


def test_unsorted_input_is_spilled_by_patient(tmp_path: Path, cohort: pa.Table) -> None:
    import numpy as np

    perm = np.random.default_rng(3).permutation(cohort.num_rows)
    shuffled = cohort.take(pa.array(perm))
    path = tmp_path / "shuffled.parquet"
    pq.write_table(shuffled, path, row_group_size=10_000)
    s = run_timeline(path, SCALES, tmp_path / "out", memory_limit="64MB")
    assert s.unsorted_input
    assert_outputs_equal(tmp_path / "out", grade_observations(cohort, SCALES))


def test_csv_in_csv_out_and_the_scalar_engine(tmp_path: Path) -> None:
    obs = simulate_cohort(4, seed=2).observations
    write_observations(obs, tmp_path / "obs.csv")
    s = run_timeline(tmp_path / "obs.csv", SCALES, tmp_path / "out", fmt="csv", engine="scalar")
    assert s.input_rows == obs.num_rows
    assert (tmp_path / "out" / "grades.csv").exists()
    assert_outputs_equal(tmp_path / "out", grade_observations(obs, SCALES))


def test_injected_bad_rows_are_the_rejects(tmp_path: Path) -> None:
    """The simulator's injected bad rows (ground truth) are exactly the rejected rows, with the
    matching reason; the grades are those of the clean cohort."""
    clean = tmp_path / "clean.parquet"
    dirty = tmp_path / "dirty.csv"
    write_cohort(clean, 12, seed=8)
    write_cohort(dirty, 12, seed=8, bad_rows_fraction=0.01, bad_rows_path=tmp_path / "bad.parquet")
    truth = pq.read_table(tmp_path / "bad.parquet").to_pylist()
    assert len(truth) > 10 and {t["kind"] for t in truth} == {
        "unparseable_time",
        "unknown_code",
        "impossible_value",
        "unknown_unit",
    }
    s = run_timeline(dirty, SCALES, tmp_path / "out")
    rejects = {r["row"]: r for r in read(tmp_path / "out", "rejects").to_pylist()}
    reason_of = {
        "unparseable_time": "bad_time",
        "unknown_code": "unknown_code",
        "impossible_value": "impossible_value",
        "unknown_unit": "bad_unit",
    }
    assert sorted(rejects) == sorted(t["row"] + 1 for t in truth)  # ground truth rows are 0-based
    for t in truth:
        r = rejects[t["row"] + 1]
        assert (r["reason"], r["column"], r["file"]) == (reason_of[t["kind"]], t["column"], "dirty.csv")
    assert s.rejected_rows == len(truth) and s.accepted_rows + s.rejected_rows == s.input_rows
    assert sum(s.rejected_by_reason.values()) == len(truth)
    run_timeline(clean, SCALES, tmp_path / "clean_out")
    for name in ("grades", "episodes", "patients"):
        keys = KEYS[name]
        a = read(tmp_path / "out", name).sort_by([(k, "ascending") for k in keys])
        b = read(tmp_path / "clean_out", name).sort_by([(k, "ascending") for k in keys])
        assert a.cast(b.schema).equals(b), name


def test_scale_groups() -> None:
    crs = select_scales("all-crs")
    assert crs[0] == "astct2019:crs" and "penn:crs" in crs and "astct2019:icans" not in crs
    assert "astct2019:icans" in select_scales("all")
    assert select_scales("astct2019:crs, astct2019:crs,astct2019:icans") == [
        "astct2019:crs",
        "astct2019:icans",
    ]
    with pytest.raises(TimelineArgumentError):
        select_scales(" , ")


def test_memory_sizes() -> None:
    assert (
        memory_bytes("1GB") == 10**9 and memory_bytes("512MiB") == 512 * 2**20 and memory_bytes(None) is None
    )
    assert partition_rows(memory_bytes("1GB")) > partition_rows(memory_bytes("256MB"))
    with pytest.raises(TimelineArgumentError, match="at least 64MB"):
        memory_bytes("1MB")
    with pytest.raises(TimelineArgumentError, match="expected a size"):
        memory_bytes("lots")


def test_bad_run_arguments(tmp_path: Path) -> None:
    obs = tmp_path / "o.parquet"
    write_observations(simulate_cohort(1, seed=1).observations, obs)
    for kwargs, option in (
        ({"engine": "gpu"}, "--engine"),
        ({"fmt": "xlsx"}, "--format"),
        ({"resolution_hours": 0}, "--resolution-hours"),
    ):
        with pytest.raises(TimelineArgumentError) as err:
            run_timeline(obs, "astct2019:crs", tmp_path / "o", **kwargs)  # type: ignore[arg-type]
        assert err.value.option == option


def test_spark_engine_without_java_is_a_clear_argument_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from immunotox.timeline._spark import spark_unavailable

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    why = spark_unavailable()
    assert why is not None and ("Java" in why or "PySpark" in why)
    obs = tmp_path / "o.parquet"
    write_observations(simulate_cohort(1, seed=1).observations, obs)
    with pytest.raises(TimelineArgumentError) as err:
        run_timeline(obs, "astct2019:crs", tmp_path / "o", engine="spark")
    assert str(err.value).startswith("--engine = 'spark': not available here:")


def _typed_files() -> dict[str, pa.Table]:
    """Contract files as other tools write them: only the required columns, typed columns."""
    import datetime as dt

    t = [dt.datetime(2024, 3, 1, h, tzinfo=dt.UTC) for h in (8, 12, 16)]
    ts = pa.array(t, pa.timestamp("us", tz="UTC"))
    temps = ["temperature"] * 3
    return {
        # the five required columns only, strings (no end_time, dose or dose_unit column)
        "required_only": pa.table(
            {
                "patient_id": ["P1"] * 3,
                "time": ["2024-03-01T08:00Z", "2024-03-01T12:00Z", "2024-03-01T16:00Z"],
                "code": temps,
                "value": ["38.5", "39.2", "37.1"],
                "unit": ["Cel"] * 3,
            }
        ),
        "float_values": pa.table(
            {
                "patient_id": ["P1"] * 3,
                "time": ts,
                "code": temps,
                "value": [38.5, 39.2, 37.1],
                "unit": ["Cel"] * 3,
            }
        ),
        "integer_ids": pa.table(
            {
                "patient_id": pa.array([7, 7, 7]),
                "time": ts,
                "code": temps,
                "value": ["38.5", "39.2", "37.1"],
                "unit": ["Cel"] * 3,
            }
        ),
        "naive_ms_dates": pa.table(
            {
                "patient_id": ["P1"] * 3,
                "time": pa.array([x.replace(tzinfo=None) for x in t], pa.timestamp("ms")),
                "code": pa.array(temps).dictionary_encode(),
                "value": ["38.5", "39.2", "37.1"],
                "unit": pa.array(["Cel"] * 3, pa.large_string()),
            }
        ),
    }


@pytest.mark.parametrize("name", list(_typed_files()))
def test_parquet_files_with_required_columns_only_or_typed_columns(tmp_path: Path, name: str) -> None:
    """A Parquet file is read whatever optional columns it lacks and however its columns are typed,
    and grades as the same rows given as an Arrow table."""
    tb = _typed_files()[name]
    pq.write_table(tb, tmp_path / "obs.parquet")
    s = run_timeline(tmp_path / "obs.parquet", "astct2019:crs", tmp_path / "from_file")
    assert (s.input_rows, s.accepted_rows, s.rejected_rows) == (3, 3, 0)
    expected = grade_observations(tb, ["astct2019:crs"])
    assert_outputs_equal(tmp_path / "from_file", expected)
    grades = read(tmp_path / "from_file", "grades").sort_by("time")
    assert grades.column("grade").to_pylist() == [1, 1, 1]  # fever, then still within 6 h windows
