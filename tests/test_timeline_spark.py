"""The same partition function on Apache Spark (local mode) gives exactly the embedded results.

Needs PySpark (``pip install 'immunotox[spark]'``, part of the ``test`` extra) and Java 17+
(``apt-get install default-jre-headless``; JAVA_HOME optional when ``java`` is on the PATH).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from immunotox.simulate import write_cohort
from immunotox.timeline import run_timeline
from immunotox.timeline._spark import spark_unavailable

KEYS = {
    "grades": ["patient_id", "scale", "time"],
    "daily_max": ["patient_id", "scale", "day"],
    "episodes": ["patient_id", "scale", "episode"],
    "patients": ["patient_id", "scale"],
    "crosstab": ["scale_a", "scale_b", "grade_a", "grade_b"],
    "rejects": ["row"],
}

why = spark_unavailable()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(why is not None, reason=why or "")]


def _sorted(t: pa.Table, keys: list[str]) -> pa.Table:
    return t.sort_by([(k, "ascending") for k in keys])


def test_spark_equals_embedded_on_a_simulated_cohort(tmp_path: Path) -> None:
    obs = tmp_path / "cohort.csv"
    write_cohort(obs, 30, seed=17, loinc_fraction=0.05, bad_rows_fraction=0.003)
    scales = "all-crs,astct2019:icans"
    emb = run_timeline(obs, scales, tmp_path / "embedded")
    spk = run_timeline(obs, scales, tmp_path / "spark", engine="spark")
    assert spk.input_rows == emb.input_rows and spk.rejected_rows == emb.rejected_rows > 0
    assert spk.assessments == emb.assessments
    for name, keys in KEYS.items():
        a = _sorted(pq.read_table(tmp_path / "embedded" / f"{name}.parquet"), keys)
        b = _sorted(pq.read_table(tmp_path / "spark" / f"{name}.parquet"), keys)
        assert a.num_rows == b.num_rows, name
        assert a.equals(b), name
