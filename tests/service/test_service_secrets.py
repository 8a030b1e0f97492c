"""Secrets are never echoed (issue 12), on SQLite and PostgreSQL.

Malformed input is sent to every API operation and web form that carries a secret (passwords,
bearer and session tokens, CSRF tokens); the secret must appear nowhere in the response (body
or headers), in anything the server logged (every logger, DEBUG and up) or in the audit trail
and idempotency records. The security headers of API responses are checked here too.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import pytest

from immunotox.service.problems import quote_value
from immunotox.web.security import CSRF_FIELD, SESSION_COOKIE
from tests.service.conftest import PASSWORD, Service

# secrets that no answer may contain (long and unusual: they cannot appear by chance)
SECRET = "Zq7-Wombat-Teapot-Lantern-41"
SECRET2 = "Kx2-Orchid-Glacier-Sextant-93"
SHORT = "Qv7#kP2"  # a too-short new password is a secret too
ALL = (SECRET, SECRET2, SHORT)

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')


@dataclass(frozen=True)
class Case:
    name: str
    user: str | None
    method: str
    path: str
    body: Any = None
    raw: bytes | None = None  # sent as-is instead of ``body`` (invalid JSON)
    headers: tuple[tuple[str, str], ...] = ()
    status: int = 422
    field: str | None = None  # the field the first error must name


NEW_USER = {"username": "new_nurse", "role": "nurse", "unit_ids": ["unit-a"], "display_name": "Nurse"}

API_CASES = [
    # POST /auth/token
    Case("login NUL in username", None, "POST", "/api/v1/auth/token",
         {"username": "adm\x00", "password": SECRET}, field="username"),
    Case("login NUL in password", None, "POST", "/api/v1/auth/token",
         {"username": "admin", "password": SECRET + "\x00"}, field="password"),
    Case("login unknown field", None, "POST", "/api/v1/auth/token",
         {"username": "admin", "password": SECRET, "otp": 1}, field="otp"),
    Case("login username not a string", None, "POST", "/api/v1/auth/token",
         {"username": 12, "password": SECRET}, field="username"),
    Case("login password in a list", None, "POST", "/api/v1/auth/token",
         {"username": "admin", "password": [SECRET]}, field="password"),
    Case("login password too long", None, "POST", "/api/v1/auth/token",
         {"username": "admin", "password": SECRET * 10}, field="password"),
    Case("login username too long", None, "POST", "/api/v1/auth/token",
         {"username": "a" * 65, "password": SECRET}, field="username"),
    Case("login body is a list", None, "POST", "/api/v1/auth/token", ["admin", SECRET], field="body"),
    Case("login invalid JSON", None, "POST", "/api/v1/auth/token",
         raw=b'{"username": "admin", "password": "' + SECRET.encode() + b'"', field="body", status=400),
    Case("login wrong password", None, "POST", "/api/v1/auth/token",
         {"username": "admin", "password": SECRET}, status=401),
    Case("login unknown user", None, "POST", "/api/v1/auth/token",
         {"username": "nobody", "password": SECRET}, status=401),
    # POST /users
    Case("create user NUL in display name", "admin", "POST", "/api/v1/users",
         {**NEW_USER, "password": SECRET, "display_name": "Nurse\x00"}, field="display_name"),
    Case("create user NUL in user name", "admin", "POST", "/api/v1/users",
         {**NEW_USER, "password": SECRET, "username": "x\x00"}, field="username"),
    Case("create user bad role", "admin", "POST", "/api/v1/users",
         {**NEW_USER, "password": SECRET, "role": "boss"}, field="role"),
    Case("create user password too short", "admin", "POST", "/api/v1/users",
         {**NEW_USER, "password": SHORT}, field="password"),
    Case("create user NUL in password", "admin", "POST", "/api/v1/users",
         {**NEW_USER, "password": SECRET + "\x00"}, field="password"),
    Case("create user unknown field", "admin", "POST", "/api/v1/users",
         {**NEW_USER, "password": SECRET, "pin": "1234"}, field="pin"),
    Case("create user by a nurse", "nurse_a", "POST", "/api/v1/users",
         {**NEW_USER, "password": SECRET}, status=403),
    Case("create user name taken", "admin", "POST", "/api/v1/users",
         {**NEW_USER, "password": SECRET, "username": "nurse_a"}, status=409),
    # PATCH /users/{id}
    Case("update user NUL in display name", "admin", "PATCH", "/api/v1/users/{nurse_a}",
         {"display_name": "x\x00", "password": SECRET}, field="display_name"),
    Case("update user bad locale", "admin", "PATCH", "/api/v1/users/{nurse_a}",
         {"locale": "de", "password": SECRET}, field="locale"),
    Case("update user password too short", "admin", "PATCH", "/api/v1/users/{nurse_a}",
         {"password": SHORT}, field="password"),
    # POST /auth/password
    Case("change password NUL in new", "nurse_a", "POST", "/api/v1/auth/password",
         {"current_password": SECRET, "new_password": SECRET2 + "\x00"}, field="new_password"),
    Case("change password new too short", "nurse_a", "POST", "/api/v1/auth/password",
         {"current_password": SECRET, "new_password": SHORT}, field="new_password"),
    Case("change password wrong current", "nurse_a", "POST", "/api/v1/auth/password",
         {"current_password": SECRET, "new_password": SECRET2}, field="current_password"),
    Case("change password unknown field", "nurse_a", "POST", "/api/v1/auth/password",
         {"current_password": SECRET, "new_password": SECRET2, "again": SECRET2}, field="again"),
    # credentials in headers and cookies
    Case("bearer token unknown", None, "GET", "/api/v1/auth/me",
         headers=(("Authorization", f"Bearer {SECRET}"),), status=401),
    Case("authorization not bearer", None, "GET", "/api/v1/auth/me",
         headers=(("Authorization", f"Basic {SECRET}"),), status=401),
    Case("session cookie unknown", None, "POST", "/api/v1/auth/logout",
         headers=(("Cookie", f"{SESSION_COOKIE}={SECRET}"), ("X-CSRF-Token", SECRET2)), status=401),
]  # fmt: skip


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # every logger, including the database driver's
    return caplog


def leaks(svc: Service, resp: Any, caplog: pytest.LogCaptureFixture) -> list[str]:
    """Where any of the secrets shows: the response body or headers, the log, the stored trail."""
    stored = str(svc.sql("SELECT * FROM audit_event")) + str(svc.sql("SELECT * FROM idempotency_record"))
    places = {"body": resp.text, "log": caplog.text, "audit/idempotency tables": stored}
    places.update({f"header {k}": v for k, v in resp.headers.items()})
    return [f"{s!r} in {where}" for s in ALL for where, text in places.items() if s in text]


@pytest.mark.parametrize("case", API_CASES, ids=lambda c: c.name)
def test_api_answers_never_echo_a_secret(
    svc: Service, captured: pytest.LogCaptureFixture, case: Case
) -> None:
    path = case.path.format(nurse_a=svc.user_id("nurse_a"))
    headers = dict(case.headers)
    if case.user is not None:
        headers["Authorization"] = f"Bearer {svc.tokens[case.user]}"
    if case.raw is not None:
        headers["Content-Type"] = "application/json"
        resp = svc.client.request(case.method, path, content=case.raw, headers=headers)
    else:
        resp = svc.client.request(case.method, path, json=case.body, headers=headers)
    assert resp.status_code == case.status, resp.text
    assert leaks(svc, resp, captured) == []
    if case.field is not None:
        problem = resp.json()
        assert problem["errors"][0]["field"] == case.field, problem
        assert problem["detail"].startswith(f"{case.field}: "), problem


def test_a_nul_in_a_user_name_is_named_and_quoted_without_the_body(svc: Service) -> None:
    """The defect of issue 12: the whole body, password included, was quoted in the message."""
    resp = svc.client.post("/api/v1/auth/token", json={"username": "adm\x00", "password": SECRET})
    problem = resp.json()
    assert problem["detail"] == "username: Value error, contains a NUL character (got 'adm\\x00')"
    assert problem["errors"] == [
        {"field": "username", "pointer": "/username", "message": problem["detail"].split(": ", 1)[1]}
    ]


def test_non_secret_values_are_quoted_truncated_and_secret_ones_never() -> None:
    assert quote_value("unit_ids.0", "a" * 30) == repr("a" * 30)
    long = quote_value("display_name", "é" * 200)
    assert long is not None and long.endswith("…") and len(long) <= 64
    assert quote_value("value", 38.5) == "38.5"
    secret_fields = ("password", "new_password", "current_password", "csrf_token", "access_token")
    for field in (*secret_fields, "header.authorization", "header.x-csrf-token", "cookie.immunotox_session"):
        assert quote_value(field, SECRET) is None, field
    # a whole object or list may hold another field's secret: never quoted
    assert quote_value("body", {"username": "x", "password": SECRET}) is None
    assert quote_value("unit_ids", ["a", "b"]) is None


# ----------------------------------------------------------------------------- web forms
def _login_form(svc: Service) -> str:
    page = svc.client.get("/login")
    token = CSRF_RE.search(page.text)
    assert token is not None
    return token.group(1)


WEB_CASES = [
    ("NUL in user name", {"username": "adm\x00", "password": SECRET}, 422),
    ("user name too long", {"username": "a" * 65, "password": SECRET}, 422),
    ("password too long", {"username": "admin", "password": SECRET * 10}, 422),
    ("NUL in password", {"username": "admin", "password": SECRET + "\x00"}, 422),
    ("wrong password", {"username": "admin", "password": SECRET}, 401),
]


@pytest.mark.parametrize(("name", "form", "status"), WEB_CASES, ids=[c[0] for c in WEB_CASES])
def test_web_login_form_never_echoes_the_password(
    svc: Service, captured: pytest.LogCaptureFixture, name: str, form: dict[str, str], status: int
) -> None:
    csrf = _login_form(svc)
    resp = svc.client.post("/login", data={**form, CSRF_FIELD: csrf}, follow_redirects=False)
    assert resp.status_code == status, resp.text[:500]
    assert resp.headers["content-type"].startswith("text/html")  # the page, never a JSON problem
    assert leaks(svc, resp, captured) == []
    assert SESSION_COOKIE not in resp.cookies


def test_web_login_refusals_say_what_is_wrong_in_french_and_english(svc: Service) -> None:
    csrf = _login_form(svc)
    resp = svc.client.post("/login", data={"username": "adm\x00", "password": SECRET, CSRF_FIELD: csrf})
    assert "Nom d'utilisateur refusé : de 1 à 64 caractères, sans caractère NUL." in resp.text.replace(
        "&#39;", "'"
    )
    svc.client.cookies.set("immunotox_lang", "en")
    resp = svc.client.post("/login", data={"username": "admin", "password": SECRET * 10, CSRF_FIELD: csrf})
    assert "Password refused: 1 to 256 characters, without a NUL character." in resp.text


def _web_forms() -> list[str]:
    """Every form the web UI accepts (POST routes), with real ids in the paths."""
    from fastapi.routing import APIRoute

    from immunotox.web.routes import router

    paths = [r.path for r in router.routes if isinstance(r, APIRoute) and "POST" in r.methods]
    return [p.format(patient_id="P-A1", event_id=1, alert_id=1) for p in paths]


def test_every_web_form_is_covered() -> None:
    assert len(_web_forms()) >= 10 and "/login" in _web_forms() and "/portal/report" in _web_forms()


@pytest.mark.parametrize("user", ["nurse_a", "pat_a1"])
def test_web_forms_never_echo_a_wrong_csrf_token(
    svc: Service, captured: pytest.LogCaptureFixture, user: str
) -> None:
    _login_form(svc)
    resp = svc.client.post("/login", data={"username": "admin", "password": SECRET, CSRF_FIELD: SECRET2})
    assert resp.status_code == 403
    assert leaks(svc, resp, captured) == []
    csrf = _login_form(svc)
    ok = svc.client.post(
        "/login", data={"username": user, "password": PASSWORD, CSRF_FIELD: csrf}, follow_redirects=False
    )
    assert ok.status_code == 303
    for path in _web_forms():
        data = {"temperature": "38.5", "lang": "en", "comment": "x", CSRF_FIELD: SECRET2}
        resp = svc.client.post(path, data=data, follow_redirects=False)
        # refused: a wrong token (403), or a page this user may not use at all (a redirect, 401,
        # 403 or 404 before the token is looked at) — never stored, never echoed
        assert resp.status_code in (303, 401, 403, 404), (path, resp.status_code)
        assert leaks(svc, resp, captured) == [], path
    assert svc.sql("SELECT count(*) FROM clinical_event WHERE value_num = 38.5") == [(0,)]


# ----------------------------------------------------------------------------- security headers
def test_api_and_pages_carry_the_security_headers(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    answers = {
        "login": svc.client.post("/api/v1/auth/token", json={"username": "doc_a", "password": PASSWORD}),
        "me": svc.get("doc_a", "/api/v1/auth/me"),
        "422": svc.client.post("/api/v1/auth/token", json={"username": "adm\x00", "password": SECRET}),
        "401": svc.client.get("/api/v1/patients"),
        "health": svc.client.get("/health"),
        "page": svc.client.get("/login"),
    }
    for name, resp in answers.items():
        assert resp.headers["x-content-type-options"] == "nosniff", name
        assert resp.headers["referrer-policy"] == "same-origin", name
        assert "strict-transport-security" not in resp.headers, name  # secure cookies are off
    for name in ("login", "me", "422", "401", "page"):
        assert answers[name].headers["cache-control"] == "no-store", name
    assert "cache-control" not in answers["health"].headers  # anonymous, not under /api/
    assert answers["page"].headers["x-frame-options"] == "DENY"  # the page's own headers are kept
    # a logged-in browser's static assets stay cacheable (public files, no patient data)
    static = svc.client.get("/static/app.css", headers={"Authorization": f"Bearer {svc.tokens['doc_a']}"})
    assert static.status_code == 200 and "no-store" not in static.headers.get("cache-control", "")
    assert static.headers["x-content-type-options"] == "nosniff"


def test_hsts_when_secure_cookies_are_on(sqlite_template: Any, tmp_path: Any) -> None:
    from tests.service.conftest import make_service

    for svc in make_service(sqlite_template, tmp_path, secure_cookies=True):
        for resp in (
            svc.get("doc_a", "/api/v1/auth/me"),
            svc.client.get("/login"),
            svc.client.get("/health"),
        ):
            assert resp.headers["strict-transport-security"] == "max-age=31536000"


# --- the database password: never on the console, in an error or a log line -----------------

DB_PASSWORD = "s3cret-db-pw"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            f"postgresql+psycopg://ward:{DB_PASSWORD}@127.0.0.1:5432/immunotox",
            "postgresql+psycopg://ward:***@127.0.0.1:5432/immunotox",
        ),
        ("postgresql+psycopg://ward@db/immunotox", "postgresql+psycopg://ward@db/immunotox"),
        ("sqlite:///./immunotox.db", "sqlite:///./immunotox.db"),
        (f"mysql://ward:{DB_PASSWORD}@db:bad-port/x", "mysql://***@db:bad-port/x"),  # unparseable
    ],
)
def test_a_database_url_is_shown_without_its_password(url: str, shown: str) -> None:
    from immunotox.service.config import shown_url

    assert shown_url(url) == shown


def test_settings_errors_and_serve_never_print_the_database_password() -> None:
    from typer.testing import CliRunner

    from immunotox.cli.main import app as cli
    from immunotox.service.config import Settings, SettingsError

    with pytest.raises(SettingsError) as refused:
        Settings.from_env({}, database_url=f"mysql://ward:{DB_PASSWORD}@db/x")
    assert DB_PASSWORD not in str(refused.value) and "IMMUNOTOX_DATABASE_URL" in str(refused.value)
    # a PostgreSQL server that is not there (port 1): serve says so in one line, without the password
    url = f"postgresql+psycopg://ward:{DB_PASSWORD}@127.0.0.1:1/immunotox?connect_timeout=2"
    r = CliRunner().invoke(cli, ["serve", "--db", url])
    assert r.exit_code == 2
    assert "cannot migrate" in r.output and "ward:***@127.0.0.1:1/immunotox" in r.output
    assert DB_PASSWORD not in r.output
