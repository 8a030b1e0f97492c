"""The ASCO 2021 organ grades in the cohort engine: the vectorised interpreter equals the core.

``timeline/_asco.py`` grades every ``asco2021:<organ>`` scale from the scale's typed criteria
(``data/scales/asco2021.toml``); the scalar reference hands each snapshot to the grading core.

* every ASCO 2021 scale is graded by the interpreter in the cohort path (never per snapshot);
* random timelines (hypothesis) over every observation code the ASCO scales read, with values on,
  just above and just below every band's bound (within the 9-decimal rounding of the core), every
  token, inputs left out and windows expiring: the embedded engine's outputs equal the scalar
  reference's, grade_lo/grade_hi/complete included;
* every criterion of every organ (multiples of a ULN or baseline, bands on the value alone, a
  value without its reference, rises) on random findings columns against the core, for the
  findings no observation code gives yet;
* hand-picked snapshots against ``immunotox.grade`` (the rash over 30% BSA, whose grade 3 needs
  moderate or severe symptoms), and a threshold changed in the typed table changes the grade.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import immunotox
from immunotox.catalogue import all_scales
from immunotox.findings import vocabulary as finding_specs
from immunotox.scales.asco2021 import AscoScale
from immunotox.timeline import _asco, grade_observations
from immunotox.timeline._snapshot import codes_read, finding_value, grade_findings, plan
from immunotox.vocabulary import Derivation, vocabulary

from .test_timeline_differential import T0, assert_same, cohort, snapshot_calls, table

ASCO = [s for s, x in all_scales().items() if isinstance(x, AscoScale)]
PLANS = [plan(all_scales()[s]) for s in ASCO]
CODES = sorted(codes_read(PLANS) - {"infusion"})


def test_every_asco_scale_is_vectorised() -> None:
    derived = {p.scale_id for p in PLANS if p.findings}
    assert {f"asco2021:{o}" for o in ("colitis", "rash", "myocarditis", "hypothyroidism")} <= derived
    # the laboratory organ grades (their values derived from results, their references not)
    assert {f"asco2021:{o}" for o in ("hepatitis", "nephritis", "diabetes", "hyperthyroidism")} <= derived
    for p in PLANS:
        assert _asco.handles(p), p.scale_id


def test_no_asco_scale_goes_through_the_core_in_the_cohort_path(monkeypatch: pytest.MonkeyPatch) -> None:
    called = snapshot_calls(monkeypatch)
    rows = [("A", T0, code, _values(code)[0], vocabulary().code(code).unit) for code in CODES]
    r = grade_observations(table(rows), ASCO, engine="embedded")
    assert set(r.grades.column("scale").to_pylist()) == {p.scale_id for p in PLANS if p.findings}
    assert called == []


def _bounds() -> list[float]:
    out: set[float] = set()
    for s in ASCO:
        scale = all_scales()[s]
        assert isinstance(scale, AscoScale)
        for c in scale.criteria.values():
            out |= {b.comparison[1] for b in c.bands}
    return sorted(out)


def _values(code: str) -> list[Any]:
    """Values of ``code`` worth drawing: every token; numbers on, around and far from every bound."""
    spec = vocabulary().code(code)
    if spec.tokens:
        return list(spec.tokens)
    lo, hi = spec.range if spec.range is not None else (0.0, 1000.0)
    if spec.kind == "integer":
        near = {math.floor(b) + d for b in _bounds() for d in (-1, 0, 1, 2)}
        return sorted(x for x in {int(lo), int(hi), *near} if lo <= x <= hi)
    # 4.5 + 5e-10 rounds to 4.500000001 in Python (the core) but to 4.5 in numpy
    near_f = {b + d for b in _bounds() for d in (0.0, 4e-10, 5e-10, -5e-10, 6e-10, 1e-6, -1e-6, 0.5)}
    return sorted(x for x in {lo, hi, (lo + hi) / 2, *near_f} if lo <= x <= hi)


@st.composite
def observation(draw: st.DrawFn, pid: str) -> tuple[Any, ...]:
    t = T0 + dt.timedelta(hours=draw(st.sampled_from([0, 1, 6, 20, 30, 50, 80, 200])))
    code = draw(st.sampled_from([*CODES, "infusion"]))
    if code == "infusion":
        return (pid, t, code, "pembrolizumab", "")
    return (pid, t, code, draw(st.sampled_from(_values(code))), vocabulary().code(code).unit)


@pytest.mark.slow
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cohort(observation, 20))
def test_random_timelines_every_asco_scale_equals_the_core(rows: list[tuple[Any, ...]]) -> None:
    t = table(rows)
    emb = grade_observations(t, ASCO, engine="embedded")
    ref = grade_observations(t, ASCO, engine="scalar")
    assert emb.rejects.num_rows == 0
    assert_same(emb, ref)


SNAPSHOTS: list[tuple[str, list[tuple[str, Any, str]], dict[str, Any], tuple[int, int]]] = [
    # rash over 30% BSA, symptoms unknown: grade 2 at least, 3 with moderate/severe symptoms, 4 if
    # hospitalized (Schneider 2021, Table 1.1)
    ("asco2021:rash", [("rash_bsa", 35.0, "%")], {"bsa_pct": 35.0}, (2, 4)),
    ("asco2021:rash", [("rash_bsa", 30.0, "%")], {"bsa_pct": 30.0}, (2, 4)),
    ("asco2021:rash", [("rash_bsa", 0.0, "%")], {"bsa_pct": 0.0}, (0, 4)),
    ("asco2021:hypothyroidism", [("tsh", 4.5, "m[IU]/L")], {"tsh": 4.5}, (0, 4)),
    ("asco2021:hypothyroidism", [("tsh", 4.5000000004, "m[IU]/L")], {"tsh": 4.5000000004}, (0, 4)),
    # rounded to 9 decimals as the core does: 4.500000001 > 4.5 (numpy alone would round to 4.5)
    ("asco2021:hypothyroidism", [("tsh", 4.5000000005, "m[IU]/L")], {"tsh": 4.5000000005}, (1, 4)),
    ("asco2021:hypothyroidism", [("tsh", 12.0, "m[IU]/L")], {"tsh": 12.0}, (1, 4)),
    (
        "asco2021:colitis",
        [("stools_over_baseline", 7, ""), ("abdominal_pain", "present", "")],
        {"stools_over_baseline": 7, "abdominal_pain": "present"},
        (3, 4),
    ),
    # a laboratory value without its reference: the bands on the value alone (fasting glucose
    # > 250 mg/dL is grade 3 whatever the ULN); creatinine without its baseline: not assessable
    (
        "asco2021:diabetes",
        [("fasting_glucose", 300.0, "mg/dL")],
        {"fasting_glucose": {"value": 300.0, "unit": "mg/dL"}},
        (3, 3),
    ),
    (
        "asco2021:nephritis",
        [("creatinine", 2.0, "mg/dL")],
        {"creatinine": {"value": 2.0, "unit": "mg/dL"}},
        (0, 4),
    ),
    (
        "asco2021:myocarditis",
        [("ecg_new_abnormality", "without_conduction_delay", "")],
        {"ecg_new_abnormality": "without_conduction_delay"},
        (2, 4),
    ),
]


@pytest.mark.parametrize(("scale", "obs", "findings", "expected"), SNAPSHOTS)
def test_one_snapshot_equals_the_core(
    scale: str, obs: list[tuple[str, Any, str]], findings: dict[str, Any], expected: tuple[int, int]
) -> None:
    """One assessment graded by the interpreter equals ``immunotox.grade`` on the same findings."""
    rows = [("A", T0, code, value, unit) for code, value, unit in obs]
    (g,) = grade_observations(table(rows), [scale], engine="embedded").grades.to_pylist()
    core = immunotox.grade(scale, findings)
    assert core.grade_range == expected
    assert (g["grade"], g["grade_lo"], g["grade_hi"], g["complete"]) == (
        core.grade,
        *core.grade_range,
        core.complete,
    ), core.explain()


def test_interpreter_reads_the_typed_table() -> None:
    """A threshold changed in the scale's typed criteria changes the vectorised grade (no copy)."""
    scale = all_scales()["asco2021:hypothyroidism"]
    assert isinstance(scale, AscoScale)
    rows = [("A", T0, "tsh", 5.0, "m[IU]/L"), ("B", T0, "tsh", 7.0, "m[IU]/L")]

    def lows() -> dict[str, int]:
        r = grade_observations(table(rows), [scale.id], engine="embedded")
        assert_same(r, grade_observations(table(rows), [scale.id], engine="scalar"))
        return {g["patient_id"]: g["grade_lo"] for g in r.grades.to_pylist()}

    before = lows()
    old = scale.criteria  # the typed table is frozen: the scale is given an edited copy
    tsh = old["tsh"]
    band = tsh.bands[0].model_copy(update={"gt": 6.0})
    try:
        scale.criteria = {**old, "tsh": tsh.model_copy(update={"bands": (band,)})}
        after = lows()
    finally:
        scale.criteria = old
    # TSH 5 and 7 mIU/L: both > 4.5 -> grade 1; with the bound at 6, TSH 5 grades 0
    assert (before, after) == ({"A": 1, "B": 1}, {"A": 0, "B": 1})


# ------------------------------------------------------------------ every criterion of every organ
# The findings no observation code gives yet (ALT and its ULN, creatinine and its baseline…) are
# graded column by column here, so the multiples, the bands on the value alone and the values
# without their reference are held equal to the core before a timeline derives them.
DELTAS = [0.0, 0.0, 4e-10, -4e-10, 5e-10, -5e-10, 6e-10, 1e-6, -1e-6, 0.3, -0.3, 5.0]


def _number(spec: Any, x: float) -> Any:
    """``x`` as the core takes it: whole for an integer, with its unit where a unit is required."""
    if spec.kind == "integer":
        return round(x)
    return {"value": x, "unit": spec.unit} if spec.unit_required else x


@st.composite
def findings_for(draw: st.DrawFn, scale: AscoScale) -> dict[str, Any]:
    specs = finding_specs()
    out: dict[str, Any] = {}
    for c in scale.criteria.values():
        spec = specs[c.finding]
        if c.kind in ("enum", "bool"):
            value: Any = draw(st.sampled_from(list(spec.values)) if c.kind == "enum" else st.booleans())
            if draw(st.integers(0, 3)):
                out[c.finding] = value
            continue
        ref: float | None = None
        if c.ref is not None:
            lo, hi = specs[c.ref].range or (0.5, 100.0)
            ref = draw(st.sampled_from([x for x in (lo, 0.5, 1.0, 1.3, 4.0, 40.0, 120.0) if lo <= x <= hi]))
            if draw(st.integers(0, 3)):
                out[c.ref] = _number(specs[c.ref], ref)
        band = draw(st.sampled_from(c.bands))
        kind, bound = band.comparison
        if kind == "value_gt" or ref is None:
            base = bound
        else:
            base = ref + bound if kind == "rise_gt" else ref * bound
        x = base + draw(st.sampled_from(DELTAS))
        lo, hi = spec.range or (0.0, 1e6)
        if lo <= x <= hi and draw(st.integers(0, 3)):
            out[c.finding] = _number(spec, x)
    return out


def _columns_of(scale: AscoScale, rows: list[dict[str, Any]]) -> dict[str, _asco.Column]:
    specs = finding_specs()
    cols: dict[str, _asco.Column] = {}
    for k in {k for c in scale.criteria.values() for k in c.reads}:
        tokens = tuple(specs[k].values)
        given = np.array([k in r for r in rows], bool)

        def num(x: Any, tokens: tuple[str, ...] = tokens) -> float:
            if isinstance(x, dict):  # a quantity with its (canonical) unit
                return float(x["value"])
            return float(tokens.index(x)) if tokens else float(x)

        value = np.array([num(r[k]) if k in r else np.nan for r in rows], np.float64)
        cols[k] = _asco.Column(given, value, tokens)
    return cols


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_criterion_of_every_organ_equals_the_core(data: st.DataObject) -> None:
    scale = all_scales()[data.draw(st.sampled_from(ASCO))]
    assert isinstance(scale, AscoScale)
    rows = data.draw(st.lists(findings_for(scale), min_size=1, max_size=30))
    core = [grade_findings(scale, r) for r in rows]
    assert all(g.error is None for g in core), [g.error for g in core]
    got = _asco.grade_columns(scale, _columns_of(scale, rows), len(rows))
    for i, (r, g) in enumerate(zip(rows, core, strict=True)):
        assert (int(got.lo[i]), int(got.hi[i]), bool(got.complete[i]), bool(got.assessable[i])) == (
            g.lo,
            g.hi,
            g.complete,
            g.grade is not None,
        ), (scale.id, r)


def test_a_quantity_whose_unit_is_required_is_handed_with_its_unit() -> None:
    """Creatinine is reported in umol/L or mg/dL: the cohort engines hand the core the value with
    the code's unit (the core refuses a bare number), the live path a bare number."""
    voc = vocabulary()
    d = Derivation(finding="creatinine", method="last", codes=("creatinine",), window_h=168.0)
    given = finding_value(d, 1.2, voc, with_units=True)
    assert given == {"value": 1.2, "unit": voc.code("creatinine").unit}
    assert finding_value(d, 1.2, voc) == 1.2
    r = immunotox.grade("asco2021:nephritis", {"creatinine": given, "creatinine_baseline": given})
    assert (r.grade, r.grade_range) == (0, (0, 4))
    with pytest.raises(immunotox.FindingError):
        immunotox.grade("asco2021:nephritis", {"creatinine": 1.2})
