"""ICAHT (EHA/EBMT 2023) and IEC-HS: the algorithm's parts, properties and the CLI.

Property tests (hypothesis) on random ANC series:

* lowering any ANC value never lowers the grade (nor the top of its range);
* every grade and range lies within 0-4;
* the same series in 10*9/L or 10*3/uL, with dates instead of days, or shuffled, grades the same;
* the reported grade is the grade with every unknown day recovered, the top of the range the
  grade with every unknown day at ANC 0 (checked by filling the unknown days explicitly).

The hand-made series with their expected grades (every boundary) are the conformance vectors in
``data/conformance/icaht.toml``; the IEC-HS contract is in ``data/conformance/iechs.toml``.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from subprocess import CompletedProcess
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import immunotox
from immunotox.errors import FindingError
from immunotox.messages import render
from immunotox.scales.icaht import Episode, assess_early, episodes, fill_gaps

SCALES = ["ehaebmt2023:icaht", "ehaebmt2023:icaht-early", "ehaebmt2023:icaht-late"]

# ANC values concentrated around the thresholds (100, 500, 1000, 1500 /uL)
ANC = st.one_of(
    st.sampled_from([0, 50, 100, 101, 300, 500, 501, 800, 1000, 1001, 1500, 1501, 3000]),
    st.integers(0, 4000),
)


@st.composite
def anc_series(draw: st.DrawFn, max_day: int = 110) -> list[dict[str, Any]]:
    days = draw(st.lists(st.integers(0, max_day), min_size=1, max_size=40))
    return [{"day": d, "value": draw(ANC)} for d in days]


@st.composite
def icaht_findings(draw: st.DrawFn) -> dict[str, Any]:
    series = draw(anc_series())
    f: dict[str, Any] = {"anc_series": ul(series)}
    if draw(st.booleans()):
        f["last_follow_up_day"] = draw(st.integers(max(p["day"] for p in series), 400))
    if draw(st.booleans()):
        f["censor_day"] = draw(st.integers(0, 200))
    return f


def ul(points: list[dict[str, Any]]) -> dict[str, Any]:
    """An ANC series in cells/uL, the unit stated once for the series."""
    return {"unit": "/uL", "points": points}


def lo_hi(scale: str, f: dict[str, Any]) -> tuple[int, int] | None:
    return immunotox.grade(scale, f).grade_range


# ------------------------------------------------------------------------------ algorithm parts
def test_fill_gaps_interpolates_up_to_seven_days_and_carries_ends() -> None:
    daily = {2: 100.0, 10: 900.0, 20: 300.0}
    values, notes = fill_gaps(daily, 0, 30, 7)
    assert values[0] == values[1] == 100.0  # 2 days before the first value: carried back
    assert values[6] == pytest.approx(100 + 800 * 4 / 8)  # linear between day 2 and day 10
    assert values[11:20] == [None] * 9  # 9 missing days: unknown
    assert values[21:31] == [None] * 10  # 10 days after the last value: unknown
    assert "days 11–19: no ANC value within a gap of 9 days (> 7): unknown" in [render(n) for n in notes]
    assert "jours 11–19 : aucune valeur de PNN dans un intervalle de 9 jours (> 7) : inconnu" in [
        render(n, "fr") for n in notes
    ]
    values, _ = fill_gaps({0: 400.0, 23: 600.0}, 0, 30, 7)
    assert values[23:31] == [600.0] * 8  # 7 trailing days carried forward


def test_episodes_join_across_non_stable_recovery_only() -> None:
    def at(*low_days: int) -> list[float]:
        return [300.0 if d in low_days else 2000.0 for d in range(31)]

    # 2 days above 500 between episodes: joined, and the 2 days count
    assert episodes(at(2, 3, 4, 7, 8), 0, 500, 2) == [Episode(2, 8)]
    # 3 days above 500: stable recovery, two episodes
    assert episodes(at(2, 3, 4, 8, 9), 0, 500, 2) == [Episode(2, 4), Episode(8, 9)]
    assert episodes(at(), 0, 500, 2) == []
    assert Episode(2, 8).days == 7


def test_assess_early_never_recovered_override_needs_start_by_day_3() -> None:
    from_day_3 = [2000.0] * 3 + [300.0] * 28
    from_day_4 = [2000.0] * 4 + [300.0] * 27
    assert assess_early(from_day_3, 0).grade == 4
    assert assess_early(from_day_4, 0).grade == 3
    # recovery on the last 2 days is not "lasting to the end"
    assert assess_early([300.0] * 29 + [2000.0] * 2, 0).grade == 3


# ------------------------------------------------------------------------------ properties
@pytest.mark.parametrize("scale", SCALES)
@settings(max_examples=150, deadline=None)
@given(f=icaht_findings(), data=st.data())
def test_lowering_an_anc_value_never_lowers_the_grade(
    scale: str, f: dict[str, Any], data: st.DataObject
) -> None:
    points = f["anc_series"]["points"]
    i = data.draw(st.integers(0, len(points) - 1))
    point = points[i]
    lower = data.draw(st.integers(0, point["value"]))
    g = dict(f, anc_series=ul([*points[:i], {"day": point["day"], "value": lower}, *points[i + 1 :]]))
    before, after = lo_hi(scale, f), lo_hi(scale, g)
    if before is None or after is None:  # not applicable: the window, not the values, decides
        assert before is None and after is None, (f, g)
        return
    (lo, hi), (lo2, hi2) = before, after
    assert lo2 >= lo and hi2 >= hi, (f, g)


@pytest.mark.parametrize("scale", SCALES)
@settings(max_examples=100, deadline=None)
@given(f=icaht_findings())
def test_grades_stay_within_the_scale(scale: str, f: dict[str, Any]) -> None:
    r = immunotox.grade(scale, f)
    closed = min(f.get("last_follow_up_day", 999), f.get("censor_day", 999)) <= 30
    if scale == "ehaebmt2023:icaht-late" and closed:  # the late window never opened
        assert r.status == "not_applicable" and r.grade is None and r.grade_range is None
        assert r.complete and not r.missing and not r.fired
        assert any("never opened" in x for x in r.reasons)
        return
    assert r.status != "not_applicable"
    assert r.grade_range is not None
    lo, hi = r.grade_range
    assert 0 <= lo <= hi <= 4
    assert r.grade is None or r.grade == lo
    assert r.complete == (not r.missing) and (r.complete or r.missing == ["anc_series"])
    assert r.sources and r.reasons and r.notes


@settings(max_examples=100, deadline=None)
@given(f=icaht_findings(), unit=st.sampled_from(["10*9/L", "10*3/uL", "/mm3"]), data=st.data())
def test_units_dates_and_order_do_not_change_the_grade(
    f: dict[str, Any], unit: str, data: st.DataObject
) -> None:
    scale = "ehaebmt2023:icaht"
    factor = 1.0 if unit == "/mm3" else 1000.0
    converted = dict(
        f,
        anc_series=[
            {"day": p["day"], "value": {"value": p["value"] / factor, "unit": unit}}
            for p in f["anc_series"]["points"]
        ],
    )
    infusion = data.draw(st.dates(datetime.date(2015, 1, 1), datetime.date(2035, 1, 1)))
    dated = {k: v for k, v in f.items() if k not in ("last_follow_up_day", "censor_day")}
    dated["infusion_date"] = infusion.isoformat()
    dated["anc_series"] = ul(
        [
            {"date": (infusion + datetime.timedelta(days=p["day"])).isoformat(), "value": p["value"]}
            for p in f["anc_series"]["points"]
        ]
    )
    for key in ("last_follow_up", "censor"):
        if f"{key}_day" in f:
            dated[f"{key}_date"] = (infusion + datetime.timedelta(days=f[f"{key}_day"])).isoformat()
    shuffled = dict(f, anc_series=ul(data.draw(st.permutations(f["anc_series"]["points"]))))
    expected = immunotox.grade(scale, f)
    for other in (converted, dated, shuffled):
        r = immunotox.grade(scale, other)
        assert (r.grade, r.grade_range, r.missing) == (expected.grade, expected.grade_range, expected.missing)


@settings(max_examples=100, deadline=None)
@given(series=anc_series(max_day=30), data=st.data())
def test_range_ends_are_the_recovered_and_neutropenic_fillings(
    series: list[dict[str, Any]], data: st.DataObject
) -> None:
    """Filling every unknown day with a high (low) value reproduces the lower (upper) bound."""
    scale = "ehaebmt2023:icaht-early"
    r = immunotox.grade(scale, {"anc_series": ul(series)})
    values, _ = fill_gaps(
        {d: float(min(p["value"] for p in series if p["day"] == d)) for d in {p["day"] for p in series}},
        0,
        30,
        7,
    )
    unknown_days = [d for d, v in enumerate(values) if v is None]
    if not unknown_days:
        assert r.complete
        return
    recovered = series + [{"day": d, "value": 100000} for d in unknown_days]
    neutropenic = series + [{"day": d, "value": 0} for d in unknown_days]
    lo, hi = r.grade_range
    assert immunotox.grade(scale, {"anc_series": ul(recovered)}).grade == lo
    assert immunotox.grade(scale, {"anc_series": ul(neutropenic)}).grade == hi


# ------------------------------------------------------------------------------ explanations
def test_combined_result_names_the_deciding_window_and_its_criteria() -> None:
    series = [
        {"day": d, "value": v}
        for d, v in [(0, 2000), (1, 300), (8, 300), (15, 300), (16, 2000), (23, 2000), (30, 2000)]
    ]
    series += [{"day": 45, "value": 900}, {"day": 60, "value": 1200}]
    r = immunotox.grade("ehaebmt2023:icaht", {"anc_series": ul(series)})
    assert (r.grade, r.complete, r.deciding_domains) == (3, True, ["early"])
    assert r.reasons[0] == "ANC <= 500/uL for 15 day(s), days 1–15 (longest episode) → grade 3"
    assert any(x.startswith("Nadir ANC <= 1000/uL (nadir ANC 900/uL on day 45") for x in r.reasons)
    assert r.reasons[-1] == "Grade 3: early ICAHT grade 3; late ICAHT grade 2"
    assert [h.rule for h in r.fired] == [
        "ehaebmt2023:icaht/early/anc_le_500/14-30d",
        "ehaebmt2023:icaht/late/anc_le_1000",
    ]


def test_incomplete_series_says_which_days_are_unknown() -> None:
    r = immunotox.grade(
        "ehaebmt2023:icaht-early", {"anc_series": ul([{"day": 0, "value": 400}, {"day": 9, "value": 400}])}
    )
    assert (r.grade, r.grade_range, r.status) == (1, (1, 4), "incomplete")
    assert "Early: days 1–8: no ANC value within a gap of 8 days (> 7): unknown" in r.reasons
    assert "Précoce : jours 1–8 : aucune valeur de PNN dans un intervalle de 8 jours (> 7) : inconnu" in (
        r.in_lang("fr").reasons
    )
    assert "LOWER BOUND: missing anc_series" in r.reasons[-1]


def test_values_outside_the_windows_are_reported_not_used() -> None:
    series = [
        {"day": -3, "value": 100},
        {"day": 0, "value": 2000},
        {"day": 7, "value": 2000},
        {"day": 14, "value": 2000},
    ]
    series += [{"day": 21, "value": 2000}, {"day": 28, "value": 2000}, {"day": 30, "value": 2000}]
    series += [{"day": 35, "value": 2000}, {"day": 38, "value": 1800}, {"day": 45, "value": 300}]
    r = immunotox.grade("ehaebmt2023:icaht", {"anc_series": ul(series), "censor_day": 40})
    assert r.grade == 0 and r.complete
    assert "1 ANC value(s) before day 0 not used (ICAHT counts from infusion)" in r.reasons
    assert any("after censoring on day 40" in x for x in r.reasons)


def test_a_french_anc_in_g_per_l_is_never_read_as_cells_per_ul() -> None:
    """A French laboratory's ANC 2 (G/L = 2000/uL) was read as 2/uL: profound neutropenia, grade 4.

    Every value now needs its unit: the bare series is refused naming the value, and the same
    series with its unit is no neutropenia at all (issue 11).
    """
    days = [0, 7, 14, 21, 28, 30]
    bare = {"anc_series": [{"day": d, "value": 2} for d in days]}
    with pytest.raises(FindingError) as err:
        immunotox.grade("ehaebmt2023:icaht-early", bare)
    assert (err.value.field, err.value.value) == ("anc_series[0].value", 2)
    assert "never guessed" in str(err.value) and '"unit": "<UCUM>", "points"' in str(err.value)
    french = {"anc_series": {"unit": "10*9/L", "points": bare["anc_series"]}}
    r = immunotox.grade("ehaebmt2023:icaht-early", french)
    assert (r.grade, r.complete, r.fired) == (0, True, [])
    us = {"anc_series": ul([{"day": d, "value": 2000} for d in days])}
    assert immunotox.grade("ehaebmt2023:icaht-early", us).reasons == r.reasons


@pytest.mark.parametrize(
    ("findings", "field", "fragment"),
    [
        ({"anc_series": [{"day": 1, "value": 0.45}]}, "anc_series[0].value", "a bare number is refused"),
        ({"anc_series": [{"day": 1, "value": 2}]}, "anc_series[0].value", "'10*9/L' or '/uL'"),
        ({"anc_series": ul([{"date": "2024-03-01", "value": 400}])}, "anc_series[0].date", "infusion_date"),
        (
            {"anc_series": ul([{"day": 40, "value": 400}]), "last_follow_up_day": 30},
            "anc_series[0]",
            "after the last day",
        ),
        ({"anc_series": ul([{"day": 1, "value": "low"}])}, "anc_series[0].value", "expected"),
        ({"anc_series": ul([{"day": 1, "val": 5}])}, "anc_series[0].val", "unknown key"),
        ({"anc_series": {"unit": 5, "points": []}}, "anc_series.unit", "UCUM code"),
        ({"infusion_date": "01/03/2024", "anc_series": []}, "infusion_date", "YYYY-MM-DD"),
        (
            {"infusion_date": "2024-03-01", "anc_series": ul([{"date": "2010-03-01", "value": 400}])},
            "anc_series[0].date",
            "outside -60–3650",
        ),
    ],
)
def test_bad_input_names_field_and_value(findings: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(FindingError) as err:
        immunotox.grade("ehaebmt2023:icaht", findings)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field} = ") and fragment in str(err.value)


# ------------------------------------------------------------------------------ no late window
DEATH_DAY_16 = {
    "anc_series": ul([{"day": d, "value": 300} for d in (0, 7, 14, 16)]),
    "last_follow_up_day": 16,
}


def test_late_icaht_after_death_by_day_30_has_no_grade_and_names_the_input() -> None:
    r = immunotox.grade("ehaebmt2023:icaht-late", DEATH_DAY_16)
    assert (r.status, r.grade, r.grade_range, r.complete, r.missing, r.fired) == (
        "not_applicable",
        None,
        None,
        True,
        [],
        [],
    )
    assert r.reasons[0] == (
        "Late: not applicable, the late window (from day 31) never opened: last_follow_up_day on "
        "day 16 (death or end of follow-up), on or before day 30"
    )
    assert r.explain().splitlines()[1] == "Grade: not applicable"
    # the frame of the explanation and the core's sentence come from the messages data (issue 11)
    assert r.explain("fr").splitlines()[1] == "Grade : non applicable"
    assert "Non applicable : pas de grade (ni grade 0, ni borne inférieure)." in r.in_lang("fr").reasons
    assert r.in_lang("fr").reasons[0] == (
        "Tardive : non applicable, la fenêtre tardive (à partir du jour 31) ne s'est jamais ouverte : "
        "last_follow_up_day au jour 16 (décès ou fin du suivi), au plus tard au jour 30"
    )
    # both inputs closing the window are named; a date is named as the date input
    both = dict(DEATH_DAY_16, infusion_date="2024-03-01", censor_date="2024-03-11")
    reasons = immunotox.grade("ehaebmt2023:icaht-late", both).reasons
    assert (
        reasons[0]
        == "2 ANC value(s) after censoring on day 10 (progression/relapse or subsequent therapy) not used"
    )
    assert reasons[1].endswith(
        "never opened: last_follow_up_day on day 16 (death or end of follow-up); censor_date on day 10 "
        "(progression/relapse or next therapy), on or before day 30"
    )


def test_late_window_closed_without_any_anc_value_is_still_not_applicable() -> None:
    r = immunotox.grade("ehaebmt2023:icaht-late", {"censor_day": 20})
    assert (r.status, r.grade, r.missing) == ("not_applicable", None, [])
    combined = immunotox.grade("ehaebmt2023:icaht", {"censor_day": 20})
    assert (combined.status, combined.missing) == ("not_assessable", ["anc_series"])  # early unknown


def test_combined_icaht_without_late_window_is_the_early_grade_and_says_so() -> None:
    r = immunotox.grade("ehaebmt2023:icaht", DEATH_DAY_16)
    early = immunotox.grade("ehaebmt2023:icaht-early", DEATH_DAY_16)
    assert (r.grade, r.grade_range, r.status, r.deciding_domains) == (4, (4, 4), "assessed", ["early"])
    assert (r.grade, r.grade_range, r.status) == (early.grade, early.grade_range, early.status)
    assert r.reasons[-1] == (
        "Grade 4: early ICAHT grade 4; late ICAHT not applicable: grade from the early window alone"
    )
    assert any(x.startswith("Late: not applicable") for x in r.reasons)
    assert (
        r.in_lang("fr")
        .reasons[-1]
        .startswith("Grade 4 : ICAHT précoce grade 4 ; ICAHT tardive non applicable")
    )


# ------------------------------------------------------------------------------ IEC-HS
def test_iechs_states_it_is_unverified_first_and_lists_features() -> None:
    f = {
        "iec_hs_grade": 2,
        "fibrinogen": {"value": 1.2, "unit": "g/L"},
        "ferritin": 40000,
        "alt_x_uln": 3.0,
        "new_or_worsening_cytopenias": True,
    }
    r = immunotox.grade("astct2023:iec-hs", f)
    assert r.grade == 2 and r.complete
    assert r.reasons[0].startswith("UNVERIFIED: the IEC-HS definition and grading table")
    assert r.notes[0].startswith("UNVERIFIED")
    assert "[content unverified against the primary text]" in r.sources[0]
    text = "\n".join(r.reasons)
    assert "Supportive feature present: New or worsening cytopenias" in text
    assert "Supportive feature present: Hypofibrinogenemia, fibrinogen = 1.2 g/L" in text
    assert "Supportive feature not met: Transaminitis (ALT), alt_x_uln = 3 x ULN" in text
    assert "Hyperferritinemia: ferritin = 40000 ng/mL — not judged" in text


def test_iechs_without_grade_is_never_zero() -> None:
    r = immunotox.grade("astct2023:iec-hs", {"iec_hs_present": True, "ferritin": 90000})
    assert (r.grade, r.status, r.grade_range, r.missing) == (None, "not_assessable", (1, 5), ["iec_hs_grade"])
    assert r.reasons[-1] == "Not assessable: no IEC-HS grade entered (possible grades 1–5)"


# ------------------------------------------------------------------------------ CLI
CLI = Callable[..., CompletedProcess[str]]


def test_cli_grades_icaht_from_a_dated_series(cli: CLI) -> None:
    findings = {
        "infusion_date": "2024-02-27",
        "last_follow_up_date": "2024-03-14",
        "anc_series": [
            {"date": "2024-02-27", "value": {"value": 0.3, "unit": "10*9/L"}},
            {"date": "2024-03-05", "value": {"value": 300, "unit": "/uL"}},
            {"date": "2024-03-12", "value": {"value": 300, "unit": "/uL"}},
            {"date": "2024-03-14", "value": {"value": 300, "unit": "/uL"}},
        ],
    }
    out = cli("grade", "ehaebmt2023:icaht", "--findings", json.dumps(findings))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert (doc["grade"], doc["complete"], doc["missing"]) == (4, True, [])
    assert any("never recovered" in x for x in doc["reasons"])


def test_cli_late_icaht_without_late_window_is_not_applicable(cli: CLI) -> None:
    findings = {"anc_series": ul([{"day": 5, "value": 300}, {"day": 12, "value": 300}]), "censor_day": 14}
    out = cli("grade", "ehaebmt2023:icaht-late", "--findings", json.dumps(findings))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert (doc["grade"], doc["grade_range"], doc["status"], doc["complete"], doc["missing"]) == (
        None,
        None,
        "not_applicable",
        True,
        [],
    )
    assert doc["reasons"][0] == (
        "Late: not applicable, the late window (from day 31) never opened: censor_day on day 14 "
        "(progression/relapse or next therapy), on or before day 30"
    )
    text = cli("grade", "ehaebmt2023:icaht-late", "--findings", json.dumps(findings), "--explain").stdout
    assert "Grade: not applicable" in text and "Grade: 0" not in text


def test_cli_refuses_bad_series_with_one_line(cli: CLI) -> None:
    out = cli(
        "grade",
        "ehaebmt2023:icaht",
        "--findings",
        '{"anc_series": [{"day": 2, "value": {"value": 3, "unit": "mg"}}]}',
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "anc_series[0].value.unit = 'mg'" in out.stderr + out.stdout


def test_cli_lists_the_new_scales(cli: CLI) -> None:
    out = cli("scales", "--json")
    ids = {row["id"]: row for row in json.loads(out.stdout)}
    for sid in ("lee2014:crs", "penn:crs", "mskcc:crs", "cartox:crs", *SCALES, "astct2023:iec-hs"):
        assert sid in ids
    assert ids["astct2023:iec-hs"]["verification"] == "M"
    assert ids["ehaebmt2023:icaht"]["grades"] == [0, 4]
