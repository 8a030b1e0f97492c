"""Legacy CRS scales (Lee 2014, Penn, MSKCC, CARTOX): properties and behaviours beyond the vectors.

Property tests (hypothesis), on internally consistent legacy records:

* more support never lowers a grade: a higher temperature, an added vasopressor, a high dose, a
  longer or refractory vasopressor course, a higher FiO2, a more intensive oxygen device, a higher
  organ / creatinine / transaminitis grade, any Penn flag set;
* every grade and grade range lies within the scale's grades;
* soundness of missing data: with inputs removed, the full record's grade lies within the
  reported ``grade_range`` and the reported grade is a lower bound of it;
* unit-converted input (FiO2 as a fraction, °F, minutes) grades the same as canonical input.

The conformance vectors (``data/conformance/legacy_crs.toml``) hold the boundaries and the
regrading contrasts; this file checks what a table of cases cannot.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import immunotox
from immunotox.errors import FindingError

SCALES = ["lee2014:crs", "penn:crs", "mskcc:crs", "cartox:crs"]
PRESSORS = ["norepinephrine", "epinephrine", "phenylephrine", "dopamine", "vasopressin", "angiotensin_ii"]
# Clinical order of oxygen support, written independently of the rule tables under test.
DEVICE_LEVELS = [
    ["none"],
    [
        "blow_by",
        "low_flow_nasal_cannula",
        "high_flow_nasal_cannula",
        "facemask",
        "nonrebreather_mask",
        "venturi_mask",
    ],
    ["cpap", "bipap"],
    ["mechanical_ventilation"],
]
LEVEL = {d: i for i, level in enumerate(DEVICE_LEVELS) for d in level}
DEVICES = list(LEVEL)
O2_DEVICES = DEVICE_LEVELS[1]


def _fio2_for(device: str, draw: st.DrawFn) -> float:
    if device == "none":
        return 21.0
    low = 21.5 if device in O2_DEVICES else 21.0
    return float(draw(st.floats(low, 100.0).map(lambda x: round(x, 1))))


@st.composite
def legacy_record(draw: st.DrawFn) -> dict[str, Any]:
    """A complete legacy CRS record whose findings do not contradict each other."""
    hypotension = draw(st.booleans())
    pressors = draw(st.lists(st.sampled_from(PRESSORS), unique=True, max_size=3)) if hypotension else []
    device = draw(st.sampled_from(DEVICES))
    organ = draw(st.integers(0, 4))
    temperature = draw(st.floats(35.0, 42.0).map(lambda x: round(x, 1)))
    f: dict[str, Any] = {
        "temperature_c": temperature,
        # crs_symptoms includes fever: false only without a temperature >= 38.0 °C
        "crs_symptoms": draw(st.booleans()) if temperature < 38.0 else True,
        "hypotension": hypotension,
        "vasopressors": pressors,
        "oxygen": device,
        "fio2_pct": _fio2_for(device, draw),
        "organ_toxicity_grade": organ,
        "creatinine_grade": draw(st.integers(0, organ)),
        "transaminitis_grade": draw(st.integers(0, 4)),
        "coagulopathy_requiring_products": draw(st.booleans()),
        "hospitalized_for_crs": draw(st.booleans()),
        "life_threatening": draw(st.booleans()),
    }
    if pressors:
        high = draw(st.booleans())
        f["vasopressor_high_dose"] = high
        # Lee: a high dose counts only after >= 3 h on board; vasopressor_high_dose = true is
        # defined to include that, so a consistent record never pairs it with < 3 h.
        f["vasopressor_hours"] = draw(st.floats(3.0 if high else 0.0, 200.0).map(lambda x: round(x, 1)))
        # refractory to high-dose vasopressors implies a high dose
        f["hypotension_refractory"] = draw(st.booleans()) if high else False
    else:
        f["vasopressor_high_dose"] = False
        f["vasopressor_hours"] = 0.0
        f["hypotension_refractory"] = False
    if device in ("low_flow_nasal_cannula", "high_flow_nasal_cannula"):
        f["o2_flow_l_min"] = draw(st.floats(0.5, 60.0).map(lambda x: round(x, 1)))
    return f


def grade_of(scale: str, f: dict[str, Any]) -> int:
    r = immunotox.grade(scale, f)
    assert r.grade is not None, r.explain()
    return r.grade


def worsen(f: dict[str, Any], how: str, draw: st.DrawFn) -> dict[str, Any]:
    """``f`` with one finding moved in the direction the criterion worsens (still consistent)."""
    g = dict(f)
    if how == "temperature":
        g["temperature_c"] = min(45.0, f["temperature_c"] + draw(st.floats(0.0, 3.0)))
        g["crs_symptoms"] = f["crs_symptoms"] or g["temperature_c"] >= 38.0
    elif how == "add_pressor":
        extra = [p for p in PRESSORS if p not in f["vasopressors"]]
        g["hypotension"] = True
        g["vasopressors"] = [*f["vasopressors"], draw(st.sampled_from(extra))]
    elif how == "high_dose" and f["vasopressors"]:
        g["vasopressor_high_dose"] = True
        g["vasopressor_hours"] = max(3.0, f["vasopressor_hours"])
    elif how == "hours" and f["vasopressors"]:
        g["vasopressor_hours"] = f["vasopressor_hours"] + draw(st.floats(0.0, 100.0))
    elif how == "refractory" and f["vasopressors"]:
        g["hypotension_refractory"] = True
        g["vasopressor_high_dose"] = True
        g["vasopressor_hours"] = max(3.0, f["vasopressor_hours"])
    elif how == "fio2":
        g["fio2_pct"] = min(100.0, f["fio2_pct"] + draw(st.floats(0.0, 60.0)))
        if f["oxygen"] == "none" and g["fio2_pct"] > 21:
            g["oxygen"] = "facemask"  # more oxygen needs a device; a device is more support too
    elif how == "device":
        higher = [d for d in DEVICES if LEVEL[d] > LEVEL[f["oxygen"]]]
        if higher:
            g["oxygen"] = draw(st.sampled_from(higher))
            g.pop("o2_flow_l_min", None)
            g["fio2_pct"] = max(f["fio2_pct"], 21.5 if g["oxygen"] in O2_DEVICES else 21.0)
    elif how == "organ":
        g["organ_toxicity_grade"] = draw(st.integers(f["organ_toxicity_grade"], 4))
    elif how == "creatinine":
        g["creatinine_grade"] = draw(st.integers(f["creatinine_grade"], 4))
        g["organ_toxicity_grade"] = max(f["organ_toxicity_grade"], g["creatinine_grade"])
    elif how == "transaminitis":
        g["transaminitis_grade"] = draw(st.integers(f["transaminitis_grade"], 4))
    elif how in (
        "crs_symptoms",
        "coagulopathy_requiring_products",
        "hospitalized_for_crs",
        "life_threatening",
    ):
        g[how] = True
    elif how == "hypotension" and not f["hypotension"]:
        g["hypotension"] = True
    return g


WORSENINGS = [
    "temperature",
    "add_pressor",
    "high_dose",
    "hours",
    "refractory",
    "fio2",
    "device",
    "organ",
    "creatinine",
    "transaminitis",
    "crs_symptoms",
    "coagulopathy_requiring_products",
    "hospitalized_for_crs",
    "life_threatening",
    "hypotension",
]


@pytest.mark.parametrize("scale", SCALES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_more_support_never_lowers_the_grade(scale: str, data: st.DataObject) -> None:
    f = data.draw(legacy_record())
    how = data.draw(st.sampled_from(WORSENINGS))
    g = worsen(f, how, data.draw)
    assert grade_of(scale, g) >= grade_of(scale, f), (how, f, g)


@pytest.mark.parametrize("scale", SCALES)
@settings(max_examples=100, deadline=None)
@given(f=legacy_record(), data=st.data())
def test_grades_within_range_and_missing_data_is_sound(
    scale: str, f: dict[str, Any], data: st.DataObject
) -> None:
    full = immunotox.grade(scale, f)
    assert full.complete and full.grade is not None, full.explain()
    grades = immunotox.get_scale(scale).grades
    assert full.grade in grades
    dropped = data.draw(st.lists(st.sampled_from(sorted(f)), unique=True))
    partial = immunotox.grade(scale, {k: v for k, v in f.items() if k not in dropped})
    lo, hi = partial.grade_range
    assert min(grades) <= lo <= hi <= max(grades)
    assert lo <= full.grade <= hi, (dropped, partial.explain())
    if partial.grade is not None:
        assert partial.grade == lo
    assert partial.complete == (not partial.missing)


@pytest.mark.parametrize("scale", SCALES)
@settings(max_examples=60, deadline=None)
@given(f=legacy_record())
def test_unit_converted_input_grades_the_same(scale: str, f: dict[str, Any]) -> None:
    converted = dict(f)
    converted["fio2_pct"] = {"value": f["fio2_pct"] / 100, "unit": "1"}
    converted["temperature_c"] = {"value": f["temperature_c"] * 9 / 5 + 32, "unit": "[degF]"}
    converted["vasopressor_hours"] = {"value": f["vasopressor_hours"] * 60, "unit": "min"}
    assert grade_of(scale, converted) == grade_of(scale, f)


def test_one_record_regrades_with_every_legacy_scale() -> None:
    """A legacy record is accepted by all four scales; each names what it does not use."""
    record = {
        "temperature_c": 39.2,
        "crs_symptoms": True,
        "hypotension": True,
        "vasopressors": ["norepinephrine"],
        "vasopressor_high_dose": False,
        "vasopressor_hours": 30,
        "hypotension_refractory": False,
        "oxygen": "facemask",
        "fio2_pct": 45,
        "organ_toxicity_grade": 2,
        "creatinine_grade": 2,
        "transaminitis_grade": 4,
        "coagulopathy_requiring_products": True,
        "hospitalized_for_crs": True,
        "life_threatening": False,
    }
    grades = {s: immunotox.grade(s, record) for s in SCALES}
    # Lee: FiO2 >= 40 % and grade 4 transaminitis -> 3; Penn: facemask / coagulopathy / grade 4
    # LFTs -> 3; MSKCC: vasopressors >= 24 h and FiO2 >= 40 % -> 3; CARTOX: FiO2 >= 40 % -> 3.
    assert {s: r.grade for s, r in grades.items()} == dict.fromkeys(SCALES, 3)
    assert all(r.complete for r in grades.values())
    mskcc_unused = next(x for x in grades["mskcc:crs"].reasons if x.startswith("Not a criterion"))
    assert "organ_toxicity_grade" in mskcc_unused and "coagulopathy_requiring_products" in mskcc_unused
    assert "coagulopathy_requiring_products" in next(
        x for x in grades["lee2014:crs"].reasons if x.startswith("Not a criterion")
    )
    penn_unused = [x for x in grades["penn:crs"].reasons if x.startswith("Not a criterion")]
    assert penn_unused == ["Not a criterion of this scale, not used: vasopressor_hours"]


def test_unneeded_inputs_are_named_not_missing() -> None:
    r = immunotox.grade("lee2014:crs", {"oxygen": "mechanical_ventilation"})
    assert (r.grade, r.complete, r.missing) == (4, True, [])
    assert any("organ_toxicity_grade not needed: cannot raise the grade above 4" in x for x in r.reasons)


def test_fio2_without_device_states_why() -> None:
    r = immunotox.grade("mskcc:crs", {"fio2_pct": 50, "hypotension": False, "crs_symptoms": False})
    assert (r.grade, r.grade_range, r.missing) == (3, (3, 4), ["oxygen"])
    assert any("ventilator support cannot be excluded" in x for x in r.reasons)


def test_device_without_fio2_states_why() -> None:
    r = immunotox.grade("cartox:crs", {"oxygen": "venturi_mask", "temperature_c": 38.4, "hypotension": False})
    assert "fio2_pct" in r.missing
    assert r.grade_range[0] == 2
    assert any("cannot be derived from the device" in x for x in r.reasons)


def test_lee_high_dose_under_three_hours_is_explained() -> None:
    f = {
        "hypotension": True,
        "vasopressors": ["epinephrine"],
        "vasopressor_high_dose": True,
        "vasopressor_hours": 1,
    }
    r = immunotox.grade("lee2014:crs", f)
    assert r.grade == 2
    assert any("not counted as high-dose (needs >= 3 h)" in x for x in r.reasons)


def test_penn_refractory_needs_no_extra_input_when_dose_known() -> None:
    f = {"hypotension": True, "vasopressors": ["norepinephrine"], "vasopressor_high_dose": False}
    r = immunotox.grade("penn:crs", f)
    assert r.grade == 3 and "hypotension_refractory" not in r.missing


@pytest.mark.parametrize("scale", ["lee2014:crs", "penn:crs", "mskcc:crs"])
def test_fever_contradicting_no_symptoms_is_refused(scale: str) -> None:
    with pytest.raises(FindingError) as err:
        immunotox.grade(scale, {"crs_symptoms": False, "temperature_c": 38.0})
    assert err.value.field == "crs_symptoms"
    assert "contradicts temperature_c = 38 °C" in str(err.value)
    # a fever attributed to another cause is no CRS symptom; 37.9 °C is no fever
    ok = {"crs_symptoms": False, "temperature_c": 39.0, "attribution_other_cause": ["fever"]}
    assert immunotox.grade(scale, ok).grade_range[0] == 0
    assert immunotox.grade(scale, {"crs_symptoms": False, "temperature_c": 37.9}).grade_range[0] == 0


def test_cartox_ignores_crs_symptoms_so_does_not_refuse_them() -> None:
    r = immunotox.grade("cartox:crs", {"crs_symptoms": False, "temperature_c": 38.0})
    assert r.grade == 1


def test_notes_state_interpretations_and_sources_are_cited() -> None:
    lee = immunotox.grade("lee2014:crs", {"oxygen": "none"})
    assert any("UNVERIFIED [M]" in n and "erratum" in n for n in lee.notes)
    assert any("CPAP/BiPAP are not counted as ventilator support" in n for n in lee.notes)
    assert lee.sources and "10.1182/blood-2014-05-552729" in lee.sources[0]
    penn = immunotox.grade("penn:crs", {"oxygen": "none"})
    assert any("Any supplemental oxygen" in n for n in penn.notes)
    for scale, doi in [("mskcc:crs", "10.1056/NEJMoa1709919"), ("cartox:crs", "10.1038/nrclinonc.2017.148")]:
        assert doi in immunotox.grade(scale, {}).sources[0]


@pytest.mark.parametrize(
    ("findings", "field", "fragment"),
    [
        ({"oxygen": "facemask", "fio2_pct": 21}, "fio2_pct", "room air FiO2 while oxygen = 'facemask'"),
        ({"vasopressors": [], "vasopressor_hours": 5}, "vasopressor_hours", "vasopressors = []"),
        (
            {"vasopressors": ["dopamine"], "vasopressor_high_dose": False, "hypotension_refractory": True},
            "hypotension_refractory",
            "vasopressor_high_dose = false",
        ),
        (
            {"hypotension": False, "hypotension_refractory": True},
            "hypotension_refractory",
            "hypotension = false",
        ),
        ({"oxygen": "none", "o2_flow_l_min": 2}, "o2_flow_l_min", "oxygen = 'none'"),
        ({"organ_toxicity_grade": "high"}, "organ_toxicity_grade", "whole number"),
    ],
)
@pytest.mark.parametrize("scale", SCALES)
def test_bad_input_names_field_and_value(
    scale: str, findings: dict[str, Any], field: str, fragment: str
) -> None:
    with pytest.raises(FindingError) as err:
        immunotox.grade(scale, findings)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field} = ")
    assert fragment in str(err.value)
