"""Clinical data standards in and out of the observation contract.

* :mod:`~immunotox.standards.omop` - OMOP CDM v5.4: a folder of tables -> contract rows
  (:func:`read_omop`, :func:`grade_omop`, :func:`run_timeline_omop`), and contract rows -> an OMOP
  folder (:func:`write_omop`, what ``immunotox simulate --omop-out`` writes).
* :mod:`~immunotox.standards.sdtm` - CDISC SDTM domains, the same way (:func:`read_sdtm`,
  :func:`grade_sdtm`, :func:`run_timeline_sdtm`, :func:`write_sdtm`, ``--sdtm-out``).
* :mod:`~immunotox.standards.adam` - ADaM ADTTE from the timeline outputs (:func:`adtte`,
  :func:`write_adtte`, :func:`read_adtte`).
* :func:`run_timeline_folder` - what ``immunotox timeline DIR`` runs on a folder of either.

Every mapping table is in ``docs/standards.md``; the concepts in ``omop_concepts.toml``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..timeline import RunSummary
from ._source import StandardRead, StandardsError
from .adam import adtte, contract_rows, load_outputs, read_adtte, write_adtte
from .omop import concepts, grade_omop, read_omop, run_timeline_omop, write_omop
from .sdtm import SdtmRead, grade_sdtm, read_sdtm, run_timeline_sdtm, sdtm_map, write_sdtm

__all__ = [
    "SdtmRead",
    "StandardRead",
    "StandardsError",
    "adtte",
    "concepts",
    "contract_rows",
    "grade_omop",
    "grade_sdtm",
    "load_outputs",
    "read_adtte",
    "read_folder",
    "read_omop",
    "read_sdtm",
    "run_timeline_folder",
    "run_timeline_omop",
    "run_timeline_sdtm",
    "sdtm_map",
    "write_adtte",
    "write_omop",
    "write_sdtm",
]


def _kind(folder: str | Path) -> tuple[Path, str]:
    from ._source import find_table

    root = Path(folder)
    if root.is_dir() and find_table(root, "PERSON") is not None:
        return root, "omop"
    if root.is_dir() and find_table(root, "DM") is not None:
        return root, "sdtm"
    raise StandardsError(str(root), "neither OMOP tables (person.csv) nor SDTM domains (dm.csv)")


def read_folder(folder: str | Path) -> StandardRead:
    """Read a folder of OMOP tables (a PERSON table) or SDTM domains (a DM domain)."""
    root, kind = _kind(folder)
    return read_omop(root) if kind == "omop" else read_sdtm(root)


def run_timeline_folder(
    folder: str | Path, scales: str | Sequence[str], out_dir: str | Path, **kwargs: Any
) -> RunSummary:
    """Run the timeline on a folder of OMOP tables (a PERSON table) or SDTM domains (a DM domain)."""
    root, kind = _kind(folder)
    run = run_timeline_omop if kind == "omop" else run_timeline_sdtm
    return run(root, scales, out_dir, **kwargs)
