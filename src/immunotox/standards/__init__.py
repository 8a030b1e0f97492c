"""Clinical data standards in and out of the observation contract.

* :mod:`~immunotox.standards.omop` - OMOP CDM v5.4: a folder of tables -> contract rows
  (:func:`read_omop`, :func:`grade_omop`, :func:`run_timeline_omop`), and contract rows -> an OMOP
  folder (:func:`write_omop`, what ``immunotox simulate --omop-out`` writes).

Every mapping table is in ``docs/standards.md``; the concepts in ``omop_concepts.toml``.
"""

from __future__ import annotations

from ._source import StandardRead, StandardsError
from .omop import concepts, grade_omop, read_omop, run_timeline_omop, write_omop

__all__ = [
    "StandardRead",
    "StandardsError",
    "concepts",
    "grade_omop",
    "read_omop",
    "run_timeline_omop",
    "write_omop",
]
