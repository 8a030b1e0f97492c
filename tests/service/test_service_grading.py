"""The service's reconstruction of findings from stored events (validity windows, intervals,
masking) — boundaries on both sides. The grading itself is the core's (ASTCT 2019)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.service.conftest import Service

H = dt.timedelta(hours=1)
S = dt.timedelta(seconds=1)


def crs(svc: Service, pid: str = "P-A1") -> dict[str, Any]:
    grades = svc.get("doc_a", f"/api/v1/patients/{pid}/grades").json()
    return next(g for g in grades if g["scale"] == "astct2019:crs")


def icans(svc: Service, pid: str = "P-A1") -> dict[str, Any]:
    grades = svc.get("doc_a", f"/api/v1/patients/{pid}/grades").json()
    return next(g for g in grades if g["scale"] == "astct2019:icans")


def give(svc: Service, code: str, value: str, at: dt.datetime, **kw: Any) -> int:
    r = svc.post(
        "nurse_a",
        "/api/v1/patients/P-A1/administrations",
        {"code": code, "value": value, "time": at.isoformat(), **kw},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["stored"][0]["id"])


@pytest.mark.parametrize(("age", "inside"), [(6 * H, False), (6 * H - S, True)])
def test_fever_window_is_the_last_6_hours_open_on_the_left(
    sqlite_svc: Service, age: dt.timedelta, inside: bool
) -> None:
    svc = sqlite_svc
    t = svc.clock.now()
    svc.obs("nurse_a", "P-A1", "temperature", 38.4, "Cel", at=t - age)
    svc.obs("nurse_a", "P-A1", "temperature", 37.0, "Cel", at=t)
    g = crs(svc)
    assert g["inputs"]["temperature_c"]["value"] == (38.4 if inside else 37.0)
    assert g["grade"] == (1 if inside else 0)


@pytest.mark.parametrize(("age", "inside"), [(6 * H, False), (6 * H - S, True)])
def test_lowest_sbp_of_the_last_6_hours(sqlite_svc: Service, age: dt.timedelta, inside: bool) -> None:
    svc = sqlite_svc
    t = svc.clock.now()
    svc.obs("nurse_a", "P-A1", "sbp", 85, "mm[Hg]", at=t - age)
    svc.obs("nurse_a", "P-A1", "sbp", 118, "mm[Hg]", at=t)
    svc.obs("nurse_a", "P-A1", "temperature", 38.5, "Cel", at=t)
    # adult (born 1960): SBP < 90 is hypotension -> grade 2
    assert crs(svc)["grade"] == (2 if inside else 1)


def test_oxygen_row_without_end_runs_until_the_next_oxygen_row(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    t = svc.clock.now() - 5 * H
    svc.obs("nurse_a", "P-A1", "temperature", 38.5, "Cel", at=t)
    svc.obs("nurse_a", "P-A1", "sbp", 120, "mm[Hg]", at=t)
    give(svc, "oxygen", "facemask", t + H)
    assert crs(svc)["grade"] == 3
    give(svc, "oxygen", "none", t + 2 * H)
    assert (crs(svc)["grade"], crs(svc)["inputs"]["oxygen"]["value"]) == (1, "none")
    # an interval with its end: runs [start, end)
    give(svc, "oxygen", "cpap", t + 3 * H, end_time=(t + 4 * H).isoformat())
    assert crs(svc)["grade"] == 1  # t is the end of the interval: no longer running
    svc.obs("nurse_a", "P-A1", "temperature", 38.6, "Cel", at=t + 4 * H - S)
    g = crs(svc)
    # at t + 4h the latest relevant event is the cpap end (later than the temperature)
    assert g["time"].startswith((t + 4 * H).strftime("%Y-%m-%dT%H:%M"))


@pytest.mark.parametrize(("flow", "grade"), [(6, 2), (6.5, 3)])
def test_nasal_cannula_flow_decides_low_or_high_flow(sqlite_svc: Service, flow: float, grade: int) -> None:
    """ASTCT 2019: low-flow nasal cannula is <= 6 L/min."""
    svc = sqlite_svc
    t = svc.clock.now() - H
    svc.obs("nurse_a", "P-A1", "temperature", 38.5, "Cel", at=t)
    svc.obs("nurse_a", "P-A1", "sbp", 120, "mm[Hg]", at=t)
    give(svc, "oxygen", "low_flow_nasal_cannula", t, o2_flow_l_min=flow)
    assert crs(svc)["grade"] == grade


@pytest.mark.parametrize(
    ("drugs", "grade"),
    [
        (["norepinephrine"], 3),
        (["norepinephrine", "norepinephrine"], 3),
        (["norepinephrine", "vasopressin"], 3),  # vasopressin never counts toward "multiple"
        (["norepinephrine", "epinephrine"], 4),
    ],
)
def test_running_vasopressors(sqlite_svc: Service, drugs: list[str], grade: int) -> None:
    svc = sqlite_svc
    t = svc.clock.now() - H
    svc.obs("nurse_a", "P-A1", "temperature", 38.5, "Cel", at=t)
    for i, d in enumerate(drugs):
        give(svc, "vasopressor", d, t + i * dt.timedelta(minutes=5))
    g = crs(svc)
    assert g["grade"] == grade and g["inputs"]["vasopressors"]["value"] == sorted(set(drugs))


def test_fever_masked_after_antipyretic_or_anticytokine_therapy(sqlite_svc: Service) -> None:
    """ASTCT 2019: once antipyretic/anticytokine therapy is given after CRS onset, fever is no
    longer required; without such therapy, hypotension without fever is not CRS."""
    svc = sqlite_svc
    t = svc.clock.now() - 10 * H
    svc.obs("nurse_a", "P-A1", "temperature", 38.8, "Cel", at=t)
    svc.obs("nurse_a", "P-A1", "sbp", 118, "mm[Hg]", at=t)
    svc.obs("nurse_a", "P-A1", "temperature", 37.2, "Cel", at=t + 7 * H)
    svc.obs("nurse_a", "P-A1", "sbp", 84, "mm[Hg]", at=t + 7 * H)
    g = crs(svc)
    assert (g["grade"], g["inputs"]["fever_masked"]["value"]) == (0, False)
    give(svc, "tocilizumab", "tocilizumab", t + H, dose=560, dose_unit="mg")
    svc.obs("nurse_a", "P-A1", "sbp", 83, "mm[Hg]", at=t + 8 * H)
    g = crs(svc)
    assert (g["grade"], g["inputs"]["fever_masked"]["value"]) == (2, True)


def test_a_drug_given_before_the_first_fever_does_not_mask(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    t = svc.clock.now() - 10 * H
    give(svc, "antipyretic", "paracetamol", t - H, dose=1000, dose_unit="mg")
    svc.obs("nurse_a", "P-A1", "temperature", 38.8, "Cel", at=t)
    svc.obs("nurse_a", "P-A1", "temperature", 37.0, "Cel", at=t + 7 * H)
    svc.obs("nurse_a", "P-A1", "sbp", 84, "mm[Hg]", at=t + 7 * H)
    assert crs(svc)["inputs"]["fever_masked"]["value"] is False


@pytest.mark.parametrize(("age", "present"), [(12 * H, False), (12 * H - S, True)])
def test_ice_is_valid_12_hours(sqlite_svc: Service, age: dt.timedelta, present: bool) -> None:
    svc = sqlite_svc
    t = svc.clock.now()
    svc.post("nurse_a", "/api/v1/patients/P-A1/assessments", {"time": (t - age).isoformat(), "ice_score": 5})
    svc.obs("nurse_a", "P-A1", "consciousness", "awake", at=t)
    g = icans(svc)
    assert ("ice_score" in g["inputs"]) is present
    assert ("ice_score" in g["missing"]) is not present


def test_child_under_12_is_graded_with_capd(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    t = svc.clock.now().isoformat()
    r = svc.post(
        "nurse_a",
        "/api/v1/patients/P-A2/assessments",
        {
            "kind": "capd",
            "time": t,
            "capd_score": 12,
            "consciousness": "awake",
            "seizure": "none",
            "motor": "none",
            "cerebral_edema": "none",
            "raised_icp_signs": False,
        },
    )
    g = next(x for x in r.json()["grades"] if x["scale"] == "astct2019:icans")
    assert g["grade"] == 3 and g["inputs"]["age_years"]["value"] == 8.0  # CAPD >= 9 -> grade 3


def test_death_due_to_crs_is_grade_5(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    svc.obs("nurse_a", "P-A1", "temperature", 39.0, "Cel")
    svc.obs("doc_a", "P-A1", "death", "crs")
    assert crs(svc)["grade"] == 5 and icans(svc)["inputs"]["death_due_to_icans"]["value"] is False


def test_only_relevant_codes_trigger_a_regrade(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    r = svc.obs("nurse_a", "P-A1", "crp", 12, "mg/L")
    assert r.json()["grades"] == [] and svc.sql("SELECT count(*) FROM grade_record") == [(0,)]
    svc.obs("nurse_a", "P-A1", "temperature", 37.0, "Cel")
    n = svc.sql("SELECT count(*) FROM grade_record")[0][0]
    assert n == 2
    # same clinical state, new value: the current grade's explanation changes, history does not
    svc.clock.advance(minutes=30)
    svc.obs("nurse_a", "P-A1", "temperature", 37.1, "Cel")
    assert svc.sql("SELECT count(*) FROM grade_record")[0][0] == n
    assert crs(svc)["inputs"]["temperature_c"]["value"] == 37.1


def test_checkpoint_inhibitor_patients_get_no_astct_grade(sqlite_svc: Service) -> None:
    r = sqlite_svc.obs("nurse_b", "P-B1", "temperature", 39.0, "Cel")
    assert r.status_code == 201 and r.json()["grades"] == []
