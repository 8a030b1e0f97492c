"""The service's 403 and 404 details and the problems its HTTP layer answers itself (405, a path
with no route, a bare 500, a 401 without credentials, a value the database refuses) follow
``Accept-Language`` like every other refusal (issue 11): English by default, unchanged; French with
``Accept-Language: fr``, with the record's kind written in French too. The title stays the RFC 7807
title (English, like the ``type`` code) and the status does not change with the language.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from immunotox.messages import error as E
from immunotox.service.problems import ApiError, forbidden, not_found, problem, unauthorized
from immunotox.service.routes import _problems
from tests.service.conftest import Service
from tests.test_messages import english_in

FR = {"Accept-Language": "fr-CH, fr;q=0.9, en;q=0.8"}


def _both(
    svc: Service, method: str, user: str, path: str, body: Any = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The problem answered to the same request without Accept-Language and in French."""
    h = svc.h(user)
    en = svc.client.request(method, path, json=body, headers=h)
    fr = svc.client.request(method, path, json=body, headers={**h, **FR})
    assert en.status_code == fr.status_code, (en.text, fr.text)
    assert en.headers["content-type"] == fr.headers["content-type"] == "application/problem+json"
    # the caller's bearer token, and a password given in the body, never reach the problem
    secrets = [
        svc.tokens[user],
        *([body["password"]] if isinstance(body, dict) and "password" in body else []),
    ]
    assert not [x for x in secrets if x in en.text + fr.text]
    en_p, fr_p = en.json(), fr.json()
    assert en_p["title"] == fr_p["title"] and en_p["type"] == fr_p["type"]
    return en_p, fr_p


def _french(text: str) -> None:
    assert not english_in(text), (text, english_in(text))


# (method, user, path, body, status, English detail, French detail)
ACCESS: list[tuple[str, str, str, Any, int, str, str]] = [
    # 404: a record that does not exist, or one the caller may not read (not revealed)
    (
        "GET",
        "doc_a",
        "/api/v1/patients/P-NOPE",
        None,
        404,
        "patient 'P-NOPE' not found",
        "dossier patient 'P-NOPE' introuvable",
    ),
    (
        "GET",
        "doc_a",
        "/api/v1/patients/P-B1",
        None,
        404,
        "patient 'P-B1' not found",
        "dossier patient 'P-B1' introuvable",
    ),
    (
        "GET",
        "admin",
        "/api/v1/users/987654",
        None,
        404,
        "user 987654 not found",
        "utilisateur 987654 introuvable",
    ),
    (
        "GET",
        "doc_a",
        "/api/v1/alerts/987654",
        None,
        404,
        "alert 987654 not found",
        "alerte 987654 introuvable",
    ),
    (
        "POST",
        "doc_a",
        "/api/v1/alerts/987654/acknowledge",
        {"comment": "seen"},
        404,
        "alert 987654 not found",
        "alerte 987654 introuvable",
    ),
    (
        "POST",
        "nurse_a",
        "/api/v1/patients/P-A1/administrations/987654/stop",
        {"end_time": "2026-01-01T00:00:00+00:00"},
        404,
        "event 987654 of patient 'P-A1' not found",
        "événement 987654 du patient 'P-A1' introuvable",
    ),
    # 403: who may not do what
    (
        "POST",
        "nurse_a",
        "/api/v1/users",
        {
            "username": "x-user",
            "password": "a long enough pass phrase",
            "role": "nurse",
            "unit_ids": ["unit-a"],
        },
        403,
        "only an admin may create users",
        "seul un administrateur peut créer des utilisateurs",
    ),
    (
        "GET",
        "doc_a",
        "/api/v1/users",
        None,
        403,
        "only an admin may list users",
        "seul un administrateur peut lister les utilisateurs",
    ),
    (
        "POST",
        "nurse_a",
        "/api/v1/patients",
        {"id": "P-NEW", "unit_id": "unit-a", "therapy_class": "car_t"},
        403,
        "role 'nurse' may not admit patients to unit 'unit-a'",
        "le rôle 'nurse' ne peut pas admettre de patients dans l'unité 'unit-a'",
    ),
    (
        "GET",
        "doc_a",
        "/api/v1/audit",
        None,
        403,
        "the full audit trail is for admins",
        "le journal d'audit complet est réservé aux administrateurs",
    ),
    (
        "GET",
        "pat_a1",
        "/api/v1/alerts",
        None,
        403,
        "alerts are for the care team",
        "les alertes sont réservées à l'équipe soignante",
    ),
]


@pytest.mark.parametrize(("method", "user", "path", "body", "status", "english", "french"), ACCESS)
def test_403_and_404_details_follow_accept_language(
    sqlite_svc: Service, method: str, user: str, path: str, body: Any, status: int, english: str, french: str
) -> None:
    en, fr = _both(sqlite_svc, method, user, path, body)
    assert (en["status"], fr["status"]) == (status, status)
    assert en["title"] == ("Not found" if status == 404 else "Forbidden")
    assert en["detail"] == english
    assert fr["detail"] == french
    _french(fr["detail"])


def test_a_forbidden_write_to_a_patient_names_role_action_and_patient(sqlite_svc: Service) -> None:
    """A patient account may read its own record but not write observations to it."""
    body = {"code": "temperature", "value": 38.2, "unit": "Cel", "time": sqlite_svc.clock.now().isoformat()}
    en, fr = _both(sqlite_svc, "POST", "pat_a1", "/api/v1/patients/P-A1/observations", body)
    assert (en["status"], en["title"]) == (403, "Forbidden")
    assert en["detail"] == "role 'patient' may not observation.create for patient 'P-A1'"
    assert (
        fr["detail"]
        == "le rôle 'patient' n'a pas le droit d'effectuer observation.create pour le patient 'P-A1'"
    )
    _french(fr["detail"])


def test_the_csrf_refusal_of_a_cookie_request_is_french_in_french() -> None:
    err = forbidden(E("access.csrf_header", header="X-CSRF-Token"))
    assert err.detail == "cookie-authenticated request without a valid X-CSRF-Token header"
    assert err.in_lang("fr").detail == "requête authentifiée par cookie sans en-tête X-CSRF-Token valide"
    assert err.in_lang("fr").status == 403 and err.in_lang("fr").code == "forbidden"


def test_a_refused_write_keeps_its_audit_entry_in_every_language() -> None:
    err = not_found(E("access.record_patient", patient="'P-9'"))
    err.denied = {"action": "observation.create", "outcome": "denied"}
    fr = err.in_lang("fr")
    assert fr.denied == err.denied and fr.detail == "dossier patient 'P-9' introuvable"
    assert err.detail == "patient 'P-9' not found"


def test_a_401_without_credentials_says_so_in_french() -> None:
    err = unauthorized()
    assert err.detail == "authentication required" and err.headers == {"WWW-Authenticate": "Bearer"}
    fr = err.in_lang("fr")
    assert fr.detail == "authentification requise" and fr.headers == {"WWW-Authenticate": "Bearer"}


def test_a_method_the_path_does_not_serve_is_a_405_in_french(sqlite_svc: Service) -> None:
    en, fr = _both(sqlite_svc, "DELETE", "doc_a", "/api/v1/patients/P-A1/observations")
    assert (en["status"], en["title"]) == (405, "Method not allowed")
    allowed = sqlite_svc.client.delete("/api/v1/patients/P-A1/observations").headers["Allow"]
    assert "GET" in allowed and "POST" in allowed
    assert en["detail"] == f"DELETE is not supported here; allowed: {allowed}"
    assert fr["detail"] == f"la méthode DELETE n'est pas acceptée ici ; méthodes permises : {allowed}"
    _french(fr["detail"])


def test_a_path_with_no_route_is_a_404_in_french(sqlite_svc: Service) -> None:
    en, fr = _both(sqlite_svc, "GET", "doc_a", "/api/v1/no-such-thing")
    assert (en["status"], en["title"]) == (404, "Not found")
    assert en["detail"] == "no resource at /api/v1/no-such-thing"
    assert fr["detail"] == "aucune ressource à l'adresse /api/v1/no-such-thing"


def _crashing_app() -> TestClient:
    app = FastAPI()
    _problems.install(app)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret-token-123 leaked?")

    return TestClient(app, raise_server_exceptions=False)


def test_an_unexpected_error_is_a_bare_500_in_the_readers_language() -> None:
    client = _crashing_app()
    en = client.get("/boom", headers={"X-Request-ID": "r-1"})
    fr = client.get("/boom", headers=FR)
    assert en.status_code == fr.status_code == 500
    assert en.json()["title"] == fr.json()["title"] == "Internal error"
    assert en.json()["detail"] == "an unexpected error occurred; it has been logged with the request id"
    assert fr.json()["detail"] == (
        "une erreur inattendue s'est produite ; "
        "elle a été consignée avec l'identifiant de la requête (request_id)"
    )
    # the exception's words (here a would-be secret) never reach the response
    assert "secret-token-123" not in en.text + fr.text and "RuntimeError" not in en.text + fr.text


def test_english_stays_the_default_for_a_language_the_service_does_not_write(sqlite_svc: Service) -> None:
    r = sqlite_svc.get("doc_a", "/api/v1/patients/P-NOPE", headers={"Accept-Language": "de-DE, fr;q=0.1"})
    assert r.json()["detail"] == "dossier patient 'P-NOPE' introuvable"  # fr is accepted, de is not written
    r = sqlite_svc.get("doc_a", "/api/v1/patients/P-NOPE", headers={"Accept-Language": "de-DE"})
    assert r.json()["detail"] == "patient 'P-NOPE' not found"


@pytest.mark.parametrize(
    ("err", "english", "french"),
    [
        (
            problem(500, "Internal error", E("http.idempotent_write"), code="internal-error"),
            "idempotent write could not complete",
            "l'écriture idempotente n'a pas pu aboutir",
        ),
        (
            problem(
                503, "Unavailable", E("http.database_not_ready", error="OperationalError"), code="unavailable"
            ),
            "database not ready: OperationalError",
            "base de données indisponible : OperationalError",
        ),
        (
            not_found(E("access.record_throttle", throttle="3")),
            "login throttle 3 not found",
            "blocage de connexion 3 introuvable",
        ),
        (
            forbidden(E("access.admin_only", what=E("access.manage_throttles"))),
            "only an admin may see or clear login throttling",
            "seul un administrateur peut consulter ou lever les blocages de connexion",
        ),
    ],
)
def test_the_service_own_failures_are_written_in_both_languages(
    err: ApiError, english: str, french: str
) -> None:
    fr = err.in_lang("fr")
    assert (err.detail, fr.detail) == (english, french)
    assert (fr.status, fr.title, fr.code) == (err.status, err.title, err.code)
    _french(fr.detail)


def test_a_value_the_database_refuses_is_a_422_in_french() -> None:
    from sqlalchemy.exc import DataError

    app = FastAPI()
    _problems.install(app)

    @app.get("/store")
    def store() -> None:
        raise DataError("INSERT …", {}, Exception("invalid byte sequence"))

    client = TestClient(app, raise_server_exceptions=False)
    en, fr = client.get("/store"), client.get("/store", headers=FR)
    assert en.status_code == fr.status_code == 422
    assert (
        en.json()["detail"] == "a value cannot be stored by the database (invalid characters or out of range)"
    )
    assert fr.json()["detail"] == (
        "une valeur ne peut pas être enregistrée par la base de données "
        "(caractères invalides ou hors limites)"
    )
