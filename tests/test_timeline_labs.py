"""CTCAE laboratory terms in the cohort engine: the vectorised reading equals the grading core.

``timeline/_labs.py`` grades every CTCAE v5.0 and v4.03 laboratory term of a laboratory code at
each result, from the result, the site's default interval for the patient's age (the observation
contract has no sex) and the baseline before day 0; the scalar reference hands the same inputs
(``_labs.lab_inputs``) to the grading core one result at a time. Random laboratory courses
(hypothesis) put values on and around every multiple of ULN, LLN and baseline the tables
print, in the canonical and in other units, with and without age, infusion and earlier results,
so that the ranges (an unknown ULN, an unknown baseline, both) and the core's refusals are
covered.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import immunotox
from immunotox import labs
from immunotox.catalogue import all_scales
from immunotox.timeline import _labs, _run, grade_observations, run_timeline
from immunotox.timeline._options import select_scales
from immunotox.timeline._snapshot import plan

from .test_timeline_differential import T0, assert_same, cohort, snapshot_calls
from .test_timeline_differential import table as contract_table

LAB_SCALES = [s for s in select_scales("all") if plan(all_scales()[s]).lab is not None]
CODES = sorted({c for c in (plan(all_scales()[s]).lab for s in LAB_SCALES) if c is not None})


def test_every_lab_term_of_the_interval_table_is_graded_in_both_versions() -> None:
    v5 = {s for scales in labs.lab_terms().values() for s in scales}
    assert v5 <= set(LAB_SCALES)
    assert {s.replace("ctcae5:", "ctcae4:") for s in v5} <= set(LAB_SCALES)  # all ten exist in v4.03
    assert set(CODES) == set(labs.lab_terms())


def test_lab_terms_are_graded_in_the_cohort_path_without_the_snapshot_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    called = snapshot_calls(monkeypatch)
    rows = [("A", T0, "age", 60, "a")] + [
        ("A", T0 + dt.timedelta(hours=i), code, 1.0, labs_unit(code)) for i, code in enumerate(CODES)
    ]
    r = grade_observations(table(rows), LAB_SCALES, engine="embedded")
    assert set(r.grades.column("scale").to_pylist()) == set(LAB_SCALES)
    assert called == []


def table(rows: list[tuple[Any, ...]]) -> pa.Table:
    """The contract table of ``rows`` (``pid, time, code, value, unit[, ref_low, ref_high]``)."""
    t = contract_table([r[:5] for r in rows])
    for i, name in ((5, "ref_low"), (6, "ref_high")):
        t = t.append_column(name, pa.array([_text(r[i]) if len(r) > i else "" for r in rows], pa.string()))
    return t


def _text(x: Any) -> str:
    return "" if x is None else str(x)


def labs_unit(code: str) -> str:
    from immunotox.vocabulary import vocabulary

    return vocabulary().code(code).unit


def test_a_neutrophil_count_with_the_site_interval_equals_the_core() -> None:
    """ANC 0.4 x 10^9/L at 64 years: the default interval (any sex, adults) gives LLN 2.5; CTCAE
    v5.0 'Neutrophil count decreased' grade 4 is <500/mm3 (NCI CTCAE v5.0, 2017)."""
    rows = [("A", T0, "age", 64, "a"), ("A", T0 + dt.timedelta(hours=2), "anc", 400, "/uL")]
    g = grade_observations(table(rows), ["ctcae5:neutrophil-count-decreased"]).grades.to_pylist()
    iv = labs.default_interval("anc", None, 64)
    assert iv is not None and iv.low == 2.5
    core = immunotox.grade(
        "ctcae5:neutrophil-count-decreased",
        {"value": {"value": 0.4, "unit": "10*9/L"}, "lln": {"value": iv.low, "unit": "10*9/L"}},
    )
    assert (g[0]["grade"], g[0]["complete"]) == (core.grade, core.complete) == (4, True)


def test_alt_without_a_sex_is_a_range_naming_uln_and_the_baseline_narrows_it() -> None:
    """ALT has sex-specific default intervals and no sex is in an observation file: ULN unknown,
    never assumed. 300 U/L with a baseline of 50 U/L before the infusion: the core's range."""
    rows = [
        ("A", T0, "age", 64, "a"),
        ("A", T0, "alt", 50, "U/L"),
        ("A", T0 + dt.timedelta(hours=1), "infusion", "axi-cel", ""),
        ("A", T0 + dt.timedelta(days=3), "alt", 300, "U/L"),
    ]
    s = "ctcae5:alanine-aminotransferase-increased"
    g = grade_observations(table(rows), [s]).grades.to_pylist()
    core = immunotox.grade(
        s, {"value": {"value": 300, "unit": "U/L"}, "baseline": {"value": 50, "unit": "U/L"}}
    )
    assert core.grade_range is not None and "uln" in core.missing
    assert (g[1]["grade_lo"], g[1]["grade_hi"], g[1]["complete"]) == (*core.grade_range, False)
    before = grade_observations(table(rows[:2]), [s]).grades.to_pylist()[0]
    alone = immunotox.grade(s, {"value": {"value": 50, "unit": "U/L"}})
    assert alone.grade_range is not None
    assert (before["grade_lo"], before["grade_hi"]) == alone.grade_range  # no baseline before day 0


# multiples of the references around the printed thresholds (x ULN, x LLN, x baseline)
FACTORS = [
    0.0,
    0.1,
    0.25,
    0.5,
    0.6,
    0.75,
    0.8,
    1.0,
    1.25,
    1.5,
    2.0,
    2.5,
    3.0,
    3.5,
    5.0,
    8.0,
    10.0,
    20.0,
    30.0,
]
OTHER_UNITS = {"bilirubin": ("umol/L", 17.104), "creatinine": ("umol/L", 88.42), "anc": ("/uL", 1000.0)}


def _reference(code: str) -> float:
    iv = labs.default_interval(code, None, 50) or labs.default_interval(code, "male", 50)
    assert iv is not None
    return iv.high if code in ("alt", "ast", "bilirubin", "creatinine") else iv.low


@st.composite
def lab_row(draw: st.DrawFn, pid: str, codes: tuple[str, ...] = tuple(CODES)) -> tuple[Any, ...]:
    kind = draw(st.sampled_from(["lab"] * 10 + ["age", "infusion"]))
    t = T0 + dt.timedelta(days=draw(st.integers(-3, 6)), hours=draw(st.sampled_from([0, 0, 6])))
    if kind == "infusion":
        return (pid, t, "infusion", "axi-cel", "")
    if kind == "age":
        return (pid, t, "age", draw(st.sampled_from([8, 17, 18, 45, 70])), "a")
    code = draw(st.sampled_from(codes))
    ref = _reference(code)
    value = round(ref * draw(st.sampled_from(FACTORS)), 6)
    # the result's own interval, sometimes: around the default, one side only, or a zero LLN
    own = draw(st.sampled_from([None, None, (0.5, 1.0), (0.8, 1.25), (None, 1.1), (0.0, 0.9), (0.7, None)]))
    low, high = (None, None) if own is None else own
    if code in ("alt", "ast", "bilirubin", "creatinine"):  # ref is the ULN
        limits = [None if x is None else round(ref * x, 6) for x in (low, high)]
    else:  # ref is the LLN
        limits = [None if x is None else round(ref * 2 * x, 6) for x in (low, high)]
    factor, unit = 1.0, labs_unit(code)
    if code in OTHER_UNITS and draw(st.booleans()):
        unit, factor = OTHER_UNITS[code]
    shown = [None if x is None else round(x * factor, 6) for x in limits]
    return (pid, t, code, round(value * factor, 6), unit, *shown)


def _same_as_the_reference(rows: list[tuple[Any, ...]], scales: list[str]) -> None:
    t = table(rows)
    assert_same(
        grade_observations(t, scales, engine="embedded"), grade_observations(t, scales, engine="scalar")
    )


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cohort(lab_row, 30))
def test_random_lab_courses_equal_the_core(rows: list[tuple[Any, ...]]) -> None:
    _same_as_the_reference(rows, LAB_SCALES)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cohort(lambda pid: lab_row(pid, ("alt", "creatinine", "fibrinogen")), 30))
def test_random_courses_of_the_baseline_terms_equal_the_core(rows: list[tuple[Any, ...]]) -> None:
    """The terms that read a baseline (ALT, creatinine, fibrinogen), many results each."""
    _same_as_the_reference(
        rows, [s for s in LAB_SCALES if plan(all_scales()[s]).lab in ("alt", "creatinine", "fibrinogen")]
    )


def test_a_result_s_own_interval_is_used_before_the_site_default() -> None:
    """As in the service: the interval a result was reported with, else the site's default (none
    for ALT without a sex); of two results at one time, the worst one's. ALT 100 U/L with its ULN
    40 U/L is 2.5 x ULN: CTCAE v4.03 grade 1 (>ULN - 3.0 x ULN); v5.0 grade 1 if the baseline was
    normal, 0-1 when it is unknown (1.5 - 3.0 x an abnormal baseline)."""
    rows: list[tuple[Any, ...]] = [
        ("A", T0, "age", 64, "a"),
        ("A", T0 + dt.timedelta(hours=1), "alt", 90, "U/L", 7, 30),
        ("A", T0 + dt.timedelta(hours=1), "alt", 100, "U/L", 10, 40),  # the worst: its ULN 40
        ("A", T0 + dt.timedelta(hours=2), "alt", 100, "U/L"),  # no interval: ULN unknown
    ]
    v4, v5 = "ctcae4:alanine-aminotransferase-increased", "ctcae5:alanine-aminotransferase-increased"
    got = {
        (g["scale"], g["time"].hour): g for g in grade_observations(table(rows), [v4, v5]).grades.to_pylist()
    }
    h = T0.hour
    assert (got[(v4, h + 1)]["grade"], got[(v4, h + 1)]["complete"]) == (1, True)
    assert (got[(v5, h + 1)]["grade_lo"], got[(v5, h + 1)]["grade_hi"]) == (0, 1)
    assert (got[(v4, h + 2)]["grade_lo"], got[(v4, h + 2)]["grade_hi"], got[(v4, h + 2)]["complete"]) == (
        0,
        4,
        False,
    )
    _same_as_the_reference(rows, [v4, v5])


def test_interpreter_reads_the_scale_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """A threshold changed in the term's typed table changes the vectorised lab outcome."""
    s = "ctcae5:neutrophil-count-decreased"
    scale, lab = _labs._lab(s)
    q = {"value": _np([0.8]), "lln": _np([2.5])}
    before = _labs.outcome(lab, q)
    g4 = next(i for i, b in enumerate(lab.bands) if b.grade == 4)
    bound = lab.bands[g4].bounds[0].model_copy(update={"x": 1.0})  # grade 4 below 1.0 x 10^9/L
    band = lab.bands[g4].model_copy(update={"bounds": (bound,)})
    edited = lab.model_copy(update={"bands": (*lab.bands[:g4], band, *lab.bands[g4 + 1 :])})
    after = _labs.outcome(edited, q)
    assert int(before[0, 1]) == 1 << 3 and int(after[0, 1]) == 1 << 4
    assert scale.term.lab is lab  # the object the core reads


def _np(x: list[float]) -> Any:
    import numpy as np

    return np.array(x, np.float64)


def test_files_sorted_or_not_carry_the_result_s_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Parquet file not sorted by patient (spilled to buckets) and a CSV file give the grades
    of the same rows held in memory: the reference columns are read from files too."""
    monkeypatch.setattr(_run, "partition_rows", lambda _limit: 4)  # batches of a few rows
    rows: list[tuple[Any, ...]] = []
    for i, pid in enumerate(["C", "A", "B", "A", "C", "B"]):
        t = T0 + dt.timedelta(hours=i)
        rows += [
            (pid, t, "age", 50, "a"),
            (pid, t, "alt", 100 + i, "U/L", 10, 40),
            (pid, t, "anc", 0.9, "10*9/L"),
        ]
    t = table(rows)
    scales = ["ctcae5:alanine-aminotransferase-increased", "ctcae5:neutrophil-count-decreased"]
    want = grade_observations(t, scales).grades.sort_by(
        [("patient_id", "ascending"), ("scale", "ascending"), ("time", "ascending")]
    )
    pq.write_table(t, tmp_path / "obs.parquet", row_group_size=3)
    pacsv.write_csv(t, tmp_path / "obs.csv")
    for name in ("obs.parquet", "obs.csv"):
        s = run_timeline(tmp_path / name, scales, tmp_path / f"out-{name}")
        got = pq.read_table(s.outputs["grades"]).sort_by(
            [("patient_id", "ascending"), ("scale", "ascending"), ("time", "ascending")]
        )
        assert got.to_pylist() == want.to_pylist(), name
        assert s.unsorted_input == (name == "obs.parquet")  # the CSV is read in one block
    alt = [(g["grade_lo"], g["grade_hi"]) for g in want.to_pylist() if "alanine" in g["scale"]]
    assert set(alt) == {(0, 1)}  # 2.5-2.6 x its ULN 40 U/L, baseline unknown (without the ULN: 0-4)


def test_the_crosstab_sets_a_term_against_its_other_version_only() -> None:
    """ALT v5.0 against ALT v4.03, never ALT against the neutrophil count."""
    rows = [("A", T0, "age", 50, "a"), ("A", T0, "alt", 100, "U/L", 10, 40), ("A", T0, "anc", 0.4, "10*9/L")]
    scales = [
        "ctcae5:alanine-aminotransferase-increased",
        "ctcae5:neutrophil-count-decreased",
        "ctcae4:alanine-aminotransferase-increased",
        "ctcae4:neutrophil-count-decreased",
    ]
    ct = grade_observations(table(rows), scales).crosstab.to_pylist()
    pairs = {(r["scale_a"], r["scale_b"]) for r in ct}
    assert pairs == {(scales[0], scales[2]), (scales[1], scales[3])}
    alt = next(r for r in ct if r["scale_a"] == scales[0])
    assert (alt["grade_a"], alt["grade_b"], alt["n_patients"]) == ("not determinable", "1", 1)  # v5.0 0-1
