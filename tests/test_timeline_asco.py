"""The ASCO 2021 organ grades in the cohort engine: the vectorised interpreter equals the core.

``timeline/_asco.py`` grades every ``asco2021:<organ>`` scale from the scale's typed criteria
(``data/scales/asco2021.toml``); the scalar reference hands each snapshot to the grading core.

* every ASCO 2021 scale is graded by the interpreter in the cohort path (never per snapshot);
* random timelines (hypothesis) over every observation code the ASCO scales read, with values on,
  just above and just below every band's bound (within the 9-decimal rounding of the core), every
  token, inputs left out and windows expiring: the embedded engine's outputs equal the scalar
  reference's, grade_lo/grade_hi/complete included;
* hand-picked snapshots against ``immunotox.grade`` (the rash over 30% BSA, whose grade 3 needs
  moderate or severe symptoms), and a threshold changed in the typed table changes the grade.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import immunotox
from immunotox.catalogue import all_scales
from immunotox.scales.asco2021 import AscoScale
from immunotox.timeline import _asco, _engine, grade_observations
from immunotox.timeline._snapshot import codes_read, plan
from immunotox.vocabulary import vocabulary

from .test_timeline_differential import T0, assert_same, cohort, table

ASCO = [s for s, x in all_scales().items() if isinstance(x, AscoScale)]
PLANS = [plan(all_scales()[s]) for s in ASCO]
CODES = sorted(codes_read(PLANS) - {"infusion"})


def test_every_asco_scale_is_vectorised() -> None:
    assert {"asco2021:colitis", "asco2021:rash", "asco2021:myocarditis", "asco2021:hypothyroidism"} <= {
        p.scale_id for p in PLANS if p.findings
    }
    for p in PLANS:
        assert _asco.handles(p), p.scale_id


def test_no_asco_scale_goes_through_the_core_in_the_cohort_path(monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[str] = []
    real = _engine._snapshot_grades

    def spy(f: Any, p: Any, grader: Any, only: Any = None) -> Any:
        called.append(p.scale_id)
        return real(f, p, grader, only)

    monkeypatch.setattr(_engine, "_snapshot_grades", spy)
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
    near_f = {b + d for b in _bounds() for d in (0.0, 4e-10, 6e-10, -4e-10, 1e-6, -1e-6, 0.5)}
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
    ("asco2021:hypothyroidism", [("tsh", 12.0, "m[IU]/L")], {"tsh": 12.0}, (1, 4)),
    (
        "asco2021:colitis",
        [("stools_over_baseline", 7, ""), ("abdominal_pain", "present", "")],
        {"stools_over_baseline": 7, "abdominal_pain": "present"},
        (3, 4),
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
