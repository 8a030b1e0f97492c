"""Property tests (hypothesis) for the ASTCT 2019 CRS and ICANS scales.

* more support (a higher temperature, an added vasopressor, a more intensive oxygen device, a
  higher flow, worse neurological findings) never lowers the grade;
* grades stay within the scale's range;
* soundness of missing data: with any inputs removed, the true grade lies within the reported
  ``grade_range`` and the reported grade is a lower bound of it;
* unit-converted input grades the same as canonical input.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import immunotox

# Clinical order of oxygen support, written independently of the rule table under test.
DEVICE_ORDER = [
    ["none"],
    ["blow_by", "low_flow_nasal_cannula"],
    ["high_flow_nasal_cannula", "facemask", "nonrebreather_mask", "venturi_mask"],
    ["cpap", "bipap"],
    ["mechanical_ventilation"],
]
DEVICES = [d for level in DEVICE_ORDER for d in level]
LEVEL = {d: i for i, level in enumerate(DEVICE_ORDER) for d in level}
PRESSORS = ["norepinephrine", "epinephrine", "phenylephrine", "dopamine", "vasopressin"]
LOC = ["awake", "awakens_spontaneously", "awakens_to_voice", "awakens_to_tactile", "unarousable"]
SEIZURE_LEVEL = {
    "none": 0,
    "clinical_resolved": 1,
    "eeg_resolved_with_intervention": 1,
    "prolonged": 2,
    "repetitive": 2,
}


@st.composite
def crs_findings(draw: st.DrawFn) -> dict[str, Any]:
    device = draw(st.sampled_from(DEVICES))
    f: dict[str, Any] = {
        "temperature_c": draw(st.floats(35.0, 42.0).map(lambda x: round(x, 1))),
        "fever_masked": draw(st.booleans()),
        "hypotension": draw(st.booleans()),
        "vasopressors": draw(st.lists(st.sampled_from(PRESSORS), unique=True, max_size=3)),
        "oxygen": device,
    }
    if device != "none":
        f["o2_flow_l_min"] = draw(st.floats(0.5, 60.0).map(lambda x: round(x, 1)))
    return f


@st.composite
def icans_findings(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "age_years": draw(st.integers(12, 90)),
        "ice_score": draw(st.integers(0, 10)),
        "consciousness": draw(st.sampled_from(LOC)),
        "seizure": draw(st.sampled_from(list(SEIZURE_LEVEL))),
        "motor": draw(st.sampled_from(["none", "deep_focal_weakness"])),
        "cerebral_edema": draw(st.sampled_from(["none", "focal", "diffuse"])),
        "raised_icp_signs": draw(st.booleans()),
    }


def crs(f: dict[str, Any]) -> int:
    g = immunotox.grade("astct2019:crs", f).grade
    assert g is not None
    return g


def icans(f: dict[str, Any]) -> int:
    g = immunotox.grade("astct2019:icans", f).grade
    assert g is not None
    return g


@given(crs_findings(), st.floats(0.0, 3.0))
def test_crs_higher_temperature_never_lowers(f: dict[str, Any], delta: float) -> None:
    hotter = f | {"temperature_c": min(45.0, f["temperature_c"] + delta)}
    assert crs(hotter) >= crs(f)


@given(crs_findings(), st.sampled_from(PRESSORS))
def test_crs_adding_a_vasopressor_never_lowers(f: dict[str, Any], drug: str) -> None:
    more = f | {"vasopressors": sorted(set(f["vasopressors"]) | {drug})}
    assert crs(more) >= crs(f)


@given(crs_findings(), st.sampled_from(DEVICES))
def test_crs_more_intensive_oxygen_never_lowers(f: dict[str, Any], device: str) -> None:
    if LEVEL[device] <= LEVEL[f["oxygen"]]:
        return
    more = f | {"oxygen": device, "o2_flow_l_min": f.get("o2_flow_l_min", 2.0)}
    assert crs(more) >= crs(f)


@given(crs_findings(), st.floats(0.0, 20.0))
def test_crs_higher_flow_never_lowers(f: dict[str, Any], delta: float) -> None:
    if f["oxygen"] == "none":
        return
    more = f | {"o2_flow_l_min": min(80.0, f["o2_flow_l_min"] + delta)}
    assert crs(more) >= crs(f)


@given(crs_findings())
def test_crs_masking_or_hypotension_never_lowers(f: dict[str, Any]) -> None:
    assert crs(f | {"fever_masked": True}) >= crs(f)
    assert crs(f | {"hypotension": True}) >= crs(f)


@given(crs_findings())
def test_crs_grade_in_range(f: dict[str, Any]) -> None:
    assert 0 <= crs(f) <= 5


@settings(max_examples=300)
@given(crs_findings(), st.data())
def test_crs_missing_inputs_bound_the_true_grade(f: dict[str, Any], data: st.DataObject) -> None:
    true = crs(f)
    drop = data.draw(st.sets(st.sampled_from(sorted(f))))
    partial = {k: v for k, v in f.items() if k not in drop}
    r = immunotox.grade("astct2019:crs", partial)
    lo, hi = r.grade_range
    assert lo <= true <= hi, (partial, r.explain())
    if r.complete:
        assert r.grade == true


@given(crs_findings())
def test_crs_fahrenheit_grades_like_celsius(f: dict[str, Any]) -> None:
    fahrenheit = f | {"temperature_c": {"value": f["temperature_c"] * 9 / 5 + 32, "unit": "[degF]"}}
    assert crs(fahrenheit) == crs(f)


@given(icans_findings(), st.integers(0, 10))
def test_icans_lower_ice_never_lowers(f: dict[str, Any], drop: int) -> None:
    worse = f | {"ice_score": max(0, f["ice_score"] - drop)}
    assert icans(worse) >= icans(f)


@given(icans_findings(), st.sampled_from(LOC))
def test_icans_deeper_consciousness_never_lowers(f: dict[str, Any], loc: str) -> None:
    if LOC.index(loc) >= LOC.index(f["consciousness"]):
        assert icans(f | {"consciousness": loc}) >= icans(f)


@given(icans_findings(), st.sampled_from(list(SEIZURE_LEVEL)))
def test_icans_worse_seizure_never_lowers(f: dict[str, Any], seizure: str) -> None:
    if SEIZURE_LEVEL[seizure] >= SEIZURE_LEVEL[f["seizure"]]:
        assert icans(f | {"seizure": seizure}) >= icans(f)


@given(icans_findings())
def test_icans_grade_in_range_and_at_least_each_domain(f: dict[str, Any]) -> None:
    g = icans(f)
    assert 0 <= g <= 4
    if f["raised_icp_signs"] or f["motor"] != "none" or f["cerebral_edema"] == "diffuse":
        assert g == 4


@settings(max_examples=300)
@given(icans_findings(), st.data())
def test_icans_missing_inputs_bound_the_true_grade(f: dict[str, Any], data: st.DataObject) -> None:
    true = icans(f)
    drop = data.draw(st.sets(st.sampled_from(sorted(f))))
    partial = {k: v for k, v in f.items() if k not in drop}
    r = immunotox.grade("astct2019:icans", partial)
    lo, hi = r.grade_range
    assert lo <= true <= hi, (partial, r.explain())
