"""The OpenAPI document tells what the server enforces (issue 22).

Per-code schemas come from the observation vocabulary; every problem response is a problem
document; ``Allow`` lists every method of a path (405 and ``OPTIONS``); the rules JSON Schema
cannot express are listed in the operation and refused with a 422 naming the field. The live
schemathesis run against a served process is in ``test_service_schemathesis.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from immunotox.plausibility import time_window
from immunotox.service.openapi import RULES
from immunotox.vocabulary import vocabulary
from tests.service.conftest import Service

PROBLEM = {"$ref": "#/components/schemas/Problem"}


@pytest.fixture
def doc(sqlite_svc: Service) -> dict[str, Any]:
    r = sqlite_svc.client.get("/openapi.json")
    assert r.status_code == 200
    d: dict[str, Any] = r.json()
    return d


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, op) for p, item in doc["paths"].items() for m, op in item.items()]


def test_every_code_of_the_vocabulary_has_its_schema_chosen_by_code_and_loinc(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    mapping = schemas["ObservationIn"]["discriminator"]["mapping"]
    for spec in vocabulary().all_codes.values():
        own = schemas[f"ObservationIn.{spec.name}"]
        assert {mapping[c] for c in (spec.name, *spec.loinc)} == {
            f"#/components/schemas/ObservationIn.{spec.name}"
        }
        assert own["properties"]["code"]["enum"] == [spec.name, *spec.loinc]
        assert own["additionalProperties"] is False
        assert own["properties"]["supersedes"]["anyOf"][0]["maximum"] == 2**63 - 1  # exact, not a float
        if spec.kind == "quantity":
            assert "unit" in own["required"]  # never guessed
            canonical = own["anyOf"][0]["properties"]
            assert canonical["unit"] == {"const": spec.unit}
            assert canonical["value"]["anyOf"][0] == {
                "type": "number",
                "minimum": spec.range[0],
                "maximum": spec.range[1],
            }
        elif spec.kind == "token":
            assert set(spec.tokens) <= set(own["properties"]["value"]["enum"])
        if not spec.interval:
            assert own["properties"]["end_time"]["type"] == "null"
    # a laboratory result may carry its reference interval; no other code does
    alt = schemas["ObservationIn.alt"]["properties"]
    assert alt["ref_low"]["anyOf"][0] == {"type": "number", "minimum": 0}
    assert schemas["ObservationIn.temperature"]["properties"]["ref_high"]["type"] == "null"
    temperature = schemas["ObservationIn.temperature"]
    assert temperature["anyOf"][0]["properties"]["value"]["anyOf"][0] == {
        "type": "number",
        "minimum": 25.0,
        "maximum": 45.0,
    }
    oxygen = schemas["AdministrationIn.oxygen"]["properties"]["value"]["enum"]
    assert "high_flow_nasal_cannula" in oxygen and "tocilizumab" not in oxygen
    assert schemas["BatchObservationIn"]["discriminator"]["propertyName"] == "code"


def test_enumerations_enforced_in_code_are_declared(doc: dict[str, Any]) -> None:
    from immunotox.handouts import symptom_tokens
    from immunotox.pathway import phases

    schemas = doc["components"]["schemas"]
    phase = schemas["PatientCreate"]["properties"]["pathway_phase"]["anyOf"][0]
    assert phase["enum"] == list(phases())
    symptom = schemas["SelfReportIn"]["properties"]["symptoms"]["items"]
    assert symptom["enum"] == list(symptom_tokens())
    listing = doc["paths"]["/api/v1/patients/{patient_id}/observations"]["get"]["parameters"]
    code = next(p for p in listing if p["name"] == "code")["schema"]["anyOf"][0]["items"]
    assert code["enum"][:2] == ["temperature", "8310-5"] and "symptom" in code["enum"]
    # NUL is refused in every free string of a request (body and parameters)
    assert schemas["LoginIn"]["properties"]["password"]["pattern"] == "^[^\x00]*$"
    assert listing[0]["schema"]["pattern"] == "^[^\x00]*$"  # path.patient_id
    # a field the server refuses as null is not declared nullable
    assert schemas["PatientUpdate"]["properties"]["unit_id"]["type"] == "string"


def test_every_problem_response_is_a_problem_document_and_bodies_may_be_unreadable(
    doc: dict[str, Any],
) -> None:
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for method, path, op in _operations(doc):
        for status, response in op["responses"].items():
            if int(status) >= 400:
                assert response["content"] == {"application/problem+json": {"schema": PROBLEM}}, (
                    method,
                    path,
                )
        if "requestBody" in op:
            assert {"400", "422"} <= set(op["responses"]), (method, path)
        if path.startswith("/api/v1/") and path != "/api/v1/auth/token":
            assert op["security"] == [{"bearer": []}] and "401" in op["responses"], (method, path)


def test_rules_beyond_the_schema_are_listed_in_the_operation(doc: dict[str, Any]) -> None:
    op = doc["paths"]["/api/v1/patients/{patient_id}/observations"]["post"]
    names = [r["rule"] for r in op["x-rules"]]
    assert {"time", "supersedes", "unit", "ref_range"} <= set(names)
    for name in names:
        assert f"`{RULES[name].field}`: {RULES[name].text}" in op["description"]
    lo, _hi = time_window()
    assert f"{lo:%Y-%m-%d}" in op["description"]


@pytest.mark.parametrize(
    ("path", "documented"),
    [
        ("/api/v1/patients", {"GET", "POST"}),
        ("/api/v1/patients/P-A1", {"GET", "PATCH"}),
        ("/api/v1/patients/P-A1/observations", {"GET", "POST"}),
        ("/api/v1/users/1", {"GET", "PATCH"}),
    ],
)
def test_options_and_405_list_every_method_of_the_path(
    sqlite_svc: Service, path: str, documented: set[str]
) -> None:
    r = sqlite_svc.client.options(path)
    assert r.status_code == 204 and r.content == b""
    allowed = {m.strip() for m in r.headers["allow"].split(",")}
    assert allowed == documented | {"HEAD", "OPTIONS"}
    r = sqlite_svc.client.put(path, headers=sqlite_svc.h("doc_a"), json={})
    assert r.status_code == 405 and r.headers["content-type"].startswith("application/problem+json")
    assert {m.strip() for m in r.headers["allow"].split(",")} == allowed
    assert sqlite_svc.client.options("/api/v1/no-such-thing").status_code == 404


def test_a_listed_rule_is_refused_with_a_422_naming_the_field(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    r = svc.obs("nurse_a", "P-A1", "temperature", 38.0, "Cel", at=dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "time"
    other = svc.obs("nurse_b", "P-B1", "temperature", 38.0, "Cel").json()["stored"][0]["id"]
    r = svc.obs("nurse_a", "P-A1", "temperature", 38.5, "Cel", supersedes=other)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "supersedes"
    assert "no such event for this patient" in r.json()["errors"][0]["message"]
    r = svc.obs("nurse_a", "P-A1", "alt", 30, "U/L", ref_low=40, ref_high=7)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "ref_low"


@pytest.mark.parametrize("until", ["0.5", "12345", "2025-03-10"])
def test_a_time_in_the_query_is_an_iso_date_and_time(sqlite_svc: Service, until: str) -> None:
    r = sqlite_svc.get("doc_a", "/api/v1/patients/P-A1/observations", params={"until": until})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.until"


def test_a_null_for_a_field_that_cannot_be_empty_is_refused(sqlite_svc: Service) -> None:
    r = sqlite_svc.patch("doc_a", "/api/v1/patients/P-A1", {"display_name": None})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "display_name"


def test_stopping_an_infusion_twice_names_the_event_not_a_field_of_the_body(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    start = svc.clock.now() - dt.timedelta(hours=2)
    body = {"code": "oxygen", "value": "low_flow_nasal_cannula", "time": start.isoformat()}
    r = svc.post("nurse_a", "/api/v1/patients/P-A1/administrations", body)
    assert r.status_code == 201, r.text
    first = r.json()["stored"][0]["id"]
    stop = {"end_time": (start + dt.timedelta(hours=1)).isoformat()}
    path = f"/api/v1/patients/P-A1/administrations/{first}/stop"
    assert svc.post("nurse_a", path, stop).status_code == 201
    r = svc.post("nurse_a", path, stop)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "event_id", r.text
    assert "superseded by event" in r.json()["errors"][0]["message"]
