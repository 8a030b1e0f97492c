"""The vectorised CRS interpreters of the cohort engine equal the scalar grading core.

Legacy CRS scales: ``timeline/_legacy.py``; CTCAE CRS terms: ``timeline/_criteria.py``.

* every scale of ``all-crs`` is graded by a vectorised interpreter in the cohort path (no scale
  falls back to per-snapshot Python);
* random timelines (hypothesis) exercising every device, FiO2 around room air and 40 %, flows,
  one or several vasopressors with short and long runs, fevers and deaths, with inputs left out:
  the embedded engine's outputs equal the scalar reference's, grade_lo/grade_hi/complete included;
* hand-picked snapshots graded through the interpreter and through the core directly.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import immunotox
from immunotox.catalogue import all_scales
from immunotox.scales.legacy_crs import LegacyCrs
from immunotox.timeline import _astct, _criteria, _legacy, grade_observations, read_observations
from immunotox.timeline._engine import Params, grade_partition
from immunotox.timeline._run import select_scales
from immunotox.timeline._snapshot import Grader, plan

from .test_timeline_differential import T0, assert_same, cohort, snapshot_calls, table

ALL_CRS = select_scales("all-crs")
LEGACY = [s for s in ALL_CRS if isinstance(all_scales()[s], LegacyCrs)]


def test_every_crs_scale_is_vectorised() -> None:
    assert set(LEGACY) >= {"lee2014:crs", "penn:crs", "mskcc:crs", "cartox:crs"}
    for s in LEGACY:
        assert _legacy.handles(plan(all_scales()[s])), s
    for s in set(ALL_CRS) - set(LEGACY) - set(_astct.SCALES):
        assert _criteria.handles(plan(all_scales()[s])), s


def test_no_crs_scale_goes_through_the_core_in_the_cohort_path(monkeypatch: pytest.MonkeyPatch) -> None:
    called = snapshot_calls(monkeypatch)
    rows = [("A", T0, "temperature", 39.0, "Cel"), ("A", T0, "oxygen", "facemask", "")]
    r = grade_observations(table(rows), "all-crs", engine="embedded")
    assert set(r.grades.column("scale").to_pylist()) == set(ALL_CRS)
    assert called == []


OXYGEN = [
    "none",
    "low_flow_nasal_cannula",
    "high_flow_nasal_cannula",
    "facemask",
    "nonrebreather_mask",
    "cpap",
    "bipap",
    "mechanical_ventilation",
]
DRUGS = ["norepinephrine", "epinephrine", "vasopressin", "phenylephrine"]


@st.composite
def observation(draw: st.DrawFn, pid: str) -> tuple[Any, ...]:
    t = T0 + dt.timedelta(hours=draw(st.integers(0, 72)), minutes=draw(st.sampled_from([0, 0, 30])))
    code = draw(
        st.sampled_from(
            ["temperature"] * 3
            + ["oxygen"] * 2
            + ["fio2"] * 2
            + ["vasopressor"] * 2
            + ["o2_flow", "infusion", "death", "tocilizumab"]
        )
    )
    end = None
    unit = ""
    if code == "temperature":
        value: Any = draw(st.sampled_from([36.5, 37.9, 38.0, 39.5]))
        unit = "Cel"
    elif code == "fio2":
        value, unit = draw(st.sampled_from([21, 25, 39, 40, 60, 100])), "%"
    elif code == "o2_flow":
        value, unit = draw(st.sampled_from([0, 2, 6.5, 40])), "L/min"
    elif code == "oxygen":
        value = draw(st.sampled_from(OXYGEN))
    elif code == "vasopressor":
        value = draw(st.sampled_from(DRUGS))
    elif code == "death":
        value = draw(st.sampled_from(["crs", "icans"]))
    elif code == "tocilizumab":
        value = "tocilizumab"
    else:
        value = "axi-cel"
    if code in ("oxygen", "vasopressor") and draw(st.booleans()):
        end = t + dt.timedelta(hours=draw(st.sampled_from([0, 1, 3, 12, 23, 24, 30, 50])))
    return (pid, t, code, value, unit, end)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cohort(observation, 30), st.sampled_from([6.0, 24.0]))
def test_random_timelines_every_crs_scale_equals_the_core(
    rows: list[tuple[Any, ...]], n_hours: float
) -> None:
    t = table(rows)
    emb = grade_observations(t, ALL_CRS, engine="embedded", resolution_hours=n_hours)
    ref = grade_observations(t, ALL_CRS, engine="scalar", resolution_hours=n_hours)
    assert_same(emb, ref)


SNAPSHOTS: list[list[tuple[str, Any, str]]] = [
    [("temperature", 38.0, "Cel")],  # fever only: device none, no vasopressor
    [("temperature", 37.0, "Cel"), ("oxygen", "cpap", "")],  # CPAP without FiO2: FiO2 missing
    [("oxygen", "facemask", ""), ("fio2", 40, "%")],  # no temperature: symptoms missing
    [("oxygen", "facemask", ""), ("fio2", 21, "%")],  # contradiction: refused, not assessable
    [("oxygen", "mechanical_ventilation", "")],
    [("vasopressor", "norepinephrine", ""), ("vasopressor", "vasopressin", "")],
    [("vasopressor", "norepinephrine", "")],
    [("death", "crs", "")],
]


@pytest.mark.parametrize("obs", SNAPSHOTS)
def test_one_snapshot_equals_the_core(obs: list[tuple[str, Any, str]]) -> None:
    """One assessment graded by the interpreter equals ``immunotox.grade`` on the same findings."""
    rows = [("A", T0, code, value, unit) for code, value, unit in obs]
    r = grade_observations(table(rows), LEGACY, engine="embedded")
    got = {g["scale"]: g for g in r.grades.to_pylist()}
    for s in LEGACY:
        g = got[s]
        findings: dict[str, Any] = {"oxygen": "none", "vasopressors": []}
        for code, value, _unit in obs:
            if code == "temperature":
                findings["temperature_c"] = value
            elif code == "oxygen":
                findings["oxygen"] = value
            elif code == "fio2":
                findings["fio2_pct"] = value
            elif code == "vasopressor":
                findings["vasopressors"] = [*findings["vasopressors"], value]
            elif code == "death":
                findings["death_due_to_crs"] = True
        if findings["vasopressors"]:
            findings["vasopressor_hours"] = 0.0
        try:
            core = immunotox.grade(s, findings)
        except immunotox.FindingError:
            assert (g["grade"], g["complete"]) == (None, False), s
            continue
        assert core.grade_range is not None
        assert (g["grade"], g["grade_lo"], g["grade_hi"], g["complete"]) == (
            core.grade,
            *core.grade_range,
            core.complete,
        ), (s, core.explain())


def test_interpreter_reads_the_scale_table() -> None:
    """A threshold changed in the scale's table changes the vectorised grade (no second copy)."""
    scale = all_scales()["mskcc:crs"]
    assert isinstance(scale, LegacyCrs)
    rows = [
        ("A", T0, "vasopressor", "norepinephrine", "", T0 + dt.timedelta(hours=30)),
        ("A", T0 + dt.timedelta(hours=26), "temperature", 38.5, "Cel"),
    ]

    def at_26h() -> dict[str, Any]:
        grades = grade_observations(table(rows), ["mskcc:crs"]).grades.to_pylist()
        return next(g for g in grades if g["time"] == T0 + dt.timedelta(hours=26))

    before = at_26h()
    old = scale.t  # the typed table is frozen: the scale is given an edited copy
    try:
        scale.t = old.model_copy(update={"long_vasopressor_min_hours": 48.0})
        after = at_26h()
    finally:
        scale.t = old
    # vasopressor for 26 h: >= 24 h -> grade 3; with the limit at 48 h -> grade 2
    assert (before["grade_lo"], after["grade_lo"]) == (3, 2)


def test_refused_snapshots_are_still_counted_and_quoted() -> None:
    """A snapshot the core refuses is graded by the core, so the run summary still reports it."""
    rows = [("A", T0, "oxygen", "facemask", ""), ("A", T0, "fio2", 21, "%")]
    obs = read_observations(table(rows)).obs
    g = Grader()
    out = grade_partition(obs, [plan(all_scales()[s]) for s in LEGACY], Params(), grader=g)
    assert set(g.refused) == set(LEGACY)
    assert "room air FiO2 while oxygen = 'facemask'" in g.first_refusal["lee2014:crs"]
    grades = out.table("grades").to_pylist()
    assert {(r["grade"], r["complete"]) for r in grades} == {(None, False)}
