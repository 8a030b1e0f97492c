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

from ._folder import read_folder, run_timeline_folder
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
