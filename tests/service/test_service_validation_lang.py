"""Pydantic's own validation messages, the password rules and the login refusals are written in
French and English as data (issue 11: no English sentence on a French page).

The API answers pydantic's own English words without ``Accept-Language`` (unchanged) and the
data's French with ``Accept-Language: fr``; a pydantic error type the data does not name falls
back to a French generic text naming the field (« valeur refusée »).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from immunotox.messages import Refused, entry
from immunotox.messages import error as E
from immunotox.service import auth, validation
from immunotox.service.schemas import PatientCreate, SelfReportIn
from tests.service.conftest import PASSWORD, Service
from tests.test_messages import english_in

FR = {"Accept-Language": "fr-FR,fr;q=0.9"}
P = "/api/v1/patients/P-A1"

#: the pydantic error types the service's models can raise, each written in French and English
TYPES = [
    "missing",
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
    "multiple_of",
    "finite_number",
    "float_parsing",
    "float_type",
    "int_parsing",
    "int_type",
    "int_from_float",
    "bool_parsing",
    "bool_type",
    "string_type",
    "string_too_short",
    "string_too_long",
    "string_pattern_mismatch",
    "literal_error",
    "enum",
    "datetime_parsing",
    "datetime_from_date_parsing",
    "datetime_type",
    "timezone_aware",
    "date_parsing",
    "date_from_datetime_parsing",
    "date_type",
    "extra_forbidden",
    "json_invalid",
    "list_type",
    "dict_type",
    "model_type",
    "model_attributes_type",
    "too_short",
    "too_long",
    "union_tag_invalid",
    "union_tag_not_found",
    "value_error",
    "assertion_error",
]


def _french_only(text: str) -> list[str]:
    """English words left in a French message once the quotations « … » are removed."""
    return english_in(re.sub(r"«[^»]*»", " ", text))


@pytest.mark.parametrize("kind", TYPES)
def test_every_listed_pydantic_error_type_has_an_english_and_a_french_text(kind: str) -> None:
    texts = entry(f"messages:errors.validation.{kind}")
    assert texts["text"].strip() and texts["text_fr"].strip()
    assert texts["text"] != texts["text_fr"]
    assert validation.known(kind)
    assert not english_in(texts["text_fr"]), texts["text_fr"]


class _Sample(BaseModel):
    model_config = ConfigDict(extra="forbid")

    a: int = Field(gt=0)
    b: float = Field(le=5)
    c: bool
    d: Annotated[str, StringConstraints(min_length=2, max_length=3, pattern="^[a-z]+$")]
    e: Literal["x", "y", "z"]
    f: dt.datetime
    g: dt.date
    h: list[int] = Field(max_length=1)
    i: int = Field(ge=1)


SAMPLE = {
    "a": 0,
    "b": 6.5,
    "c": "maybe",
    "d": "A",
    "e": "w",
    "f": "x",
    "g": "x",
    "h": [1, 2],
    "i": 0,
    "zz": 1,
}
# (field, what the English says, what the French says)
EXPECTED = [
    ("a", "Input should be greater than 0", "la valeur doit être supérieure à 0"),
    ("b", "Input should be less than or equal to 5", "la valeur doit être inférieure ou égale à 5"),
    ("c", "Input should be a valid boolean", "attendu : un booléen (true ou false)"),
    ("d", "String should have at least 2 characters", "le texte doit compter au moins 2 caractère(s)"),
    ("e", "Input should be 'x', 'y' or 'z'", "attendu : 'x', 'y' ou 'z'"),
    ("f", "Input should be a valid datetime or date", "attendu : une date-heure ou une date valide"),
    ("g", "Input should be a valid date or datetime", "attendu : une date ou une date-heure valide"),
    (
        "h",
        "List should have at most 1 item after validation, not 2",
        "au plus 1 élément(s) attendu(s), pas 2",
    ),
    ("i", "Input should be greater than or equal to 1", "la valeur doit être supérieure ou égale à 1"),
    ("zz", "Extra inputs are not permitted", "champ inconnu : non permis"),
]


def test_pydantic_errors_read_in_french_with_their_values_and_in_pydantic_s_own_english() -> None:
    with pytest.raises(ValidationError) as caught:
        _Sample(**SAMPLE)
    by_field = {str(e["loc"][0]): e for e in caught.value.errors()}
    for field, english, french in EXPECTED:
        err = by_field[field]
        assert english in validation.error_text(err, field, "en")
        fr = validation.error_text(err, field, "fr")
        assert french in fr, (field, fr)
        assert not _french_only(fr), (field, fr)


def test_an_unknown_pydantic_error_type_falls_back_to_a_french_text_naming_the_field() -> None:
    err = {"type": "uuid_parsing", "loc": ("batch_id",), "msg": "Input should be a valid UUID", "input": "x"}
    fr = validation.error_text(err, "batch_id", "fr")
    assert fr == "batch_id : valeur refusée (uuid_parsing)"
    assert validation.error_text(err, "batch_id", "en") == "Input should be a valid UUID"


def test_a_validator_s_refusal_written_as_data_is_read_in_both_languages() -> None:
    with pytest.raises(ValidationError) as caught:
        SelfReportIn(symptoms=["fever", "fever"])
    (err,) = caught.value.errors()
    assert err["msg"] == "Value error, symptoms: each symptom at most once"  # pydantic's English, unchanged
    assert validation.error_text(err, "body", "fr") == "symptoms : chaque symptôme au plus une fois"
    with pytest.raises(ValidationError) as caught:
        PatientCreate(id="P-X", unit_id="unit-a", therapy_class="car_t", birth_date="1800-01-01")
    fr = [validation.error_text(e, "birth_date", "fr") for e in caught.value.errors()]
    assert "birth_date doit être comprise entre 1900-01-01 et 2200-01-01" in fr
    # a plain ValueError of another validator is quoted after a French lead-in
    plain = {
        "type": "value_error",
        "loc": ("x",),
        "msg": "Value error, odd",
        "ctx": {"error": ValueError("odd")},
    }
    assert validation.error_text(plain, "x", "fr") == "valeur refusée par le validateur : « odd »"
    assert str(Refused(E("service.nul"))) == "contains a NUL character"


# ----------------------------------------------------------------------------- through the API
def _both(svc: Service, user: str, path: str, body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    en = svc.post(user, path, body)
    fr = svc.post(user, path, body, headers=FR)
    assert en.status_code == fr.status_code == 422, (en.text, fr.text)
    return en.json(), fr.json()


def _message(problem: dict[str, Any], field: str) -> str:
    (msg,) = [e["message"] for e in problem["errors"] if e["field"] == field]
    return str(msg)


def test_the_api_answers_pydantic_refusals_in_french_with_accept_language(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    now = svc.clock.now().isoformat()
    body = {"kind": "capd", "time": now, "capd_score": 40, "comment": "x\x00", "colour": "red"}
    en, fr = _both(svc, "nurse_a", f"{P}/assessments", body)
    assert [e["field"] for e in en["errors"]] == [e["field"] for e in fr["errors"]]
    assert _message(en, "capd_score") == "Input should be less than or equal to 32 (got 40)"
    assert _message(fr, "capd_score") == "la valeur doit être inférieure ou égale à 32 (valeur reçue : 40)"
    assert _message(en, "colour") == "Extra inputs are not permitted"
    assert _message(fr, "colour") == "champ inconnu : non permis"
    assert "contains a NUL character" in _message(en, "comment")
    assert "contient un caractère NUL" in _message(fr, "comment")
    assert en["detail"].startswith("capd_score: Input should") and "(and 2 more)" in en["detail"]
    assert fr["detail"].startswith("capd_score : la valeur") and "(et 2 autres)" in fr["detail"]
    for item in fr["errors"]:
        assert not _french_only(re.sub(r"'[^']*'", " ", item["message"])), item
    # a time that is not ISO 8601, a missing field
    en, fr = _both(svc, "nurse_a", f"{P}/assessments", {"kind": "capd", "time": "12345"})
    assert "expected an ISO 8601 date and time" in _message(en, "time")
    assert "attendu : une date et une heure ISO 8601" in _message(fr, "time")
    en, fr = _both(svc, "nurse_a", "/api/v1/auth/password", {"new_password": "x"})
    assert _message(en, "current_password") == "Field required"
    assert _message(fr, "current_password") == "champ obligatoire absent"


def test_a_body_that_is_not_json_is_refused_in_french(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    json_type = {"Content-Type": "application/json"}
    path, raw = f"{P}/assessments", b'{"kind": '
    en = svc.client.post(path, content=raw, headers=svc.h("nurse_a", **json_type))
    fr = svc.client.post(path, content=raw, headers=svc.h("nurse_a", **json_type, **FR))
    assert en.status_code == fr.status_code == 400
    assert en.json()["detail"].startswith("body: the request body is not valid JSON")
    assert fr.json()["detail"].startswith("body : le corps de la requête n'est pas du JSON valide : « ")


# ----------------------------------------------------------------------------- accounts and logins
def test_the_password_rules_are_written_in_french_and_english() -> None:
    cases = [
        (("sunflower", "physician", None), "at least 12 characters", "au moins 12 caractères pour un compte"),
        (("x" * 257, "patient", None), "at most 256 characters", "au plus 256 caractères"),
        (("password1234", "nurse", None), "most common passwords", "mots de passe les plus courants"),
        (("Claire.Dupont42", "nurse", "claire.dupont42"), "same as the user name", "identique au nom"),
    ]
    for args, english, french in cases:
        problem = auth.password_problem(*args)
        assert problem is not None
        assert english in problem.text("en") and french in problem.text("fr")
        assert not english_in(problem.text("fr")), problem.text("fr")


def test_the_api_refuses_a_weak_password_and_a_wrong_login_in_french(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    user = {
        "username": "claire",
        "password": "sunflower",
        "role": "nurse",
        "display_name": "C",
        "unit_ids": ["unit-a"],
    }
    en, fr = _both(svc, "admin", "/api/v1/users", user)
    assert "at least 12 characters for a nurse account" in _message(en, "password")
    assert "au moins 12 caractères pour un compte nurse" in _message(fr, "password")
    change = {"current_password": PASSWORD, "new_password": "password1234"}
    en, fr = _both(svc, "nurse_a", "/api/v1/auth/password", change)
    assert _message(en, "new_password") == "one of the most common passwords: choose another"
    assert "l'un des mots de passe les plus courants" in _message(fr, "new_password")
    login = {"username": "nurse_a", "password": "wrong horse battery"}
    en = svc.client.post("/api/v1/auth/token", json=login)
    fr = svc.client.post("/api/v1/auth/token", json=login, headers=FR)
    assert en.status_code == fr.status_code == 401
    assert en.json()["detail"] == "wrong user name or password"
    assert fr.json()["detail"] == "nom d'utilisateur ou mot de passe incorrect"


def test_missing_or_malformed_credentials_are_refused_in_french(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    for headers, english, french in [
        ({}, "missing, invalid or expired credentials", "identifiants absents, invalides ou expirés"),
        ({"Authorization": "Basic abc"}, "must be 'Bearer <token>'", "doit être « Bearer <jeton> »"),
        ({"Authorization": "Bearer nope"}, "missing, invalid or expired", "identifiants absents"),
    ]:
        en = svc.client.get("/api/v1/auth/me", headers=headers)
        fr = svc.client.get("/api/v1/auth/me", headers={**headers, **FR})
        assert en.status_code == fr.status_code == 401
        assert english in en.json()["detail"] and french in fr.json()["detail"]
        assert fr.headers["WWW-Authenticate"] == "Bearer"


def test_a_throttled_login_is_refused_in_french(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    login = {"username": "nurse_b", "password": "wrong horse battery"}
    for _ in range(30):
        resp = svc.client.post("/api/v1/auth/token", json=login, headers=FR)
        if resp.status_code == 429:
            break
    assert resp.status_code == 429 and resp.headers["Retry-After"]
    assert resp.json()["detail"].startswith("trop d'échecs de connexion : réessayez dans ")
    en = svc.client.post("/api/v1/auth/token", json=login)
    assert en.status_code == 429 and en.json()["detail"].startswith("too many failed logins: try again in ")
