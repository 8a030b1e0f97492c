"""Management recommendations and dose safety.

Decision support for professionals, not a prescription: every action names its guideline set
and version, its source, locator and verification tag; unverified content is flagged.

* :func:`recommend` — ordered actions for a toxicity grade (CRS, ICANS, IEC-HS after CAR-T;
  irAEs of checkpoint inhibitors by CTCAE term) from a versioned guideline set
  (``data/guidelines/*.toml``), with doses computed for the patient.
* :func:`tocilizumab_dose` — the tocilizumab dose for CAR-T CRS and whether the limits allow it
  now (8 mg/kg, 12 mg/kg under 30 kg, ≤800 mg/dose, ≥8 h apart, ≤3 in 24 h, ≤4 in total).
* :func:`review_recorded_doses` — doses already given against the same dose rule (the service's
  dose-limit alerts).
* :func:`dose_gate` — the population gate every printed amount passes (``_population``).
* :func:`convert_steroid`, :func:`steroid_equivalents` — glucocorticoid equivalence.
* :func:`list_guidelines`, :func:`load_guideline` — the guideline sets, packaged and local.

>>> from immunotox.management import recommend
>>> from datetime import datetime, UTC
>>> ctx = {"therapy_class": "car_t", "concurrent_crs_grade": 0}
>>> r = recommend("icans", 1, ctx, now=datetime(2025, 3, 1, tzinfo=UTC))
>>> r.guideline.id, any(a.dose and a.dose.drug == "tocilizumab" for a in r.actions)
('asco2021-cart', False)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ._dose_expr import ComputedDose
from ._dose_rule import DoseDecision, LimitCheck, SourceRef, check_dose_rule, tocilizumab_dose
from ._drugs import check_agreement, parse_therapy_class, resolve_product
from ._engine import GradeInput, GuidelineInfo, Label, Recommendation, RecommendedAction, recommend
from ._population import Licence, Population, PopulationCheck, dose_gate
from ._recorded import LimitFinding, RecordedDose, review_recorded_doses
from ._spec import GuidelineSet, load_guideline, registry
from ._steroids import SteroidConversion, convert_steroid, steroid_equivalents


def list_guidelines(guideline_dirs: Iterable[str | Path] = ()) -> list[GuidelineSet]:
    """Every guideline set (packaged, then those of ``guideline_dirs``), sorted by id."""
    return sorted(registry(guideline_dirs).values(), key=lambda g: (not g.packaged, g.id))


__all__ = [
    "ComputedDose",
    "DoseDecision",
    "GradeInput",
    "GuidelineInfo",
    "GuidelineSet",
    "Label",
    "Licence",
    "LimitCheck",
    "LimitFinding",
    "Population",
    "PopulationCheck",
    "Recommendation",
    "RecommendedAction",
    "RecordedDose",
    "SourceRef",
    "SteroidConversion",
    "check_agreement",
    "check_dose_rule",
    "convert_steroid",
    "dose_gate",
    "list_guidelines",
    "load_guideline",
    "parse_therapy_class",
    "recommend",
    "resolve_product",
    "review_recorded_doses",
    "steroid_equivalents",
    "tocilizumab_dose",
]
