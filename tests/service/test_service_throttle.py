"""Login throttling and password policy (issue 14), on SQLite and PostgreSQL.

Throttled, never locked: past 10 failures of one user name from one address the next attempts
wait (429 + Retry-After, nothing checked), the same account still opens from elsewhere, a
success clears the count, admins see and clear the counts, everything is audited; the state is
in the database, so two app instances on one database (two workers) share it.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from immunotox.service import auth
from immunotox.service.app import create_app
from immunotox.service.config import Settings, SettingsError
from tests.service.conftest import PASSWORD, Service, Template, make_service

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TOKEN = "/api/v1/auth/token"
HERE, ELSEWHERE = "198.51.100.7", "203.0.113.20"


def client_at(svc: Service, address: str, app: Any = None) -> TestClient:
    """A client of the same app (or ``app``) whose requests come from ``address``."""
    return TestClient(app or svc.client.app, client=(address, 40000))


def login(client: TestClient, user: str, password: str, **headers: str) -> Any:
    return client.post(TOKEN, json={"username": user, "password": password}, headers=headers)


def audit_rows(svc: Service, action: str) -> list[tuple[Any, ...]]:
    """(actor, outcome, client address, details) of the audit entries of ``action``."""
    rows = svc.sql(
        "SELECT actor_username, outcome, client_ip, details FROM audit_event "
        f"WHERE action = '{action}' ORDER BY id"
    )
    return [(*r[:3], json.loads(r[3]) if isinstance(r[3], str) else r[3]) for r in rows]


@pytest.fixture
def proxied(template: Template, tmp_path: Path) -> Iterator[Service]:
    """The service behind a trusted proxy network, with a small per-address allowance."""
    yield from make_service(template, tmp_path, trusted_proxies="10.0.0.0/8", login_address_free_failures=15)


# ----------------------------------------------------------------------------- the "done when"
@pytest.mark.parametrize("user", ["doc_a", "no_such_user"])
def test_eleventh_wrong_password_within_a_minute_waits_and_the_account_still_opens_elsewhere(
    svc: Service, user: str
) -> None:
    here = client_at(svc, HERE)
    for i in range(10):
        svc.clock.advance(seconds=5)
        assert login(here, user, f"wrong {i}").status_code == 401, i
    svc.clock.advance(seconds=5)  # 55 s after the first failure
    refused = login(here, user, "wrong 10")
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.headers["retry-after"] == "55"  # 60 s from the 10th failure, 5 s ago
    assert refused.json()["status"] == 429 and "not locked" in refused.json()["detail"]
    # the right password from the same address waits too (no oracle for the guesser)
    assert login(here, user, PASSWORD).status_code == 429
    # the audit trail: the start of the wait and each refused attempt
    (start,) = audit_rows(svc, "auth.throttle")
    assert start[:3] == (user, "throttled", HERE)
    assert {k: start[3][k] for k in ("scope", "failures", "wait_seconds")} == {
        "scope": "name",
        "failures": 10,
        "wait_seconds": 60,
    }
    refusals = [r for r in audit_rows(svc, "auth.login") if r[1] == "throttled"]
    assert [(r[0], r[2], r[3]["retry_after"], r[3]["scope"]) for r in refusals] == [
        (user, HERE, 55, "name"),
        (user, HERE, 55, "name"),
    ]
    if user == "doc_a":  # the physician on call logs in from the ward all the same
        ok = login(client_at(svc, ELSEWHERE), user, PASSWORD)
        assert ok.status_code == 200 and ok.json()["user"]["username"] == "doc_a"
    # an unknown name is throttled exactly like an existing one: nothing tells them apart
    assert svc.sql("SELECT scope, username, address, failures FROM login_throttle WHERE scope = 'name'") == [
        ("name", user, HERE, 10)
    ]


def test_waits_grow_then_failures_are_forgotten(svc: Service) -> None:
    here = client_at(svc, HERE)
    for i in range(10):
        login(here, "nurse_a", f"wrong {i}")
    assert login(here, "nurse_a", "x").headers["retry-after"] == "60"
    svc.clock.advance(seconds=60)
    assert login(here, "nurse_a", "still wrong").status_code == 401  # checked once the wait is over
    assert login(here, "nurse_a", "x").headers["retry-after"] == "120"  # the 11th failure doubles it
    svc.clock.advance(seconds=120)
    login(here, "nurse_a", "wrong again")
    assert login(here, "nurse_a", "x").headers["retry-after"] == "240"
    login(client_at(svc, ELSEWHERE), "made_up_name", "guess")
    svc.clock.advance(hours=25)  # a day without failures: forgotten
    assert login(here, "nurse_a", "wrong after a day").status_code == 401
    # forgotten rows are deleted on the way: a spray of made-up names cannot grow the table forever
    assert svc.sql("SELECT scope, username, address, failures FROM login_throttle ORDER BY scope") == [
        ("address", "", HERE, 1),
        ("name", "nurse_a", HERE, 1),
    ]
    assert login(here, "nurse_a", PASSWORD).status_code == 200


def test_a_success_from_the_same_address_resets_the_name_counter(svc: Service) -> None:
    here = client_at(svc, HERE)
    for i in range(9):
        assert login(here, "nurse_a", f"typo {i}").status_code == 401
    assert login(here, "nurse_a", PASSWORD).status_code == 200
    assert svc.sql("SELECT count(*) FROM login_throttle WHERE scope = 'name'") == [(0,)]
    for i in range(10):  # without the reset the 2nd of these would already wait
        assert login(here, "nurse_a", f"typo again {i}").status_code == 401, i
    assert login(here, "nurse_a", PASSWORD).status_code == 429


def test_state_is_shared_by_two_workers_on_one_database(svc: Service) -> None:
    other_worker = create_app(svc.settings, clock=svc.clock)
    try:
        a, b = client_at(svc, HERE), client_at(svc, HERE, other_worker)
        for i in range(5):
            assert login(a, "doc_a", f"a {i}").status_code == 401
            assert login(b, "doc_a", f"b {i}").status_code == 401
        assert login(a, "doc_a", "a 5").status_code == 429
        assert login(b, "doc_a", "b 5").status_code == 429
    finally:
        other_worker.state.db.dispose()


def test_one_address_trying_many_names_waits_too(proxied: Service) -> None:
    svc = proxied  # login_address_free_failures = 15
    here = client_at(svc, HERE)
    for i in range(15):
        assert login(here, f"user{i}", "guess").status_code == 401, i
    refused = login(here, "doc_a", PASSWORD)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "60"
    assert audit_rows(svc, "auth.login")[-1][3]["scope"] == "address"
    assert login(client_at(svc, ELSEWHERE), "doc_a", PASSWORD).status_code == 200


# ----------------------------------------------------------------------------- trusted proxies
def test_the_forwarded_address_is_used_only_when_the_peer_is_a_trusted_proxy(proxied: Service) -> None:
    svc = proxied  # trusted: 10.0.0.0/8
    proxy = client_at(svc, "10.0.0.2")
    for i in range(10):
        r = login(proxy, "doc_a", f"wrong {i}", **{"X-Forwarded-For": f"{HERE}, 10.0.0.9"})
        assert r.status_code == 401
    assert audit_rows(svc, "auth.login")[-1][2] == HERE  # the client behind the proxies
    assert login(proxy, "doc_a", "x", **{"X-Forwarded-For": HERE}).status_code == 429
    # another client behind the same proxy is not held back by HERE's failures
    ok = login(proxy, "doc_a", PASSWORD, **{"X-Forwarded-For": ELSEWHERE})
    assert ok.status_code == 200
    assert audit_rows(svc, "auth.login")[-1][2] == ELSEWHERE
    # a forged left-most entry does not help: the proxy appended the real client on the right
    forged = login(proxy, "doc_a", "x", **{"X-Forwarded-For": f"{ELSEWHERE}, {HERE}"})
    assert forged.status_code == 429
    # from a peer that is not a trusted proxy the header is ignored: a fresh forged address
    # every time does not escape the count
    direct = client_at(svc, "192.0.2.50")
    for i in range(10):
        login(direct, "nurse_a", f"wrong {i}", **{"X-Forwarded-For": f"203.0.113.{i}"})
    assert login(direct, "nurse_a", PASSWORD, **{"X-Forwarded-For": "203.0.113.99"}).status_code == 429
    assert audit_rows(svc, "auth.login")[-1][2] == "192.0.2.50"


def test_trusted_proxies_and_login_settings_are_checked() -> None:
    s = Settings.from_env(
        {"IMMUNOTOX_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1", "IMMUNOTOX_LOGIN_FREE_FAILURES": "5"}
    )
    assert [str(n) for n in s.trusted_networks] == ["10.0.0.0/8", "192.0.2.1/32"]
    assert s.login_free_failures == 5
    with pytest.raises(
        SettingsError, match=r"IMMUNOTOX_TRUSTED_PROXIES = 'proxy\.local': 'proxy\.local' is not"
    ):
        Settings.from_env({"IMMUNOTOX_TRUSTED_PROXIES": "proxy.local"})
    with pytest.raises(SettingsError, match="IMMUNOTOX_LOGIN_FREE_FAILURES = 'ten': expected a whole number"):
        Settings.from_env({"IMMUNOTOX_LOGIN_FREE_FAILURES": "ten"})
    with pytest.raises(SettingsError, match="IMMUNOTOX_LOGIN_FREE_FAILURES = 0: must be >= 1"):
        Settings.from_env({"IMMUNOTOX_LOGIN_FREE_FAILURES": "0"})


# ----------------------------------------------------------------------------- admin view
def test_admins_see_and_clear_throttled_names_and_others_may_not(svc: Service) -> None:
    here = client_at(svc, HERE)
    for i in range(10):
        login(here, "ghost", f"wrong {i}")
    for user in ("nurse_a", "doc_a", "pat_a1"):
        assert svc.get(user, "/api/v1/auth/throttles").status_code == 403
    listed = svc.get("admin", "/api/v1/auth/throttles")
    assert listed.status_code == 200
    name_row = next(r for r in listed.json() if r["scope"] == "name")
    assert listed.json()[0] == name_row  # the rows that hold attempts back come first
    assert {k: name_row[k] for k in ("username", "address", "failures", "retry_after")} == {
        "username": "ghost",
        "address": HERE,
        "failures": 10,
        "retry_after": 60,
    }
    addr_row = next(r for r in listed.json() if r["scope"] == "address")
    assert addr_row["username"] is None and addr_row["failures"] == 10 and addr_row["retry_after"] == 0
    path = f"/api/v1/auth/throttles/{name_row['id']}"
    assert svc.client.delete(path, headers=svc.h("doc_a")).status_code == 403
    denied = svc.sql("SELECT actor_username, action, outcome FROM audit_event WHERE outcome = 'denied'")
    assert ("doc_a", "auth.throttle.clear", "denied") in [tuple(r) for r in denied]
    assert ("nurse_a", "auth.throttle.list", "denied") in [tuple(r) for r in denied]
    assert login(here, "ghost", "x").status_code == 429
    assert svc.client.delete(path, headers=svc.h("admin")).status_code == 204
    assert svc.client.delete(path, headers=svc.h("admin")).status_code == 404
    (cleared,) = audit_rows(svc, "auth.throttle.clear")[-1:]
    assert cleared[0] == "admin" and cleared[3]["username"] == "ghost" and cleared[3]["failures"] == 10
    assert login(here, "ghost", "x").status_code == 401  # checked again at once


# ----------------------------------------------------------------------------- constant work
def test_unknown_user_costs_one_argon2_verification_like_a_wrong_password(
    sqlite_svc: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = auth._hasher

    class Counting:
        """The real argon2 hasher, counting its verifications."""

        def verify(self, hash_: str, password: str) -> bool:
            calls.append(password)
            return real.verify(hash_, password)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    monkeypatch.setattr(auth, "_hasher", Counting())
    here = client_at(sqlite_svc, HERE)
    for user in ("doc_a", "no_such_user"):
        calls.clear()
        assert login(here, user, "wrong").status_code == 401
        assert calls == ["wrong"], user
    for i in range(9):
        login(here, "no_such_user", f"w{i}")
    calls.clear()
    assert login(here, "no_such_user", "w").status_code == 429
    assert calls == []  # a waiting attempt costs no hashing at all (and reveals nothing)


# ----------------------------------------------------------------------------- password policy
NEW = {"username": "new_staff", "role": "nurse", "unit_ids": ["unit-a"]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**NEW, "password": "eleven char"}, "at least 12 characters for a nurse account"),
        ({**NEW, "role": "admin", "unit_ids": [], "password": "short admin"}, "at least 12 characters for a"),
        ({**NEW, "password": "password1234"}, "one of the most common passwords: choose another"),
        ({**NEW, "password": "PassWord1234"}, "one of the most common passwords: choose another"),
        ({**NEW, "password": "Qwerty123456"}, "one of the most common passwords: choose another"),
        ({**NEW, "username": "nurse.dupont.a", "password": "Nurse.Dupont.A"}, "the same as the user name"),
        ({**NEW, "password": "x" * 257}, "at most 256 characters"),
    ],
)
def test_staff_passwords_follow_the_policy(sqlite_svc: Service, body: dict[str, Any], message: str) -> None:
    r = sqlite_svc.post("admin", "/api/v1/users", body)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "password"
    assert message in r.json()["errors"][0]["message"]


def test_patients_may_have_eight_characters_and_nothing_is_ever_cut(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    patient = {"username": "pat_a2", "role": "patient", "patient_id": "P-A2", "password": "lune2017"}
    assert svc.post("admin", "/api/v1/users", patient).status_code == 201
    long_pw = "a sentence of words " * 12 + "end"  # 243 characters
    staff = {**NEW, "password": long_pw}
    assert svc.post("admin", "/api/v1/users", staff).status_code == 201
    assert login(svc.client, "new_staff", long_pw).status_code == 200
    assert login(svc.client, "new_staff", long_pw[:-1]).status_code == 401
    assert login(svc.client, "new_staff", long_pw + "!").status_code == 401


def test_password_changes_follow_the_policy(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    body = {"current_password": PASSWORD, "new_password": "password1234"}
    r = svc.post("nurse_a", "/api/v1/auth/password", body)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "new_password"
    assert "most common" in r.json()["detail"]
    r = svc.patch("admin", f"/api/v1/users/{svc.user_id('nurse_a')}", {"password": "tooshort123"})
    assert r.status_code == 422 and "at least 12 characters" in r.json()["detail"]
    ok = svc.post("nurse_a", "/api/v1/auth/password", {**body, "new_password": "three quiet herons"})
    assert ok.status_code == 204
    assert login(svc.client, "nurse_a", "three quiet herons").status_code == 200


def test_the_common_password_list_is_shipped_with_its_source_and_licence() -> None:
    listed = auth.common_passwords()
    assert len(listed) > 15000 and {"password", "iloveyou", "motdepasse", "azertyuiop"} <= listed
    assert all(len(p) >= auth.MIN_PASSWORD_LENGTH and p == p.lower() for p in listed)
    from importlib import resources

    header = resources.files("immunotox.service").joinpath(auth.COMMON_PASSWORDS).read_text("utf-8")[:2500]
    assert "https://github.com/dropbox/zxcvbn" in header and "MIT" in header
    assert "Copyright (c) 2012-2016 Dan Wheeler and Dropbox, Inc." in header


# ----------------------------------------------------------------------------- web login form
def test_the_web_login_form_says_the_same_in_french_and_english(sqlite_svc: Service) -> None:
    import html
    import re

    from immunotox.web.security import CSRF_FIELD

    browser = client_at(sqlite_svc, HERE)

    def submit(password: str) -> Any:
        page = browser.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]*)"', page.text)
        assert token is not None
        form = {"username": "doc_a", "password": password, CSRF_FIELD: token.group(1)}
        return browser.post("/login", data=form, follow_redirects=False)

    for i in range(10):
        assert submit(f"wrong {i}").status_code == 401
    sqlite_svc.clock.advance(seconds=15)
    refused = submit(PASSWORD)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "45"
    assert refused.headers["content-type"].startswith("text/html")
    assert (
        "Trop d'échecs de connexion : réessayez dans 1 minute, ou depuis un autre poste. "
        "Votre compte n'est pas verrouillé." in html.unescape(refused.text)
    )
    browser.cookies.set("immunotox_lang", "en")
    sqlite_svc.clock.advance(seconds=44)
    (web_row,) = [r for r in audit_rows(sqlite_svc, "auth.login") if r[1] == "throttled"]
    assert web_row[3] == {"via": "web", "scope": "name", "retry_after": 45}
    assert "try again in 1 minute, or from another workstation. Your account is not locked." in html.unescape(
        submit("x").text
    )
    # the web form and the API count together: they are one road
    assert login(browser, "doc_a", PASSWORD).status_code == 429
