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
from .adam import adtte, read_adtte, write_adtte
from .omop import concepts, grade_omop, read_omop, run_timeline_omop, write_omop
from .sdtm import SdtmRead, grade_sdtm, read_sdtm, run_timeline_sdtm, sdtm_map, write_sdtm

__all__ = [
    "SdtmRead",
    "StandardRead",
    "StandardsError",
    "adtte",
    "concepts",
    "grade_omop",
    "grade_sdtm",
    "read_adtte",
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


def run_timeline_folder(
    folder: str | Path, scales: str | Sequence[str], out_dir: str | Path, **kwargs: Any
) -> RunSummary:
    """Run the timeline on a folder of OMOP tables (a PERSON table) or SDTM domains (a DM domain)."""
    from ._source import find_table

    root = Path(folder)
    if find_table(root, "PERSON") is not None:
        return run_timeline_omop(root, scales, out_dir, **kwargs)
    if find_table(root, "DM") is not None:
        return run_timeline_sdtm(root, scales, out_dir, **kwargs)
    raise StandardsError(str(root), "neither OMOP tables (person.csv) nor SDTM domains (dm.csv)")
