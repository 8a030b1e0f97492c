"""ASCO 2021 irAE organ grades (immunotox.scales.asco2021): data integrity, golden cases, missing data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import immunotox
from immunotox import ruledata, units
from immunotox.errors import FindingError
from immunotox.findings import vocabulary
from immunotox.management import recommend
from immunotox.scales.asco2021 import scales

ORGANS = (
    "hepatitis",
    "colitis",
    "pneumonitis",
    "rash",
    "nephritis",
    "myocarditis",
    "diabetes",
    "hypothyroidism",
    "hyperthyroidism",
    "adrenal-insufficiency",
    "hypophysitis",
)
T = ruledata.load("asco2021")
HEP_NORMAL: dict[str, Any] = {
    "alt": 20,
    "alt_uln": 40,
    "ast": 20,
    "ast_uln": 40,
    "bilirubin": {"value": 10, "unit": "umol/L"},
    "bilirubin_uln": {"value": 17, "unit": "umol/L"},
    "liver_dysfunction": "none",
}


def test_every_organ_is_a_catalogued_scale_citing_the_guideline() -> None:
    ids = [s.id for s in scales()]
    assert ids == [f"asco2021:{o}" for o in ORGANS]
    for sid in ids:
        scale = immunotox.all_scales()[sid]
        assert [s.doi for s in scale.sources] == ["10.1200/JCO.21.01440"]
        assert scale.grades == (0, 1, 2, 3, 4)


@pytest.mark.parametrize("organ", ORGANS)
def test_criteria_are_well_formed(organ: str) -> None:
    vocab = vocabulary()
    assert T[organ]["table"], "each scale names the table its grading is printed in"
    for name, c in T[organ]["criteria"].items():
        assert c["kind"] in ("multiple", "number", "enum", "bool"), name
        assert c["finding"] in vocab, name
        if c["kind"] == "multiple":
            assert c["ref"] in vocab and vocab[c["ref"]].unit == vocab[c["finding"]].unit, name
        if c["kind"] in ("multiple", "number"):
            grades = [b["grade"] for b in c["bands"]]
            assert grades == sorted(grades), f"{name}: bands from the least to the most severe"
            for b in c["bands"]:
                assert len({"gt", "ge", "value_gt", "rise_gt"} & set(b)) == 1, (name, b)
        if c["kind"] == "enum":
            assert set(c["values"]) <= set(vocab[c["finding"]].values), name


def test_lab_references_take_unit_and_molar_mass_from_the_analyte_table() -> None:
    vocab = vocabulary()
    for key, analyte in (
        ("bilirubin", "bilirubin"),
        ("bilirubin_uln", "bilirubin"),
        ("creatinine_baseline", "creatinine"),
    ):
        row = units.analyte(analyte)
        spec = vocab[key]
        assert (spec.unit, spec.molar_mass, spec.unit_required) == (
            row.unit,
            row.molar_mass,
            row.unit_required,
        )
    assert vocab["creatinine"].unit == vocab["creatinine_baseline"].unit


def test_issue_17_alt_250_with_reference_7_to_40_is_grade_3() -> None:
    r = immunotox.grade("asco2021:hepatitis", HEP_NORMAL | {"alt": 250})
    assert (r.grade, r.complete, r.deciding_domains) == (3, True, ["alt"])
    assert r.reasons[0] == "ALT 5–20 × ULN [ALT 250 U/L = 6.25 × ULN (40 U/L)] → grade 3"
    fr = immunotox.grade("asco2021:hepatitis", HEP_NORMAL | {"alt": 250}, lang="fr")
    assert fr.reasons[0] == "ALAT 5–20 × LSN [ALAT 250 U/L = 6,25 × LSN (40 U/L)] → grade 3"


def test_hepatitis_is_the_worst_of_aminotransferases_and_bilirubin() -> None:
    r = immunotox.grade(
        "asco2021:hepatitis", HEP_NORMAL | {"ast": 130, "bilirubin": {"value": 60, "unit": "umol/L"}}
    )
    # AST 3.25 x ULN -> 2; bilirubin 60/17 = 3.53 x ULN -> 3
    assert (r.grade, r.deciding_domains) == (3, ["bilirubin"])


def test_a_missing_reference_is_named_never_assumed() -> None:
    r = immunotox.grade(
        "asco2021:hepatitis", {k: v for k, v in HEP_NORMAL.items() if k != "alt_uln"} | {"alt": 900}
    )
    assert (r.grade, r.grade_range, r.missing, r.status) == (0, (0, 4), ["alt_uln"], "incomplete")
    assert "LOWER BOUND: missing alt_uln" in r.reasons[-1]


def test_bilirubin_and_creatinine_need_their_unit() -> None:
    with pytest.raises(FindingError) as err:
        immunotox.grade("asco2021:hepatitis", HEP_NORMAL | {"bilirubin": 25})
    assert err.value.field == "bilirubin"
    assert "a bare number is refused" in str(err.value)
    with pytest.raises(FindingError) as err:
        immunotox.grade(
            "asco2021:nephritis", {"creatinine": {"value": 1.2, "unit": "mg/dL"}, "creatinine_baseline": 0.8}
        )
    assert err.value.field == "creatinine_baseline"


def test_nephritis_in_umol_per_litre_is_graded_on_the_multiple_of_baseline() -> None:
    common = {"hospitalization_indicated": False, "dialysis_indicated": False, "life_threatening": False}
    r = immunotox.grade(
        "asco2021:nephritis",
        common
        | {
            "creatinine": {"value": 250, "unit": "umol/L"},
            "creatinine_baseline": {"value": 80, "unit": "umol/L"},
        },
    )
    assert (r.grade, r.complete) == (3, True)  # 3.125 x baseline
    assert r.reasons[0] == (
        "Creatinine > 3 × baseline [creatinine 2.828 mg/dL = 3.12 × baseline (0.905 mg/dL)] → grade 3"
    )


def test_rash_over_30_percent_needs_moderate_symptoms_for_grade_3() -> None:
    base = {"adl_limitation": "none", "hospitalization_indicated": False, "life_threatening": False}
    mild = immunotox.grade("asco2021:rash", base | {"bsa_pct": 60, "symptom_severity": "mild"})
    severe = immunotox.grade("asco2021:rash", base | {"bsa_pct": 60, "symptom_severity": "severe"})
    small = immunotox.grade("asco2021:rash", base | {"bsa_pct": 20, "symptom_severity": "severe"})
    assert (mild.grade, severe.grade, small.grade) == (2, 3, 2)
    assert severe.deciding_domains == ["bsa", "symptoms"]
    assert "Rash over 30% BSA without moderate or severe symptoms → grade 2" in mild.reasons


@given(st.floats(min_value=0, max_value=5000), st.floats(min_value=0, max_value=5000))
def test_hepatitis_grade_never_decreases_when_alt_rises(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    g_lo = immunotox.grade("asco2021:hepatitis", HEP_NORMAL | {"alt": lo}).grade
    g_hi = immunotox.grade("asco2021:hepatitis", HEP_NORMAL | {"alt": hi}).grade
    assert g_lo is not None and g_hi is not None and g_lo <= g_hi


@pytest.mark.parametrize("organ", ORGANS)
def test_nothing_given_is_not_assessable_and_names_every_input(organ: str) -> None:
    scale = immunotox.all_scales()[f"asco2021:{organ}"]
    r = immunotox.grade(scale.id, {})
    assert r.status == "not_assessable" and r.grade is None
    assert set(r.missing) == set(scale.findings)


def test_a_glucose_without_its_uln_keeps_the_bands_on_the_value() -> None:
    base = {
        "ciadm_evidence": False,
        "ketoacidosis": False,
        "symptom_severity": "none",
        "adl_limitation": "none",
        "life_threatening": False,
    }
    high = immunotox.grade(
        "asco2021:diabetes", base | {"fasting_glucose": {"value": 15, "unit": "mmol/L"}}, lang="fr"
    )
    assert (high.grade, high.complete) == (3, True)
    assert "fasting_glucose_uln non donné ; inutile ici : grade 3 quelle que soit sa valeur" in high.reasons
    low = immunotox.grade("asco2021:diabetes", base | {"fasting_glucose": {"value": 1.2, "unit": "g/L"}})
    assert (low.grade, low.grade_range, low.missing) == (0, (0, 1), ["fasting_glucose_uln"])


# ------------------------------------------------------------------ management keyed on these scales
def _recommend(scale: str, findings: dict[str, Any], context: dict[str, Any], lang: str = "en") -> Any:
    res = immunotox.grade(scale, findings)
    return recommend(res, None, context, jurisdiction="EU", lang=lang, now=datetime(2026, 1, 1, tzinfo=UTC))


PEMBRO_80KG = {"product": "pembrolizumab", "weight_kg": 80, "age_years": 60}


def test_issue_17_pembrolizumab_80kg_alt_250_is_held_or_discontinued_with_a_weight_based_steroid() -> None:
    r = _recommend("asco2021:hepatitis", {"alt": 250, "alt_uln": 40}, PEMBRO_80KG)
    assert (r.toxicity, r.grade, r.guideline.id) == ("hepatitis", 3, "asco2021-ici")
    ici = [a.ici_action.id for a in r.actions if a.ici_action is not None]
    assert ici[0] == "consider_discontinue"
    dose = next(a.dose for a in r.actions if a.dose is not None)
    # methylprednisolone 1-2 mg/kg/day x 80 kg (ASCO 2021, hepatitis G3)
    assert (dose.drug, dose.dose_mg_range, dose.per) == ("methylprednisolone", (80.0, 160.0), "day")
    # the grading is the guideline's own: no "check that the grades correspond" warning
    assert not any("correspond" in w for w in r.warnings)
    # every ICI action is conditioned on attribution, said first
    assert r.actions[0].kind == "note" and "other causes are excluded" in r.actions[0].text
    assert "hepatology" in {a.referral.id for a in r.actions if a.referral is not None}


def test_recommendation_in_french_from_an_asco_organ_grade() -> None:
    r = _recommend("asco2021:colitis", {"stools_over_baseline": 5}, PEMBRO_80KG, lang="fr")
    assert r.grade == 2
    assert "exclusion des autres causes" in r.actions[0].text
    dose = next(a.dose for a in r.actions if a.dose is not None)
    assert (dose.drug, dose.dose_mg) == ("prednisone", 80.0)  # 1 mg/kg/day x 80 kg (colitis G2)
    assert "gastroenterology" in {a.referral.id for a in r.actions if a.referral is not None}


@pytest.mark.parametrize(
    ("scale", "findings", "grade", "ici"),
    [
        ("asco2021:hypothyroidism", {"tsh": 7.0}, 1, "continue"),
        ("asco2021:hypothyroidism", {"tsh": 14.0, "tsh_persistently_gt10": True}, 2, "continue_or_hold"),
        ("asco2021:hyperthyroidism", {"symptom_severity": "moderate"}, 2, "consider_hold"),
        ("asco2021:adrenal-insufficiency", {"event_present": True, "symptom_severity": "severe"}, 3, "hold"),
        ("asco2021:hypophysitis", {"event_present": True}, 1, "consider_hold"),
    ],
)
def test_endocrine_scales_select_their_management_rows(
    scale: str, findings: dict[str, Any], grade: int, ici: str
) -> None:
    r = _recommend(scale, findings, PEMBRO_80KG)
    assert r.grade == grade and r.toxicity == scale.split(":")[1]
    assert ici in [a.ici_action.id for a in r.actions if a.ici_action is not None]
    assert "endocrinology" in {a.referral.id for a in r.actions if a.referral is not None} or grade < 2
