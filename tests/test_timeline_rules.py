"""Hand-made timelines with their expected grades and episodes written out (both engines).

Rules under test (docs/timeline.md): temperature = highest reading in (t - 6 h, t]; SBP = lowest in
(t - 6 h, t]; vasopressors and oxygen run over [time, end_time); fever masked from the first
antipyretic/anticytokine row after CRS onset until the course ends; an episode starts at the first
grade >= 1 and resolves at the first grade-0 assessment that is followed by N hours without a
positive grade (N = resolution_hours, default 24).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

from immunotox.timeline import grade_observations

ENGINES = ("embedded", "scalar")
UTC = dt.UTC


def ts(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """Day ``day`` of March 2024 (day 1 = 2024-03-01), at hh:mm UTC."""
    return dt.datetime(2024, 3, day, hour, minute, tzinfo=UTC)


def iso(x: dt.datetime) -> str:
    return x.strftime("%Y-%m-%dT%H:%M:%SZ")


def table(rows: list[tuple[Any, ...]]) -> pa.Table:
    """Rows (patient, time, code, value, unit[, end_time]) -> an observation table of strings."""
    cols: dict[str, list[Any]] = {k: [] for k in ("patient_id", "time", "code", "value", "unit", "end_time")}
    for r in rows:
        pid, t, code, value, unit, *rest = r
        cols["patient_id"].append(pid)
        cols["time"].append(iso(t))
        cols["code"].append(code)
        cols["value"].append(str(value))
        cols["unit"].append(unit)
        cols["end_time"].append(iso(rest[0]) if rest and rest[0] is not None else "")
    return pa.table(cols)


def vitals(pid: str, t: dt.datetime, temp: float, sbp: float | None = 120) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = [(pid, t, "temperature", temp, "Cel")]
    if sbp is not None:
        out.append((pid, t, "sbp", sbp, "mm[Hg]"))
    return out


def grades_of(result: Any, scale: str = "astct2019:crs") -> list[tuple[dt.datetime, int | None, int, bool]]:
    g = result.grades.filter(pa.compute.equal(result.grades["scale"], scale)).sort_by("time")
    return [(r["time"], r["grade"], r["grade_hi"], r["complete"]) for r in g.to_pylist()]


def episodes_of(result: Any, scale: str = "astct2019:crs") -> list[dict[str, Any]]:
    e = result.episodes.filter(pa.compute.equal(result.episodes["scale"], scale)).sort_by("onset")
    keys = ("episode", "onset", "peak_grade", "peak_time", "resolution", "duration_h", "resolved")
    return [{k: r[k] for k in keys} for r in e.to_pylist()]


def base(pid: str = "P1", age: float | None = 60) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = [(pid, ts(1, 8), "infusion", "axi-cel", "")]
    if age is not None:
        rows.append((pid, ts(1, 8), "age", age, "a"))
    return rows


def afebrile_until(pid: str, start: dt.datetime, hours: int, every: int = 6) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for h in range(0, hours + 1, every):
        out += vitals(pid, start + dt.timedelta(hours=h), 37.0)
    return out


@pytest.mark.parametrize("engine", ENGINES)
def test_fever_then_norepinephrine_then_resolution(engine: str) -> None:
    """Fever 10:00 day 2, norepinephrine 14:00-20:00, afebrile from 18:00: one episode, peak 3."""
    rows = base()
    rows += vitals("P1", ts(2, 10), 38.6, 110)
    rows += vitals("P1", ts(2, 14), 38.2, 85)
    rows.append(("P1", ts(2, 14), "vasopressor", "norepinephrine", "", ts(2, 20)))
    rows += vitals("P1", ts(2, 18), 37.2, 100)
    rows += afebrile_until("P1", ts(2, 22), 48)
    r = grade_observations(table(rows), ["astct2019:crs"], engine=engine)
    g = grades_of(r)
    assert g[:4] == [
        (ts(2, 10), 1, 1, True),  # fever, SBP 110, no oxygen
        (ts(2, 14), 3, 3, True),  # one vasopressor running
        (ts(2, 18), 3, 3, True),  # 38.2 at 14:00 is still in (12:00, 18:00]
        (ts(2, 20), 0, 0, True),  # norepinephrine ended at 20:00 (end exclusive); no fever in (14:00, 20:00]
    ]
    assert episodes_of(r) == [
        {
            "episode": 1,
            "onset": ts(2, 10),
            "peak_grade": 3,
            "peak_time": ts(2, 14),
            "resolution": ts(2, 20),
            "duration_h": 10.0,
            "resolved": True,
        }
    ]
    p = r.patients.to_pylist()[0]
    assert (p["max_grade"], p["n_episodes"], p["onset_day"], p["day0_source"]) == (3, 1, 1, "infusion")
    daily = {d["day"]: d["max_grade"] for d in r.daily_max.to_pylist()}
    assert daily == {1: 3, 2: 0, 3: 0}  # days counted in 24-h periods from the infusion (day 1 08:00)


@pytest.mark.parametrize("engine", ENGINES)
def test_masking_tocilizumab_then_afebrile_on_high_flow_is_grade_3(engine: str) -> None:
    """ASTCT: after tocilizumab, fever is no longer required; high-flow O2 keeps grade 3."""
    rows = base()
    rows += vitals("P1", ts(2, 10), 38.5)
    rows.append(("P1", ts(2, 12), "tocilizumab", "tocilizumab", ""))
    rows.append(("P1", ts(2, 13), "oxygen", "high_flow_nasal_cannula", ""))
    rows += vitals("P1", ts(2, 14), 37.0)
    rows += vitals("P1", ts(2, 18), 37.0)
    rows.append(("P1", ts(2, 22), "oxygen", "none", ""))
    rows += afebrile_until("P1", ts(3, 0), 36)
    masked = grade_observations(table(rows), ["astct2019:crs"], engine=engine)
    g = {t: grade for t, grade, _hi, _c in grades_of(masked)}
    assert g[ts(2, 18)] == 3  # afebrile in (12:00, 18:00], masked, high-flow running
    assert g[ts(2, 22)] == 0  # device 'none' from 22:00
    (ep,) = episodes_of(masked)
    assert (ep["onset"], ep["peak_grade"], ep["peak_time"], ep["resolution"]) == (
        ts(2, 10),
        3,
        ts(2, 13),
        ts(2, 22),
    )
    # the same timeline without tocilizumab: afebrile on high-flow is not CRS (fever required)
    unmasked = grade_observations(
        table([r for r in rows if r[2] != "tocilizumab"]), ["astct2019:crs"], engine=engine
    )
    g2 = {t: grade for t, grade, _hi, _c in grades_of(unmasked)}
    assert g2[ts(2, 14)] == 3  # 38.5 at 10:00 still in the window
    assert g2[ts(2, 18)] == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_antipyretic_before_onset_does_not_mask(engine: str) -> None:
    rows = base()
    rows.append(("P1", ts(2, 6), "antipyretic", "paracetamol", ""))
    rows.append(("P1", ts(2, 6), "oxygen", "low_flow_nasal_cannula", ""))
    rows.append(("P1", ts(2, 6), "o2_flow", 2, "L/min"))
    rows += vitals("P1", ts(2, 8), 37.1)
    r = grade_observations(table(rows), ["astct2019:crs"], engine=engine)
    assert {grade for _t, grade, _hi, _c in grades_of(r)} == {0}  # hypoxia without fever, no masking


@pytest.mark.parametrize("engine", ENGINES)
def test_relapse_within_n_hours_is_the_same_episode_after_n_hours_a_new_one(engine: str) -> None:
    rows = base()
    rows += vitals("P1", ts(2, 10), 38.4)
    rows += vitals("P1", ts(2, 16), 37.0)  # 10:00 + 6 h: the window (10:00, 16:00] excludes the fever
    rows += vitals("P1", ts(2, 22), 37.0)
    rows += vitals("P1", ts(3, 4), 37.0)
    rows += vitals("P1", ts(3, 8), 38.3)  # 16 h after the first grade 0: same episode
    rows += vitals("P1", ts(3, 14), 37.0)
    rows += afebrile_until("P1", ts(3, 20), 36)
    rows += vitals("P1", ts(5, 10), 38.9)  # 44 h after 3 March 14:00: a new episode
    rows += afebrile_until("P1", ts(5, 16), 48)
    r = grade_observations(table(rows), ["astct2019:crs"], engine=engine)
    g = {t: grade for t, grade, _hi, _c in grades_of(r)}
    assert g[ts(2, 16)] == 0
    assert episodes_of(r) == [
        {
            "episode": 1,
            "onset": ts(2, 10),
            "peak_grade": 1,
            "peak_time": ts(2, 10),
            "resolution": ts(3, 14),
            "duration_h": 28.0,
            "resolved": True,
        },
        {
            "episode": 2,
            "onset": ts(5, 10),
            "peak_grade": 1,
            "peak_time": ts(5, 10),
            "resolution": ts(5, 16),
            "duration_h": 6.0,
            "resolved": True,
        },
    ]
    # with N = 12 h, 16 h at grade 0 already resolved the first fever: three episodes
    short = grade_observations(table(rows), ["astct2019:crs"], engine=engine, resolution_hours=12)
    assert [e["onset"] for e in episodes_of(short)] == [ts(2, 10), ts(3, 8), ts(5, 10)]
    assert episodes_of(short)[0]["resolution"] == ts(2, 16)


@pytest.mark.parametrize("engine", ENGINES)
def test_episode_still_open_at_the_end_of_the_record(engine: str) -> None:
    rows = base()
    rows += vitals("P1", ts(2, 10), 38.4)
    rows += vitals("P1", ts(2, 16), 37.0)
    rows += vitals("P1", ts(2, 22), 37.0)  # only 6 h at grade 0 before the record ends
    r = grade_observations(table(rows), ["astct2019:crs"], engine=engine)
    (ep,) = episodes_of(r)
    assert ep["resolved"] is False
    assert ep["resolution"] is None and ep["duration_h"] is None


@pytest.mark.parametrize("engine", ENGINES)
def test_missing_inputs_stay_visible(engine: str) -> None:
    """No age recorded: SBP 85 cannot be read as hypotension -> grade 1 is a lower bound (up to 2)."""
    rows = base(age=None)
    rows += vitals("P1", ts(2, 10), 38.6, 85)
    rows.append(("P1", ts(2, 11), "oxygen", "low_flow_nasal_cannula", ""))  # flow never recorded
    r = grade_observations(table(rows), ["astct2019:crs"], engine=engine)
    assert grades_of(r) == [
        (ts(2, 10), 1, 2, False),  # hypotension unknown
        (ts(2, 11), 2, 3, False),  # nasal cannula with unknown flow: 2 or 3
    ]
    p = r.patients.to_pylist()[0]
    assert (p["max_grade"], p["max_grade_hi"], p["complete"]) == (2, 3, False)


@pytest.mark.parametrize("engine", ENGINES)
def test_oxygen_devices_flow_and_open_intervals(engine: str) -> None:
    rows = base()
    rows += vitals("P1", ts(2, 8), 38.5)
    rows.append(("P1", ts(2, 7), "o2_flow", 10, "L/min"))  # recorded before the cannula: not its flow
    rows.append(("P1", ts(2, 8), "oxygen", "low_flow_nasal_cannula", ""))  # runs until the next oxygen row
    rows += vitals("P1", ts(2, 9), 38.5)
    rows.append(("P1", ts(2, 9), "o2_flow", 4, "L/min"))
    rows.append(("P1", ts(2, 10), "o2_flow", 8, "L/min"))  # > 6 L/min: high flow
    rows.append(("P1", ts(2, 12), "oxygen", "bipap", ""))
    rows.append(("P1", ts(2, 13), "oxygen", "none", ""))
    rows += vitals("P1", ts(2, 13), 38.5)
    r = grade_observations(table(rows), ["astct2019:crs"], engine=engine)
    g = {t: (grade, hi, c) for t, grade, hi, c in grades_of(r)}
    assert g[ts(2, 8)] == (2, 3, False)  # flow unknown for this device
    assert g[ts(2, 9)] == (2, 2, True)
    assert g[ts(2, 10)] == (3, 3, True)
    assert g[ts(2, 12)] == (4, 4, True)  # positive pressure
    assert g[ts(2, 13)] == (1, 1, True)  # 'none': back to fever only


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("drugs", "expected"),
    [
        (["vasopressin"], 3),  # vasopressin alone counts as one vasopressor
        (["norepinephrine", "vasopressin"], 3),  # "excluding vasopressin"
        (["norepinephrine", "epinephrine"], 4),
        (["Noradrenaline", "phenylephrine"], 4),  # alias
    ],
)
def test_vasopressors_running_together(engine: str, drugs: list[str], expected: int) -> None:
    rows = base()
    rows += vitals("P1", ts(2, 10), 38.6)
    rows += [("P1", ts(2, 10), "vasopressor", d, "", ts(2, 16)) for d in drugs]
    r = grade_observations(table(rows), ["astct2019:crs"], engine=engine)
    assert grades_of(r)[0][1] == expected


@pytest.mark.parametrize("engine", ENGINES)
def test_death_due_to_crs_is_grade_5(engine: str) -> None:
    rows = base()
    rows += vitals("P1", ts(2, 10), 39.6)
    rows.append(("P1", ts(3, 2), "death", "crs", ""))
    r = grade_observations(table(rows), ["astct2019:crs"], engine=engine)
    assert grades_of(r)[-1][:2] == (ts(3, 2), 5)
    (ep,) = episodes_of(r)
    assert ep["peak_grade"] == 5 and ep["resolved"] is False


@pytest.mark.parametrize("engine", ENGINES)
def test_icans_episode(engine: str) -> None:
    def neuro(t: dt.datetime, ice: int, loc: str = "awake") -> list[tuple[Any, ...]]:
        return [
            ("P1", t, "ice_score", ice, ""),
            ("P1", t, "consciousness", loc, ""),
            ("P1", t, "seizure", "none", ""),
            ("P1", t, "motor", "none", ""),
        ]

    rows = base(age=45)
    rows += neuro(ts(2, 8), 10)
    rows += neuro(ts(2, 20), 6)
    rows += neuro(ts(3, 8), 2, "awakens_to_tactile")
    rows += neuro(ts(3, 20), 9)
    for day in (4, 5):
        rows += neuro(ts(day, 8), 10) + neuro(ts(day, 20), 10)
    r = grade_observations(table(rows), ["astct2019:icans"], engine=engine)
    g = grades_of(r, "astct2019:icans")
    # no imaging: cerebral edema unknown, so every grade is a lower bound that could reach 4
    assert [(grade, hi, c) for _t, grade, hi, c in g][:5] == [
        (0, 4, False),
        (2, 4, False),
        (3, 4, False),
        (1, 4, False),
        (0, 4, False),
    ]
    (ep,) = episodes_of(r, "astct2019:icans")
    assert (ep["onset"], ep["peak_grade"], ep["peak_time"], ep["resolution"], ep["duration_h"]) == (
        ts(2, 20),
        3,
        ts(3, 8),
        ts(4, 8),
        36.0,
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_the_latest_ice_record_counts_whole_or_partial(engine: str) -> None:
    """The ICE is one assessment: a partial ICE (items only) recorded after a total supersedes
    it (a grade range from the items), and items of an older record never join a newer one."""
    neuro = [("consciousness", "awake"), ("seizure", "none"), ("motor", "none")]
    rows = base(age=45)
    rows += [("P1", ts(2, 8), c, v, "") for c, v in [("ice_score", 10), *neuro]]
    # 09:00 partial ICE: orientation 1, naming 1 -> ICE between 2 and 5 -> grade 2-3
    rows += [("P1", ts(2, 9), "ice_orientation", 1, ""), ("P1", ts(2, 9), "ice_naming", 1, "")]
    # 10:00 partial ICE of the other items only: writing 1, attention 1, commands 1 -> 3 to 10
    rows += [("P1", ts(2, 10), c, 1, "") for c in ("ice_writing", "ice_attention", "ice_commands")]
    # 11:00 a total again supersedes the items
    rows += [("P1", ts(2, 11), "ice_score", 9, "")]
    r = grade_observations(table(rows), ["astct2019:icans"], engine=engine)
    g = {t: (grade, hi) for t, grade, hi, _c in grades_of(r, "astct2019:icans")}
    assert (g[ts(2, 8)], g[ts(2, 9)], g[ts(2, 10)], g[ts(2, 11)]) == ((0, 4), (2, 4), (0, 4), (1, 4))


@pytest.mark.parametrize("engine", ENGINES)
def test_day0_falls_back_to_the_first_observation(engine: str) -> None:
    rows = [("P2", ts(1, 6), "age", 50, "a")]
    rows += vitals("P2", ts(2, 10), 38.6)
    r = grade_observations(table(rows), ["astct2019:crs"], engine=engine)
    p = r.patients.to_pylist()[0]
    assert p["day0"] == ts(1, 6) and p["day0_source"] == "first_observation"
    assert p["onset_day"] == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_patient_without_relevant_rows_is_not_determinable(engine: str) -> None:
    rows = base("P1") + vitals("P1", ts(2, 10), 38.6)
    rows += [("P3", ts(1, 8), "anc", 1.2, "10*9/L")]  # labs only: no CRS assessment
    r = grade_observations(table(rows), ["astct2019:crs", "astct2019:icans"], engine=engine)
    p3 = [p for p in r.patients.to_pylist() if p["patient_id"] == "P3"]
    # nothing graded is not "complete": no assessment must never pass for a full, normal record
    assert [(p["scale"], p["n_assessments"], p["max_grade"], p["complete"]) for p in p3] == [
        ("astct2019:crs", 0, None, False),
        ("astct2019:icans", 0, None, False),
    ]


def test_crosstab_counts_not_determinable() -> None:
    rows = base("P1") + vitals("P1", ts(2, 10), 38.6)
    rows += [("P3", ts(1, 8), "anc", 1.2, "10*9/L")]
    r = grade_observations(table(rows), ["astct2019:crs", "penn:crs"])
    ct = {(x["grade_a"], x["grade_b"]): x["n_patients"] for x in r.crosstab.to_pylist()}
    assert ct[("not determinable", "not determinable")] == 1
    assert sum(ct.values()) == 2
    # Penn needs inputs the timeline does not carry (organ toxicity...): its grade 1 is only a
    # lower bound, and the crosstab says so instead of printing a plain 1
    penn = [p for p in r.patients.to_pylist() if p["patient_id"] == "P1" and p["scale"] == "penn:crs"]
    assert [(p["max_grade"], p["complete"]) for p in penn] == [(1, False)]
    assert ct[("1", "≥1")] == 1


def test_crosstab_labels_sort_lower_bounds_between_grades() -> None:
    from immunotox.timeline import label_order

    labels = ["not determinable", "≥2", "1", "0", "2", "≥0", "10"]
    assert sorted(labels, key=label_order) == ["0", "≥0", "1", "2", "≥2", "10", "not determinable"]


@pytest.mark.parametrize("engine", ENGINES)
def test_masking_holds_inside_the_course_and_ends_with_it(engine: str) -> None:
    """A child (SBP alone does not establish hypotension). Inside the course (blow-by again within
    N hours) fever stays masked, so SBP 80 leaves grade 0..2 open; once the course has resolved,
    fever is required again and the same SBP cannot raise the grade above 0."""
    rows = base(age=8)
    rows += vitals("P1", ts(2, 10), 38.5, 110)
    rows.append(("P1", ts(2, 11), "tocilizumab", "tocilizumab", ""))
    rows.append(("P1", ts(2, 12), "oxygen", "blow_by", "", ts(2, 16)))
    rows += vitals("P1", ts(2, 17), 37.0, 80)  # no oxygen now, but the course goes on at 20:00
    rows.append(("P1", ts(2, 20), "oxygen", "blow_by", "", ts(2, 22)))
    rows += afebrile_until("P1", ts(2, 23), 30)
    rows += vitals("P1", ts(4, 10), 37.0, 80)  # the course resolved on 2 March 22:00
    r = grade_observations(table(rows), ["astct2019:crs"], engine=engine)
    g = {t: (grade, hi, c) for t, grade, hi, c in grades_of(r)}
    # masked: hypoxia (blow-by) without fever; a child: hypotension unknown
    assert g[ts(2, 12)] == (2, 2, False)
    assert g[ts(2, 17)] == (0, 2, False)  # masked, hypotension unknown
    assert g[ts(2, 20)] == (2, 2, False)
    assert g[ts(4, 10)] == (0, 0, False)  # not masked: no fever, so no CRS whatever the SBP
    (ep,) = episodes_of(r)
    assert (ep["onset"], ep["resolution"]) == (ts(2, 10), ts(2, 22))
