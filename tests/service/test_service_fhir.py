"""FHIR R4 import/export (fhir.resources R4B models), on SQLite and PostgreSQL.

The official HL7 R4 example resources are in ``fixtures/`` (see its README); nothing is fetched.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation

import immunotox
from immunotox.service import fhir, grades
from immunotox.service.schemas import GradeHistoryItem
from immunotox.service.usecases.base import grade_public
from tests.service.conftest import Service, Template, make_service

FIXTURES = Path(__file__).parent / "fixtures"
IMPORT = "/api/v1/fhir/Bundle"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"hl7-r4-{name}.json").read_text("utf-8"))
    return data


def official_bundle() -> dict[str, Any]:
    names = [
        "patient-example",
        "observation-body-temperature",
        "observation-bloodpressure",
        "observation-heart-rate",
        "observation-satO2",
        "medicationadministration0301",
    ]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": fixture(n)} for n in names],
    }


def current_rows(svc: Service, pid: str) -> set[tuple[str, str, str, str]]:
    rows = svc.get("doc_a", f"/api/v1/patients/{pid}/observations").json()
    return {(r["code"], r["value"], r["unit"], r["time"]) for r in rows}


def test_official_examples_import(svc: Service) -> None:
    r = svc.post("doc_a", IMPORT, official_bundle(), params={"unit_id": "unit-a"})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["patients_created"] == ["example"]
    assert out["counts"] == {"created": 1, "stored": 4, "skipped": 1}
    skipped = next(e for e in out["entries"] if e["outcome"] == "skipped")
    assert skipped["resource_type"] == "MedicationAdministration" and "Vancomycin" in skipped["reason"]
    assert current_rows(svc, "example") == {
        ("temperature", "36.5", "Cel", "1999-07-02T00:00:00Z"),
        ("sbp", "107", "mm[Hg]", "2012-09-17T00:00:00Z"),
        ("dbp", "60", "mm[Hg]", "2012-09-17T00:00:00Z"),
        ("heart_rate", "44", "/min", "1999-07-02T00:00:00Z"),
        ("spo2", "95", "%", "2014-12-05T08:30:10Z"),
    }
    patient = svc.get("doc_a", "/api/v1/patients/example").json()
    assert (patient["display_name"], patient["sex"], patient["birth_date"]) == (
        "Peter James Chalmers",
        "male",
        "1974-12-25",
    )
    # a date without a time is said to be read as 00:00 UTC
    notes = svc.sql("SELECT note FROM clinical_event WHERE code = 'temperature'")
    assert "00:00 UTC" in notes[0][0]
    # importing the same bundle again stores nothing twice
    again = svc.post("doc_a", IMPORT, official_bundle(), params={"unit_id": "unit-a"}).json()
    assert again["events_stored"] == 0 and again["counts"] == {"exists": 1, "duplicate": 4, "skipped": 1}
    assert len(current_rows(svc, "example")) == 5
    audit = svc.sql("SELECT actor_username, action FROM audit_event WHERE action = 'fhir.import'")
    assert [tuple(a) for a in audit] == [("doc_a", "fhir.import")] * 2


def test_medication_administrations_map_by_atc_code_or_name(svc: Service) -> None:
    t = svc.clock.now() - dt.timedelta(hours=2)
    entries = [
        {
            "resource": {
                "resourceType": "MedicationAdministration",
                "id": "toci-1",
                "status": "completed",
                "medicationCodeableConcept": {
                    "coding": [{"system": "http://www.whocc.no/atc", "code": "L04AC07"}]
                },
                "subject": {"reference": "Patient/P-A1"},
                "effectiveDateTime": t.isoformat(),
                "dosage": {
                    "dose": {"value": 560, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}
                },
            }
        },
        {
            "resource": {
                "resourceType": "MedicationAdministration",
                "id": "nora-1",
                "status": "in-progress",
                "medicationCodeableConcept": {"text": "Noradrénaline 8 mg/50 mL"},
                "subject": {"reference": "Patient/P-A1"},
                "effectivePeriod": {"start": t.isoformat()},
                "dosage": {
                    "rateQuantity": {
                        "value": 0.1,
                        "unit": "µg/kg/min",
                        "system": "http://unitsofmeasure.org",
                        "code": "ug/kg/min",
                    }
                },
            }
        },
        {
            "resource": {
                "resourceType": "MedicationAdministration",
                "id": "cancelled-1",
                "status": "not-done",
                "medicationCodeableConcept": {"text": "dexamethasone"},
                "subject": {"reference": "Patient/P-A1"},
                "effectiveDateTime": t.isoformat(),
            }
        },
    ]
    r = svc.post("nurse_a", IMPORT, {"resourceType": "Bundle", "type": "batch", "entry": entries})
    assert r.status_code == 201, r.text
    assert [e["outcome"] for e in r.json()["entries"]] == ["stored", "stored", "skipped"]
    rows = svc.get("nurse_a", "/api/v1/patients/P-A1/observations").json()
    got = {(x["code"], x["value"], x["dose"], x["dose_unit"], x["end_time"]) for x in rows}
    assert got == {
        ("tocilizumab", "tocilizumab", 560.0, "mg", None),
        ("vasopressor", "norepinephrine", 0.1, "ug/kg/min", None),
    }
    crs = next(
        g for g in svc.get("doc_a", "/api/v1/patients/P-A1/grades").json() if g["scale"] == "astct2019:crs"
    )
    assert crs["inputs"]["vasopressors"]["value"] == ["norepinephrine"]


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        (
            lambda b: b["entry"][1]["resource"]["valueQuantity"].update(value="abc"),
            "entry.1.resource.valueQuantity.value",
            "Decimal",
        ),
        (
            lambda b: b["entry"][1]["resource"]["valueQuantity"].update(value=50),
            "entry.1.resource.valueQuantity.value",
            "range",
        ),
        (
            lambda b: b["entry"][1]["resource"]["valueQuantity"].update(code="kg"),
            "entry.1.resource.valueQuantity.code",
            "convert",
        ),
        (
            lambda b: b["entry"][1]["resource"]["subject"].update(reference="Patient/nobody"),
            "entry.1.resource.subject.reference",
            "no such patient",
        ),
        (
            lambda b: b["entry"][1]["resource"].update(effectiveDateTime="2999-01-01T00:00:00Z"),
            "entry.1.resource.effectiveDateTime",
            "future",
        ),
        (lambda b: b["entry"][1]["resource"].update(colour="red"), "entry.1.resource.colour", "Extra"),
        (lambda b: b.update(resourceType="Observation"), "resourceType", "Bundle"),
    ],
)
def test_bad_bundles_are_refused_naming_the_element(
    svc: Service, mutate: Any, field: str, fragment: str
) -> None:
    bundle = copy.deepcopy(official_bundle())
    mutate(bundle)
    r = svc.post("doc_a", IMPORT, bundle, params={"unit_id": "unit-a"})
    assert r.status_code == 422, r.text
    fields = [e["field"] for e in r.json()["errors"]]
    assert field in fields, r.json()
    msg = next(e["message"] for e in r.json()["errors"] if e["field"] == field)
    assert fragment in msg
    assert svc.sql("SELECT count(*) FROM clinical_event") == [(0,)]
    assert svc.sql("SELECT count(*) FROM patient WHERE id = 'example'") == [(0,)]


def test_new_patients_need_a_unit_and_import_is_for_clinical_staff(svc: Service) -> None:
    r = svc.post("doc_a", IMPORT, official_bundle())
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.unit_id"
    assert svc.post("nurse_a", IMPORT, official_bundle(), params={"unit_id": "unit-a"}).status_code == 403
    assert svc.post("pat_a1", IMPORT, official_bundle(), params={"unit_id": "unit-a"}).status_code == 403
    # unit B staff cannot write into a unit A patient through FHIR either: the patient is hidden
    obs = copy.deepcopy(fixture("observation-heart-rate"))
    obs["subject"]["reference"] = "Patient/P-A1"
    r = svc.post(
        "nurse_b", IMPORT, {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": obs}]}
    )
    assert r.status_code == 422 and "no such patient" in r.json()["detail"]


@pytest.fixture
def second(template: Template, tmp_path: Path) -> Iterator[Service]:
    """Another service on another fresh database of the same backend."""
    folder = tmp_path / "second"
    folder.mkdir()
    yield from make_service(template, folder)


def test_round_trip_official_examples_export_then_import_elsewhere(svc: Service, second: Service) -> None:
    svc.post("doc_a", IMPORT, official_bundle(), params={"unit_id": "unit-a"})
    exported = svc.get("doc_a", "/api/v1/fhir/Patient/example/$everything")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith(
        "application/fhir+json"
    )
    bundle = exported.json()
    Bundle.model_validate(bundle)  # valid R4(B)
    types = sorted(e["resource"]["resourceType"] for e in bundle["entry"])
    grades = [e for e in bundle["entry"] if e["resource"]["id"].startswith("grade-")]
    assert types.count("Patient") == 1 and types.count("Observation") == 5 + len(grades) and len(grades) == 2
    sbp = next(
        e["resource"] for e in bundle["entry"] if e["resource"].get("valueQuantity", {}).get("value") == 107
    )
    assert sbp["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "8480-6",
        "display": "Systolic blood pressure",
    }
    assert (
        sbp["valueQuantity"]["code"] == "mm[Hg]"
        and sbp["valueQuantity"]["system"] == "http://unitsofmeasure.org"
    )
    r = second.post("doc_a", IMPORT, bundle, params={"unit_id": "unit-a"})
    assert r.status_code == 201, r.text
    assert current_rows(second, "example") == current_rows(svc, "example")
    p1 = svc.get("doc_a", "/api/v1/patients/example").json()
    p2 = second.get("doc_a", "/api/v1/patients/example").json()
    assert (p1["birth_date"], p1["sex"]) == (p2["birth_date"], p2["sex"])


def test_export_grades_as_observations_and_toxicity_as_adverse_event(svc: Service) -> None:
    t = svc.clock.now()
    svc.obs("nurse_a", "P-A1", "sbp", 92, "mm[Hg]", at=t - dt.timedelta(hours=2))
    svc.obs("nurse_a", "P-A1", "temperature", 38.7, "Cel", at=t - dt.timedelta(hours=1))
    svc.post(
        "nurse_a",
        "/api/v1/patients/P-A1/administrations",
        {
            "code": "tocilizumab",
            "value": "tocilizumab",
            "time": (t - dt.timedelta(minutes=30)).isoformat(),
            "dose": 560,
            "dose_unit": "mg",
        },
    )
    bundle = svc.get("doc_a", "/api/v1/fhir/Patient/P-A1/$everything").json()
    Bundle.model_validate(bundle)
    res = [e["resource"] for e in bundle["entry"]]
    grade = next(
        r
        for r in res
        if r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == "astct2019:crs"
    )
    assert grade["valueInteger"] == 1 and grade["status"] == "final"
    assert [c["valueInteger"] for c in grade["component"]] == [1, 1]
    assert any("ASTCT" in n["text"] or "Lee DW" in n["text"] for n in grade["note"])
    fever = next(r for r in res if r.get("valueQuantity", {}).get("value") == 38.7)
    assert {"reference": f"Observation/{fever['id']}"} in grade["derivedFrom"]
    icans = next(
        r
        for r in res
        if r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == "astct2019:icans"
    )
    assert "valueInteger" not in icans and icans["dataAbsentReason"]["coding"][0]["code"] == "unknown"
    ae = next(r for r in res if r["resourceType"] == "AdverseEvent")
    ext = {x["url"].rsplit("/", 1)[1]: x for x in ae["extension"]}
    assert (
        ext["toxicity-grade"]["valueInteger"] == 1 and ext["grading-scale"]["valueString"] == "astct2019:crs"
    )
    assert ae["severity"]["coding"][0]["code"] == "mild" and ae["outcome"]["coding"][0]["code"] == "ongoing"
    assert ae["suspectEntity"][0]["instance"]["reference"] == "#product"
    toci = next(r for r in res if r["resourceType"] == "MedicationAdministration")
    assert toci["medicationCodeableConcept"]["coding"][0]["code"] == "L04AC07"
    assert toci["dosage"]["dose"]["value"] == 560


def test_a_not_applicable_grade_exports_stores_and_reads_back_without_a_grade() -> None:
    """Late ICAHT after death on day 16: no grade anywhere (not 0, not 'unknown'), nothing missing."""

    findings = {
        "anc_series": {"unit": "/uL", "points": [{"day": 0, "value": 300}, {"day": 16, "value": 300}]},
        "last_follow_up_day": 16,
    }
    result = immunotox.grade("ehaebmt2023:icaht-late", findings)
    t = dt.datetime(2025, 3, 10, tzinfo=dt.UTC)
    g = grades.Grade("P-1", "ehaebmt2023:icaht-late", t, result, {})
    res = fhir._grade_resource(g, t, [])
    Observation.model_validate(res)
    assert res["status"] == "final" and "valueInteger" not in res and "component" not in res
    assert res["dataAbsentReason"]["coding"][0]["code"] == "not-applicable"
    assert any("never opened" in n["text"] for n in res["note"])
    # stored in the not-null range columns as (-1, -1) and read back as no range
    lo, hi = grades.stored_range(result)
    assert (lo, hi) == grades.NO_RANGE == (-1, -1)
    assert grades.range_from_columns(result.status, lo, hi) is None
    assert grades.range_from_columns("assessed", 2, 2) == (2, 2)
    public = grade_public(g, t)
    assert (public.grade, public.grade_range, public.status) == (None, None, "not_applicable")
    item = GradeHistoryItem(
        id=1,
        scale=g.scale,
        time=t,
        computed_at=t,
        grade=None,
        grade_range=grades.range_from_columns(result.status, lo, hi),
        status=result.status,
        complete=True,
        missing=[],
        engine=g.engine,
        episode_id=None,
    )
    assert item.model_dump()["grade_range"] is None
