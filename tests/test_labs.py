"""Laboratory reference intervals and the lab alert policy (issue 16): the data files, the
checks of a result's own interval, the default per sex and age band, and the policy's rules."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from immunotox import labs
from immunotox.catalogue import get_scale
from immunotox.errors import FindingError, UnitError
from immunotox.messages import render
from immunotox.vocabulary import vocabulary

T0 = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)
ICI, ALT = "checkpoint_inhibitor", "alanine-aminotransferase-increased"


def test_every_term_is_a_ctcae_lab_term_in_its_codes_canonical_unit() -> None:
    for code, scales in labs.lab_terms().items():
        spec = vocabulary().code(code)
        for scale in scales:
            lab = get_scale(scale).term.lab  # type: ignore[attr-defined]
            assert lab is not None and lab.unit == spec.unit, (code, scale)


def test_defaults_are_converted_to_the_canonical_unit() -> None:
    crea = labs.default_interval("creatinine", "female", 40)
    assert crea is not None and crea.unit == "mg/dL"
    assert crea.given == (45.0, 90.0, "umol/L") and crea.high == pytest.approx(90 / 88.42, rel=1e-3)
    fib = labs.default_interval("fibrinogen", "male", 40)
    assert fib is not None and (fib.low, fib.high) == (150.0, 400.0) and fib.verification == "M"


@pytest.mark.parametrize(
    ("code", "sex", "age", "expected"),
    [
        ("alt", "male", 64, (10, 70)),
        ("alt", "female", 18, (10, 45)),
        ("alt", "female", 17.9, None),  # children: no default, never a guess
        ("alt", "other", 50, None),  # sex-specific interval, sex not female or male
        ("alt", None, 50, None),
        ("alt", "male", None, None),
        ("platelets", "unknown", 50, (150, 400)),  # one interval for either sex
        ("hemoglobin", "female", 30, (11.5, 15.5)),
        ("crp", "male", 50, None),  # no CTCAE term, no default
    ],
)
def test_default_interval_per_sex_and_age_band(
    code: str, sex: str | None, age: float | None, expected: tuple[float, float] | None
) -> None:
    iv = labs.default_interval(code, sex, age)
    assert (None if iv is None else (iv.low, iv.high)) == expected


def test_the_default_says_its_population_and_source_in_both_languages() -> None:
    iv = labs.default_interval("alt", "female", 50)
    assert iv is not None
    en, fr = render(labs.interval_msg("uln", iv), "en"), render(labs.interval_msg("uln", iv), "fr")
    assert en.startswith("ULN 45 U/L: the site's default reference interval 10–45 U/L for women, aged 18")
    assert "Rustad P" in en and "doi:10.1080/00365510410006324" in en
    assert fr.startswith("LSN 45 U/L : l'intervalle de référence par défaut du site, 10–45 U/L, pour femmes")
    unverified = labs.default_interval("fibrinogen", "female", 50)
    assert unverified is not None
    assert "not verified" in render(labs.interval_msg("lln", unverified), "en")


def test_a_results_own_interval_is_converted_with_the_result() -> None:
    ref = labs.check_reference(vocabulary().code("creatinine"), 45, 90, "umol/L")
    assert ref is not None and ref.high == pytest.approx(1.0181, rel=1e-3)
    assert labs.check_reference(vocabulary().code("alt"), None, None, None) is None
    assert labs.check_reference(vocabulary().code("alt"), None, "40", "U/L") == labs.Reference(None, 40.0)


@pytest.mark.parametrize(
    ("code", "low", "high", "unit", "error", "field", "fragment"),
    [
        ("alt", 40, 7, "U/L", FindingError, "ref_low", "not below ref_high"),
        ("alt", 40, 40, "U/L", FindingError, "ref_low", "not below ref_high"),
        ("alt", 7, 40, None, FindingError, "unit", "needs the result's unit"),
        ("alt", 7, 40, " ", FindingError, "unit", "needs the result's unit"),
        ("alt", 7, 40, "mg/dL", UnitError, "unit", "convert"),
        ("alt", 7, 40, "furlong", UnitError, "unit", ""),
        ("alt", -1, 40, "U/L", FindingError, "ref_low", "negative"),
        ("alt", 7, float("nan"), "U/L", FindingError, "ref_high", "finite"),
        ("alt", True, 40, "U/L", FindingError, "ref_low", "number"),
        ("temperature", 36, 38, "Cel", FindingError, "ref_low", "not a laboratory result"),
        ("oxygen", None, 1, "", FindingError, "ref_high", "not a laboratory result"),
    ],
)
def test_bad_reference_intervals_name_the_field(
    code: str, low: Any, high: Any, unit: str | None, error: type[Exception], field: str, fragment: str
) -> None:
    with pytest.raises(error) as info:
        labs.check_reference(vocabulary().code(code), low, high, unit, "observations.3.")
    exc = info.value
    assert isinstance(exc, FindingError) and exc.field == f"observations.3.{field}"
    assert fragment in exc.problem


def test_the_policy_ends_with_a_rule_for_everything_and_cites_its_sources() -> None:
    rules = labs.policy().rules
    assert rules[-1].therapy == rules[-1].phase == rules[-1].terms == ("*",)
    assert len({r.id for r in rules}) == len(rules)
    for r in rules:
        for t in r.terms:  # catalogue scales (lab terms today; other scales may join the policy)
            assert t == "*" or get_scale(t).id == t, (r.id, t)
        assert render(r.why(), "en") and render(r.why(), "fr")


@pytest.mark.parametrize(
    ("days", "phase"),
    [(-3, "before_day0"), (-0.01, "before_day0"), (0, "day0_30"), (30.99, "day0_30"), (31, "after_day30")],
)
def test_phase_by_day_relative_to_day0(days: float, phase: str) -> None:
    assert labs.phase_of(T0 + dt.timedelta(days=days), T0) == phase
    assert labs.phase_of(T0, None) == labs.UNKNOWN_PHASE


@pytest.mark.parametrize(
    ("therapy", "phase", "term", "grade", "alerts", "rule"),
    [
        # cytopenias expected after lymphodepletion: followed by ICAHT, not alerted (EHA/EBMT 2023)
        ("car_t", "day0_30", "neutrophil-count-decreased", 4, False, "cart-early-cytopenias-icaht"),
        ("car_t", "day0_30", "platelet-count-decreased", 4, False, "cart-early-cytopenias-icaht"),
        ("car_t", "after_day30", "neutrophil-count-decreased", 3, False, "cart-late-severe-cytopenias"),
        ("car_t", "after_day30", "neutrophil-count-decreased", 4, True, "cart-late-severe-cytopenias"),
        ("car_t", "after_day30", "lymphocyte-count-decreased", 4, False, "lymphopenia-expected"),
        ("car_t", "day0_30", "alanine-aminotransferase-increased", 2, False, "default-severe"),
        ("car_t", "day0_30", "alanine-aminotransferase-increased", 3, True, "default-severe"),
        # checkpoint inhibitors: ALT grade >= 2 alerts (ASCO 2021: hold the drug from grade 2)
        (
            "checkpoint_inhibitor",
            "after_day30",
            "alanine-aminotransferase-increased",
            1,
            False,
            "ici-hepatitis",
        ),
        (
            "checkpoint_inhibitor",
            "after_day30",
            "alanine-aminotransferase-increased",
            2,
            True,
            "ici-hepatitis",
        ),
        ("checkpoint_inhibitor", "unknown", "blood-bilirubin-increased", 2, True, "ici-hepatitis"),
        ("checkpoint_inhibitor", "day0_30", "neutrophil-count-decreased", 3, True, "default-severe"),
        # a value before day 0 is a baseline
        (
            "checkpoint_inhibitor",
            "before_day0",
            "alanine-aminotransferase-increased",
            4,
            False,
            "baseline-values",
        ),
        ("bispecific", "day0_30", "neutrophil-count-decreased", 4, True, "cart-late-severe-cytopenias"),
    ],
)
def test_alert_policy_rules(therapy: str, phase: str, term: str, grade: int, alerts: bool, rule: str) -> None:
    r = labs.alert_rule(therapy, phase, f"ctcae5:{term}")
    assert (r.id, r.alerts(grade)) == (rule, alerts)
    assert not r.alerts(None)
