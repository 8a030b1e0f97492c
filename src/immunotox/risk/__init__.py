"""Risk scores computed from routine laboratory values before or after CAR-T cells.

Scores (ids), each defined as data in ``data/risk/*.toml`` and cited in ``data/sources.toml``:

==================  =====================================================  ====================
id                  formula / items                                        published cut-off
==================  =====================================================  ====================
``easix``           LDH (U/L) × creatinine (mg/dL) / platelets (10^9/L)    > 4.67 (Korell 2022)
``m-easix``         LDH (U/L) × CRP (mg/dL) / platelets (10^9/L)           none retrieved
``s-easix``         LDH (U/L) / platelets (10^9/L)                         none retrieved
``car-hematotox``   platelets, ANC, hemoglobin, CRP, ferritin (0–7 pts)    >= 2 (Rejeski 2021)
``hscore``          nine items (0–337 pts)                                 >= 169 (Fardet 2014)
==================  =====================================================  ====================

Not shipped (see ``docs/risk-scores.md``): eIPM (coefficients not published in a form we could
read), EASIX-F/-FC (group thresholds not retrieved), the Hay 2017 CRS tree (thresholds
unverified).

>>> from immunotox import risk
>>> r = risk.score("m-easix", {"ldh": 300, "crp": {"value": 50, "unit": "mg/L"},
...                            "platelets": {"value": 150, "unit": "10*9/L"}})
>>> r.value, r.as_json().get("risk", "no cut-off")
(10.0, 'no cut-off')
"""

from ._engine import UnknownScoreError, get_spec, risk_findings, score
from ._result import RiskCall, ScoreResult, UnitConversion
from ._spec import ScoreSpec, all_specs

__all__ = [
    "RiskCall",
    "ScoreResult",
    "ScoreSpec",
    "UnitConversion",
    "UnknownScoreError",
    "all_scores",
    "get_spec",
    "risk_findings",
    "score",
]


def all_scores() -> dict[str, ScoreSpec]:
    """Every risk score, by id."""
    return dict(all_specs())
