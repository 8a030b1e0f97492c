"""The patient, user and session use cases called without HTTP: the layer the API routes and the
web forms share gives the same checks, audit entries and idempotency as the API (issue 15)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from immunotox.service import auth
from immunotox.service.audit import RequestContext
from immunotox.service.problems import ApiError
from immunotox.service.schemas import PatientCreate, PatientUpdate, UserCreate, UserUpdate
from immunotox.service.usecases import patients, sessions, users
from immunotox.service.usecases.base import Call

from .conftest import PASSWORD, Service

CTX = RequestContext(request_id="req-1", client_ip="10.0.0.9", user_agent="test")
NEW = PatientCreate(
    id="P-NEW",
    unit_id="unit-a",
    display_name="New patient",
    birth_date=dt.date(1970, 1, 1),
    therapy_class="car_t",
    product="axi-cel",
    weight_kg=80.0,
)


def call_as(svc: Service, user: str, target: str, key: str | None = None) -> Call:
    with svc.db.session() as s:
        principal = auth.resolve_token(s, svc.tokens[user], now=svc.clock.now(), via="bearer")
    assert principal is not None
    return Call(svc.db, principal, CTX, svc.clock.now(), svc.settings, target, key)


def audit_rows(svc: Service, action: str) -> list[tuple[str, str | None, dict[str, object]]]:
    rows = svc.sql(
        f"SELECT outcome, entity_id, details FROM audit_event WHERE action = '{action}' ORDER BY id"
    )
    return [(r[0], r[1], r[2] if isinstance(r[2], dict) else json.loads(r[2])) for r in rows]


def test_a_physician_admits_and_changes_a_patient_once_under_one_key(sqlite_svc: Service) -> None:
    call = call_as(sqlite_svc, "doc_a", "POST /api/v1/patients", key="admit-1")
    first = patients.create_patient(call, NEW)
    assert (first.status, first.content["id"], first.content["unit_id"], first.replayed) == (
        201,
        "P-NEW",
        "unit-a",
        False,
    )
    again = patients.create_patient(call, NEW)
    assert again.replayed and again.content == first.content
    changed = patients.update_patient(
        call_as(sqlite_svc, "doc_a", "PATCH /api/v1/patients/P-NEW"), "P-NEW", PatientUpdate(weight_kg=82.5)
    )
    assert (changed.status, changed.content["weight_kg"]) == (200, 82.5)
    assert audit_rows(sqlite_svc, "patient.create") == [("ok", "P-NEW", {})]
    assert audit_rows(sqlite_svc, "patient.update") == [
        ("ok", "P-NEW", {"before": {"weight_kg": 80.0}, "after": {"weight_kg": 82.5}})
    ]


def test_a_nurse_may_not_admit_and_the_refusal_is_audited(sqlite_svc: Service) -> None:
    with pytest.raises(ApiError) as refused:
        patients.create_patient(call_as(sqlite_svc, "nurse_a", "POST /api/v1/patients"), NEW)
    assert refused.value.status == 403
    assert "may not admit patients to unit 'unit-a'" in refused.value.detail
    assert [r[0] for r in audit_rows(sqlite_svc, "patient.create")] == ["denied"]
    assert sqlite_svc.sql("SELECT id FROM patient WHERE id = 'P-NEW'") == []


def test_a_change_may_not_set_a_required_field_to_null(sqlite_svc: Service) -> None:
    call = call_as(sqlite_svc, "doc_a", "PATCH /api/v1/patients/P-A1")
    with pytest.raises(ApiError) as refused:
        patients.update_patient(call, "P-A1", PatientUpdate(display_name=None))
    assert refused.value.status == 422
    assert [(e.field, e.message) for e in refused.value.errors] == [("display_name", "cannot be null")]


def test_an_admin_creates_a_user_and_may_not_demote_themself(sqlite_svc: Service) -> None:
    call = call_as(sqlite_svc, "admin", "POST /api/v1/users")
    body = UserCreate(username="nurse_new", password=PASSWORD, role="nurse", unit_ids=["unit-a"])
    made = users.create_user(call, body)
    assert (made.status, made.content["role"], made.content["unit_ids"]) == (201, "nurse", ["unit-a"])
    entry = audit_rows(sqlite_svc, "user.create")[-1]
    assert entry[1] == str(made.content["id"])
    assert entry[2] == {"role": "nurse", "unit_ids": ["unit-a"], "patient_id": None}
    assert PASSWORD not in json.dumps(entry[2])
    admin_id = sqlite_svc.user_id("admin")
    with pytest.raises(ApiError) as refused:
        users.update_user(
            call_as(sqlite_svc, "admin", "PATCH /api/v1/users"), admin_id, UserUpdate(role="nurse")
        )
    assert [(e.field, e.message) for e in refused.value.errors] == [
        ("role", "an admin cannot demote or deactivate their own account")
    ]


def test_the_api_and_the_web_log_in_and_out_through_one_use_case(sqlite_svc: Service) -> None:
    now = sqlite_svc.clock.now()
    api = sessions.log_in(sqlite_svc.db, sqlite_svc.settings, CTX, now, "nurse_a", PASSWORD)
    web = sessions.log_in(
        sqlite_svc.db, sqlite_svc.settings, CTX, now, "nurse_a", PASSWORD, kind="session", via="web"
    )
    assert isinstance(api, sessions.LoggedIn) and isinstance(web, sessions.LoggedIn)
    assert api.issued.csrf_token is None and web.issued.csrf_token is not None
    assert api.user.unit_ids == web.user.unit_ids == ["unit-a"]
    assert sessions.log_in(sqlite_svc.db, sqlite_svc.settings, CTX, now, "nurse_a", "wrong password") is None
    logins = audit_rows(sqlite_svc, "auth.login")
    assert [(r[0], r[2]) for r in logins[-3:]] == [("ok", {}), ("ok", {"via": "web"}), ("denied", {})]


def test_a_unit_named_twice_is_stored_and_answered_once(sqlite_svc: Service) -> None:
    """The answer is what was stored: each unit once, on creation and on change."""
    call = call_as(sqlite_svc, "admin", "POST /api/v1/users")
    body = UserCreate(username="nurse_twice", password=PASSWORD, role="nurse", unit_ids=["unit-a", "unit-a"])
    made = users.create_user(call, body)
    assert made.content["unit_ids"] == ["unit-a"]
    changed = users.update_user(
        call_as(sqlite_svc, "admin", "PATCH /api/v1/users"),
        made.content["id"],
        UserUpdate(unit_ids=["unit-a", "unit-a"]),
    )
    assert changed.content["unit_ids"] == ["unit-a"]
    assert audit_rows(sqlite_svc, "user.create")[-1][2]["unit_ids"] == ["unit-a"]
