"""The timeline's per-patient entry point (immunotox.timeline.live), which the service calls.

* On a simulated cohort, the findings :func:`live.derive` gives at every assessment time equal the
  scalar reference engine's (the cohort road) — the rows handed over as the service stores them
  (code names, canonical tokens, numbers, datetimes), the record cut at t.
* The evidence names the rows each finding came from; fever masking needs the course onset.
* The episode rule stepped one grade at a time gives the reference engine's episodes.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

import numpy as np
import pytest

from immunotox import simulate
from immunotox.timeline import live, read_observations
from immunotox.timeline._read import NO_END
from immunotox.timeline._reference import PatientState, grid_times, records
from immunotox.timeline._snapshot import findings_from_raw
from immunotox.timeline._state import episodes
from immunotox.vocabulary import vocabulary

H = dt.timedelta(hours=1)
T0 = dt.datetime(2024, 3, 1, 8, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Row:
    id: int
    code: str
    time: dt.datetime
    end_time: dt.datetime | None
    value: str
    value_num: float | None


def row(i: int, code: str, hours: float, value: str | float, end: float | None = None) -> Row:
    spec = vocabulary().code(code)
    num = float(value) if spec.numeric else None
    return Row(i, code, T0 + hours * H, None if end is None else T0 + end * H, str(value), num)


@pytest.mark.parametrize("scale", ["astct2019:crs", "astct2019:icans"])
def test_live_findings_equal_the_reference_engine_at_every_assessment(scale: str) -> None:
    cohort = simulate.simulate_cohort(6, days=5, seed=3)
    obs = read_observations(cohort.observations).obs
    voc = vocabulary()
    lp = live.live_plan(scale)
    checked = 0
    b = obs.patient_bounds()
    for k, (_pid, rec) in enumerate(records(obs)):
        rows = []
        for j in range(int(b[k]), int(b[k + 1])):
            spec = voc.codes[int(obs.code[j])]
            if spec.name not in lp.reads:
                continue
            num = float(obs.num[j])
            end = None if obs.end[j] == NO_END else live.from_us(int(obs.end[j]))
            at = live.from_us(int(obs.t[j]))
            if spec.numeric:
                rows.append(Row(j, spec.name, at, end, str(num), num))
            else:
                rows.append(Row(j, spec.name, at, end, spec.tokens[int(num)], None))
        st = PatientState(rec, int(voc.episode_resolution_h * 3_600_000_000))
        names = tuple(f for f in lp.plan.findings if f != "fever_masked")
        for t in grid_times(rec, lp.plan):
            raw = st.raw_state(names, t)
            if "fever_masked" in lp.plan.findings:  # the course onset is the caller's (below)
                raw["fever_masked"] = False
            ref = findings_from_raw(lp.plan, raw, voc)
            ref.pop("fever_masked", None)
            got = live.derive(lp, rows, live.from_us(t)).findings
            got.pop("fever_masked", None)
            ref = {k2: sorted(v) if isinstance(v, list) else v for k2, v in ref.items()}
            assert got == ref, (scale, live.from_us(t))
            checked += 1
    assert checked > 50  # CRS about 190 assessments, ICANS about 70


def test_evidence_names_the_rows_and_the_rule() -> None:
    lp = live.live_plan("astct2019:crs")
    rows = [
        row(1, "temperature", 0, 38.9),
        row(2, "temperature", 2, 39.4),
        row(3, "temperature", 3, 37.5),
        row(4, "sbp", 3, 88),
        row(5, "oxygen", 1, "low_flow_nasal_cannula"),
        row(6, "o2_flow", 1, 3),
        row(7, "oxygen", 0.5, "facemask", end=0.8),  # stopped before t
        row(8, "vasopressor", 2.5, "norepinephrine"),
        row(9, "temperature", 4, 40.5),  # after t: not read
    ]
    snap = live.derive(lp, rows, T0 + 3 * H)
    assert snap.findings == {
        "temperature_c": 39.4,
        "sbp_mmhg": 88.0,
        "vasopressors": ["norepinephrine"],
        "oxygen": "low_flow_nasal_cannula",
        "o2_flow_l_min": 3.0,
        "fever_masked": False,
    }
    ev = snap.evidence
    assert (ev["temperature_c"].rows, ev["oxygen"].rows, ev["vasopressors"].rows) == ((2,), (5,), (8,))
    assert ev["temperature_c"].rule == "highest temperature in (t-6h, t]"
    assert ev["fever_masked"].rule.startswith("no CRS course in progress")


def test_fever_is_masked_by_therapy_given_since_the_course_onset() -> None:
    lp = live.live_plan("astct2019:crs")
    rows = [row(1, "antipyretic", 1, "paracetamol"), row(2, "tocilizumab", 5, "tocilizumab")]
    at = T0 + 6 * H
    assert live.derive(lp, rows, at, course_onset=T0 + 2 * H).evidence["fever_masked"].rows == (2,)
    assert live.derive(lp, rows, at, course_onset=T0 + 2 * H).findings["fever_masked"] is True
    assert live.derive(lp, rows, at, course_onset=T0 + 5.5 * H).findings["fever_masked"] is False
    assert live.derive(lp, rows, at).findings["fever_masked"] is False  # no course: nothing to mask


def test_death_of_another_cause_is_shown_false_and_a_birth_date_age_wins() -> None:
    lp = live.live_plan("astct2019:icans")
    rows = [row(1, "age", 0, 61), row(2, "death", 2, "crs")]
    snap = live.derive(lp, rows, T0 + 3 * H, age=(60.0, "birth_date"))
    assert "death_due_to_icans" not in snap.findings  # the timeline's rule: no such death
    assert (snap.evidence["death_due_to_icans"].value, snap.evidence["death_due_to_icans"].rows) == (
        False,
        (2,),
    )
    assert snap.findings["age_years"] == 60.0 and snap.evidence["age_years"].rule == "from birth date"
    assert live.derive(lp, rows, T0 + 3 * H).findings["age_years"] == 61.0


@pytest.mark.parametrize("seed", range(5))
def test_episode_steps_give_the_cohort_engines_episodes(seed: int) -> None:
    """The episode rule stepped one grade at a time (the service's way) against its vectorised
    form (the cohort engine's :func:`immunotox.timeline._state.episodes`)."""
    rnd = random.Random(seed)
    times = sorted(rnd.sample(range(0, 400), 60))
    pos = [rnd.random() < 0.35 for _ in times]
    resolution = 24
    ep = episodes(np.zeros(len(times), np.int32), np.array(times, np.int64), np.array(pos), resolution)
    expected = [
        (times[int(s)], int(r) if bool(ok) else None)
        for s, ok, r in zip(ep.start, ep.resolved, ep.resolution, strict=True)
    ]
    got: list[tuple[int, int | None]] = []
    course: live.Course | None = None
    for t, p in zip(times, pos, strict=True):
        step = live.episode_step(course, t, 1 if p else 0, resolution)
        if step.closed is not None:
            got[-1] = (got[-1][0], step.closed.resolved_at)
        if step.opened:
            got.append((t, None))
        course = step.course
    if course is not None and course.quiet_since is not None and times[-1] - course.quiet_since >= resolution:
        got[-1] = (got[-1][0], course.quiet_since)  # the record reaches the resolution time
    assert got == expected and len(got) > 1


def test_spans_are_the_intervals_the_grading_reads() -> None:
    rows = [
        row(1, "oxygen", 0, "low_flow_nasal_cannula"),
        row(2, "oxygen", 2, "facemask", end=3),
        row(3, "vasopressor", 1, "norepinephrine"),
        row(4, "vasopressor", 1.5, "vasopressin"),
        row(5, "vasopressor", 4, "norepinephrine", end=5),
        row(6, "temperature", 1, 38.5),  # not an interval code
    ]
    got = [(r.id, s, e) for r, s, e in live.spans(rows)]
    assert got == [
        (1, T0, T0 + 2 * H),  # until the next oxygen row, whatever the device
        (3, T0 + H, T0 + 4 * H),  # until the next norepinephrine row
        (4, T0 + 1.5 * H, None),  # another drug: still running
        (2, T0 + 2 * H, T0 + 3 * H),
        (5, T0 + 4 * H, T0 + 5 * H),
    ]
