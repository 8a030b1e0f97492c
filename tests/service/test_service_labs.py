"""CTCAE laboratory grades in the service (issue 16): reference intervals (the result's own or
the site's default), the baseline before day 0, and the laboratory alert policy — through the
API, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from immunotox import labs
from immunotox.messages import Msg, render
from immunotox.service.config import Settings, SettingsError
from immunotox.timeline._read import normalize
from tests.service.conftest import T0, Service, Template, make_service

ALT = "ctcae5:alanine-aminotransferase-increased"
ANC = "ctcae5:neutrophil-count-decreased"


def grade(svc: Service, pid: str, scale: str) -> dict[str, Any]:
    grades = svc.get("doc_a" if pid.startswith("P-A") else "doc_b", f"/api/v1/patients/{pid}/grades")
    return next(g for g in grades.json() if g["scale"] == scale)


def alerts(svc: Service, pid: str) -> list[dict[str, Any]]:
    user = "doc_a" if pid.startswith("P-A") else "doc_b"
    return [a for a in svc.get(user, "/api/v1/alerts").json() if a["patient_id"] == pid]


def test_done_when_alt_250_with_its_range_after_a_pre_infusion_alt_of_25_is_grade_3(svc: Service) -> None:
    """Issue 16, done when: ALT 250 U/L, reference range 7–40 U/L, pre-infusion ALT 25 U/L."""
    day0 = T0 - dt.timedelta(days=2)  # P-A1's infusion
    r = svc.obs("nurse_a", "P-A1", "alt", 25, "U/L", at=day0 - dt.timedelta(days=1), ref_low=7, ref_high=40)
    assert r.status_code == 201, r.text
    baseline_id = r.json()["stored"][0]["id"]
    r = svc.obs("nurse_a", "P-A1", "alt", 250, "U/L", ref_low=7, ref_high=40)
    assert r.status_code == 201, r.text
    event = r.json()["stored"][0]
    assert (event["ref_low"], event["ref_high"]) == (7, 40)
    g = grade(svc, "P-A1", ALT)
    assert (g["grade"], g["grade_range"], g["complete"], g["status"]) == (3, [3, 3], True, "assessed")
    assert "ALT 250 U/L = 6.25 × ULN (40 U/L)" in g["reasons"][0] and "→ grade 3" in g["reasons"][0]
    assert g["inputs"]["uln"]["value"] == 40 and g["inputs"]["uln"]["interval"] == "observation"
    assert g["inputs"]["uln"]["events"] == [event["id"]]
    assert "reported with the result (7–40 U/L)" in g["inputs"]["uln"]["rule"]
    assert "rendu avec le résultat (7–40 U/L)" in g["inputs"]["uln"]["rule_fr"]
    assert g["inputs"]["baseline"]["value"] == 25 and g["inputs"]["baseline"]["events"] == [baseline_id]
    assert "latest result before day 0" in g["inputs"]["baseline"]["rule"]
    assert "dernier résultat avant J0" in g["inputs"]["baseline"]["rule_fr"]
    fr = [render(Msg.model_validate(m), "fr") for m in g["texts"]["reasons"]]
    assert "6,25 × LSN" in fr[0] and "grade 3" in fr[0]
    # stored like the ASTCT grades: a history record and a current grade, an episode and an alert
    assert svc.sql(f"SELECT grade FROM current_grade WHERE patient_id = 'P-A1' AND scale = '{ALT}'") == [(3,)]
    (a,) = [a for a in alerts(svc, "P-A1") if a["scale"] == ALT]
    assert a["kind"] == "new_toxicity" and a["grade"] == 3 and a["priority"] == "critical"
    assert a["params"]["policy"]["rule"] == "default-severe" and a["params"]["policy"]["phase"] == "day0_30"
    assert "Alanine aminotransferase" not in a["title_fr"] and "ALAT" in a["title_fr"]


def test_without_a_baseline_the_grade_stays_a_range_naming_it(svc: Service) -> None:
    svc.obs("nurse_a", "P-A1", "alt", 250, "U/L", ref_low=7, ref_high=40)
    g = grade(svc, "P-A1", ALT)
    assert g["grade"] is None and g["grade_range"] == [0, 3] and g["missing"] == ["baseline"]
    assert "no result before day 0" in g["inputs"]["baseline"]["rule"]
    assert not [a for a in alerts(svc, "P-A1") if a["scale"] == ALT]


def test_the_site_default_interval_is_used_and_cited(svc: Service) -> None:
    assert svc.patch("doc_b", "/api/v1/patients/P-B1", {"sex": "male"}).status_code == 200
    day0 = T0 - dt.timedelta(days=20)
    svc.obs("nurse_b", "P-B1", "alt", 30, "U/L", at=day0 - dt.timedelta(days=3))
    svc.obs("nurse_b", "P-B1", "alt", 250, "U/L")
    g = grade(svc, "P-B1", ALT)
    # NORIP adult men 10–70 U/L: 250 U/L = 3.57 × ULN -> grade 2
    assert (g["grade"], g["complete"]) == (2, True)
    uln = g["inputs"]["uln"]
    assert uln["value"] == 70 and uln["interval"] == "site_default"
    assert uln["default"]["source"] == "rustad2004" and "Nordic Reference Interval" in uln["rule"]
    assert "men, aged 18 years or more" in uln["rule"] and "hommes, âgés de 18 ans ou plus" in uln["rule_fr"]
    # a checkpoint inhibitor: ALT grade 2 alerts (ASCO 2021 holds the drug from grade 2)
    (a,) = [a for a in alerts(svc, "P-B1") if a["scale"] == ALT]
    assert a["grade"] == 2 and a["params"]["policy"]["rule"] == "ici-hepatitis"
    assert a["params"]["policy"]["source"] == "schneider2021"


def test_no_default_for_a_patient_whose_sex_is_not_recorded(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    svc.obs("nurse_b", "P-B1", "alt", 30, "U/L", at=T0 - dt.timedelta(days=25))
    svc.obs("nurse_b", "P-B1", "alt", 250, "U/L")
    g = grade(svc, "P-B1", ALT)
    assert g["grade"] is None and "uln" in g["missing"]
    assert g["inputs"]["uln"]["interval"] == "none" and "sex not recorded" in g["inputs"]["uln"]["rule"]


def test_expected_cytopenia_after_car_t_is_graded_but_not_alerted(svc: Service) -> None:
    r = svc.obs("nurse_a", "P-A1", "anc", 0.2, "10*9/L")
    assert r.status_code == 201
    g = grade(svc, "P-A1", ANC)
    assert g["grade"] == 4
    assert not [a for a in alerts(svc, "P-A1") if a["scale"] == ANC]
    assert svc.sql(f"SELECT peak_grade FROM episode WHERE patient_id = 'P-A1' AND scale = '{ANC}'") == [(4,)]


def test_a_lab_grade_below_the_policy_does_not_alert_and_a_rise_does(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    svc.obs("nurse_b", "P-B1", "alt", 30, "U/L", at=T0 - dt.timedelta(days=25), ref_low=7, ref_high=40)
    svc.obs("nurse_b", "P-B1", "alt", 80, "U/L", ref_low=7, ref_high=40)  # 2 × ULN: grade 1
    assert grade(svc, "P-B1", ALT)["grade"] == 1 and not alerts(svc, "P-B1")
    svc.clock.advance(days=1)
    svc.obs("nurse_b", "P-B1", "alt", 130, "U/L", ref_low=7, ref_high=40)  # 3.25 × ULN: grade 2
    (a,) = [a for a in alerts(svc, "P-B1") if a["scale"] == ALT]
    assert (a["kind"], a["grade"]) == ("grade_increase", 2)
    # the ASCO 2021 hepatitis organ grade follows the same policy (grade 2: hold the inhibitor)
    (organ,) = [a for a in alerts(svc, "P-B1") if a["scale"] == "asco2021:hepatitis"]
    assert (organ["kind"], organ["grade"]) == ("grade_increase", 2)


@pytest.mark.parametrize(
    ("extra", "unit", "field", "fragment"),
    [
        ({"ref_low": 50, "ref_high": 40}, "U/L", "ref_low", "not below ref_high"),
        ({"ref_low": 7, "ref_high": 40}, None, "unit", "unit is required"),
        ({"ref_low": 7, "ref_high": 40}, "mg/dL", "unit", "convert"),
        ({"ref_high": -4}, "U/L", "ref_high", "negative"),
        ({"ref_high": "forty"}, "U/L", "ref_high", "number"),
    ],
)
def test_bad_reference_intervals_are_refused_naming_the_field(
    svc: Service, extra: dict[str, Any], unit: str | None, field: str, fragment: str
) -> None:
    r = svc.obs("nurse_a", "P-A1", "alt", 250, unit, **extra)
    assert r.status_code == 422, r.text
    (err,) = [e for e in r.json()["errors"] if e["field"] == field]
    assert fragment in err["message"]
    assert svc.sql("SELECT count(*) FROM clinical_event") == [(0,)]


def test_a_reference_interval_on_a_vital_sign_is_refused(sqlite_svc: Service) -> None:
    r = sqlite_svc.obs("nurse_a", "P-A1", "temperature", 38.5, "Cel", ref_low=36, ref_high=38)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "ref_low"
    assert "not a laboratory result" in r.json()["errors"][0]["message"]


def test_a_converted_result_keeps_its_interval_in_the_canonical_unit(sqlite_svc: Service) -> None:
    r = sqlite_svc.obs("nurse_a", "P-A1", "creatinine", 150, "umol/L", ref_low=45, ref_high=90)
    assert r.status_code == 201, r.text
    ev = r.json()["stored"][0]
    assert ev["unit"] == "mg/dL" and ev["ref_high"] == pytest.approx(90 / 88.4, rel=1e-3)


def test_fhir_reference_range_round_trip(svc: Service) -> None:
    obs = {
        "resourceType": "Observation",
        "id": "alt-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "1742-6"}]},
        "subject": {"reference": "Patient/P-A1"},
        "effectiveDateTime": T0.isoformat(),
        "valueQuantity": {"value": 250, "unit": "U/L", "system": "http://unitsofmeasure.org", "code": "U/L"},
        "referenceRange": [
            {
                "low": {"value": 7, "system": "http://unitsofmeasure.org", "code": "U/L"},
                "high": {"value": 40, "system": "http://unitsofmeasure.org", "code": "U/L"},
            }
        ],
    }
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": obs}]}
    r = svc.post("doc_a", "/api/v1/fhir/Bundle", bundle)
    assert r.status_code == 201, r.text
    assert svc.sql("SELECT ref_low, ref_high FROM clinical_event") == [(7.0, 40.0)]
    out = svc.get("doc_a", "/api/v1/fhir/Patient/P-A1/$everything").json()
    (res,) = [
        e["resource"]
        for e in out["entry"]
        if e["resource"]["resourceType"] == "Observation" and "referenceRange" in e["resource"]
    ]
    assert res["referenceRange"] == [
        {
            "low": {"value": 7.0, "unit": "U/L", "system": "http://unitsofmeasure.org", "code": "U/L"},
            "high": {"value": 40.0, "unit": "U/L", "system": "http://unitsofmeasure.org", "code": "U/L"},
        }
    ]
    bad = {
        **obs,
        "referenceRange": [{"low": {"value": 50, "code": "U/L"}, "high": {"value": 40, "code": "U/L"}}],
    }
    r = svc.post("doc_a", "/api/v1/fhir/Bundle", {**bundle, "entry": [{"resource": {**bad, "id": "alt-2"}}]})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "entry.0.resource.referenceRange.0.low.value"


# a reference interval in a file is rejected for the reason the API refuses it (issue 16)
REFERENCE_ROWS: list[tuple[str, str, str, str, str]] = [
    # code, value, unit, ref_low, ref_high ("" = not given)
    ("alt", "250", "U/L", "7", "40"),
    ("alt", "250", "U/L", "", "40"),
    ("creatinine", "150", "umol/L", "45", "90"),
    ("alt", "250", "U/L", "50", "40"),
    ("alt", "250", "U/L", "40", "40"),
    ("alt", "250", "U/L", "-1", "40"),
    ("alt", "250", "U/L", "seven", "40"),
    ("alt", "250", "U/L", "7", "inf"),
    ("alt", "250", "", "7", "40"),
    ("alt", "250", "mg/dL", "7", "40"),
    ("temperature", "38.5", "Cel", "36", "38"),
    ("anc", "0.3", "10*9/L", "2.5", ""),
]


def test_a_file_rejects_the_reference_intervals_the_api_refuses(sqlite_svc: Service) -> None:
    t = (T0 - dt.timedelta(hours=1)).isoformat()
    raw = pa.table(
        {
            "patient_id": ["P-A1"] * len(REFERENCE_ROWS),
            "time": [t] * len(REFERENCE_ROWS),
            "code": [r[0] for r in REFERENCE_ROWS],
            "value": [r[1] for r in REFERENCE_ROWS],
            "unit": [r[2] for r in REFERENCE_ROWS],
            "ref_low": [r[3] for r in REFERENCE_ROWS],
            "ref_high": [r[4] for r in REFERENCE_ROWS],
        }
    )
    rejects = {r["row"] - 1: r for r in normalize(raw, file="obs.csv").rejects.to_pylist()}
    for i, (code, value, unit, low, high) in enumerate(REFERENCE_ROWS):
        body: dict[str, Any] = {"code": code, "value": value, "unit": unit or None, "time": t}
        body |= {k: v for k, v in (("ref_low", low), ("ref_high", high)) if v}
        r = sqlite_svc.post("nurse_a", "/api/v1/patients/P-A1/observations", body)
        if i not in rejects:
            assert r.status_code == 201, (REFERENCE_ROWS[i], r.text)
            continue
        assert r.status_code == 422, REFERENCE_ROWS[i]
        (err,) = r.json()["errors"]
        rej = rejects[i]
        if rej["reason"] == "bad_reference":
            field = rej["detail"].split(" = ")[0]
            assert field == err["field"], REFERENCE_ROWS[i]
            if err["message"].startswith(f"{field} = "):  # not refused by the API's types first
                assert rej["detail"] == err["message"], REFERENCE_ROWS[i]
        else:  # a value refused before its interval is read: the same column on both roads
            assert (rej["reason"], rej["column"], err["field"]) == ("bad_unit", "unit", "unit")
    assert sorted(rejects) == [3, 4, 5, 6, 7, 8, 9, 10]


def test_a_retracted_result_is_no_longer_graded_the_previous_one_is(svc: Service) -> None:
    day0 = T0 - dt.timedelta(days=2)
    svc.obs("nurse_a", "P-A1", "alt", 25, "U/L", at=day0 - dt.timedelta(days=1), ref_low=7, ref_high=40)
    svc.obs("nurse_a", "P-A1", "alt", 80, "U/L", at=T0 - dt.timedelta(hours=6), ref_low=7, ref_high=40)
    wrong = svc.obs("nurse_a", "P-A1", "alt", 2500, "U/L", ref_low=7, ref_high=40).json()["stored"][0]["id"]
    assert grade(svc, "P-A1", ALT)["grade"] == 4
    r = svc.obs("nurse_a", "P-A1", "alt", 2500, "U/L", supersedes=wrong, status="entered_in_error")
    assert r.status_code == 201, r.text
    g = grade(svc, "P-A1", ALT)
    assert (g["grade"], g["inputs"]["value"]["value"]) == (1, 80)
    stored = svc.sql(f"SELECT grade FROM current_grade WHERE patient_id = 'P-A1' AND scale = '{ALT}'")
    assert stored == [(1,)]


SITE_FILE = """
[[interval]]
code = "alt"
sex = "any"
age = [18, 150]
low = 5
high = 50
unit = "U/L"
citation = "Laboratoire de biochimie du site, catalogue des analyses 2025"
verification = "V"
"""


def test_a_site_file_replaces_the_default_intervals(sqlite_template: Template, tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE_FILE, "utf-8")
    try:
        for svc in make_service(sqlite_template, tmp_path, reference_intervals=str(path)):
            svc.obs("nurse_b", "P-B1", "alt", 30, "U/L", at=T0 - dt.timedelta(days=25))
            svc.obs("nurse_b", "P-B1", "alt", 250, "U/L")
            g = grade(svc, "P-B1", ALT)
            # the site's 5-50 U/L for either sex: 250 U/L = 5 x ULN -> grade 2, sex not needed
            assert (g["grade"], g["inputs"]["uln"]["value"]) == (2, 50)
            assert "catalogue des analyses 2025" in g["inputs"]["uln"]["rule"]
            assert g["inputs"]["uln"]["default"]["source"] == "site"
    finally:
        labs.use_site_intervals(None)
    assert labs.default_interval("alt", "any", 50) is None  # the shipped defaults are back


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "No such file"),
        ("[[interval]]\ncode = 'alt'\n", "missing 'sex'"),
        (SITE_FILE.replace('citation = "Laboratoire', 'note = "Laboratoire'), "its source"),
        (SITE_FILE.replace('unit = "U/L"', 'unit = "mg/dL"'), "convert"),
        (SITE_FILE + SITE_FILE, "two default intervals of alt"),
    ],
)
def test_a_bad_site_file_stops_the_service_naming_the_variable(
    tmp_path: Any, text: str, fragment: str
) -> None:
    path = tmp_path / "site.toml"
    if text:
        path.write_text(text, "utf-8")
    with pytest.raises(SettingsError, match="IMMUNOTOX_REFERENCE_INTERVALS") as info:
        Settings.from_env({"IMMUNOTOX_REFERENCE_INTERVALS": str(path)})
    assert fragment in str(info.value)
