"""Authorization matrix, on SQLite and PostgreSQL.

Users (conftest): admin; doc_a, nurse_a (unit A); doc_b, nurse_b (unit B); pat_a1 (patient P-A1,
unit A); pat_b1 (patient P-B1, unit B). P-A2 is another unit-A patient.
Reading a record one may not see answers 404 (its existence is not revealed); a write one may
not make on a record one may see answers 403; refused writes are audited.
"""

from __future__ import annotations

import pytest

from tests.service.conftest import Service

READ = [
    "/api/v1/patients/{pid}",
    "/api/v1/patients/{pid}/grades",
    "/api/v1/patients/{pid}/grades/history",
    "/api/v1/patients/{pid}/episodes",
    "/api/v1/patients/{pid}/observations",
    "/api/v1/patients/{pid}/assessments",
    "/api/v1/fhir/Patient/{pid}/$everything",
]

# (user, patient) -> may read
READ_MATRIX = {
    ("admin", "P-A1"): True,
    ("admin", "P-B1"): True,
    ("doc_a", "P-A1"): True,
    ("doc_a", "P-B1"): False,
    ("nurse_a", "P-A2"): True,
    ("nurse_a", "P-B1"): False,
    ("nurse_b", "P-A1"): False,
    ("nurse_b", "P-B1"): True,
    ("pat_a1", "P-A1"): True,
    ("pat_a1", "P-A2"): False,
    ("pat_a1", "P-B1"): False,
    ("pat_b1", "P-A1"): False,
}


@pytest.mark.parametrize(("user", "pid"), list(READ_MATRIX))
def test_read_matrix(svc: Service, user: str, pid: str) -> None:
    allowed = READ_MATRIX[(user, pid)]
    for path in READ:
        r = svc.get(user, path.format(pid=pid))
        assert r.status_code == (200 if allowed else 404), (user, pid, path, r.status_code)
        if not allowed:  # nothing of the record leaks: only the problem naming what was asked
            assert r.json()["detail"] == f"patient {pid!r} not found"
            assert "display_name" not in r.text and "unit-" not in r.text


def test_listing_shows_only_visible_patients(svc: Service) -> None:
    ids = lambda user: sorted(p["id"] for p in svc.get(user, "/api/v1/patients").json())  # noqa: E731
    assert ids("admin") == ["P-A1", "P-A2", "P-B1"]
    assert ids("nurse_a") == ["P-A1", "P-A2"]
    assert ids("doc_b") == ["P-B1"]
    assert ids("pat_a1") == ["P-A1"]
    # filtering on another unit gives nothing, not that unit's patients
    assert [
        p["id"] for p in svc.get("nurse_a", "/api/v1/patients", params={"unit_id": "unit-b"}).json()
    ] == []


def test_patient_cannot_write_another_patients_record(svc: Service) -> None:
    r = svc.post("pat_a1", "/api/v1/patients/P-B1/self-reports", {"temperature": 39.0})
    assert r.status_code == 404
    r = svc.post("pat_a1", "/api/v1/patients/P-A2/self-reports", {"temperature": 39.0})
    assert r.status_code == 404
    assert svc.sql("SELECT count(*) FROM clinical_event") == [(0,)]
    denied = svc.sql("SELECT actor_username, action, outcome FROM audit_event WHERE outcome = 'denied'")
    assert [tuple(d) for d in denied] == [("pat_a1", "self_report.create", "denied")] * 2


def test_patient_may_only_self_report_on_own_record(svc: Service) -> None:
    r = svc.obs("pat_a1", "P-A1", "temperature", 38.1, "Cel")
    assert r.status_code == 403  # clinical observations are for staff
    r = svc.post(
        "pat_a1", "/api/v1/patients/P-A1/assessments", {"time": svc.clock.now().isoformat(), "ice_score": 10}
    )
    assert r.status_code == 403
    r = svc.post(
        "pat_a1",
        "/api/v1/patients/P-A1/administrations",
        {"code": "tocilizumab", "value": "tocilizumab", "time": svc.clock.now().isoformat()},
    )
    assert r.status_code == 403
    assert svc.post("pat_a1", "/api/v1/patients/P-A1/self-reports", {"temperature": 37.2}).status_code == 201
    assert svc.get("pat_a1", "/api/v1/alerts").status_code == 403
    assert svc.get("pat_a1", "/api/v1/patients/P-A1/audit").status_code == 403


def test_nurse_of_unit_a_cannot_write_unit_b(svc: Service) -> None:
    assert svc.obs("nurse_a", "P-B1", "temperature", 38.1, "Cel").status_code == 404
    assert svc.obs("nurse_b", "P-B1", "temperature", 38.1, "Cel").status_code == 201
    t = svc.clock.now().isoformat()
    batch = {
        "observations": [
            {"patient_id": "P-A1", "code": "spo2", "value": 96, "unit": "%", "time": t},
            {"patient_id": "P-B1", "code": "spo2", "value": 96, "unit": "%", "time": t},
        ]
    }
    r = svc.post("nurse_a", "/api/v1/observations/batch", batch)
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "observations.1.patient_id"
    assert svc.sql("SELECT count(*) FROM clinical_event WHERE code = 'spo2'") == [(0,)]


def test_alerts_are_scoped_to_the_unit(svc: Service) -> None:
    alert = svc.post("pat_b1", "/api/v1/patients/P-B1/self-reports", {"temperature": 39.0}).json()["alert"]
    assert alert is not None
    assert [a["id"] for a in svc.get("nurse_b", "/api/v1/alerts").json()] == [alert["id"]]
    assert svc.get("nurse_a", "/api/v1/alerts").json() == []
    assert svc.get("nurse_a", f"/api/v1/alerts/{alert['id']}").status_code == 404
    assert (
        svc.post("nurse_a", f"/api/v1/alerts/{alert['id']}/acknowledge", {"comment": "x"}).status_code == 404
    )
    assert svc.post("admin", f"/api/v1/alerts/{alert['id']}/acknowledge", {}).status_code == 403
    assert (
        svc.post(
            "nurse_b", f"/api/v1/alerts/{alert['id']}/acknowledge", {"comment": "called back"}
        ).status_code
        == 200
    )


def test_roles_cannot_escalate(svc: Service) -> None:
    new_user = {"username": "mallory", "password": "long enough pw", "role": "admin"}
    for user in ("doc_a", "nurse_a", "pat_a1"):
        assert svc.post(user, "/api/v1/users", new_user).status_code == 403
    me = svc.user_id("nurse_a")
    assert svc.patch("nurse_a", f"/api/v1/users/{me}", {"role": "admin"}).status_code == 403
    assert svc.patch("nurse_a", f"/api/v1/users/{me}", {"unit_ids": ["unit-a", "unit-b"]}).status_code == 403
    assert svc.post("nurse_a", "/api/v1/units", {"id": "unit-x", "name": "X"}).status_code == 403
    # a nurse cannot admit patients; a physician cannot admit to another unit
    body = {"id": "P-X", "unit_id": "unit-a", "therapy_class": "car_t"}
    assert svc.post("nurse_a", "/api/v1/patients", body).status_code == 403
    assert svc.post("doc_b", "/api/v1/patients", body).status_code == 403
    # a physician cannot move her patient to a unit she does not work in
    assert svc.patch("doc_a", "/api/v1/patients/P-A1", {"unit_id": "unit-b"}).status_code == 403
    # unknown fields (e.g. smuggling a role into a self-report) are refused
    r = svc.post("pat_a1", "/api/v1/patients/P-A1/self-reports", {"temperature": 37, "role": "admin"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "role"
    # users are visible to admins and to themselves only
    assert svc.get("nurse_a", "/api/v1/users").status_code == 403
    assert svc.get("nurse_a", f"/api/v1/users/{me}").status_code == 200
    assert svc.get("nurse_a", f"/api/v1/users/{svc.user_id('doc_a')}").status_code == 404
    denied = {
        tuple(r) for r in svc.sql("SELECT actor_username, action FROM audit_event WHERE outcome = 'denied'")
    }
    assert ("doc_a", "user.create") in denied and ("nurse_a", "user.update") in denied


def test_admin_manages_users_but_cannot_demote_itself(svc: Service) -> None:
    r = svc.post(
        "admin",
        "/api/v1/users",
        {"username": "nurse_c", "password": "long enough pw", "role": "nurse", "unit_ids": ["unit-b"]},
    )
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    assert (
        svc.post(
            "admin", "/api/v1/users", {"username": "nurse_d", "password": "long enough pw", "role": "nurse"}
        ).json()["errors"][0]["field"]
        == "unit_ids"
    )
    assert (
        svc.post(
            "admin", "/api/v1/users", {"username": "pat_x", "password": "long enough pw", "role": "patient"}
        ).json()["errors"][0]["field"]
        == "patient_id"
    )
    assert (
        svc.post(
            "admin",
            "/api/v1/users",
            {"username": "short", "password": "short", "role": "nurse", "unit_ids": ["unit-a"]},
        ).status_code
        == 422
    )
    login = svc.client.post("/api/v1/auth/token", json={"username": "nurse_c", "password": "long enough pw"})
    assert login.status_code == 200 and login.json()["user"]["unit_ids"] == ["unit-b"]
    assert svc.patch("admin", f"/api/v1/users/{uid}", {"active": False}).status_code == 200
    assert (
        svc.client.post(
            "/api/v1/auth/token", json={"username": "nurse_c", "password": "long enough pw"}
        ).status_code
        == 401
    )
    me = svc.user_id("admin")
    assert svc.patch("admin", f"/api/v1/users/{me}", {"role": "nurse"}).status_code == 422
    rows = svc.sql(
        "SELECT details FROM audit_event WHERE action = 'user.create' AND actor_username = 'admin'"
    )
    assert "long enough pw" not in str(rows)  # passwords never reach the audit trail


def test_cookie_session_requires_the_csrf_token_on_writes(svc: Service) -> None:
    from immunotox.service.auth import SESSION_COOKIE, issue_token
    from immunotox.service.models import User

    with svc.db.writing() as s:
        user = s.query(User).filter(User.username == "nurse_a").one()
        issued = issue_token(s, user, now=svc.clock.now(), ttl_hours=1, kind="session")
    cookies = {SESSION_COOKIE: issued.token}
    svc.client.cookies.update(cookies)
    try:
        assert svc.client.get("/api/v1/auth/me").status_code == 200
        body = {"code": "spo2", "value": 97, "unit": "%", "time": svc.clock.now().isoformat()}
        r = svc.client.post("/api/v1/patients/P-A1/observations", json=body)
        assert r.status_code == 403 and "CSRF" in r.json()["detail"]
        r = svc.client.post(
            "/api/v1/patients/P-A1/observations", json=body, headers={"X-CSRF-Token": "forged"}
        )
        assert r.status_code == 403
        assert issued.csrf_token is not None
        r = svc.client.post(
            "/api/v1/patients/P-A1/observations", json=body, headers={"X-CSRF-Token": issued.csrf_token}
        )
        assert r.status_code == 201
    finally:
        svc.client.cookies.clear()
    # a session token is not accepted as a bearer token, nor an API token as a cookie
    assert (
        svc.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {issued.token}"}).status_code
        == 401
    )
    svc.client.cookies.update({SESSION_COOKIE: svc.tokens["nurse_a"]})
    try:
        assert svc.client.get("/api/v1/auth/me").status_code == 401
    finally:
        svc.client.cookies.clear()


def test_audit_trail_access(svc: Service) -> None:
    svc.obs("nurse_a", "P-A1", "temperature", 37.0, "Cel")
    assert svc.get("admin", "/api/v1/audit").status_code == 200
    assert svc.get("doc_a", "/api/v1/audit").status_code == 403
    rows = svc.get("doc_a", "/api/v1/patients/P-A1/audit").json()
    assert rows[0]["action"] == "observation.create" and rows[0]["actor_username"] == "nurse_a"
    assert rows[0]["payload_sha256"] and len(rows[0]["payload_sha256"]) == 64
    assert svc.get("nurse_a", "/api/v1/patients/P-A1/audit").status_code == 403
    assert svc.get("doc_b", "/api/v1/patients/P-A1/audit").status_code == 404
