"""OMOP CDM v5.4 in and out (issue 21): simulator -> OMOP -> reader -> timeline gives exactly the
grades and episodes of the direct path; bad OMOP rows go to the rejects with their reason."""

from __future__ import annotations

import csv
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from immunotox.simulate import simulate_cohort
from immunotox.standards import concepts, grade_omop, read_omop, write_omop
from immunotox.timeline import grade_observations
from immunotox.vocabulary import vocabulary

from .standards_helpers import icu_stays

Cli = Callable[..., subprocess.CompletedProcess[str]]
SCALES = "astct2019:crs,astct2019:icans"
OUTPUTS = ("grades", "daily_max", "episodes", "patients")


def _same(a: object, b: object) -> None:
    for name in OUTPUTS:
        ta, tb = getattr(a, name), getattr(b, name)
        assert ta.num_rows > 0, name
        assert ta.equals(tb), name


@pytest.mark.parametrize("with_concept_table", [True, False])
def test_simulated_cohort_through_omop_grades_as_the_direct_path(
    tmp_path: Path, with_concept_table: bool
) -> None:
    cohort = simulate_cohort(30, days=10, seed=4, loinc_fraction=0.2)
    counts = write_omop(cohort.observations, tmp_path)
    assert counts["MEASUREMENT"] > 0 and counts["DRUG_EXPOSURE"] > 0 and counts["PERSON"] == 30
    if not with_concept_table:  # the documented fallback list of concept ids
        (tmp_path / "concept.csv").unlink()
    read = read_omop(tmp_path)
    assert read.rejected_rows == 0
    assert read.observations.num_rows == cohort.observations.num_rows
    assert icu_stays(read.observations) == icu_stays(cohort.observations) != []
    direct = grade_observations(cohort.observations, SCALES)
    via = grade_omop(tmp_path, SCALES)
    _same(direct, via)
    assert via.input_rows == read.source_rows


def test_cli_simulate_omop_out_then_timeline_on_the_folder(cli: Cli, tmp_path: Path) -> None:
    obs, omop = tmp_path / "obs.csv", tmp_path / "omop"
    r = cli("simulate", "-n", "12", "--days", "8", "--seed", "9", "--out", str(obs), "--omop-out", str(omop))
    assert r.returncode == 0, r.stderr
    assert (omop / "person.csv").exists() and (omop / "concept.csv").exists()
    for src, out in ((obs, tmp_path / "a"), (omop, tmp_path / "b")):
        r = cli("timeline", str(src), "--scales", SCALES, "--out", str(out))
        assert r.returncode == 0, r.stderr
    for name in OUTPUTS:
        a, b = (
            pq.read_table(tmp_path / "a" / f"{name}.parquet"),
            pq.read_table(tmp_path / "b" / f"{name}.parquet"),
        )
        assert a.num_rows > 0 and a.equals(b), name
    sa = json.loads((tmp_path / "a" / "summary.json").read_text())
    sb = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert sb["input"] == str(omop)
    assert sb["accepted_rows"] == sa["accepted_rows"] and sb["rejected_rows"] == 0
    assert sb["input_rows"] == sb["accepted_rows"] + sb["rejected_rows"] + sum(sb["ignored_rows"].values())


def test_omop_out_refuses_bad_rows(cli: Cli, tmp_path: Path) -> None:
    r = cli("simulate", "-n", "2", "--bad-rows-fraction", "0.1", "--omop-out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert "--omop-out needs --bad-rows-fraction 0" in r.stderr


# ----------------------------------------------------------------------------- bad input
def _write(folder: Path, name: str, rows: list[dict[str, object]]) -> None:
    cols = list(rows[0])
    with (folder / f"{name}.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)


def _m(pid: int, concept: int, when: str, value: str, unit: int, date: str = "") -> dict[str, object]:
    return {
        "measurement_id": 1,
        "person_id": pid,
        "measurement_concept_id": concept,
        "measurement_date": date or when[:10],
        "measurement_datetime": when,
        "value_as_number": value,
        "unit_concept_id": unit,
        "unit_source_value": "",
    }


@pytest.fixture
def bad_folder(tmp_path: Path) -> Path:
    _write(
        tmp_path,
        "PERSON",
        [
            {
                "person_id": 1,
                "year_of_birth": 1960,
                "month_of_birth": 5,
                "day_of_birth": 2,
                "birth_datetime": "",
                "person_source_value": "A",
            },
            {
                "person_id": 2,
                "year_of_birth": 1970,
                "month_of_birth": "",
                "day_of_birth": "",
                "birth_datetime": "",
                "person_source_value": "B",
            },
        ],
    )
    temp, unit_c, kg = 3020891, 586323, 9529
    _write(
        tmp_path,
        "MEASUREMENT",
        [
            _m(1, temp, "2024-03-01T10:00:00Z", "38.5", unit_c),  # 1 accepted
            _m(1, temp, "2024-03-01T10:00:00Z", "38.5", unit_c),  # 2 exact duplicate
            _m(1, temp, "", "38.0", unit_c, date="2024-03-01"),  # 3 date only
            _m(1, temp, "2024-03-01T12:00:00Z", "39.0", 0),  # 4 no unit concept
            _m(1, temp, "2024-03-01T13:00:00Z", "39.0", kg),  # 5 kg for a temperature
            _m(1, 123, "2024-03-01T14:00:00Z", "1", unit_c),  # 6 unmapped concept
            _m(1, temp, "1950-01-01T10:00:00Z", "37.0", unit_c),  # 7 before birth
            _m(3, temp, "2024-03-01T10:00:00Z", "37.0", unit_c),  # 8 unknown person
            _m(2, temp, "1969-06-01T10:00:00Z", "37.0", unit_c),  # 9 before the birth year
        ],
    )
    drug = {
        "drug_exposure_id": 1,
        "person_id": 1,
        "drug_concept_id": 2000000105,
        "drug_exposure_start_date": "2024-03-01",
        "drug_exposure_start_datetime": "2024-03-01T09:00:00Z",
        "drug_exposure_end_date": "2024-03-01",
        "drug_exposure_end_datetime": "",
        "quantity": "",
        "dose_unit_source_value": "",
    }
    _write(
        tmp_path,
        "DRUG_EXPOSURE",
        [
            drug,  # 1 ide-cel infusion: day 0
            drug
            | {
                "drug_concept_id": 1321341,
                "drug_exposure_start_datetime": "2024-03-01T15:00:00Z",
            },  # 2 no end
            drug
            | {
                "drug_concept_id": 555,
                "drug_exposure_start_datetime": "2024-03-01T16:00:00Z",
                "drug_exposure_end_datetime": "2024-03-01T18:00:00Z",
            },  # 3 via CONCEPT_ANCESTOR
            drug | {"person_id": 2},  # 4 person 2's infusion
        ],
    )
    _write(tmp_path, "CONCEPT_ANCESTOR", [{"ancestor_concept_id": 1321341, "descendant_concept_id": 555}])
    icu = {
        "visit_detail_id": 1,
        "person_id": 1,
        "visit_detail_concept_id": 32037,
        "visit_detail_start_datetime": "2024-03-01T20:00:00Z",
        "visit_detail_end_datetime": "2024-03-03T08:00:00Z",
    }
    _write(
        tmp_path,
        "VISIT_DETAIL",
        [
            icu,  # 1 an ICU stay
            icu | {"visit_detail_concept_id": 9201},  # 2 another visit: ignored
            icu | {"visit_detail_start_datetime": ""},  # 3 an ICU stay without its start
        ],
    )
    cond = {
        "person_id": 1,
        "condition_concept_id": 2000000501,  # status epilepticus
        "condition_start_datetime": "2024-03-02T03:00:00Z",
    }
    _write(tmp_path, "CONDITION_OCCURRENCE", [cond, cond | {"condition_concept_id": 4100}])
    return tmp_path


def test_bad_omop_rows_are_rejected_with_their_reason(bad_folder: Path) -> None:
    read = read_omop(bad_folder)
    got = {(r["file"], r["row"]): (r["reason"], r["column"]) for r in read.rejects.to_pylist()}
    assert got == {
        ("MEASUREMENT.csv", 2): ("duplicate", ""),
        ("MEASUREMENT.csv", 3): ("date_only", "measurement_datetime"),
        ("MEASUREMENT.csv", 4): ("unmapped_unit", "unit_concept_id"),
        ("MEASUREMENT.csv", 6): ("unmapped_concept", "measurement_concept_id"),
        ("MEASUREMENT.csv", 7): ("before_birth", "measurement_datetime"),
        ("MEASUREMENT.csv", 8): ("unknown_person", "person_id"),
        ("MEASUREMENT.csv", 9): ("before_birth", "measurement_datetime"),
        ("DRUG_EXPOSURE.csv", 2): ("missing_end", "drug_exposure_end_datetime"),
        ("PERSON.csv", 2): ("partial_birth_date", "birth_datetime"),
        ("VISIT_DETAIL.csv", 3): ("missing_time", "visit_detail_start_datetime"),
    }
    # the other visit and the unmapped diagnosis are counted, not rejected
    assert read.ignored == {"VISIT_DETAIL": 1, "CONDITION_OCCURRENCE": 1}
    rows = read.observations.to_pylist()
    vaso = [r for r in rows if r["code"] == "vasopressor"]
    assert vaso == [
        {
            "patient_id": "A",
            "time": "2024-03-01T16:00:00Z",
            "code": "vasopressor",
            "value": "norepinephrine",
            "unit": None,
            "end_time": "2024-03-01T18:00:00Z",
            "dose": None,
            "dose_unit": None,
        }
    ]
    mapped = [
        (r["code"], r["value"], r["time"], r["end_time"]) for r in rows if r["code"] in ("icu", "seizure")
    ]
    assert mapped == [
        ("icu", "icu", "2024-03-01T20:00:00Z", "2024-03-03T08:00:00Z"),
        ("seizure", "prolonged", "2024-03-02T03:00:00Z", None),
    ]
    age = [r for r in rows if r["code"] == "age"]
    assert [(a["patient_id"], a["value"], a["time"]) for a in age] == [("A", "63", "2024-03-01T09:00:00Z")]
    # the timeline's own checks point back at the OMOP row: kg is no temperature unit
    res = grade_omop(bad_folder, SCALES)
    timeline_rejects = [r for r in res.rejects.to_pylist() if r["reason"] == "bad_unit"]
    assert [(r["file"], r["row"], r["column"], r["value"]) for r in timeline_rejects] == [
        ("MEASUREMENT.csv", 5, "unit_concept_id", "kg")
    ]
    assert res.input_rows == read.source_rows == 2 + 9 + 4 + 3 + 2
    assert res.accepted_rows + res.rejected_rows + sum(read.ignored.values()) == res.input_rows


def test_concept_table_agrees_with_the_timeline_vocabulary() -> None:
    voc = vocabulary()
    for c in concepts().concepts:
        if c.vocabulary == "LOINC":
            spec = voc.lookup(c.concept_code)
            assert spec is None or spec.name == c.code, c
        if c.domain == "Unit":
            assert c.vocabulary == "UCUM"
    # every code the simulator writes has a home in the OMOP tables
    written = {c.code for c in concepts().concepts} | {"age"}
    assert {
        "temperature",
        "sbp",
        "oxygen",
        "vasopressor",
        "tocilizumab",
        "ice_score",
        "death",
        "infusion",
    } <= written


def test_docs_give_every_concept_of_the_table() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "standards.md").read_text("utf-8")
    missing = [c.concept_id for c in concepts().concepts if f"| {c.concept_id} | {c.vocabulary} |" not in doc]
    assert missing == []
