"""Risk scores: golden cases computed by hand, boundaries on both sides, units, missing data,
bad input, and properties (unit invariance, monotonicity, bounds).

Formulas (primary sources in data/sources.toml):
  EASIX   = LDH (U/L) × creatinine (mg/dL) / platelets (10^9/L)        [V] Pennisi 2021
  m-EASIX = LDH (U/L) × CRP (mg/dL) / platelets (10^9/L)               [V] Pennisi 2021
  s-EASIX = LDH (U/L) / platelets (10^9/L)                             [V] Pennisi 2021
  EASIX cut-off: > 4.67 before lymphodepletion                         [V] Korell 2022 (scale M)
  CAR-HEMATOTOX (Rejeski 2021, doi:10.1182/blood.2020010543; author-group code) [V2]
    platelets: > 175 → 0; 75–175 → 1; < 75 → 2       ANC: > 1.2 → 0; <= 1.2 → 1
    Hb: > 9.0 → 0; <= 9.0 → 1                        CRP (mg/dL): < 3.0 → 0; >= 3.0 → 1
    ferritin: < 650 → 0; 650–2000 → 1; > 2000 → 2    high risk: total >= 2
  HScore (Fardet 2014, two reproductions of the table)                 [V2]
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from immunotox import risk
from immunotox.errors import FindingError, UnitError
from immunotox.messages import error_message
from immunotox.risk import UnknownScoreError

CREAT_G_MOL = 113.12
HB_G_MOL = 16114.5


def mg_dl(x: float) -> dict[str, Any]:
    """A quantity given with its unit (CRP and creatinine are refused as bare numbers)."""
    return {"value": x, "unit": "mg/dL"}


def g_l(x: float) -> dict[str, Any]:
    """A cell count in 10*9/L (= G/L): counts are refused as bare numbers (G/L vs cells/uL)."""
    return {"value": x, "unit": "10*9/L"}


def umol_per_l(mg_dl: float) -> float:
    """Creatinine mg/dL -> umol/L with M = 113.12 g/mol (1 mg/dL = 10 mg/L = 10/113.12 mmol/L)."""
    return mg_dl * 10_000 / CREAT_G_MOL


# ------------------------------------------------------------------------------------------ EASIX
def test_easix_golden_low() -> None:
    # 250 U/L × 1.2 mg/dL / 150 ×10^9/L = 2.0  (<= 4.67 → low)
    r = risk.score(
        "easix", {"ldh": 250, "creatinine": {"value": 1.2, "unit": "mg/dL"}, "platelets": g_l(150)}
    )
    assert r.value == 2.0
    assert r.complete and r.missing == []
    assert r.risk is not None and r.risk.category == "low"
    assert r.risk.source == "korell2022"
    assert any("Korell" in s for s in r.sources) and any("Pennisi" in s for s in r.sources)


def test_easix_golden_high() -> None:
    # 500 × 1.5 / 100 = 7.5 > 4.67 → high
    r = risk.score(
        "easix", {"ldh": 500, "creatinine": {"value": 1.5, "unit": "mg/dL"}, "platelets": g_l(100)}
    )
    assert r.value == 7.5
    assert r.risk is not None and r.risk.category == "high"


@pytest.mark.parametrize(
    ("ldh", "expected_value", "category"),
    [
        (467.0, 4.67, "low"),  # 467 × 1.0 / 100 = 4.67: "cut-off >4.67" is strict → low
        (467.1, 4.671, "high"),  # 4.671 > 4.67 → high
    ],
)
def test_easix_cutoff_boundary(ldh: float, expected_value: float, category: str) -> None:
    r = risk.score(
        "easix", {"ldh": ldh, "creatinine": {"value": 1.0, "unit": "mg/dL"}, "platelets": g_l(100)}
    )
    assert r.value == pytest.approx(expected_value)
    assert r.risk is not None and r.risk.category == category


def test_easix_cutoff_scale_is_flagged_unverified() -> None:
    r = risk.score(
        "easix", {"ldh": 250, "creatinine": {"value": 1.2, "unit": "mg/dL"}, "platelets": g_l(150)}
    )
    assert any("[M]" in f and "log2" in f for f in r.flags)
    assert r.risk is not None and r.risk.flags == r.flags


def test_easix_creatinine_in_umol_per_l_equals_mg_per_dl() -> None:
    mg = risk.score(
        "easix", {"ldh": 250, "creatinine": {"value": 1.2, "unit": "mg/dL"}, "platelets": g_l(150)}
    )
    um = risk.score(
        "easix",
        {"ldh": 250, "creatinine": {"value": umol_per_l(1.2), "unit": "umol/L"}, "platelets": g_l(150)},
    )
    assert um.value == pytest.approx(mg.value, rel=1e-9)
    (conv,) = um.unit_conversions
    assert conv.finding == "creatinine" and conv.given_unit == "umol/L" and conv.unit == "mg/dL"
    assert conv.value == pytest.approx(1.2)


def test_easix_platelets_in_per_microlitre() -> None:
    # 150,000 /uL = 150 ×10^9/L = 150 ×10^3/uL
    a = risk.score(
        "easix",
        {
            "ldh": 250,
            "creatinine": {"value": 1.2, "unit": "mg/dL"},
            "platelets": {"value": 150000, "unit": "/uL"},
        },
    )
    b = risk.score(
        "easix",
        {
            "ldh": 250,
            "creatinine": {"value": 1.2, "unit": "mg/dL"},
            "platelets": {"value": 150, "unit": "10*3/uL"},
        },
    )
    assert a.value == b.value == 2.0


def test_m_easix_with_crp_in_mg_per_l() -> None:
    # m-EASIX = 300 U/L × 5 mg/dL / 150 = 10.0; CRP 50 mg/L = 5 mg/dL (divide by 10)
    mg_l = risk.score("m-easix", {"ldh": 300, "crp": {"value": 50, "unit": "mg/L"}, "platelets": g_l(150)})
    mg_dl = risk.score("m-easix", {"ldh": 300, "crp": {"value": 5, "unit": "mg/dL"}, "platelets": g_l(150)})
    assert mg_l.value == mg_dl.value == 10.0
    assert mg_l.unit_conversions[0].value == 5.0


def test_m_and_s_easix_have_no_risk_key() -> None:
    m = risk.score(
        "m-easix", {"ldh": 300, "crp": {"value": 5, "unit": "mg/dL"}, "platelets": g_l(150)}
    ).as_json()
    s = risk.score("s-easix", {"ldh": 300, "platelets": g_l(150)}).as_json()
    assert "risk" not in m and "risk" not in s
    assert "points" not in m and "points" not in s
    assert s["value"] == 2.0  # 300 / 150
    assert any("no published numeric cut-off" in r for r in m["reasons"])


@pytest.mark.parametrize(
    ("score", "findings", "field", "units"),
    [
        ("m-easix", {"ldh": 300, "crp": 5, "platelets": g_l(150)}, "crp", "'mg/L' or 'mg/dL'"),
        ("car-hematotox", {"crp": 5}, "crp", "'mg/L' or 'mg/dL'"),
        ("easix", {"ldh": 300, "creatinine": 80, "platelets": g_l(150)}, "creatinine", "'umol/L' or 'mg/dL'"),
        ("hscore", {"triglycerides": 2}, "triglycerides", "'mmol/L' or 'g/L' or 'mg/dL'"),
        ("hscore", {"fibrinogen": 2}, "fibrinogen", "'g/L' or 'mg/dL'"),
    ],
)
def test_bare_number_for_an_analyte_whose_unit_differs_between_labs_is_refused(
    score: str, findings: dict[str, Any], field: str, units: str
) -> None:
    # issue 11: a French CRP of 5 mg/L was read as 5 mg/dL (a CAR-HEMATOTOX point, m-EASIX x10)
    with pytest.raises(FindingError) as err:
        risk.score(score, findings)
    value = findings[field]
    assert str(err.value) == (
        f"{field} = {value}: a bare number is refused: laboratories report this analyte in different "
        "units (French and US labs differ), so the unit is never guessed. Hint: give it as "
        f'{{"value": {value}, "unit": "<UCUM>"}} with the unit of your laboratory, e.g. {units}'
    )


def test_analytes_with_one_unit_everywhere_accept_a_bare_number() -> None:
    r = risk.score("s-easix", {"ldh": 300, "platelets": g_l(150)})
    assert r.value == 2.0 and r.unit_conversions == []


def test_easix_missing_input_gives_no_value() -> None:
    r = risk.score("easix", {"ldh": 250, "platelets": g_l(150)})
    assert r.value is None and r.risk is None
    assert not r.complete and r.missing == ["creatinine"]
    j = r.as_json()
    assert j["value"] is None and "risk" in j and j["risk"] is None


def test_null_is_missing() -> None:
    r = risk.score("easix", {"ldh": 250, "creatinine": None, "platelets": g_l(150)})
    assert r.value is None and r.missing == ["creatinine"]


def test_json_key_order_and_contract() -> None:
    j = risk.score(
        "easix", {"ldh": 250, "creatinine": {"value": 1.2, "unit": "mg/dL"}, "platelets": g_l(150)}
    ).as_json()
    assert list(j)[:4] == ["score", "value", "risk", "complete"]
    assert {"score", "value", "risk", "sources", "complete", "missing", "reasons", "unit_conversions"} <= set(
        j
    )


def test_keys_of_other_scores_are_accepted_and_ignored() -> None:
    r = risk.score(
        "s-easix",
        {"ldh": 300, "platelets": g_l(150), "creatinine": {"value": 1.0, "unit": "mg/dL"}, "ferritin": 500},
    )
    assert r.value == 2.0 and r.ignored == ["creatinine", "ferritin"]


# -------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("findings", "field", "fragment"),
    [
        (
            {"ldh": 250, "creatinine": {"value": 1.0, "unit": "mg/dL"}, "platelets": g_l(0)},
            "platelets",
            "value of 0 cannot be scored",
        ),
        (
            {"ldh": 250, "creatinine": {"value": 1.0, "unit": "mg/dL"}, "platelets": g_l(-5)},
            "platelets",
            "physiologically possible",
        ),
        (
            {"ldh": 250, "creatinin": 1.0, "platelets": g_l(100)},
            "creatinin",
            "unknown finding for score easix",
        ),
        (
            {"ldh": "high", "creatinine": {"value": 1.0, "unit": "mg/dL"}, "platelets": g_l(100)},
            "ldh",
            "expected a number",
        ),
        (
            {"ldh": 250, "creatinine": {"value": 1.0, "unit": "mg/dL"}, "platelets": True},
            "platelets",
            'expected {"value": x, "unit": "<UCUM>"}',  # a count is never a bare number
        ),
        (
            {"ldh": 250, "creatinine": {"value": 900, "unit": "mg/dL"}, "platelets": g_l(100)},
            "creatinine",
            "physiologically possible",
        ),
    ],
)
def test_bad_findings_name_the_field(findings: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(FindingError) as err:
        risk.score("easix", findings)
    assert err.value.field == field
    assert str(err.value).startswith(field + " = ")
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("findings", "fr"),
    [
        (
            {"ldh": 250, "creatinine": {"value": 1.0, "unit": "mg/dL"}, "platelets": g_l(0)},
            "easix divise par platelets ; une valeur de 0 ne peut pas être calculée. Indication : vérifiez",
        ),
        ({"ldh": 250, "creatinin": 1.0, "platelets": g_l(100)}, "donnée inconnue pour le score easix"),
    ],
)
def test_a_risk_refusal_is_explained_in_french(findings: dict[str, Any], fr: str) -> None:
    from tests.test_messages import english_in

    with pytest.raises(FindingError) as err:
        risk.score("easix", findings)
    text = error_message(err.value, "fr")
    assert fr in text and not english_in(text), text


def test_zero_platelets_given_with_a_unit_is_refused() -> None:
    with pytest.raises(FindingError, match="platelets"):
        risk.score("s-easix", {"ldh": 250, "platelets": {"value": 0, "unit": "/uL"}})


@pytest.mark.parametrize("unit", ["ukat/L", "mmHg", "kg"])
def test_unknown_or_wrong_units_are_refused(unit: str) -> None:
    with pytest.raises(UnitError) as err:
        risk.score(
            "easix",
            {
                "ldh": {"value": 4, "unit": unit},
                "creatinine": {"value": 1, "unit": "mg/dL"},
                "platelets": g_l(100),
            },
        )
    assert err.value.field == "ldh.unit"


def test_unknown_score() -> None:
    with pytest.raises(UnknownScoreError) as err:
        risk.score("eipm", {})
    assert "unknown score 'eipm'" in str(err.value)
    assert "car-hematotox" in str(err.value)


def test_findings_must_be_an_object() -> None:
    with pytest.raises(FindingError) as err:
        risk.score("easix", [1, 2])  # type: ignore[arg-type]
    assert err.value.field == "findings"


def test_eipm_and_easix_f_are_not_shipped() -> None:
    assert set(risk.all_scores()) == {"easix", "m-easix", "s-easix", "car-hematotox", "hscore"}


# ---------------------------------------------------------------------------------- CAR-HEMATOTOX
ZERO: dict[str, Any] = {
    "platelets": g_l(200),
    "anc": g_l(2.0),
    "hemoglobin": 12.0,
    "crp": {"value": 1.0, "unit": "mg/dL"},
    "ferritin": 300,
}


def hematotox(**change: Any) -> risk.ScoreResult:
    return risk.score("car-hematotox", ZERO | change)


def test_car_hematotox_all_normal_is_zero_and_low() -> None:
    r = hematotox()
    assert r.points == {"platelets": 0, "anc": 0, "hemoglobin": 0, "crp": 0, "ferritin": 0, "total": 0}
    assert r.value == 0 and r.risk is not None and r.risk.label == "HT-low"


@pytest.mark.parametrize(
    ("component", "value", "points"),
    [
        ("platelets", g_l(175), 1),  # "if (plt > 175) 0 else if (plt >= 75) 1 else 2": 175 → 1
        ("platelets", g_l(175.1), 0),
        ("platelets", g_l(75), 1),
        ("platelets", g_l(74.9), 2),
        ("anc", g_l(1.2), 1),  # "anc > 1.2 → 0 else 1"
        ("anc", g_l(1.21), 0),
        ("hemoglobin", 9.0, 1),  # "hb > 9.0 → 0 else 1"
        ("hemoglobin", 9.1, 0),
        ("crp", mg_dl(3.0), 1),  # "crp < 3.0 → 0 else 1" (mg/dL)
        ("crp", mg_dl(2.99), 0),
        ("crp", {"value": 30, "unit": "mg/L"}, 1),  # 30 mg/L = 3.0 mg/dL
        ("crp", {"value": 29.9, "unit": "mg/L"}, 0),
        ("ferritin", 650, 1),  # "ferritin < 650 → 0 else if (ferritin <= 2000) 1 else 2"
        ("ferritin", 649, 0),
        ("ferritin", 2000, 1),
        ("ferritin", 2001, 2),
    ],
)
def test_car_hematotox_boundaries(component: str, value: Any, points: int) -> None:
    r = hematotox(**{component: value})
    assert r.points is not None
    assert r.points[component] == points
    assert r.points["total"] == points


def test_car_hematotox_total_of_two_is_high() -> None:
    one = hematotox(platelets=g_l(175))  # 1 point → HT-low
    two = hematotox(platelets=g_l(74.9))  # 2 points → HT-high
    assert one.risk is not None and one.risk.category == "low"
    assert two.risk is not None and two.risk.category == "high" and two.risk.label == "HT-high"
    mixed = hematotox(anc=g_l(1.0), hemoglobin=8.5)  # 1 + 1 = 2 → high
    assert mixed.value == 2 and mixed.risk is not None and mixed.risk.category == "high"


def test_car_hematotox_worst_case_is_seven() -> None:
    r = risk.score(
        "car-hematotox",
        {
            "platelets": g_l(20),
            "anc": g_l(0.1),
            "hemoglobin": 7,
            "crp": {"value": 15, "unit": "mg/dL"},
            "ferritin": 5000,
        },
    )
    assert r.value == 7


def test_car_hematotox_accepts_other_units() -> None:
    # Hb 5.585 mmol/L ≈ 9.0 g/dL (M 16114.5) → 1; PLT 80,000 /uL = 80 → 1; ANC 1500/uL = 1.5 → 0;
    # ferritin 700 ug/L = 700 ng/mL → 1; CRP 12 mg/L = 1.2 mg/dL → 0
    r = risk.score(
        "car-hematotox",
        {
            "platelets": {"value": 80000, "unit": "/uL"},
            "anc": {"value": 1500, "unit": "/uL"},
            "hemoglobin": {"value": 5.585, "unit": "mmol/L"},
            "crp": {"value": 12, "unit": "mg/L"},
            "ferritin": {"value": 700, "unit": "ug/L"},
        },
    )
    assert r.points == {"platelets": 1, "anc": 0, "hemoglobin": 1, "crp": 0, "ferritin": 1, "total": 3}
    assert len(r.unit_conversions) == 5


@pytest.mark.parametrize("drop", ["platelets", "anc", "hemoglobin", "crp", "ferritin"])
def test_car_hematotox_missing_input_gives_no_score(drop: str) -> None:
    findings = dict(ZERO)
    del findings[drop]
    r = risk.score("car-hematotox", findings)
    assert r.value is None and r.risk is None and not r.complete
    assert r.missing == [drop]
    assert r.points is not None and r.points[drop] is None and r.points["total"] is None
    j = r.as_json()
    assert j["value"] is None and j["risk"] is None and j["points"]["total"] is None


def test_car_hematotox_missing_input_reports_the_possible_range() -> None:
    # PLT 50 (2) + ANC 1.0 (1) known; ferritin missing (0-2): totals 3-5, all in the high range,
    # yet no score and no risk category are given (authors' code returns NA).
    findings = {"platelets": g_l(50), "anc": g_l(1.0), "hemoglobin": 12, "crp": {"value": 1, "unit": "mg/dL"}}
    r = risk.score("car-hematotox", findings)
    assert r.value is None and r.risk is None
    assert r.points_range == (3, 5)
    assert any("every possible total is in the HT-high range" in x for x in r.reasons)


# ---------------------------------------------------------------------------------------- HScore
HS_MAX: dict[str, Any] = {
    "known_immunosuppression": True,  # 18
    "temperature_c": 39.5,  # > 39.4 → 49
    "hepatomegaly": True,
    "splenomegaly": True,  # both → 38
    "hemoglobin": 8.0,
    "wbc": g_l(2.0),
    "platelets": g_l(50),  # three lineages → 34
    "ferritin": 8000,  # > 6000 → 50
    "triglycerides": {"value": 4.5, "unit": "mmol/L"},  # > 4 mmol/L → 64
    "fibrinogen": {"value": 2.0, "unit": "g/L"},  # <= 2.5 g/L → 30
    "ast": 100,  # >= 30 → 19
    "marrow_hemophagocytosis": True,  # 35
}
HS_ZERO: dict[str, Any] = {
    "known_immunosuppression": False,
    "temperature_c": 37.0,
    "hepatomegaly": False,
    "splenomegaly": False,
    "hemoglobin": 13.0,
    "wbc": g_l(7.0),
    "platelets": g_l(250),
    "ferritin": 300,
    "triglycerides": {"value": 1.0, "unit": "mmol/L"},
    "fibrinogen": {"value": 3.5, "unit": "g/L"},
    "ast": 20,
    "marrow_hemophagocytosis": False,
}


def test_hscore_maximum_is_337() -> None:
    # 18 + 49 + 38 + 34 + 50 + 64 + 30 + 19 + 35 = 337
    r = risk.score("hscore", HS_MAX)
    assert r.value == 337 and r.risk is not None and r.risk.category == "high"


def test_hscore_minimum_is_zero() -> None:
    r = risk.score("hscore", HS_ZERO)
    assert r.value == 0 and r.risk is not None and r.risk.category == "low"


def test_hscore_cutoff_169() -> None:
    # organomegaly both 38 + three lineages 34 + ferritin 2000-6000 35 + TG 1.5-4 44 + immunosuppression 18
    at = HS_ZERO | {
        "hepatomegaly": True,
        "splenomegaly": True,
        "hemoglobin": 9.2,  # <= 9.2 counts
        "wbc": g_l(5.0),  # <= 5.0 counts
        "platelets": g_l(110),  # <= 110 counts
        "ferritin": 2000,
        "triglycerides": {"value": 1.5, "unit": "mmol/L"},
        "known_immunosuppression": True,
    }
    r = risk.score("hscore", at)
    assert r.value == 169 and r.risk is not None and r.risk.category == "high"
    below = risk.score("hscore", at | {"known_immunosuppression": False})  # 151
    assert below.value == 151 and below.risk is not None and below.risk.category == "low"


@pytest.mark.parametrize(
    ("change", "component", "points"),
    [
        ({"temperature_c": 38.39}, "temperature", 0),
        ({"temperature_c": 38.4}, "temperature", 33),
        ({"temperature_c": 39.4}, "temperature", 33),
        ({"temperature_c": 39.41}, "temperature", 49),
        ({"ferritin": 1999}, "ferritin", 0),
        ({"ferritin": 6000}, "ferritin", 35),
        ({"ferritin": 6001}, "ferritin", 50),
        ({"triglycerides": {"value": 1.49, "unit": "mmol/L"}}, "triglycerides", 0),
        ({"triglycerides": {"value": 4.0, "unit": "mmol/L"}}, "triglycerides", 44),
        ({"triglycerides": {"value": 4.01, "unit": "mmol/L"}}, "triglycerides", 64),
        ({"triglycerides": {"value": 400, "unit": "mg/dL"}}, "triglycerides", 64),  # 4.52 mmol/L
        ({"fibrinogen": {"value": 2.5, "unit": "g/L"}}, "fibrinogen", 30),
        ({"fibrinogen": {"value": 2.51, "unit": "g/L"}}, "fibrinogen", 0),
        ({"fibrinogen": {"value": 250, "unit": "mg/dL"}}, "fibrinogen", 30),
        ({"ast": 29}, "ast", 0),
        ({"ast": 30}, "ast", 19),
        ({"hemoglobin": 9.0}, "cytopenias", 0),  # one lineage → 0
        ({"hemoglobin": 9.0, "platelets": g_l(100)}, "cytopenias", 24),
        ({"hepatomegaly": True}, "organomegaly", 23),
    ],
)
def test_hscore_item_boundaries(change: dict[str, Any], component: str, points: int) -> None:
    r = risk.score("hscore", HS_ZERO | change)
    assert r.points is not None and r.points[component] == points


def test_hscore_marrow_not_done_is_unknown_not_zero() -> None:
    findings = dict(HS_MAX)
    del findings["marrow_hemophagocytosis"]
    r = risk.score("hscore", findings)
    assert r.value is None and r.missing == ["marrow_hemophagocytosis"]
    assert r.points_range == (302, 337)
    assert r.points is not None and r.points["marrow_hemophagocytosis"] is None


def test_hscore_cytopenia_with_missing_count_gives_a_range() -> None:
    findings = dict(HS_ZERO)
    del findings["wbc"]
    r = risk.score("hscore", findings | {"hemoglobin": 8.0, "platelets": g_l(50)})  # 2 known lineages
    assert r.points is not None and r.points["cytopenias"] is None
    assert r.points_range == (24, 34)


# ------------------------------------------------------------------------------------ properties
# Values are drawn at laboratory precision (2 decimals): units.convert rounds to 10 significant
# digits, so a value within 1e-10 of a threshold could change side after a unit round-trip — a
# precision no laboratory reports.
ldh_st = st.integers(min_value=50, max_value=5000)
creat_st = st.integers(min_value=20, max_value=1500).map(lambda x: x / 100)  # 0.20-15.00 mg/dL
plt_st = st.integers(min_value=1, max_value=1500)


@given(ldh=ldh_st, creat=creat_st, plt=plt_st)
def test_easix_unit_invariance(ldh: int, creat: float, plt: int) -> None:
    base = risk.score("easix", {"ldh": ldh, "creatinine": mg_dl(creat), "platelets": g_l(plt)})
    conv = risk.score(
        "easix",
        {
            "ldh": {"value": ldh, "unit": "[IU]/L"},
            "creatinine": {"value": umol_per_l(creat), "unit": "umol/L"},
            "platelets": {"value": plt * 1000, "unit": "/uL"},
        },
    )
    assert base.value is not None and conv.value is not None
    assert math.isclose(base.value, conv.value, rel_tol=1e-6)


@given(ldh=ldh_st, creat=creat_st, plt=plt_st, d=st.integers(min_value=1, max_value=1000))
def test_easix_monotone(ldh: int, creat: float, plt: int, d: int) -> None:
    def easix(lo: float, cr: float, pl: float) -> float:
        v = risk.score("easix", {"ldh": lo, "creatinine": mg_dl(cr), "platelets": g_l(pl)}).value
        assert v is not None
        return v

    v = easix(ldh, creat, plt)
    assert easix(ldh + d, creat, plt) >= v  # increasing in LDH
    assert easix(ldh, creat + d / 100, plt) >= v  # increasing in creatinine
    assert easix(ldh, creat, plt + d) <= v  # decreasing in platelets


hem_st = st.fixed_dictionaries(
    {
        "platelets": st.integers(min_value=0, max_value=6000).map(lambda x: g_l(x / 10)),
        "anc": st.integers(min_value=0, max_value=2000).map(lambda x: g_l(x / 100)),
        "hemoglobin": st.integers(min_value=30, max_value=200).map(lambda x: x / 10),
        "crp": st.integers(min_value=0, max_value=4000).map(lambda x: mg_dl(x / 100)),
        "ferritin": st.integers(min_value=0, max_value=20000),
    }
)


@given(f=hem_st)
def test_car_hematotox_total_between_0_and_7_and_high_iff_2(f: dict[str, Any]) -> None:
    r = risk.score("car-hematotox", f)
    assert r.points is not None and r.value is not None
    assert 0 <= r.value <= 7
    assert r.value == sum(v for k, v in r.points.items() if k != "total" and v is not None)
    assert r.risk is not None and (r.risk.category == "high") == (r.value >= 2)


@given(f=hem_st)
def test_car_hematotox_unit_invariance(f: dict[str, Any]) -> None:
    converted = {
        "platelets": {"value": f["platelets"]["value"] * 1000, "unit": "/uL"},
        "anc": {"value": f["anc"]["value"], "unit": "10*3/uL"},
        "hemoglobin": {"value": f["hemoglobin"] * 10, "unit": "g/L"},
        "crp": {"value": f["crp"]["value"] * 10, "unit": "mg/L"},
        "ferritin": {"value": f["ferritin"], "unit": "ug/L"},
    }
    assert risk.score("car-hematotox", converted).points == risk.score("car-hematotox", f).points


@given(f=hem_st, k=st.sampled_from(["platelets", "anc", "hemoglobin", "crp", "ferritin"]))
def test_car_hematotox_worse_lab_never_lowers_the_total(f: dict[str, Any], k: str) -> None:
    # lower platelets/ANC/Hb and higher CRP/ferritin are worse
    worse = dict(f)
    if k == "crp":
        worse[k] = mg_dl(f[k]["value"] * 2 + 1)
    elif k in ("platelets", "anc"):
        worse[k] = g_l(f[k]["value"] / 2)
    else:
        worse[k] = f[k] * 2 + 1 if k == "ferritin" else f[k] / 2
    a = risk.score("car-hematotox", f).value
    b = risk.score("car-hematotox", worse).value
    assert a is not None and b is not None and b >= a


# ------------------------------------------------------------- cell counts are never bare (issue 11)
@pytest.mark.parametrize("count", ["platelets", "anc", "wbc"])
def test_a_bare_cell_count_is_refused_naming_the_field_the_value_and_the_units(count: str) -> None:
    """A US count of 150 (cells/uL) was read as 150 G/L: a bare count is refused, never guessed."""
    findings = dict(HS_ZERO) | {count: 150}
    with pytest.raises(FindingError) as err:
        risk.score("hscore", findings)
    assert (err.value.field, err.value.value) == (count, 150)
    assert str(err.value).startswith(f"{count} = 150: a bare number is refused")
    assert "'10*9/L' or '/uL'" in str(err.value)
    french = error_message(err.value, "fr")
    assert (
        french.startswith(f"{count} = 150 : un nombre sans unité est refusé")
        and "'10*9/L' ou '/uL'" in french
    )


def test_a_us_platelet_count_in_cells_per_ul_scores_as_profound_thrombocytopenia() -> None:
    """150 platelets/uL (0.15 G/L) is < 75 G/L: 2 CAR-HEMATOTOX points; 150 G/L is 1 point."""
    us = hematotox(platelets={"value": 150, "unit": "/uL"})
    french = hematotox(platelets={"value": 150, "unit": "10*9/L"})
    assert us.points is not None and french.points is not None
    assert (us.points["platelets"], french.points["platelets"]) == (2, 1)
