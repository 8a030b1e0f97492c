"""ADaM ADTTE from the timeline outputs (issue 21, step 3): event times, censoring, the competing
event, and the round trip of the file through its reader."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from immunotox.simulate import simulate_cohort
from immunotox.standards import StandardsError, adtte, grade_omop, read_adtte, write_adtte, write_omop
from immunotox.timeline import grade_observations

SCALES = "astct2019:crs,astct2019:icans"
Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def cohort() -> pa.Table:
    return simulate_cohort(40, days=14, seed=4).observations


def test_adtte_round_trips_and_matches_the_grades(cohort: pa.Table, tmp_path: Path) -> None:
    res = grade_observations(cohort, SCALES)
    t = adtte(res, cohort)
    assert set(t.column("PARAMCD").to_pylist()) >= {"CRSG1", "CRSG2", "CRSG3", "ICANSG1", "CRSDUR", "TTTOCI"}
    assert max(len(x) for x in t.column("PARAMCD").to_pylist()) <= 8
    write_adtte(t, tmp_path / "adtte.csv")
    assert read_adtte(tmp_path / "adtte.csv").equals(t)
    grades = res.grades.filter(pc.equal(res.grades.column("scale"), "astct2019:crs")).to_pylist()
    days0 = {p["patient_id"]: p["day0"] for p in res.patients.to_pylist()}
    for r in t.filter(pc.equal(t.column("PARAMCD"), "CRSG2")).to_pylist():
        first = min(
            (g["time"] for g in grades if g["patient_id"] == r["USUBJID"] and g["grade"] >= 2), default=None
        )
        if r["CNSR"] == 0:
            assert first is not None and r["ADTM"] == first.strftime("%Y-%m-%dT%H:%M:%SZ")
            assert r["AVAL"] == round((first - days0[r["USUBJID"]]).total_seconds() / 86400, 6)
            assert r["EVNTDESC"] == "CRS GRADE >= 2" and r["CNSDTDSC"] is None
        else:
            assert r["EVNTDESC"] is None and r["CNSDTDSC"]


def test_adtte_is_the_same_through_omop(cohort: pa.Table, tmp_path: Path) -> None:
    write_omop(cohort, tmp_path)
    assert adtte(grade_omop(tmp_path, SCALES), cohort).equals(
        adtte(grade_observations(cohort, SCALES), cohort)
    )


def test_death_before_the_event_is_a_competing_event() -> None:
    obs = pa.table(
        {
            "patient_id": ["P"] * 5,
            "time": ["2024-05-01T10:00Z", "2024-05-01T10:00Z", "2024-05-01T14:00Z", "2024-05-02T10:00Z",
                     "2024-05-02T12:00Z"],
            "code": ["infusion", "age", "temperature", "temperature", "death"],
            "value": ["axi-cel", "60", "37.0", "37.1", "infection"],
            "unit": ["", "a", "Cel", "Cel", ""],
        }
    )  # fmt: skip
    t = adtte(grade_observations(obs, SCALES), obs)
    crs1 = t.filter(pc.equal(t.column("PARAMCD"), "CRSG1")).to_pylist()
    assert [(r["CNSR"], r["ADTM"], r["AVAL"], r["CNSDTDSC"]) for r in crs1] == [
        (2, "2024-05-02T12:00:00Z", 1.083333, "DEATH BEFORE EVENT (COMPETING EVENT)")
    ]


def test_read_adtte_refuses_a_bad_censoring_code(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    header = "STUDYID,USUBJID,PARAMCD,PARAM,AVAL,CNSR,STARTDT,STARTDTM,ADT,ADTM,EVNTDESC,CNSDTDSC,SRCSCALE\n"
    p.write_text(header + "S,P,CRSG1,x,1.5,3,2024-01-01,,2024-01-02,,,,\n")
    with pytest.raises(
        StandardsError, match=r"a.csv: row 1: CNSR = 3; expected 0 \(event\), 1 or 2 \(censored\)"
    ):
        read_adtte(p)


def test_cli_timeline_adtte_is_the_same_from_the_file_and_from_sdtm(cli: Cli, tmp_path: Path) -> None:
    obs, sdtm = tmp_path / "obs.parquet", tmp_path / "sdtm"
    r = cli("simulate", "-n", "8", "--days", "8", "--seed", "21", "--out", str(obs), "--sdtm-out", str(sdtm))
    assert r.returncode == 0, r.stderr
    for src, out in ((obs, "a"), (sdtm, "b")):
        r = cli("timeline", str(src), "--scales", SCALES, "--out", str(tmp_path / out), "--adtte")
        assert r.returncode == 0, r.stderr
    a = read_adtte(tmp_path / "a" / "adtte.csv")
    assert a.num_rows > 0 and a.equals(read_adtte(tmp_path / "b" / "adtte.csv"))
    r = cli("timeline", str(obs), "--out", str(tmp_path / "c"), "--format", "csv", "--adtte")
    assert r.returncode == 2 and "--adtte needs --format parquet" in r.stderr
