"""ICAHT from dated ANC series in the cohort engine: the vectorised interpreter equals the core.

``timeline/_icaht.py`` grades ``ehaebmt2023:icaht`` (and ``-early``, ``-late``) at every ANC
result on the course known then; the scalar reference hands the same course to the grading core
(``[derive.anc_series]``). Random ANC courses (hypothesis) cover values on the thresholds (100,
500, 1500/uL), gaps shorter and longer than the filling limit, several values a day, values
before day 0, with and without an infusion row, and the late window.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import immunotox
from immunotox.scales import icaht as icaht_scale
from immunotox.timeline import _icaht, grade_observations
from immunotox.timeline._run import select_scales

from .test_timeline_differential import T0, assert_same, cohort, snapshot_calls, table

ICAHT = ["ehaebmt2023:icaht", "ehaebmt2023:icaht-early", "ehaebmt2023:icaht-late"]


def _anc(pid: str, day: float, value: float) -> tuple[Any, ...]:
    return (pid, T0 + dt.timedelta(days=day), "anc", value, "10*9/L")


def test_icaht_is_graded_in_the_cohort_path_without_the_core(monkeypatch: pytest.MonkeyPatch) -> None:
    called = snapshot_calls(monkeypatch)
    assert set(ICAHT) <= set(select_scales("all"))
    rows = [("A", T0, "infusion", "axi-cel", ""), _anc("A", 1, 0.3), _anc("A", 2, 0.05)]
    r = grade_observations(table(rows), ICAHT, engine="embedded")
    assert set(r.grades.column("scale").to_pylist()) == set(ICAHT)
    assert called == []


def test_a_course_graded_at_each_result_equals_the_core() -> None:
    """Day 9 of a course: the grade the core gives to the ANC values known on day 9."""
    course = [(1, 0.3), (2, 0.05), (5, 0.4), (9, 0.2), (20, 1.2), (35, 1.0), (40, 0.9)]
    rows = [("A", T0, "infusion", "axi-cel", "")] + [_anc("A", d + 0.125, v) for d, v in course]
    got = {(g["scale"], g["day"]): g for g in grade_observations(table(rows), ICAHT).grades.to_pylist()}
    for i, (day, _v) in enumerate(course):
        series = [{"day": d, "value": {"value": v, "unit": "10*9/L"}} for d, v in course[: i + 1]]
        for s in ICAHT:
            core = immunotox.grade(s, {"anc_series": series})
            g = got[(s, day)]
            assert core.grade_range is not None
            assert (g["grade"], g["grade_lo"], g["grade_hi"], g["complete"]) == (
                core.grade,
                *core.grade_range,
                core.complete,
            ), (s, day, core.explain())
    # the known course on day 9: ANC <= 500/uL on days 0-9 (10 days: grade 2) at least, and
    # days 10-30 unknown (more than 7 days after the last value) could make it grade 4
    early = got[("ehaebmt2023:icaht-early", 9)]
    assert (early["grade_lo"], early["grade_hi"]) == (2, 4)
    # the late window with two values <= 1500/uL, nadir 900/uL: grade 2, complete
    late = got[("ehaebmt2023:icaht-late", 40)]
    assert (late["grade"], late["complete"]) == (2, True)


# ANC values in 10*9/L around the thresholds (0.1, 0.5, 1.5 x 10*9/L = 100, 500, 1500/uL)
VALUES = [0.0, 0.05, 0.1, 0.1001, 0.3, 0.5, 0.50001, 0.9, 1.0, 1.5, 1.6, 3.2, 8.0]


@st.composite
def anc_row(draw: st.DrawFn, pid: str) -> tuple[Any, ...]:
    kind = draw(st.sampled_from(["anc"] * 12 + ["infusion"]))
    days = st.sampled_from([st.integers(-3, 34), st.integers(-3, 34), st.integers(25, 110)])
    day = draw(days.flatmap(lambda s: s))
    t = T0 + dt.timedelta(days=day, hours=draw(st.sampled_from([0, 0, 6, 23])))
    if kind == "infusion":
        return (pid, t, "infusion", "axi-cel", "")
    value = draw(st.sampled_from(VALUES))
    unit = draw(st.sampled_from(["10*9/L", "10*9/L", "/uL"]))
    return (pid, t, "anc", value * 1000 if unit == "/uL" else value, unit)


def _same_as_the_reference(rows: list[tuple[Any, ...]]) -> None:
    t = table(rows)
    emb = grade_observations(t, ICAHT, engine="embedded")
    assert_same(emb, grade_observations(t, ICAHT, engine="scalar"))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cohort(anc_row, 40))
def test_random_anc_courses_equal_the_core(rows: list[tuple[Any, ...]]) -> None:
    _same_as_the_reference(rows)


def test_dense_daily_courses_equal_the_core() -> None:
    """Daily values for 100 days (long episodes, joined recoveries, never recovered)."""
    rows: list[tuple[Any, ...]] = [("A", T0, "infusion", "axi-cel", ""), ("B", T0, "infusion", "axi-cel", "")]
    for d in range(0, 100):
        rows.append(_anc("A", d, 0.05 if d < 12 else (0.6 if d % 4 == 0 else 0.4) if d < 40 else 1.2))
        if d % 3 == 0:
            rows.append(_anc("B", d + 0.5, 0.4 if d < 31 else 0.08))
    _same_as_the_reference(rows)


def test_interpreter_reads_the_scale_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """A threshold changed in the rule table changes the vectorised grade (no second copy)."""
    rows = [("A", T0, "infusion", "axi-cel", "")] + [_anc("A", d, 0.6) for d in range(0, 31)]

    def early_day30() -> int:
        grades = grade_observations(table(rows), ["ehaebmt2023:icaht-early"]).grades.to_pylist()
        return int(next(g for g in grades if g["day"] == 30)["grade_lo"])

    assert _icaht.table() is icaht_scale._T  # one typed object for the core and the interpreter
    assert early_day30() == 0  # 600/uL: above 500
    # the typed table is frozen: the interpreter is given an edited copy
    t = _icaht.table()
    thr = (t.early.thresholds[0].model_copy(update={"max_per_ul": 700.0}), *t.early.thresholds[1:])
    edited = t.model_copy(update={"early": t.early.model_copy(update={"thresholds": thr})})
    monkeypatch.setattr(_icaht, "table", lambda: edited)
    assert early_day30() == 4  # <= 700 from day 0 to 30: never recovered
