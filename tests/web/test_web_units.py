"""Small pieces of the web UI: intervals, badges, local times and formats, the SVG timeline."""

from __future__ import annotations

import datetime as dt

import pytest

import immunotox
from immunotox import ruledata
from immunotox.service.models import ClinicalEvent
from immunotox.web import chart, i18n, labels, queries

UTC = dt.UTC
T = dt.datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
H = dt.timedelta(hours=1)


def ev(i: int, code: str, value: str, at: dt.datetime, end: dt.datetime | None = None) -> ClinicalEvent:
    return ClinicalEvent(
        id=i, patient_id="P", kind="administration", code=code, value=value, time=at, end_time=end
    )


def test_intervals_follow_the_services_rule() -> None:
    rows = [
        ev(1, "oxygen", "low_flow_nasal_cannula", T),
        ev(2, "oxygen", "facemask", T + 2 * H),  # ends the cannula
        ev(3, "oxygen", "none", T + 5 * H),  # ends the facemask, covers nothing itself
        ev(4, "vasopressor", "norepinephrine", T + H),
        ev(5, "vasopressor", "vasopressin", T + 2 * H),  # another drug: both run
        ev(6, "vasopressor", "norepinephrine", T + 3 * H, T + 4 * H),  # a new row of the same drug
    ]
    spans = {(r.event.id, r.start, r.end) for r in queries.interval_rows(rows)}
    assert spans == {
        (1, T, T + 2 * H),
        (2, T + 2 * H, T + 5 * H),
        (4, T + H, T + 3 * H),
        (5, T + 2 * H, None),
        (6, T + 3 * H, T + 4 * H),
    }


@pytest.mark.parametrize(
    ("grade", "lo", "hi", "status", "value", "css"),
    [
        (2, 2, 2, "assessed", "2", "g2"),
        (1, 1, 4, "incomplete", "≥1", "g1 partial"),
        (3, 3, 3, "incomplete", "3", "g3"),  # nothing missing could raise it
        (None, 1, 4, "not_assessable", "?", "g-na"),
        (5, 5, 5, "assessed", "5", "g4"),  # death: the darkest colour, the number says 5
    ],
)
def test_badges_say_the_grade_in_text(
    grade: int | None, lo: int, hi: int, status: str, value: str, css: str
) -> None:
    with i18n.use("en"):
        b = queries.badge_from("astct2019:crs", grade, lo, hi, status, None)
        assert (b.value, b.css, b.text) == (value, css, f"CRS {value}")
        if grade is None:
            assert b.description == "CRS: not assessable"
        elif value.startswith("≥"):
            assert b.description == "CRS grade 1 at least (could be up to 4: inputs missing)"


def test_not_applicable_badge_is_neither_a_grade_nor_unknown() -> None:
    late = immunotox.grade("ehaebmt2023:icaht-late", {"censor_day": 20})
    for lang, text in (("en", "not applicable (no grade, not grade 0)"), ("fr", "non applicable")):
        with i18n.use(lang):
            b = queries.badge_of(late.scale, late.grade, late.grade_range, late.status, None)
            assert (b.value, b.css) == ("–", "g-na")
            assert text in b.description
            assert labels.label(labels.STATUS, late.status) == text.split(" (")[0]


def test_times_typed_in_forms_are_read_in_the_ward_time_zone() -> None:
    # Europe/Paris: UTC+1 in winter, UTC+2 in summer (the default display zone)
    assert i18n.parse_input_datetime("2025-03-10T13:00") == dt.datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
    assert i18n.parse_input_datetime("2025-07-01T13:00") == dt.datetime(2025, 7, 1, 11, 0, tzinfo=UTC)
    assert i18n.fmt_input_datetime(dt.datetime(2025, 7, 1, 11, 0, tzinfo=UTC)) == "2025-07-01T13:00"
    with pytest.raises(ValueError):
        i18n.parse_input_datetime("10/03/2025")


@pytest.mark.parametrize(
    ("minutes", "fr", "en"),
    [
        (0, "il y a 0 min", "0 min ago"),
        (59, "il y a 59 min", "59 min ago"),
        (60, "il y a 1 h 00", "1 h 00 ago"),
        (200, "il y a 3 h 20", "3 h 20 ago"),
        (49 * 60, "il y a 2 jours", "2 days ago"),
    ],
)
def test_time_since_a_check(minutes: int, fr: str, en: str) -> None:
    for lang, expected in (("fr", fr), ("en", en)):
        with i18n.use(lang):  # type: ignore[arg-type]
            assert i18n.fmt_ago(T - dt.timedelta(minutes=minutes), T) == expected
    with i18n.use("fr"):
        assert i18n.fmt_ago(None, T) == "jamais"


def test_numbers_and_dates_in_the_languages_format() -> None:
    with i18n.use("fr"):
        assert (i18n.fmt_number(38.6), i18n.fmt_number(1234.5), i18n.fmt_datetime(T)) == (
            "38,6",
            "1\u202f234,5",
            "10 mars, 13:00",
        )
    with i18n.use("en"):
        assert (i18n.fmt_number(38.6), i18n.fmt_number(1234.5)) == ("38.6", "1,234.5")
        assert i18n.fmt_datetime(T) == "Mar 10, 1:00\u202fPM"


def test_chart_thresholds_come_from_the_rule_table() -> None:
    crs = ruledata.load("astct2019")["crs"]
    assert chart.thresholds() == (crs["fever_min_c"], crs["sbp_below_mmhg"]) == (38.0, 90.0)


def test_empty_chart_says_so() -> None:
    with i18n.use("en"):
        svg = str(chart.render(chart.ChartData(t0=T - 24 * H, t1=T)))
    assert svg.startswith('<svg class="timeline"') and svg.endswith("</svg>")
    assert "no vasopressor" in svg and "no oxygen support" in svg
    assert "0 oxygen periods; 0 vasopressor periods; 0 treatment doses; 0 toxicity episodes." in svg


def test_chart_marks_and_titles() -> None:
    data = chart.ChartData(
        t0=T - 24 * H,
        t1=T,
        infusion_at=T - 12 * H,
        temperature=[chart.Point(T - 2 * H, 39.2), chart.Point(T - H, 38.1)],
        markers=[chart.Marker("tocilizumab", T - H, "tocilizumab 560 mg")],
        episodes=[chart.EpisodeSpan("astct2019:crs", T - 3 * H, None, 2)],
        scale_names={"astct2019:crs": "CRS"},
    )
    with i18n.use("en"):
        svg = str(chart.render(data))
    assert "<title>Temperature 39.2 °C — Mar 10, 11:00\u202fAM</title>" in svg
    assert "<title>tocilizumab 560 mg</title>" in svg and 'class="c-marker c-tocilizumab"' in svg
    assert "CRS episode, peak grade 2" in svg and "→ ongoing" in svg
    assert ">D0<" in svg  # day 0 inside the window
    assert "2 temperatures, highest 39.2 °C" in svg
