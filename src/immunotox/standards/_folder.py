"""A folder of either standard - OMOP tables (a PERSON table) or SDTM domains (a DM domain) - or
the database URL of OMOP tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..timeline import RunSummary
from ._source import StandardRead, StandardsError, find_table
from ._tables import is_database_url
from .omop import read_omop, run_timeline_omop
from .sdtm import read_sdtm, run_timeline_sdtm


def _kind(folder: str | Path) -> tuple[str | Path, str]:
    if is_database_url(folder):  # a database holds OMOP tables (SDTM is read from files)
        return folder, "omop"
    root = Path(folder)
    if root.is_dir() and find_table(root, "PERSON") is not None:
        return root, "omop"
    if root.is_dir() and find_table(root, "DM") is not None:
        return root, "sdtm"
    raise StandardsError(str(root), "neither OMOP tables (person.csv) nor SDTM domains (dm.csv)")


def read_folder(folder: str | Path) -> StandardRead:
    """Read a folder of OMOP tables (a PERSON table) or SDTM domains (a DM domain), or the
    database URL of OMOP tables."""
    root, kind = _kind(folder)
    return read_omop(root) if kind == "omop" else read_sdtm(root)


def run_timeline_folder(
    folder: str | Path, scales: str | Sequence[str], out_dir: str | Path, **kwargs: Any
) -> RunSummary:
    """Run the timeline on a folder of OMOP tables (a PERSON table) or SDTM domains (a DM domain)."""
    root, kind = _kind(folder)
    run = run_timeline_omop if kind == "omop" else run_timeline_sdtm
    return run(root, scales, out_dir, **kwargs)
