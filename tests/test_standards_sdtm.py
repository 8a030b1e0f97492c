"""CDISC SDTM in and out (issue 21): simulator -> SDTM -> reader -> timeline gives exactly the
grades and episodes of the direct path; partial dates and other bad rows go to the rejects."""

from __future__ import annotations

import csv
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from immunotox.simulate import simulate_cohort
from immunotox.standards import grade_sdtm, read_sdtm, sdtm_map, write_sdtm
from immunotox.timeline import grade_observations

from .standards_helpers import icu_stays

Cli = Callable[..., subprocess.CompletedProcess[str]]
SCALES = "astct2019:crs,astct2019:icans"
OUTPUTS = ("grades", "daily_max", "episodes", "patients")


def test_simulated_cohort_through_sdtm_grades_as_the_direct_path(tmp_path: Path) -> None:
    cohort = simulate_cohort(30, days=10, seed=4, loinc_fraction=0.2)
    counts = write_sdtm(cohort.observations, tmp_path)
    assert counts["DM"] == 30 and counts["VS"] > 0 and counts["LB"] > 0 and counts["FA"] > 0
    read = read_sdtm(tmp_path)
    assert read.rejected_rows == 0
    assert read.observations.num_rows == cohort.observations.num_rows
    assert icu_stays(read.observations) == icu_stays(cohort.observations) != []
    direct, via = grade_observations(cohort.observations, SCALES), grade_sdtm(tmp_path, SCALES)
    for name in OUTPUTS:
        assert getattr(direct, name).num_rows > 0
        assert getattr(direct, name).equals(getattr(via, name)), name


def test_cli_simulate_both_standards_then_timeline_on_each_folder(cli: Cli, tmp_path: Path) -> None:
    obs, omop, sdtm = tmp_path / "obs.parquet", tmp_path / "omop", tmp_path / "sdtm"
    r = cli(
        "simulate", "-n", "10", "--days", "8", "--seed", "11", "--out", str(obs),
        "--omop-out", str(omop), "--sdtm-out", str(sdtm),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    for src, out in ((obs, "a"), (omop, "b"), (sdtm, "c")):
        r = cli("timeline", str(src), "--scales", SCALES, "--out", str(tmp_path / out))
        assert r.returncode == 0, r.stderr
    for name in OUTPUTS:
        a = pq.read_table(tmp_path / "a" / f"{name}.parquet")
        assert a.num_rows > 0
        for other in ("b", "c"):
            assert a.equals(pq.read_table(tmp_path / other / f"{name}.parquet")), (name, other)
    s = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert s["rejected_rows"] == 0
    assert s["input_rows"] == s["accepted_rows"] + sum(s["ignored_rows"].values())


def test_a_folder_of_neither_standard_is_refused(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a\n1\n")
    r = cli("timeline", str(tmp_path), "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert "neither OMOP tables (person.csv) nor SDTM domains (dm.csv)" in r.stderr


def _write(folder: Path, name: str, rows: list[dict[str, object]]) -> None:
    with (folder / f"{name}.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


@pytest.fixture
def bad_folder(tmp_path: Path) -> Path:
    _write(
        tmp_path,
        "DM",
        [
            {"USUBJID": "S1", "AGE": "58", "AGEU": "YEARS", "BRTHDTC": "1965-07-01"},
            {"USUBJID": "S2", "AGE": "40", "AGEU": "YEARS", "BRTHDTC": ""},
        ],
    )

    def vs(pid: str, testcd: str, dtc: str, value: str, unit: str) -> dict[str, object]:
        return {"USUBJID": pid, "VSTESTCD": testcd, "VSSTRESN": value, "VSSTRESU": unit, "VSDTC": dtc}

    _write(
        tmp_path,
        "VS",
        [
            vs("S1", "TEMP", "2024-03-01T10:00", "38.6", "C"),  # 1 accepted
            vs("S1", "TEMP", "2024-03-01T10:00", "38.6", "C"),  # 2 duplicate
            vs("S1", "TEMP", "2024-03-01", "38.6", "C"),  # 3 date only
            vs("S1", "TEMP", "2024-03", "38.6", "C"),  # 4 partial date
            vs("S1", "TEMP", "2024-03-01T11", "38.6", "C"),  # 5 hour without minutes
            vs("S1", "TEMP", "2024-03-01T12:00", "38.6", "mmHg"),  # 6 unit outside the analyte's table
            vs("S1", "HEIGHT", "2024-03-01T12:00", "170", "cm"),  # 7 unmapped test
            vs("S9", "TEMP", "2024-03-01T12:00", "37.0", "C"),  # 8 unknown subject
            vs("S1", "TEMP", "1960-03-01T12:00", "37.0", "C"),  # 9 before birth
        ],
    )
    _write(
        tmp_path,
        "EX",
        [
            {"USUBJID": "S1", "EXTRT": "AXI-CEL", "EXDOSE": "", "EXDOSU": "", "EXSTDTC": "2024-03-01T09:00"},
            {"USUBJID": "S2", "EXTRT": "AXI-CEL", "EXDOSE": "", "EXDOSU": "", "EXSTDTC": "2024-03-02T09:00"},
        ],
    )
    cm = {"USUBJID": "S1", "CMTRT": "noradrenaline", "CMDECOD": "NOREPINEPHRINE", "CMCAT": "VASOPRESSOR",
          "CMDOSE": "", "CMDOSU": "", "CMSTDTC": "2024-03-01T15:00", "CMENDTC": ""}  # fmt: skip
    _write(
        tmp_path,
        "CM",
        [
            cm,  # 1 a vasopressor without end
            cm | {"CMENDTC": "2024-03-01T18:30"},  # 2 accepted
            cm | {"CMCAT": "ANTIBIOTIC"},  # 3 unmapped category
        ],
    )
    _write(
        tmp_path,
        "AE",
        [{"USUBJID": "S1", "AETERM": "CRS", "AEDECOD": "Cytokine release syndrome", "AETOXGR": "2",
          "AESTDTC": "2024-03-01", "AEENDTC": "2024-03-04"}],
    )  # fmt: skip
    fa = {"USUBJID": "S1", "FATESTCD": "TEMP", "FAOBJ": "CYTOKINE RELEASE SYNDROME", "FASTRESN": "39.4",
          "FASTRESC": "39.4", "FASTRESU": "C", "FADTC": "2024-03-01T22:00"}  # fmt: skip
    _write(
        tmp_path,
        "FA",
        [
            fa,  # 1 a CRS finding: the temperature, in C
            fa | {"FATESTCD": "ICEORIEN", "FAOBJ": "ICANS", "FASTRESN": "3", "FASTRESC": "3", "FASTRESU": ""},
            fa | {"FATESTCD": "HYPOTEN", "FASTRESN": "", "FASTRESC": "Y", "FASTRESU": ""},  # 3 unmapped
        ],
    )
    _write(
        tmp_path,
        "CE",
        [{"USUBJID": "S1", "CETERM": "CRS", "CEDECOD": "Cytokine release syndrome", "CETOXGR": "3",
          "CESTDTC": "2024-03-01T14:00", "CEENDTC": ""}],
    )  # fmt: skip
    ho = {"USUBJID": "S1", "HOTERM": "Intensive care unit", "HODECOD": "INTENSIVE CARE UNIT",
          "HOSTDTC": "2024-03-01T16:00", "HOENDTC": "2024-03-03T10:00"}  # fmt: skip
    _write(tmp_path, "HO", [ho, ho | {"HODECOD": "GENERAL WARD"}])
    return tmp_path


def test_bad_sdtm_rows_are_rejected_with_their_reason(bad_folder: Path) -> None:
    read = read_sdtm(bad_folder)
    got = {(r["file"], r["row"]): (r["reason"], r["column"]) for r in read.rejects.to_pylist()}
    assert got == {
        ("VS.csv", 2): ("duplicate", ""),
        ("VS.csv", 3): ("date_only", "VSDTC"),
        ("VS.csv", 4): ("partial_date", "VSDTC"),
        ("VS.csv", 5): ("partial_date", "VSDTC"),
        ("VS.csv", 7): ("unmapped_test", "VSTESTCD"),
        ("VS.csv", 8): ("unknown_subject", "USUBJID"),
        ("VS.csv", 9): ("before_birth", "VSDTC"),
        ("CM.csv", 1): ("missing_end", "CMENDTC"),
        ("CM.csv", 3): ("unmapped_category", "CMCAT"),
        ("FA.csv", 3): ("unmapped_test", "FATESTCD"),
    }
    assert read.ignored == {"AE": 1, "CE": 1, "HO": 1}
    rows = read.observations.to_pylist()
    assert [(r["code"], r["value"], r["end_time"]) for r in rows if r["code"] == "vasopressor"] == [
        ("vasopressor", "norepinephrine", "2024-03-01T18:30")
    ]
    assert sorted((r["patient_id"], r["value"], r["unit"]) for r in rows if r["code"] == "age") == [
        ("S1", "58", "a"),
        ("S2", "40", "a"),
    ]
    got = {
        (r["code"], r["value"], r["unit"], r["end_time"])
        for r, (file, _) in zip(rows, read.provenance, strict=True)
        if file in ("FA.csv", "HO.csv")
    }
    assert {
        ("temperature", "39.4", "Cel", None),
        ("ice_orientation", "3", None, None),
        ("icu", "icu", None, "2024-03-03T10:00"),
    } <= got
    # the reported grade is kept beside ours
    assert read.reported_ae is not None
    assert read.reported_ae.select(["patient_id", "term", "reported_grade", "file"]).to_pylist() == [
        {"patient_id": "S1", "term": "Cytokine release syndrome", "reported_grade": "2", "file": "AE.csv"},
        {"patient_id": "S1", "term": "Cytokine release syndrome", "reported_grade": "3", "file": "CE.csv"},
    ]
    res = grade_sdtm(bad_folder, SCALES)
    bad_unit = [
        (r["file"], r["row"], r["column"], r["value"])
        for r in res.rejects.to_pylist()
        if r["reason"] == "bad_unit"
    ]
    assert bad_unit == [("VS.csv", 6, "VSSTRESU", "mm[Hg]")]
    assert res.input_rows == read.source_rows == 2 + 9 + 2 + 3 + 1 + 3 + 1 + 2
    assert res.accepted_rows + res.rejected_rows + sum(read.ignored.values()) == res.input_rows


def test_sdtm_map_test_codes_are_sdtm_length() -> None:
    m = sdtm_map()
    assert all(len(t) <= 8 for d in m.tests.values() for t in d)
    assert m.units["C"] == "Cel" and m.units["10^9/L"] == "10*9/L"
