"""Dose safety: tocilizumab dose and limits, steroid equivalence, documented maxima.

Golden values cite their source: US ACTEMRA label (CRS dosage, via drugs.com 2019 [V2]) for the
weight bands and the 800 mg cap; ASCO CAR-T 2021 (Santomasso, JCO 2021, Table 2 [V]) for
"maximum 3 doses in 24 hours, maximum total of 4 doses"; Meikle & Tyler 1977 table [V2] and
ASCO ICI 2021 (hydrocortisone 20 mg ≈ prednisone 5 mg [V]) for steroid equivalence.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immunotox.errors import FindingError
from immunotox.management import check_dose_rule, convert_steroid, steroid_equivalents, tocilizumab_dose
from immunotox.management._inputs import format_time

NOW = datetime(2025, 3, 2, 12, 0, tzinfo=UTC)
T0 = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)


def iso(hours: float) -> str:
    """T0 + hours, as ISO 8601 UTC."""
    return format_time(T0 + timedelta(hours=hours))


def dose(weight: object, given: list[str] | None = None, at: str | None = None, **kw: object):  # type: ignore[no-untyped-def]
    """An adult patient under the US label unless the test says otherwise (the population gate
    and the jurisdiction are tested on their own)."""
    kw.setdefault("age_years", 40)
    kw.setdefault("jurisdiction", "US")
    return tocilizumab_dose(weight, given or [], at or iso(30), now=NOW, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ dose by weight
@pytest.mark.parametrize(
    ("weight", "expected_mg", "mg_per_kg", "capped"),
    [
        (70, 560.0, 8, False),  # label + ASCO: 8 mg/kg for >= 30 kg
        (30, 240.0, 8, False),  # boundary: "30 kg or above" -> 8 mg/kg
        (29.9, 358.8, 12, False),  # boundary: "less than 30 kg" -> 12 mg/kg (label)
        (25, 300.0, 12, False),
        (10, 120.0, 12, False),
        (100, 800.0, 8, False),  # exactly the cap: not capped
        (100.1, 800.0, 8, True),  # one step above: capped
        (120, 800.0, 8, True),  # 960 mg computed -> 800 mg cap (label: >800 mg per infusion not recommended)
        (300, 800.0, 8, True),
    ],
)
def test_dose_by_weight_band_and_cap(
    weight: float, expected_mg: float, mg_per_kg: float, capped: bool
) -> None:
    d = dose(weight)
    assert d.dose_mg == expected_mg
    assert d.mg_per_kg == mg_per_kg
    assert d.capped is capped
    assert d.cap_mg == 800
    assert d.allowed is True
    keys = {s.key for s in d.sources}
    assert "actemra-us-label" in keys and "santomasso2021" in keys


def test_under_30_kg_cites_the_label_and_says_asco_gives_no_dose() -> None:
    d = dose(20)
    assert d.dose_mg == 240.0
    band_refs = [s for s in d.sources if "less than 30 kg" in s.locator]
    assert band_refs and band_refs[0].key == "actemra-us-label" and band_refs[0].verification == "V2"
    assert any("ASCO 2021 gives no dose under 30 kg" in r for r in d.reasons)


def test_dose_is_rounded_down_never_up() -> None:
    # 12 mg/kg x 25.33 kg = 303.96 mg -> 303.9 mg (rounded down to 0.1 mg)
    assert dose(25.33).dose_mg == 303.9


def test_weight_in_pounds_is_converted() -> None:
    d = dose({"value": 154.3, "unit": "[lb_av]"})  # 154.3 lb = 69.989 kg
    assert d.weight_kg == pytest.approx(69.9893, abs=1e-3)
    assert d.dose_mg == 559.9  # 8 mg/kg x 69.989 kg = 559.91 mg, rounded down


# ------------------------------------------------------------------------------ limits
def test_first_dose_allowed_and_next_one_8_hours_later() -> None:
    d = dose(70, [], iso(0))
    assert d.allowed and d.next_allowed_at == iso(0)
    assert d.following_dose_earliest_at == iso(8)
    assert d.total_doses == 0 and d.last_dose_at is None


def test_refuses_a_dose_less_than_8_hours_after_the_previous() -> None:
    d = dose(70, [iso(0)], iso(7.99))
    assert d.allowed is False
    assert d.next_allowed_at == iso(8)
    assert d.reasons[0].startswith("REFUSED") and "at least 8 h" in d.reasons[0]
    assert [c.kind for c in d.limits if not c.ok] == ["min_interval_h"]


def test_allows_a_dose_exactly_8_hours_after_the_previous() -> None:
    d = dose(70, [iso(0)], iso(8))
    assert d.allowed is True
    assert d.hours_since_last == 8


def test_refuses_a_fifth_dose() -> None:
    d = dose(70, [iso(0), iso(8), iso(16), iso(24)], iso(48))
    assert d.allowed is False
    assert d.next_allowed_at is None  # no further dose at all
    assert d.total_doses == 4
    assert "maximum of 4 in total is reached" in d.reasons[0]
    failed = [c for c in d.limits if not c.ok]
    assert [c.kind for c in failed] == ["max_total"]
    assert "santomasso2021" in failed[0].sources


def test_fourth_dose_is_the_last_allowed() -> None:
    d = dose(70, [iso(0), iso(8), iso(16)], iso(40))
    assert d.allowed is True
    assert d.following_dose_earliest_at is None
    assert any("last dose allowed (4 of 4)" in r for r in d.reasons)


def test_refuses_a_fourth_dose_within_24_hours() -> None:
    d = dose(70, [iso(0), iso(8), iso(16)], iso(23.5))
    assert d.allowed is False
    window = next(c for c in d.limits if c.kind == "max_in_window")
    assert window.ok is False and window.observed == 3 and window.limit == 3
    assert any("maximum of 3 in any 24 h is reached" in r for r in d.reasons)
    assert d.next_allowed_at == iso(24)
    assert d.doses_in_last_24h == 3


def test_window_is_open_at_its_start() -> None:
    # (at - 24 h, at]: the dose given exactly 24 h before no longer counts
    d = dose(70, [iso(0), iso(8), iso(16)], iso(24))
    assert d.allowed is True
    assert d.doses_in_last_24h == 2


def test_window_refuses_on_its_own_when_the_history_was_closer_than_8_hours() -> None:
    d = dose(70, [iso(0), iso(4), iso(12)], iso(20))
    assert d.allowed is False
    assert [c.kind for c in d.limits if not c.ok] == ["max_in_window"]
    assert d.next_allowed_at == iso(24)  # the dose at 0 h leaves the window at +24 h: 2 doses left in it
    assert any("History check" in w for w in d.warnings)


def test_timezone_offsets_are_honoured() -> None:
    # 09:00+01:00 is 08:00Z: exactly 8 h before 16:00Z
    d = dose(70, ["2025-03-01T09:00:00+01:00"], "2025-03-01T16:00:00Z")
    assert d.allowed and d.hours_since_last == 8
    assert d.last_dose_at == "2025-03-01T08:00:00Z"


def test_under_two_years_no_amount_is_given_but_the_limits_still_apply() -> None:
    """The CRS indication of tocilizumab is for patients 2 years and older (label [V]): below,
    no amount of the rule is printed; the timing limits are still checked."""
    d = dose(12, age_years=1.5)
    assert d.withheld and d.dose_mg is None and d.mg_per_kg is None and d.uncapped_mg is None
    assert d.allowed and not d.population.covered and d.population.missing == []
    assert "2 years and older" in (d.population.reason or "")
    assert "dose per the unit's paediatric protocol" in (d.population.reason or "")
    assert not any(re.search(r"\d\s*mg\b", r) for r in d.reasons)
    fr = dose(12, age_years=1.5, lang="fr")
    assert "Patient pédiatrique : dose selon le protocole pédiatrique de l'unité." in (
        fr.population.reason or ""
    )


def test_a_missing_age_is_a_missing_input_unless_the_product_is_adult_only() -> None:
    from immunotox.management import resolve_product

    d = tocilizumab_dose(15, [], iso(30), now=NOW)
    assert d.withheld and d.dose_mg is None and d.population.missing == ["age_years"]
    kids = resolve_product("product", "tisa-cel").licences(None)
    assert tocilizumab_dose(15, [], iso(30), now=NOW, licences=kids, jurisdiction="US").withheld
    adults = resolve_product("product", "axi-cel").licences(None)
    d = tocilizumab_dose(70, [], iso(30), now=NOW, licences=adults)
    assert not d.withheld and d.dose_mg == 560.0
    assert dose(15, age_years=2).dose_mg == 180.0  # the band edge of the population: 2 years is in


def test_french_reasons() -> None:
    d = tocilizumab_dose(70, [iso(0)], iso(7), now=NOW, lang="fr")
    assert d.reasons[0].startswith("REFUSÉ") and "au moins 8 h" in d.reasons[0]


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("weight", "problem"),
    [
        (700, "outside the plausible body weight range 1–350 kg"),
        (0.5, "outside the plausible body weight range"),
        (-70, "outside the plausible body weight range"),
        ("70", "expected a number of kg"),
        (True, "expected a number of kg"),
        ({"value": 70, "unit": "stone"}, "unknown UCUM unit"),
    ],
)
def test_bad_weight_is_refused_naming_the_field(weight: object, problem: str) -> None:
    with pytest.raises(FindingError, match=problem) as exc:
        dose(weight)
    assert exc.value.field.startswith("weight_kg")


def test_missing_weight_is_an_error() -> None:
    with pytest.raises(FindingError, match="weight_kg = null"):
        dose(None)


def test_dose_time_in_the_future_is_refused() -> None:
    future = format_time(NOW + timedelta(hours=1))
    with pytest.raises(FindingError, match="cannot be in the future") as exc:
        tocilizumab_dose(70, [future], format_time(NOW + timedelta(hours=10)), now=NOW)
    assert exc.value.field == "given[0]"


def test_dose_given_after_the_intended_time_is_refused() -> None:
    with pytest.raises(FindingError, match="after the time of the intended dose"):
        dose(70, [iso(10)], iso(5))


def test_naive_time_is_refused_never_guessed() -> None:
    with pytest.raises(FindingError, match="time without a timezone") as exc:
        dose(70, ["2025-03-01T08:00:00"])
    assert exc.value.field == "given[0]"
    with pytest.raises(FindingError, match="time without a timezone"):
        tocilizumab_dose(70, [], "2025-03-01T08:00:00", now=NOW)


def test_bad_time_strings() -> None:
    with pytest.raises(FindingError, match="not an ISO 8601 date-time"):
        dose(70, ["yesterday"])
    with pytest.raises(FindingError, match="expected an ISO 8601 date-time string"):
        dose(70, [12])  # type: ignore[list-item]


def test_duplicate_dose_time_is_refused() -> None:
    with pytest.raises(FindingError, match="listed twice"):
        dose(70, [iso(0), iso(0)])


def test_unknown_language_is_refused() -> None:
    with pytest.raises(FindingError, match="lang = 'de'"):
        tocilizumab_dose(70, now=NOW, lang="de")


# ------------------------------------------------------------------------------ properties
histories = st.lists(st.integers(min_value=0, max_value=72 * 60), max_size=6, unique=True)


@settings(max_examples=300, deadline=None)
@given(
    weight=st.one_of(
        st.floats(min_value=1, max_value=350, allow_nan=False),
        st.sampled_from([1.0, 29.9, 29.999, 30.0, 30.001, 100.0, 100.1, 350.0]),
    ),
    age=st.one_of(
        st.floats(min_value=0, max_value=100), st.sampled_from([0.0, 1.99, 2.0, 17.99, 18.0, 100.0])
    ),
    juris=st.sampled_from([None, "EU", "US"]),
    minutes=histories,
    at_min=st.integers(min_value=0, max_value=80 * 60),
)
def test_no_tocilizumab_dose_exceeds_a_documented_maximum(
    weight: float, age: float, juris: str | None, minutes: list[int], at_min: int
) -> None:
    at = T0 + timedelta(minutes=at_min)
    times = [T0 + timedelta(minutes=m) for m in minutes if T0 + timedelta(minutes=m) <= at]
    now = T0 + timedelta(hours=100)
    d = tocilizumab_dose(
        weight, [format_time(t) for t in times], format_time(at), now=now, age_years=age, jurisdiction=juris
    )
    if age < 2 or (weight < 30 and juris is None):  # outside the label population, or no label
        assert d.withheld and d.dose_mg is None and d.uncapped_mg is None
    else:
        # label: 12 mg/kg under 30 kg, 8 mg/kg from 30 kg, never more than 800 mg per dose
        assert d.dose_mg is not None and not d.withheld
        assert d.dose_mg <= 800
        assert d.dose_mg <= (12 if weight < 30 else 8) * weight + 1e-9
        assert d.dose_mg > 0
    recent_8h = [t for t in times if at - t < timedelta(hours=8)]
    in_24h = [t for t in times if at - timedelta(hours=24) < t]
    expected_ok = len(times) < 4 and not recent_8h and len(in_24h) < 3
    assert d.allowed is expected_ok
    assert d.allowed is all(c.ok for c in d.limits)
    if not d.allowed and d.next_allowed_at is not None:
        # the earliest time offered really is allowed, and one minute earlier is not
        nxt = datetime.fromisoformat(d.next_allowed_at)
        later = tocilizumab_dose(
            weight, [format_time(t) for t in times], d.next_allowed_at, now=now + timedelta(days=9)
        )
        assert later.allowed
        before = tocilizumab_dose(
            weight,
            [format_time(t) for t in times],
            format_time(nxt - timedelta(minutes=1)),
            now=now + timedelta(days=9),
        )
        assert not before.allowed
    if not d.allowed and d.next_allowed_at is None:
        assert len(times) >= 4


def test_local_overrides_may_only_tighten() -> None:
    d = check_dose_rule(
        "tocilizumab-crs",
        70,
        [iso(0), iso(8)],
        iso(16),
        now=NOW,
        overrides={"max_total": 2},
        override_source="test-local@1",
    )
    assert d.allowed is False and "maximum of 2 in total" in d.reasons[0]
    assert any("Local limit applied (test-local@1)" in w for w in d.warnings)
    from immunotox.errors import RuleSpecError

    with pytest.raises(RuleSpecError, match="may only tighten"):
        check_dose_rule("tocilizumab-crs", 70, now=NOW, overrides={"max_total": 5})
    with pytest.raises(RuleSpecError, match="may only tighten"):
        check_dose_rule("tocilizumab-crs", 70, now=NOW, overrides={"max_mg": 1000})


# ------------------------------------------------------------------------------ steroids
def test_steroid_equivalence_golden_values() -> None:
    # [steroid_equivalence] of data/drugs.toml (Meikle & Tyler 1977): dexamethasone 10 mg
    # ≈ methylprednisolone ~53 mg ≈ prednisone ~67 mg
    conv = steroid_equivalents(10, "dexamethasone")
    assert conv.equivalents_mg["methylprednisolone"] == pytest.approx(53.333, abs=1e-3)
    assert conv.equivalents_mg["prednisone"] == pytest.approx(66.667, abs=1e-3)
    assert conv.equivalents_mg["hydrocortisone"] == pytest.approx(266.667, abs=1e-3)
    # ASCO ICI 2021 (adrenal insufficiency): hydrocortisone 20 mg ≈ prednisone 5 mg
    assert convert_steroid(20, "hydrocortisone", "prednisone") == pytest.approx(5)
    assert convert_steroid(4, "methylprednisolone", "dexamethasone") == pytest.approx(0.75)
    assert {s.key for s in conv.sources} == {"meikle1977", "schneider2021"}
    assert "mineralocorticoid" in conv.basis


def test_a_french_steroid_conversion_has_its_basis_and_note_in_french() -> None:
    from tests.test_messages import english_in

    fr = steroid_equivalents(10, "dexamethasone", lang="fr")
    assert "minéralocorticoïde" in fr.basis and "53,3 mg" in fr.note
    assert not english_in(fr.basis) and not english_in(fr.note), (english_in(fr.basis), english_in(fr.note))
    assert steroid_equivalents(10, "dexamethasone").note.startswith("Meikle & Tyler 1977 was not read")


STEROIDS = ["hydrocortisone", "prednisone", "prednisolone", "methylprednisolone", "dexamethasone"]


@settings(max_examples=200, deadline=None)
@given(
    mg=st.floats(min_value=0.01, max_value=2000, allow_nan=False),
    a=st.sampled_from(STEROIDS),
    b=st.sampled_from(STEROIDS),
)
def test_steroid_conversions_round_trip(mg: float, a: str, b: str) -> None:
    there = convert_steroid(mg, a, b)
    assert convert_steroid(there, b, a) == pytest.approx(mg, rel=1e-12)
    assert there > 0


@pytest.mark.parametrize(
    ("args", "field", "problem"),
    [
        ((10, "cortisone", "prednisone"), "from", "not in the corticosteroid equivalence table"),
        ((10, "prednisone", "budesonide"), "to", "not in the corticosteroid equivalence table"),
        ((-1, "prednisone", "dexamethasone"), "mg", "outside the possible range"),
        (("ten", "prednisone", "dexamethasone"), "mg", "expected a number"),
    ],
)
def test_steroid_bad_input(args: tuple[object, object, object], field: str, problem: str) -> None:
    with pytest.raises(FindingError, match=problem) as exc:
        convert_steroid(*args)
    assert exc.value.field == field
