"""Sessions, CSRF and who may open what, through the real forms (TestClient)."""

from __future__ import annotations

import html
import re

import pytest

from immunotox.web.pages import CSP
from immunotox.web.security import CSRF_COOKIE, CSRF_FIELD, SESSION_COOKIE
from tests.web.conftest import T0, Web


def _set_cookies(resp: object) -> list[str]:
    return resp.headers.get_list("set-cookie")  # type: ignore[attr-defined,no-any-return]


# ----------------------------------------------------------------------------- login, cookies
def test_login_sets_httponly_samesite_session_and_csrf_cookies(web: Web) -> None:
    resp = web.login("nurse_a")
    assert resp.status_code == 303 and resp.headers["location"] == "/ward"
    cookies = {c.split("=", 1)[0]: c for c in _set_cookies(resp)}
    assert set(cookies) >= {SESSION_COOKIE, CSRF_COOKIE}
    session, csrf = cookies[SESSION_COOKIE].lower(), cookies[CSRF_COOKIE].lower()
    assert "httponly" in session and "samesite=lax" in session and "path=/" in session
    assert "httponly" in csrf and "samesite=strict" in csrf
    assert web.audit("auth.login")[-1].outcome == "ok"


def test_wrong_password_is_refused_and_audited(web: Web) -> None:
    resp = web.login("nurse_a", "not the password")
    assert resp.status_code == 401
    assert "Nom d'utilisateur ou mot de passe incorrect." in html.unescape(resp.text)
    assert SESSION_COOKIE not in resp.cookies
    denied = web.audit("auth.login")[-1]
    assert (denied.outcome, denied.actor_username) == ("denied", "nurse_a")
    assert web.client.get("/ward", follow_redirects=False).status_code == 303


def test_login_without_csrf_token_is_refused(web: Web) -> None:
    web.client.get("/login")
    resp = web.client.post(
        "/login", data={"username": "nurse_a", "password": "correct horse battery"}, follow_redirects=False
    )
    assert resp.status_code == 403
    assert SESSION_COOKIE not in resp.cookies


def test_anonymous_pages_redirect_to_login_with_next(web: Web) -> None:
    resp = web.client.get("/patients/P-A1?hours=24", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/login?next=%2Fpatients%2FP-A1%3Fhours%3D24"
    web.login("nurse_a")
    # after login the same path opens
    assert web.client.get("/patients/P-A1?hours=24").status_code == 200


def test_next_cannot_leave_the_site(web: Web) -> None:
    page = web.client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    resp = web.client.post(
        "/login",
        data={
            "username": "nurse_a",
            "password": "correct horse battery",
            "next": "//evil.example/x",
            CSRF_FIELD: token.group(1),
        },
        follow_redirects=False,
    )
    assert resp.headers["location"] == "/ward"


def test_logout_revokes_the_session(web: Web) -> None:
    web.login("nurse_a")
    old_session = web.client.cookies.get(SESSION_COOKIE)
    resp = web.post("/logout", {})
    assert resp.status_code == 303 and resp.headers["location"] == "/login"
    assert web.audit("auth.logout")
    # the old cookie no longer opens anything, even if the browser kept it
    web.client.cookies.set(SESSION_COOKIE, str(old_session))
    assert web.client.get("/ward", follow_redirects=False).status_code == 303


def test_security_headers_and_no_external_origin(web: Web) -> None:
    web.login("nurse_a")
    resp = web.client.get("/ward")
    assert resp.headers["content-security-policy"] == CSP
    assert "http" not in CSP  # scripts, styles and images from this origin only
    assert resp.headers["cache-control"] == "no-store"
    assert resp.headers["x-frame-options"] == "DENY"


# ----------------------------------------------------------------------------- CSRF
@pytest.mark.parametrize("token", [None, "", "forged-token-forged-token-forged-token"])
def test_state_changes_without_the_session_csrf_token_are_refused(web: Web, token: str | None) -> None:
    web.login("nurse_a")
    before_temps = len(web.events("P-A1", "temperature"))
    alert = web.alerts("P-A1")[0]
    extra = {} if token is None else {CSRF_FIELD: token}
    for path, data in (
        ("/patients/P-A1/vitals", {"temperature": "39.1"}),
        ("/patients/P-A1/assessments", {"ice_orientation": "4"}),
        ("/patients/P-A1/administrations", {"code": "antipyretic", "value": "paracetamol"}),
        (f"/alerts/{alert.id}/acknowledge", {"comment": "x"}),
        ("/lang", {"lang": "en"}),
        ("/logout", {}),
    ):
        resp = web.post(path, {**data, **extra}, csrf=False)
        assert resp.status_code == 403, path
    assert len(web.events("P-A1", "temperature")) == before_temps
    assert web.alerts("P-A1")[0].status == "open"
    assert web.client.get("/ward").status_code == 200  # still logged in (logout was refused)
    preview = web.client.post("/patients/P-A1/icans-preview", data={"ice_orientation": "4", **extra})
    assert preview.status_code == 403 and preview.json() == {"error": "csrf"}


def test_patient_report_without_csrf_is_refused(web: Web) -> None:
    web.login("pat_a1")
    resp = web.post("/portal/report", {"temperature": "39", CSRF_FIELD: "nope"}, csrf=False)
    assert resp.status_code == 403
    assert web.events("P-A1", "symptom") == []
    assert [e.value_num for e in web.events("P-A1", "temperature")] == [38.5]


def test_a_csrf_token_of_another_session_is_refused(web: Web) -> None:
    web.login("nurse_a")
    first = web.csrf()
    other = web.client.__class__(web.client.app)
    try:
        page = other.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        other.post(
            "/login",
            data={"username": "doc_a", "password": "correct horse battery", CSRF_FIELD: token.group(1)},
        )
        resp = other.post("/patients/P-A1/vitals", data={"temperature": "39.0", CSRF_FIELD: first})
        assert resp.status_code == 403
    finally:
        other.close()


# ----------------------------------------------------------------------------- roles
def test_patient_reaches_only_the_portal_and_own_record(web: Web) -> None:
    resp = web.login("pat_a1")
    assert resp.headers["location"] == "/portal"
    assert web.client.get("/portal").status_code == 200
    assert web.client.get("/ward").status_code == 403
    assert web.client.get("/alerts").status_code == 403
    assert web.client.get("/ward/poll").status_code == 403
    assert web.client.get("/patients/P-A2").status_code == 404  # another patient: not even its existence
    assert web.client.get("/patients/P-B1/bedside").status_code == 403
    own = web.client.get("/patients/P-A1", follow_redirects=False)
    assert own.status_code == 303 and own.headers["location"] == "/portal"
    assert web.post("/patients/P-A1/vitals", {"temperature": "39"}).status_code == 403


def test_nurse_sees_only_her_unit(web: Web) -> None:
    web.login("nurse_a")
    ward = web.client.get("/ward").text
    assert "P-A1" in ward and "P-A2" in ward and "P-B1" not in ward
    assert web.client.get("/ward?unit=unit-b").text.count('data-patient="') == 2  # not her unit: her own
    for path in ("/patients/P-B1", "/patients/P-B1/bedside"):
        assert web.client.get(path).status_code == 404, path
    resp = web.post("/patients/P-B1/vitals", {"temperature": "39.5"})
    assert resp.status_code == 404
    assert [e.value_num for e in web.events("P-B1", "temperature")] == [38.9]
    b_alert = web.alerts("P-B1")[0]
    resp = web.post(f"/alerts/{b_alert.id}/acknowledge", {"comment": "not mine"})
    assert resp.status_code == 404
    assert web.alerts("P-B1")[0].status == "open"
    inbox = web.client.get("/alerts").text
    assert "P-A1" in inbox and "P-B1" not in inbox


def test_admin_reads_every_unit_but_records_nothing(web: Web) -> None:
    web.login("admin")
    ward = web.client.get("/ward").text
    assert all(pid in ward for pid in ("P-A1", "P-A2", "P-B1"))
    bedside = web.client.get("/patients/P-B1/bedside").text
    assert "Lecture seule" in bedside and 'action="/patients/P-B1/vitals"' not in bedside
    assert web.post("/patients/P-B1/vitals", {"temperature": "39.5"}).status_code == 403


def test_form_key_makes_a_double_submission_store_once(web: Web) -> None:
    web.login("nurse_a")
    data = {"temperature": "39.2", "form_key": "abcdefgh12345678"}
    first = web.post("/patients/P-A1/vitals", data)
    again = web.post("/patients/P-A1/vitals", data)
    assert first.status_code == again.status_code == 200
    assert "déjà enregistré" in html.unescape(again.text)
    assert [e.value_num for e in web.events("P-A1", "temperature")] == [38.5, 39.2]
    other = web.post("/patients/P-A1/vitals", {**data, "temperature": "39.4"})
    assert other.status_code == 422 and "déjà été envoyé" in html.unescape(other.text)


def test_now_is_the_service_clock(web: Web) -> None:
    web.login("nurse_a")
    web.post("/patients/P-A1/vitals", {"heart_rate": "101"})
    (hr,) = web.events("P-A1", "heart_rate")
    assert hr.time == T0 and hr.source == "api"
