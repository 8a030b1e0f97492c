"""API behaviour on SQLite and PostgreSQL: ingest, grading, corrections, idempotency, errors, audit."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.exc import DBAPIError

from tests.service.conftest import PASSWORD, T0, Service

H = dt.timedelta(hours=1)


def grades_of(resp_json: dict) -> dict[str, tuple[int | None, str]]:
    return {g["scale"]: (g["grade"], g["status"]) for g in resp_json["grades"]}


# ----------------------------------------------------------------------------- auth basics
def test_login_issues_a_token_and_wrong_password_is_refused_and_audited(svc: Service) -> None:
    r = svc.client.post("/api/v1/auth/token", json={"username": "doc_a", "password": PASSWORD})
    assert r.status_code == 200
    token = r.json()["access_token"]
    me = svc.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["username"] == "doc_a" and me.json()["unit_ids"] == ["unit-a"]
    bad = svc.client.post(
        "/api/v1/auth/token",
        json={"username": "doc_a", "password": "wrong"},
        headers={"User-Agent": "probe/1"},
    )
    assert bad.status_code == 401
    assert bad.headers["content-type"].startswith("application/problem+json")
    rows = svc.sql("SELECT actor_username, outcome, user_agent FROM audit_event WHERE action = 'auth.login'")
    assert ("doc_a", "denied", "probe/1") in [tuple(r) for r in rows]
    assert ("doc_a", "ok") in [tuple(r)[:2] for r in rows]
    # logout revokes the token
    assert (
        svc.client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}).status_code
        == 204
    )
    assert svc.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_requests_without_or_with_a_malformed_token_are_401(svc: Service) -> None:
    assert svc.client.get("/api/v1/patients").status_code == 401
    r = svc.client.get("/api/v1/patients", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401 and "Bearer" in r.json()["detail"]
    assert svc.client.get("/api/v1/patients", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_expired_token_is_refused(svc: Service) -> None:
    svc.clock.advance(days=365 * 11)
    assert svc.get("doc_a", "/api/v1/auth/me").status_code == 401


# ----------------------------------------------------------------------------- patients
def test_create_update_patient_is_audited_with_before_and_after(svc: Service) -> None:
    body = {
        "id": "P-NEW",
        "unit_id": "unit-a",
        "therapy_class": "car_t",
        "product": "cart-cd19-other",
        "indication": "sle",
        "indication_text": "lupus nephritis",
        "weight_kg": 61.5,
        "infusion_at": (T0 - H).isoformat(),
    }
    r = svc.post("doc_a", "/api/v1/patients", body, headers={"User-Agent": "ward-pc/2"})
    assert r.status_code == 201, r.text
    assert r.json()["day"] == 0 and r.json()["indication"] == "sle"
    assert svc.post("doc_a", "/api/v1/patients", body).status_code == 409
    r = svc.patch(
        "doc_a", "/api/v1/patients/P-NEW", {"weight_kg": 60.0, "pathway_phase": "inpatient_observation"}
    )
    assert r.status_code == 200 and r.json()["weight_kg"] == 60.0
    rows = svc.sql(
        "SELECT action, actor_username, client_ip, user_agent, details FROM audit_event "
        "WHERE patient_id = 'P-NEW' ORDER BY id"
    )
    assert [r[0] for r in rows] == ["patient.create", "patient.update"]
    assert rows[0][1] == "doc_a" and rows[0][2] == "testclient" and rows[0][3] == "ward-pc/2"
    details = rows[1][4] if isinstance(rows[1][4], dict) else __import__("json").loads(rows[1][4])
    assert details["before"]["weight_kg"] == 61.5 and details["after"]["weight_kg"] == 60.0


def test_patient_validation_names_the_field(svc: Service) -> None:
    r = svc.post(
        "doc_a", "/api/v1/patients", {"id": "bad id!", "unit_id": "unit-a", "therapy_class": "car_t"}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "id"
    r = svc.post("doc_a", "/api/v1/patients", {"id": "X1", "unit_id": "unit-a", "therapy_class": "cart"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "therapy_class"
    r = svc.post(
        "doc_a",
        "/api/v1/patients",
        {"id": "X1", "unit_id": "unit-a", "therapy_class": "car_t", "pathway_phase": "recovery"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "pathway_phase"
    assert "follow_up" in r.json()["errors"][0]["message"]  # the known phases are listed
    r = svc.post(
        "doc_a",
        "/api/v1/patients",
        {"id": "X1", "unit_id": "unit-a", "therapy_class": "car_t", "weight_kg": 0},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "weight_kg"
    r = svc.post("admin", "/api/v1/patients", {"id": "X1", "unit_id": "nowhere", "therapy_class": "car_t"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "unit_id"


def test_product_and_therapy_class_must_agree(svc: Service) -> None:
    """Issue 11: a checkpoint inhibitor is never managed with the CAR-T set (422 naming product)."""
    body = {"id": "X2", "unit_id": "unit-a", "therapy_class": "car_t", "product": "pembrolizumab"}
    r = svc.post("doc_a", "/api/v1/patients", body)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "product"
    assert "not 'car_t'" in r.json()["errors"][0]["message"]
    r = svc.post("doc_a", "/api/v1/patients", body | {"product": "no-such-car-t"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "product"
    r = svc.post("doc_a", "/api/v1/patients", body | {"therapy_class": "checkpoint_inhibitor"})
    assert r.status_code == 201, r.text
    r = svc.patch("doc_a", "/api/v1/patients/X2", {"therapy_class": "bispecific"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "product"
    # the same plausibility as the recommendation engine: weight 1-350 kg, age 0-120 years
    r = svc.patch("doc_a", "/api/v1/patients/X2", {"weight_kg": 0.5})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "weight_kg"
    r = svc.patch("doc_a", "/api/v1/patients/X2", {"birth_date": "1901-01-01"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "birth_date"


# ----------------------------------------------------------------------------- ingest & grading
def test_observation_is_converted_to_the_canonical_unit_and_keeps_what_was_sent(svc: Service) -> None:
    r = svc.obs("nurse_a", "P-A1", "8310-5", "101.3", "[degF]")
    assert r.status_code == 201, r.text
    ev = r.json()["stored"][0]
    assert (ev["code"], ev["value"], ev["unit"]) == ("temperature", "38.5", "Cel")
    assert (ev["source_value"], ev["source_unit"]) == ("101.3", "[degF]")
    crs = next(g for g in r.json()["grades"] if g["scale"] == "astct2019:crs")
    assert crs["grade"] == 1 and crs["inputs"]["temperature_c"]["value"] == 38.5
    assert crs["inputs"]["temperature_c"]["events"] == [ev["id"]]


def test_crs_grade_follows_the_astct_example_fever_one_vasopressor_low_flow_is_grade_3(svc: Service) -> None:
    """ASTCT 2019 footnote example: 39.5 °C, one vasopressor, low-flow nasal cannula -> grade 3."""
    t = svc.clock.now()
    assert (
        svc.obs(
            "nurse_a", "P-A1", "temperature", 39.5, "Cel", at=t - 50 * dt.timedelta(minutes=1)
        ).status_code
        == 201
    )
    svc.post(
        "nurse_a",
        "/api/v1/patients/P-A1/administrations",
        {
            "code": "oxygen",
            "value": "low_flow_nasal_cannula",
            "time": (t - 40 * dt.timedelta(minutes=1)).isoformat(),
            "o2_flow_l_min": 2,
        },
    )
    r = svc.post(
        "nurse_a",
        "/api/v1/patients/P-A1/administrations",
        {
            "code": "vasopressor",
            "value": "noradrenaline",
            "time": (t - 30 * dt.timedelta(minutes=1)).isoformat(),
            "dose": 0.1,
            "dose_unit": "ug/kg/min",
        },
    )
    assert r.status_code == 201, r.text
    crs = next(g for g in r.json()["grades"] if g["scale"] == "astct2019:crs")
    assert (crs["grade"], crs["status"], crs["deciding_domains"]) == (3, "assessed", ["hypotension"])
    assert r.json()["stored"][0]["value"] == "norepinephrine"
    # stopping the infusion (a superseding row) drops the grade to the hypoxia grade (2)
    vid = r.json()["stored"][0]["id"]
    svc.clock.advance(minutes=20)
    r = svc.post(
        "nurse_a",
        f"/api/v1/patients/P-A1/administrations/{vid}/stop",
        {"end_time": svc.clock.now().isoformat()},
    )
    assert r.status_code == 201, r.text
    assert r.json()["stored"][0]["supersedes_id"] == vid
    svc.clock.advance(minutes=1)
    r = svc.obs("nurse_a", "P-A1", "heart_rate", 100, "/min")
    assert svc.get("doc_a", "/api/v1/patients/P-A1/grades").json()[0]["grade"] == 2
    assert (
        svc.post(
            "nurse_a",
            f"/api/v1/patients/P-A1/administrations/{vid}/stop",
            {"end_time": svc.clock.now().isoformat()},
        ).status_code
        == 422
    )


def test_missing_data_is_never_read_as_normal(svc: Service) -> None:
    r = svc.obs("nurse_a", "P-A1", "temperature", 36.8, "Cel")
    crs = next(g for g in r.json()["grades"] if g["scale"] == "astct2019:crs")
    # no SBP recorded: hypotension unknown -> incomplete, never "grade 0 assessed"
    assert crs["status"] == "incomplete" and "hypotension" in crs["missing"]
    icans = next(g for g in r.json()["grades"] if g["scale"] == "astct2019:icans")
    assert icans["grade"] is None and icans["status"] == "not_assessable"


def test_correction_supersedes_and_retraction_removes_a_value(svc: Service) -> None:
    r = svc.obs("nurse_a", "P-A1", "temperature", 39.1, "Cel")
    first = r.json()["stored"][0]["id"]
    assert grades_of(r.json())["astct2019:crs"][0] == 1
    r = svc.obs("nurse_a", "P-A1", "temperature", 37.1, "Cel", supersedes=first)
    assert r.status_code == 201 and grades_of(r.json())["astct2019:crs"][0] == 0
    second = r.json()["stored"][0]["id"]
    # the corrected row is kept (append-only) but hidden from the current view
    listed = svc.get("nurse_a", "/api/v1/patients/P-A1/observations").json()
    assert [e["id"] for e in listed] == [second]
    everything = svc.get(
        "nurse_a", "/api/v1/patients/P-A1/observations", params={"include_superseded": True}
    ).json()
    assert {e["id"] for e in everything} == {first, second}
    # superseding twice is refused, naming the field
    again = svc.obs("nurse_a", "P-A1", "temperature", 38.0, "Cel", supersedes=first)
    assert again.status_code == 422 and again.json()["errors"][0]["field"] == "supersedes"
    wrong_code = svc.obs("nurse_a", "P-A1", "sbp", 120, "mm[Hg]", supersedes=second)
    assert wrong_code.status_code == 422 and "code" in wrong_code.json()["detail"]
    # retraction
    r = svc.obs("nurse_a", "P-A1", "temperature", 37.1, "Cel", supersedes=second, status="entered_in_error")
    assert r.status_code == 201
    assert svc.get("nurse_a", "/api/v1/patients/P-A1/observations").json() == []
    assert svc.obs("nurse_a", "P-A1", "temperature", 37, "Cel", status="entered_in_error").status_code == 422


def test_event_tables_are_append_only_in_the_database(svc: Service) -> None:
    svc.obs("nurse_a", "P-A1", "temperature", 37.0, "Cel")
    for stmt in (
        "UPDATE clinical_event SET value = '40'",
        "DELETE FROM clinical_event",
        "DELETE FROM audit_event",
    ):
        with pytest.raises(DBAPIError), svc.db.engine.begin() as conn:
            conn.exec_driver_sql(stmt)
    assert svc.sql("SELECT value FROM clinical_event") == [("37",)]


def test_ice_assessment_item_by_item(svc: Service) -> None:
    t = svc.clock.now().isoformat()
    full = {
        "time": t,
        "items": {"orientation": 3, "naming": 3, "commands": 1, "writing": 0, "attention": 1},
        "consciousness": "awake",
        "seizure": "none",
        "motor": "none",
        "cerebral_edema": "none",
        "raised_icp_signs": False,
    }
    r = svc.post("nurse_a", "/api/v1/patients/P-A1/assessments", full)
    assert r.status_code == 201, r.text
    assert r.json()["assessment"]["ice_score"] == 8
    icans = next(g for g in r.json()["grades"] if g["scale"] == "astct2019:icans")
    assert (icans["grade"], icans["status"]) == (1, "assessed")  # ICE 7-9 -> grade 1
    # a given total must match the items
    bad = svc.post("nurse_a", "/api/v1/patients/P-A1/assessments", {**full, "ice_score": 9})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "ice_score"
    # an item out of range names its path
    bad = svc.post("nurse_a", "/api/v1/patients/P-A1/assessments", {**full, "items": {"orientation": 5}})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "items.orientation"
    # a partial ICE grades as a range (lower bound)
    svc.clock.advance(minutes=10)
    partial = {**full, "time": svc.clock.now().isoformat(), "items": {"orientation": 1, "naming": 1}}
    r = svc.post("nurse_a", "/api/v1/patients/P-A1/assessments", partial)
    icans = next(g for g in r.json()["grades"] if g["scale"] == "astct2019:icans")
    assert icans["status"] == "incomplete" and icans["grade_range"] == [2, 3]
    listed = svc.get("doc_a", "/api/v1/patients/P-A1/assessments").json()
    assert [a["ice_score"] for a in listed] == [None, 8]


def test_self_report_triage_call_now_raises_an_alert_and_noted_does_not(svc: Service) -> None:
    r = svc.post(
        "pat_a1", "/api/v1/patients/P-A1/self-reports", {"temperature": 38.6, "symptoms": ["confusion"]}
    )
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["triage"]["decision"] == "call_now" and out["triage"]["priority"] == "critical"
    assert out["triage"]["unit_phone"] == "+33 1 11 11 11 11"
    assert out["triage"]["answer_fr"] == "Appelez le service maintenant"
    assert out["alert"]["kind"] == "patient_report" and out["alert"]["target_role"] == "nurse"
    assert {e["source"] for e in out["stored"]} == {"patient"}
    inbox = svc.get("nurse_a", "/api/v1/alerts").json()
    assert [a["id"] for a in inbox if a["kind"] == "patient_report"] == [out["alert"]["id"]]
    svc.clock.advance(minutes=5)
    r = svc.post(
        "pat_a1", "/api/v1/patients/P-A1/self-reports", {"symptoms": ["headache"], "note": "since noon"}
    )
    assert r.json()["triage"]["decision"] == "noted" and r.json()["alert"] is None
    # 37.9 °C is below the ASTCT fever threshold (38.0): noted; 38.0 is a fever: call now
    svc.clock.advance(minutes=5)
    assert (
        svc.post("pat_a1", "/api/v1/patients/P-A1/self-reports", {"temperature": 37.9}).json()["triage"][
            "decision"
        ]
        == "noted"
    )
    svc.clock.advance(minutes=5)
    assert (
        svc.post("pat_a1", "/api/v1/patients/P-A1/self-reports", {"temperature": 38.0}).json()["triage"][
            "decision"
        ]
        == "call_now"
    )
    # an empty report is refused
    assert svc.post("pat_a1", "/api/v1/patients/P-A1/self-reports", {}).status_code == 422


def test_diarrhea_is_urgent_after_a_checkpoint_inhibitor_only(svc: Service) -> None:
    ici = svc.post("pat_b1", "/api/v1/patients/P-B1/self-reports", {"symptoms": ["diarrhea"]}).json()
    cart = svc.post("pat_a1", "/api/v1/patients/P-A1/self-reports", {"symptoms": ["diarrhea"]}).json()
    assert ici["triage"]["decision"] == "call_now" and cart["triage"]["decision"] == "noted"


def test_self_report_symptoms_come_from_the_patients_class(svc: Service) -> None:
    """Issue 11 item 4: tremor after CAR-T was « noted »; checkpoint-inhibitor patients could not
    report chest pain. The symptom list and urgency are the class's handout file."""
    tremor = svc.post("pat_a1", "/api/v1/patients/P-A1/self-reports", {"symptoms": ["tremor"]}).json()
    assert tremor["triage"]["decision"] == "call_now" and tremor["alert"]["kind"] == "patient_report"
    svc.clock.advance(minutes=5)
    chest = svc.post("pat_b1", "/api/v1/patients/P-B1/self-reports", {"symptoms": ["chest_pain"]}).json()
    assert chest["triage"]["decision"] == "call_now" and chest["triage"]["priority"] == "critical"
    svc.clock.advance(minutes=5)
    # handwriting change is a CAR-T/bispecific symptom (ICANS), not offered after a checkpoint inhibitor
    r = svc.post("pat_b1", "/api/v1/patients/P-B1/self-reports", {"symptoms": ["handwriting_change"]})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "symptoms.0"
    assert "not a self-report symptom for therapy class checkpoint_inhibitor" in r.text
    r = svc.post("pat_a1", "/api/v1/patients/P-A1/self-reports", {"symptoms": ["hiccups"]})
    assert r.status_code == 422 and "unknown symptom 'hiccups'" in r.text


# ----------------------------------------------------------------------------- batch & idempotency
def test_batch_is_all_or_nothing_and_lists_every_bad_row(svc: Service) -> None:
    t = svc.clock.now().isoformat()
    rows = [
        {"patient_id": "P-A1", "code": "temperature", "value": 38.2, "unit": "Cel", "time": t},
        {"patient_id": "P-A1", "code": "temperature", "value": 55, "unit": "Cel", "time": t},
        {"patient_id": "P-A2", "code": "sbp", "value": 95, "unit": "kg", "time": t},
    ]
    r = svc.post("nurse_a", "/api/v1/observations/batch", {"observations": rows})
    assert r.status_code == 422
    fields = [e["field"] for e in r.json()["errors"]]
    assert fields == ["observations.1.value", "observations.2.unit"]
    assert r.json()["errors"][0]["pointer"] == "/observations/1/value"
    assert svc.sql("SELECT count(*) FROM clinical_event") == [(0,)]
    ok = svc.post(
        "nurse_a", "/api/v1/observations/batch", {"observations": [rows[0], {**rows[2], "unit": "mm[Hg]"}]}
    )
    assert ok.status_code == 201 and ok.json()["stored"] == 2
    assert ok.json()["patients_regraded"] == ["P-A1", "P-A2"]


def test_same_idempotency_key_is_stored_once(svc: Service) -> None:
    body = {"code": "temperature", "value": 38.4, "unit": "Cel", "time": svc.clock.now().isoformat()}
    first = svc.post(
        "nurse_a", "/api/v1/patients/P-A1/observations", body, headers={"Idempotency-Key": "abc-1"}
    )
    again = svc.post(
        "nurse_a", "/api/v1/patients/P-A1/observations", body, headers={"Idempotency-Key": "abc-1"}
    )
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert svc.sql("SELECT count(*) FROM clinical_event") == [(1,)]
    other = svc.post(
        "nurse_a",
        "/api/v1/patients/P-A1/observations",
        {**body, "value": 39},
        headers={"Idempotency-Key": "abc-1"},
    )
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "header.Idempotency-Key"
    # the key is per user: another nurse may use the same key for her own write
    assert (
        svc.post(
            "doc_a", "/api/v1/patients/P-A1/observations", body, headers={"Idempotency-Key": "abc-1"}
        ).status_code
        == 201
    )
    bad = svc.post(
        "nurse_a", "/api/v1/patients/P-A1/observations", body, headers={"Idempotency-Key": "has space"}
    )
    assert bad.status_code == 422


def test_batch_with_idempotency_key_is_stored_once(svc: Service) -> None:
    t = svc.clock.now().isoformat()
    body = {"observations": [{"patient_id": "P-A1", "code": "spo2", "value": 97, "unit": "%", "time": t}] * 3}
    a = svc.post("nurse_a", "/api/v1/observations/batch", body, headers={"Idempotency-Key": "batch-7"})
    b = svc.post("nurse_a", "/api/v1/observations/batch", body, headers={"Idempotency-Key": "batch-7"})
    assert a.json() == b.json() and svc.sql("SELECT count(*) FROM clinical_event") == [(3,)]


# ----------------------------------------------------------------------------- bad input -> 4xx naming it
@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        (
            {"code": "temperature", "value": 38, "unit": "Cel", "time": "2025-03-10T14:00:00Z"},
            "time",
            "future",
        ),
        (
            {"code": "temperature", "value": 38, "unit": "Cel", "time": "1970-01-01T00:00:00Z"},
            "time",
            "outside the plausible window 1980-01-01 – 2100-01-01",
        ),
        ({"code": "nope", "value": 1, "time": "2025-03-10T11:00:00Z"}, "code", "unknown code"),
        ({"code": "temperature", "value": 38, "time": "2025-03-10T11:00:00Z"}, "unit", "unit is required"),
        (
            {"code": "temperature", "value": 38, "unit": "kg", "time": "2025-03-10T11:00:00Z"},
            "unit",
            "cannot convert",
        ),
        (
            {"code": "temperature", "value": 3.8, "unit": "Cel", "time": "2025-03-10T11:00:00Z"},
            "value",
            "range",
        ),
        (
            {"code": "temperature", "value": "hot", "unit": "Cel", "time": "2025-03-10T11:00:00Z"},
            "value",
            "number",
        ),
        ({"code": "oxygen", "value": "tent", "time": "2025-03-10T11:00:00Z"}, "value", "oxygen"),
        ({"code": "ice_score", "value": 11, "time": "2025-03-10T11:00:00Z"}, "value", "0–10"),
        (
            {
                "code": "sbp",
                "value": 90,
                "unit": "mm[Hg]",
                "time": "2025-03-10T11:00:00Z",
                "end_time": "2025-03-10T11:30:00Z",
            },
            "end_time",
            "not an interval",
        ),
        (
            {"code": "tocilizumab", "value": "tocilizumab", "time": "2025-03-10T11:00:00Z", "dose": 500},
            "dose_unit",
            "unit",
        ),
        (
            {
                "code": "tocilizumab",
                "value": "tocilizumab",
                "time": "2025-03-10T11:00:00Z",
                "dose": -5,
                "dose_unit": "mg",
            },
            "dose",
            "> 0",
        ),
        ({"code": "temperature", "value": 38, "unit": "Cel", "time": "yesterday"}, "time", "ISO 8601"),
        ({"code": "temperature", "value": 38, "unit": "Cel"}, "time", "Field required"),
        (
            {
                "code": "temperature",
                "value": 38,
                "unit": "Cel",
                "time": "2025-03-10T11:00:00Z",
                "colour": "red",
            },
            "colour",
            "Extra",
        ),
    ],
)
def test_bad_observation_gives_422_naming_the_field(
    svc: Service, body: dict, field: str, fragment: str
) -> None:
    r = svc.post("nurse_a", "/api/v1/patients/P-A1/observations", body)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert problem["status"] == 422 and problem["errors"][0]["field"] == field
    assert fragment in problem["errors"][0]["message"], problem
    assert svc.sql("SELECT count(*) FROM clinical_event") == [(0,)]


@pytest.mark.parametrize(
    ("content", "why"),
    [(b"{not json", "not valid JSON"), (b'{"code": "\xff\xfe"}', "not readable as UTF-8 JSON")],
)
def test_an_unreadable_body_is_a_400_problem_naming_the_body(svc: Service, content: bytes, why: str) -> None:
    r = svc.client.post(
        "/api/v1/patients/P-A1/observations",
        content=content,
        headers={**svc.h("nurse_a"), "Content-Type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"] == [
        {"field": "body", "pointer": "", "message": r.json()["errors"][0]["message"]}
    ]
    assert why in r.json()["errors"][0]["message"]
    assert svc.sql("SELECT count(*) FROM clinical_event") == [(0,)]


def test_naive_time_is_read_as_utc_and_offsets_are_converted(svc: Service) -> None:
    a = svc.post(
        "nurse_a",
        "/api/v1/patients/P-A1/observations",
        {"code": "sbp", "value": 110, "unit": "mm[Hg]", "time": "2025-03-10T11:00:00"},
    )
    b = svc.post(
        "nurse_a",
        "/api/v1/patients/P-A1/observations",
        {"code": "sbp", "value": 111, "unit": "mm[Hg]", "time": "2025-03-10T13:00:00+02:00"},
    )
    assert a.json()["stored"][0]["time"] == "2025-03-10T11:00:00Z"
    assert b.json()["stored"][0]["time"] == "2025-03-10T11:00:00Z"


# ----------------------------------------------------------------------------- episodes, meta
def test_episode_opens_peaks_and_resolves_after_24h_without_crs(svc: Service) -> None:
    t = svc.clock.now()
    svc.obs("nurse_a", "P-A1", "sbp", 120, "mm[Hg]", at=t - 2 * H)
    svc.obs("nurse_a", "P-A1", "temperature", 38.5, "Cel", at=t - H)
    svc.obs("nurse_a", "P-A1", "sbp", 85, "mm[Hg]", at=t - 0.5 * H)
    eps = svc.get("doc_a", "/api/v1/patients/P-A1/episodes").json()
    assert len(eps) == 1 and eps[0]["peak_grade"] == 2 and eps[0]["active"]
    for hours in (8, 20, 33):
        svc.clock.t = t + hours * H
        svc.obs("nurse_a", "P-A1", "temperature", 36.9, "Cel", at=t + hours * H)
        svc.obs("nurse_a", "P-A1", "sbp", 125, "mm[Hg]", at=t + hours * H)
    eps = svc.get("doc_a", "/api/v1/patients/P-A1/episodes").json()
    assert len(eps) == 1 and not eps[0]["active"]
    assert eps[0]["resolved_at"] == (t + 8 * H).isoformat().replace("+00:00", "Z")
    history = svc.get(
        "doc_a", "/api/v1/patients/P-A1/grades/history", params={"scale": "astct2019:crs"}
    ).json()
    assert [h["grade"] for h in history][:3] == [0, 1, 2]


def test_health_meta_and_docs(svc: Service) -> None:
    assert svc.client.get("/health").json() == {
        "status": "ok",
        "database": svc.backend,
        "migration": "0004",
        "regrade_queue": 0,
    }
    meta = svc.get("nurse_a", "/api/v1/meta").json()
    assert meta["grading"] is True and meta["now"] == "2025-03-10T12:00:00Z"
    assert svc.client.get("/docs").status_code == 200
    spec = svc.client.get("/openapi.json").json()
    assert "/api/v1/observations/batch" in spec["paths"]
    r = svc.client.get("/nowhere")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["x-request-id"]


def test_recommendations_come_from_the_management_module(svc: Service) -> None:
    t = svc.clock.now()
    svc.obs("nurse_a", "P-A1", "temperature", 39.0, "Cel", at=t - H)
    svc.obs("nurse_a", "P-A1", "sbp", 84, "mm[Hg]", at=t - 0.5 * H)
    rec = svc.get("doc_a", "/api/v1/patients/P-A1/recommendations").json()
    if not rec["available"]:
        pytest.skip("immunotox.management is not installed")
    assert rec["items"][0]["toxicity"] == "crs" and rec["items"][0]["grade"] == 2
    # 8 mg/kg x 70 kg (US label; ASCO 2021), allowed: no dose given yet
    assert rec["tocilizumab"]["dose_mg"] == 560.0 and rec["tocilizumab"]["allowed"] is True
    assert svc.get("pat_a1", "/api/v1/patients/P-A1/recommendations").status_code == 403


def test_a_refused_value_is_explained_in_the_language_the_request_accepts(svc: Service) -> None:
    """Accept-Language: fr gives the French message (field, value, expectation); English otherwise."""
    body = {"code": "temperature", "value": 38.6, "unit": "mg", "time": svc.clock.now().isoformat()}
    path = "/api/v1/patients/P-A1/observations"
    fr = svc.post("nurse_a", path, body, headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert fr.status_code == 422
    assert fr.json()["detail"].startswith("unit = 'mg' : impossible de convertir 'mg' en 'Cel'")
    assert fr.json()["errors"][0]["message"] == fr.json()["detail"]
    en = svc.post("nurse_a", path, body, headers={"Accept-Language": "en-GB, fr;q=0.3"})
    assert en.status_code == 422 and "cannot convert 'mg' to 'Cel'" in en.json()["detail"]
    assert "cannot convert" in svc.post("nurse_a", path, body).json()["detail"]


def test_recommendations_are_written_in_the_language_the_request_accepts(svc: Service) -> None:
    """The API answered in English only: « no current grade >= 1 » and the actions (issue 11)."""
    path = "/api/v1/patients/P-A1/recommendations"
    none_en = svc.get("doc_a", path).json()
    none_fr = svc.get("doc_a", path, headers={"Accept-Language": "fr"}).json()
    assert none_en["notes"] and none_fr["notes"] and none_en["notes"] != none_fr["notes"]
    t = svc.clock.now()
    svc.obs("nurse_a", "P-A1", "temperature", 39.0, "Cel", at=t - H)
    svc.obs("nurse_a", "P-A1", "sbp", 84, "mm[Hg]", at=t - 0.5 * H)
    en = svc.get("doc_a", path).json()
    fr = svc.get("doc_a", path, headers={"Accept-Language": "fr-FR,fr;q=0.9"}).json()
    assert (en["items"][0]["lang"], fr["items"][0]["lang"]) == ("en", "fr")
    assert en["tocilizumab"]["dose_mg"] == fr["tocilizumab"]["dose_mg"] == 560.0
    assert [a["order"] for a in en["items"][0]["actions"]] == [a["order"] for a in fr["items"][0]["actions"]]
    assert en["items"][0]["actions"][0]["text"] != fr["items"][0]["actions"][0]["text"]
