"""Where the analyses read the timeline outputs: the embedded reader (Polars, streamed reductions).

:class:`Source` reads ``patients`` and ``episodes`` and reduces the large per-day and
per-assessment tables (``daily_max``, ``grades``) while scanning them; ``_spark.SparkSource`` does
the same on Spark. Parquet or CSV outputs, as ``immunotox timeline --format`` writes them.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ._errors import AnalysisError


def _read_result(folder: Path, name: str) -> pl.DataFrame:
    return _scan_result(folder, name).collect()


def _scan_result(folder: Path, name: str) -> pl.LazyFrame:
    for ext in ("parquet", "csv"):
        path = folder / f"{name}.{ext}"
        if path.is_file():
            return pl.scan_parquet(path) if ext == "parquet" else pl.scan_csv(path, try_parse_dates=True)
    raise AnalysisError(
        "RESULTS_DIR", str(folder), f"a timeline results folder with {name}.parquet or {name}.csv"
    )


class Source:
    """The timeline outputs the analyses read, reduced where they are large (embedded: Polars)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def patients(self) -> pl.DataFrame:
        return _read_result(self.folder, "patients")

    def episodes(self) -> pl.DataFrame:
        return _read_result(self.folder, "episodes")

    def last_day(self) -> pl.DataFrame:
        """The last assessed day + 1 per patient and scale (``observed_days``), streamed."""
        return (
            _scan_result(self.folder, "daily_max")
            .group_by("patient_id", "scale")
            .agg((pl.col("day").max() + 1).alias("observed_days"))
            .collect(engine="streaming")
        )

    def first_time_at_least(self, scale: str, grade: int) -> pl.DataFrame:
        """Per patient, the first assessment time with an established grade >= ``grade`` (``g2``)."""
        return (
            _scan_result(self.folder, "grades")
            .filter((pl.col("scale") == scale) & (pl.col("grade") >= grade))
            .group_by("patient_id")
            .agg(pl.col("time").min().alias("g2"))
            .collect(engine="streaming")
        )
