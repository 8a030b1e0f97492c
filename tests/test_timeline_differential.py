"""Differential tests: the vectorised engine equals the scalar reference (the grading core).

* every conformance vector of ``data/conformance/astct2019.toml`` turned into a one-row timeline:
  embedded == scalar == the grading core on the same findings read the timeline's way;
* random timelines (hypothesis): every output table equal, including grade_lo/grade_hi/complete;
* simulated cohorts (the synthetic generator), ASTCT and every other CRS scale.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from importlib import resources
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import immunotox
from immunotox.timeline import TimelineResult, _engine, grade_observations

T0 = dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC)
COLS = ("patient_id", "time", "code", "value", "unit", "end_time")
KEYS = {
    "grades": ["patient_id", "scale", "time"],
    "daily_max": ["patient_id", "scale", "day"],
    "episodes": ["patient_id", "scale", "episode"],
    "patients": ["patient_id", "scale"],
    "crosstab": ["scale_a", "scale_b", "grade_a", "grade_b"],
}


def snapshot_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The scales the embedded engine hands to the grading core snapshot by snapshot
    (``_engine._snapshot_grades``), recorded for the rest of the test."""
    called: list[str] = []
    real = _engine._snapshot_grades

    def spy(f: Any, p: Any, grader: Any, only: Any = None) -> Any:
        called.append(p.scale_id)
        return real(f, p, grader, only)

    monkeypatch.setattr(_engine, "_snapshot_grades", spy)
    return called


def table(rows: list[tuple[Any, ...]]) -> pa.Table:
    cols: dict[str, list[Any]] = {c: [] for c in COLS}
    for r in rows:
        pid, t, code, value, unit, end = (*r, None)[:6]
        cols["patient_id"].append(pid)
        cols["time"].append(t.isoformat())
        cols["code"].append(code)
        cols["value"].append(str(value))
        cols["unit"].append(unit)
        cols["end_time"].append(end.isoformat() if end is not None else "")
    return pa.table({c: pa.array(v, pa.string()) for c, v in cols.items()})


def assert_same(a: TimelineResult, b: TimelineResult) -> None:
    for name, keys in KEYS.items():
        ta, tb = (
            getattr(a, name).sort_by([(k, "ascending") for k in keys]),
            getattr(b, name).sort_by([(k, "ascending") for k in keys]),
        )
        assert ta.num_rows == tb.num_rows, name
        assert ta.equals(tb), (name, _first_difference(ta, tb))


def _first_difference(a: pa.Table, b: pa.Table) -> Any:
    for ra, rb in zip(a.to_pylist(), b.to_pylist(), strict=True):
        if ra != rb:
            return ra, rb
    return None


# ------------------------------------------------------------------------- conformance vectors
def _cases() -> list[dict[str, Any]]:
    path = resources.files("immunotox").joinpath("data/conformance/astct2019.toml")
    doc = tomllib.loads(path.read_text("utf-8"))
    out = []
    for case in doc["case"]:
        findings = dict(doc.get("bases", {}).get(case.get("base"), {}))
        for k in case.get("drop", []):
            findings.pop(k, None)
        findings.update(case.get("findings", {}))
        out.append(case | {"findings": findings})
    return out


CASES = _cases()
_NOT_OBSERVABLE = {
    "hypotension",
    "fever_masked",
    "attribution_other_cause",
    "global_aphasia",
    "developmental_delay",
}


def rows_for(findings: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The observations that state ``findings`` at one time (findings with no code are left out)."""
    rows: list[tuple[Any, ...]] = []

    def add(code: str, value: Any, unit: str = "") -> None:
        rows.append(("P1", T0, code, value, unit))

    for k, v in findings.items():
        if k in _NOT_OBSERVABLE:
            continue
        if k == "temperature_c":
            add("temperature", *((v["value"], v["unit"]) if isinstance(v, dict) else (v, "Cel")))
        elif k == "sbp_mmhg":
            add("sbp", v, "mm[Hg]")
        elif k == "age_years":
            add("age", v, "a")
        elif k == "o2_flow_l_min":
            add("o2_flow", v, "L/min")
        elif k == "fio2_pct":
            add("fio2", v, "%")
        elif k == "vasopressors":
            for drug in v:
                add("vasopressor", drug)
        elif k == "ice_items":
            for item, x in v.items():
                add(f"ice_{item}", x)
        elif k == "raised_icp_signs":
            add(k, "true" if v else "false")
        elif k in ("death_due_to_crs", "death_due_to_icans"):
            if v:
                add("death", k.rsplit("_", 1)[1])
        else:
            add(k, v)
    return rows


def timeline_view(scale: str, findings: dict[str, Any]) -> dict[str, Any]:
    """The findings a one-row timeline hands to the scale (docs/timeline.md): administrations and
    oxygen are complete records (none = none), flow only with a device, fever_masked known, the
    ICE items only without an ICE score, findings with no observation code absent."""
    reads = immunotox.get_scale(scale).findings
    f = {k: v for k, v in findings.items() if k not in _NOT_OBSERVABLE and k in reads}
    f = {k: v for k, v in f.items() if not (k.startswith("death_due") and not v)}
    if scale == "astct2019:crs":
        f.setdefault("vasopressors", [])
        f.setdefault("oxygen", "none")
        f["fever_masked"] = False
        if f["oxygen"] == "none":
            f.pop("o2_flow_l_min", None)
    if "ice_score" in f:
        f.pop("ice_items", None)
    return f


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_conformance_vector_as_a_one_row_timeline(case: dict[str, Any]) -> None:
    rows = rows_for(case["findings"])
    if "expect_error" in case:
        r = grade_observations(table(rows), [case["scale"]]) if rows else None
        if case["id"] in ("crs-flow-without-device", "icans-ice-mismatch", "crs-fio2-refused-by-default"):
            # not row-level errors: the timeline never hands both inputs (or an input the scale
            # does not read) to the scale, and a valid observation is never rejected
            assert r is not None and r.rejects.num_rows == 0
            return
        assert r is not None and r.rejects.num_rows >= 1, case["id"]
        assert set(r.rejects.column("reason").to_pylist()) <= {"bad_value", "impossible_value", "bad_unit"}
        return
    if not rows:  # nothing known: no assessment, the patient's grade is not determinable
        r = grade_observations(table([("P1", T0, "infusion", "axi-cel", "")]), [case["scale"]])
        assert r.grades.num_rows == 0
        assert r.patients.to_pylist()[0]["max_grade"] is None
        assert r.crosstab.num_rows == 0
        return
    emb = grade_observations(table(rows), [case["scale"]], engine="embedded")
    ref = grade_observations(table(rows), [case["scale"]], engine="scalar")
    assert_same(emb, ref)
    assert emb.grades.num_rows == 1, case["id"]
    g = emb.grades.to_pylist()[0]
    core = immunotox.grade(case["scale"], timeline_view(case["scale"], case["findings"]))
    assert (g["grade"], g["grade_lo"], g["grade_hi"], g["complete"]) == (
        core.grade,
        core.grade_range[0],
        core.grade_range[1],
        core.complete,
    ), core.explain()
    if timeline_view(case["scale"], case["findings"]) == case["findings"] and "expect_grade" in case:
        assert g["grade"] == case["expect_grade"]


# ------------------------------------------------------------------------------ random timelines
HOURS = st.integers(0, 60)
TOKENS = {
    "oxygen": ["none", "low_flow_nasal_cannula", "blow_by", "high_flow_nasal_cannula", "facemask", "cpap"],
    "vasopressor": ["norepinephrine", "epinephrine", "vasopressin", "phenylephrine"],
    "consciousness": [
        "awake",
        "awakens_spontaneously",
        "awakens_to_voice",
        "awakens_to_tactile",
        "unarousable",
    ],
    "seizure": ["none", "clinical_resolved", "prolonged"],
    "motor": ["none", "deep_focal_weakness"],
    "cerebral_edema": ["none", "focal", "diffuse"],
    "raised_icp_signs": ["true", "false"],
    "death": ["crs", "icans", "infection"],
    "antipyretic": ["paracetamol"],
    "tocilizumab": ["tocilizumab"],
    "corticosteroid": ["dexamethasone"],
}


@st.composite
def observation(draw: st.DrawFn, pid: str) -> tuple[Any, ...]:
    t = T0 + dt.timedelta(hours=draw(HOURS), minutes=draw(st.sampled_from([0, 0, 30])))
    code = draw(
        st.sampled_from(
            ["temperature"] * 4
            + ["sbp"] * 2
            + ["oxygen", "o2_flow", "fio2", "vasopressor", "age", "infusion", "ice_score", "ice_naming"]
            + ["ice_orientation", "capd_score", "antipyretic", "tocilizumab", "corticosteroid"]
            + ["consciousness", "seizure", "motor", "cerebral_edema", "raised_icp_signs", "death"]
        )
    )
    end = None
    unit = ""
    if code == "temperature":
        value: Any = draw(st.sampled_from([36.5, 37.9, 38.0, 38.4, 39.5]))
        unit = "Cel"
    elif code == "sbp":
        value, unit = draw(st.sampled_from([80, 89, 90, 120])), "mm[Hg]"
    elif code == "o2_flow":
        value, unit = draw(st.sampled_from([2, 6, 6.5, 10])), "L/min"
    elif code == "fio2":
        value, unit = draw(st.sampled_from([21, 30, 60])), "%"
    elif code == "age":
        value, unit = draw(st.sampled_from([8, 15, 45])), "a"
    elif code == "infusion":
        value = "axi-cel"
    elif code == "ice_score":
        value = draw(st.integers(0, 10))
    elif code == "ice_naming":
        value = draw(st.integers(0, 3))
    elif code == "ice_orientation":
        value = draw(st.integers(0, 4))
    elif code == "capd_score":
        value = draw(st.integers(0, 14))
    else:
        value = draw(st.sampled_from(TOKENS[code]))
    if code in ("oxygen", "vasopressor") and draw(st.booleans()):
        end = t + dt.timedelta(hours=draw(st.integers(0, 30)))
    return (pid, t, code, value, unit, end)


@st.composite
def cohort(draw: st.DrawFn, make: Any = observation, max_rows: int = 25) -> list[tuple[Any, ...]]:
    """One to three patients, each with rows drawn by ``make(patient_id)``."""
    rows: list[tuple[Any, ...]] = []
    for pid in draw(st.lists(st.sampled_from(["A", "B", "C"]), min_size=1, max_size=3, unique=True)):
        rows += draw(st.lists(make(pid), min_size=1, max_size=max_rows))
    return rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cohort(), st.sampled_from([6.0, 24.0]))
def test_random_timelines_astct(rows: list[tuple[Any, ...]], n_hours: float) -> None:
    t = table(rows)
    scales = ["astct2019:crs", "astct2019:icans"]
    emb = grade_observations(t, scales, engine="embedded", resolution_hours=n_hours)
    ref = grade_observations(t, scales, engine="scalar", resolution_hours=n_hours)
    assert_same(emb, ref)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cohort())
def test_random_timelines_every_crs_scale(rows: list[tuple[Any, ...]]) -> None:
    t = table(rows)
    emb = grade_observations(t, "all-crs", engine="embedded")
    ref = grade_observations(t, "all-crs", engine="scalar")
    assert_same(emb, ref)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cohort(), st.randoms(use_true_random=False))
def test_row_order_does_not_matter(rows: list[tuple[Any, ...]], rnd: Any) -> None:
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    a = grade_observations(table(rows), ["astct2019:crs", "astct2019:icans"])
    b = grade_observations(table(shuffled), ["astct2019:crs", "astct2019:icans"])
    assert_same(a, b)


# ---------------------------------------------------------------------------- simulated cohorts
def test_simulated_cohort_astct_matches_the_reference_and_the_truth() -> None:
    from immunotox.simulate import simulate_cohort

    c = simulate_cohort(12, seed=11, loinc_fraction=0.05)
    scales = ["astct2019:crs", "astct2019:icans"]
    emb = grade_observations(c.observations, scales, engine="embedded")
    ref = grade_observations(c.observations, scales, engine="scalar")
    assert_same(emb, ref)
    assert emb.rejected_rows == 0
    # the generator drives each patient to its latent ASTCT grade at its worst moment
    truth = {r["patient_id"]: r for r in c.truth.to_pylist()}
    for p in emb.patients.to_pylist():
        col = "crs_grade" if p["scale"] == "astct2019:crs" else "icans_grade"
        assert p["max_grade"] == truth[p["patient_id"]][col], p


@pytest.mark.slow
def test_simulated_cohort_every_scale_matches_the_reference() -> None:
    from immunotox.simulate import simulate_cohort

    c = simulate_cohort(40, seed=4, loinc_fraction=0.05)
    emb = grade_observations(c.observations, "all", engine="embedded")
    ref = grade_observations(c.observations, "all", engine="scalar")
    assert_same(emb, ref)
