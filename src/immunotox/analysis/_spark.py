"""The timeline outputs read and reduced by Apache Spark for :func:`immunotox.analysis.analyze`.

Spark reads ``patients``, ``episodes``, ``daily_max`` and ``grades`` (Parquet or CSV) and does
the reductions over the large per-day and per-assessment tables (the last assessed day per
patient and scale; the first time at a grade) on the cluster. What comes back to the driver is
at most one row per patient and scale (or per episode), converted through Arrow; the statistics
then run with the same code as the embedded engine, so both give the same ARD (a slow test holds
them equal). Needs ``pip install 'immunotox[spark]'`` and Java 17+, as the timeline's Spark engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from ._errors import AnalysisError
from ._source import Source, _scan_result


def _frame(spark_df: Any) -> pl.DataFrame:
    out = pl.from_arrow(spark_df.toArrow())
    assert isinstance(out, pl.DataFrame)
    # Spark hands timestamps back in its session time zone (UTC here): make it explicit
    return out.with_columns(
        pl.col(c).dt.convert_time_zone("UTC").dt.cast_time_unit("us")
        for c, t in out.schema.items()
        if isinstance(t, pl.Datetime)
    )


class SparkSource(Source):
    """:class:`Source` on Spark (local session unless ``IMMUNOTOX_SPARK_MASTER`` says otherwise)."""

    def __init__(self, folder: Path) -> None:
        from ..timeline._spark import session, spark_unavailable

        why = spark_unavailable()
        if why is not None:
            raise AnalysisError("--engine", "spark", why)
        super().__init__(folder)
        self.spark = session()

    def _read(self, name: str) -> Any:
        for ext in ("parquet", "csv"):
            path = self.folder / f"{name}.{ext}"
            if path.is_file():
                reader = self.spark.read
                return (
                    reader.parquet(str(path))
                    if ext == "parquet"
                    else reader.csv(str(path), header=True, inferSchema=True)
                )
        raise AnalysisError(
            "RESULTS_DIR", str(self.folder), f"a timeline results folder with {name}.parquet or {name}.csv"
        )

    def patients(self) -> pl.DataFrame:
        return self._typed("patients")

    def episodes(self) -> pl.DataFrame:
        return self._typed("episodes")

    def _typed(self, name: str) -> pl.DataFrame:
        """The Spark result with the embedded reader's column types and order."""
        schema = _scan_result(self.folder, name).collect_schema()
        return _frame(self._read(name)).select([pl.col(c).cast(t) for c, t in schema.items()])

    def last_day(self) -> pl.DataFrame:
        from pyspark.sql import functions as F

        df = (
            self._read("daily_max")
            .groupBy("patient_id", "scale")
            .agg((F.max("day") + 1).alias("observed_days"))
        )
        return _frame(df).with_columns(pl.col("observed_days").cast(pl.Int32))

    def first_time_at_least(self, scale: str, grade: int) -> pl.DataFrame:
        from pyspark.sql import functions as F

        df = (
            self._read("grades")
            .where((F.col("scale") == scale) & (F.col("grade") >= grade))
            .groupBy("patient_id")
            .agg(F.min("time").alias("g2"))
        )
        return _frame(df)
