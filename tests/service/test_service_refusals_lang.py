"""The service's refusals of a request — the use cases (assessments, administrations, self-reports,
alerts, idempotency keys), ingest (times, corrections) and the FHIR import — are written in French
and English as data (issue 11: no English sentence on a French page).

Each refusal is asked twice: without ``Accept-Language`` (English, unchanged) and with
``Accept-Language: fr``; both name the field, and the French names the value and the expectation
in French, with no English sentence left in it.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest

from immunotox.errors import FindingError
from immunotox.messages import Msg, error_message
from immunotox.messages import error as E
from immunotox.service.problems import field_error, refused
from tests.service.conftest import Service
from tests.service.test_service_fhir import IMPORT, fixture, official_bundle
from tests.test_messages import english_in

FR = {"Accept-Language": "fr-FR,fr;q=0.9"}
P = "/api/v1/patients/P-A1"


def _both(svc: Service, user: str, path: str, body: Any, **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The refusal of the same request in English (no Accept-Language) and in French."""
    headers = kw.pop("headers", {})
    en = svc.post(user, path, body, headers=headers, **kw)
    fr = svc.post(user, path, body, headers={**headers, **FR}, **kw)
    assert en.status_code == fr.status_code and en.status_code in (404, 409, 422), (en.text, fr.text)
    return en.json(), fr.json()


def _check(en: dict[str, Any], fr: dict[str, Any], field: str, english: str, french: str) -> None:
    """Both name ``field``; the English says ``english``, the French says ``french`` (and the value
    given, kept as is) and carries no English sentence."""
    assert [e["field"] for e in en["errors"]] == [e["field"] for e in fr["errors"]]
    (en_msg,) = [e["message"] for e in en["errors"] if e["field"] == field]
    (fr_msg,) = [e["message"] for e in fr["errors"] if e["field"] == field]
    assert english in en_msg and english in en["detail"], en
    assert french in fr_msg and french in fr["detail"], fr
    assert field in fr["detail"]
    # left out: what is quoted (« a validator's English words ») and the values listed as given
    said = re.sub(r"«[^»]*»|\[[^\]]*\]", " ", fr_msg).replace(field, " ")
    assert english not in said and not english_in(said), fr_msg


def _now(svc: Service) -> str:
    return svc.clock.now().isoformat()


ASSESSMENTS: list[tuple[Callable[[str], dict[str, Any]], str, str, str]] = [
    (
        lambda t: {"kind": "neuro", "time": t},
        "consciousness",
        "a neuro assessment needs at least one sign (consciousness, seizure, motor",
        "une évaluation neurologique exige au moins un signe (consciousness, seizure, motor",
    ),
    (
        lambda t: {
            "kind": "ice",
            "time": t,
            "ice_score": 9,
            "items": {"orientation": 4, "naming": 3, "commands": 1, "writing": 1, "attention": 1},
        },
        "ice_score",
        "9 does not match the sum of the items (10)",
        "9 ne correspond pas à la somme des items (10)",
    ),
    (
        lambda t: {"kind": "ice", "time": t},
        "items",
        "an ICE assessment needs its items or its total (ice_score)",
        "une évaluation ICE exige ses items ou son total (ice_score)",
    ),
    (
        lambda t: {"kind": "capd", "time": t},
        "capd_score",
        "a CAPD assessment needs capd_score",
        "une évaluation CAPD exige capd_score",
    ),
]


@pytest.mark.parametrize(("body", "field", "english", "french"), ASSESSMENTS)
def test_an_incomplete_assessment_is_refused_in_french_and_english(
    sqlite_svc: Service, body: Callable[[str], dict[str, Any]], field: str, english: str, french: str
) -> None:
    en, fr = _both(sqlite_svc, "nurse_a", f"{P}/assessments", body(_now(sqlite_svc)))
    _check(en, fr, field, english, french)


def test_oxygen_flow_on_another_drug_and_a_second_stop_are_refused_in_french(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    body = {"code": "tocilizumab", "value": "tocilizumab", "time": _now(svc), "o2_flow_l_min": 3}
    en, fr = _both(svc, "doc_a", f"{P}/administrations", {**body, "dose": 560, "dose_unit": "mg"})
    _check(
        en, fr, "o2_flow_l_min", "only for code 'oxygen', not 'tocilizumab'", "« oxygen », pas 'tocilizumab'"
    )
    # a non-interval event cannot be stopped; a stopped one is superseded by its stop
    toci = svc.post(
        "doc_a", f"{P}/administrations", {**body, "o2_flow_l_min": None, "dose": 560, "dose_unit": "mg"}
    )
    tid = toci.json()["stored"][0]["id"]
    stop = {"end_time": _now(svc)}
    en, fr = _both(svc, "nurse_a", f"{P}/administrations/{tid}/stop", stop)
    _check(
        en,
        fr,
        "event_id",
        f"event {tid} (tocilizumab) is not an interval",
        f"l'événement {tid} (tocilizumab)",
    )
    assert "n'a pas de durée" in fr["detail"]
    o2 = {"code": "oxygen", "value": "low_flow_nasal_cannula", "time": _now(svc)}
    oid = svc.post("nurse_a", f"{P}/administrations", o2).json()["stored"][0]["id"]
    svc.clock.advance(minutes=30)
    first = svc.post("nurse_a", f"{P}/administrations/{oid}/stop", {"end_time": _now(svc)})
    assert first.status_code == 201, first.text
    newer = first.json()["stored"][0]["id"]
    en, fr = _both(svc, "nurse_a", f"{P}/administrations/{oid}/stop", {"end_time": _now(svc)})
    _check(
        en,
        fr,
        "event_id",
        f"event {oid} was superseded by event {newer}; use the latest",
        f"l'événement {oid} a été remplacé par l'événement {newer} ; utilisez la version la plus récente",
    )


def test_a_symptom_of_another_therapy_class_is_refused_in_french(sqlite_svc: Service) -> None:
    en, fr = _both(
        sqlite_svc, "pat_b1", "/api/v1/patients/P-B1/self-reports", {"symptoms": ["handwriting_change"]}
    )
    _check(
        en,
        fr,
        "symptoms.0",
        "'handwriting_change' is not a self-report symptom for therapy class checkpoint_inhibitor",
        "'handwriting_change' n'est pas un symptôme que le patient peut signaler pour la classe "
        "thérapeutique checkpoint_inhibitor ; attendu : une valeur parmi [",
    )


def test_an_alert_acknowledged_or_resolved_twice_is_a_409_in_french(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    a = svc.post("pat_a1", f"{P}/self-reports", {"temperature": 38.9}).json()["alert"]
    ack = f"/api/v1/alerts/{a['id']}/acknowledge"
    assert svc.post("nurse_a", ack, {"comment": "vu"}).status_code == 200
    en, fr = _both(svc, "nurse_a", ack, {"comment": "encore"})
    _check(
        en,
        fr,
        "alert_id",
        f"alert {a['id']} is acknowledged, not open",
        f"l'alerte {a['id']} est déjà acquittée, elle n'est plus ouverte",
    )
    res = f"/api/v1/alerts/{a['id']}/resolve"
    assert svc.post("nurse_a", res, {"reason": "apyrexie"}).status_code == 200
    en, fr = _both(svc, "nurse_a", res, {"reason": "encore"})
    _check(en, fr, "alert_id", f"alert {a['id']} is already resolved", f"l'alerte {a['id']} est déjà résolue")


def test_an_idempotency_key_badly_formed_or_reused_is_refused_in_french(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    body = {"code": "temperature", "value": 37.2, "unit": "Cel", "time": _now(svc)}
    en, fr = _both(svc, "nurse_a", f"{P}/observations", body, headers={"Idempotency-Key": "a b"})
    _check(
        en,
        fr,
        "header.Idempotency-Key",
        "must be 1-200 printable ASCII characters without spaces",
        "doit compter de 1 à 200 caractères ASCII imprimables, sans espace",
    )
    assert (
        svc.post("nurse_a", f"{P}/observations", body, headers={"Idempotency-Key": "k-1"}).status_code == 201
    )
    en, fr = _both(
        svc, "nurse_a", f"{P}/observations", {**body, "value": 37.4}, headers={"Idempotency-Key": "k-1"}
    )
    _check(
        en,
        fr,
        "header.Idempotency-Key",
        "this key was already used for a different request; use a new key",
        "cette clé a déjà servi pour une autre requête ; utilisez une nouvelle clé",
    )


def test_ingest_refusals_of_times_and_corrections_are_written_in_french(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    future = (svc.clock.now() + dt.timedelta(hours=5)).isoformat()
    body = {"code": "temperature", "value": 38.2, "unit": "Cel"}
    en, fr = _both(svc, "nurse_a", f"{P}/observations", {**body, "time": future})
    _check(en, fr, "time", "is in the future (service time", "est dans le futur (heure du service")
    assert "Indication : vérifiez l'horloge et le fuseau horaire" in fr["detail"]
    en, fr = _both(svc, "nurse_a", f"{P}/observations", {**body, "time": "1970-01-01T00:00:00Z"})
    _check(
        en,
        fr,
        "time",
        "is outside the plausible window",
        "= '1970-01-01T00:00:00+00:00' : est hors de la période",
    )
    t = _now(svc)
    en, fr = _both(svc, "nurse_a", f"{P}/observations", {**body, "time": t, "status": "entered_in_error"})
    _check(
        en,
        fr,
        "status",
        "a retraction must name the event it retracts in supersedes",
        "une annulation (entered_in_error) doit désigner dans supersedes l'événement qu'elle annule",
    )
    first = svc.post("nurse_a", f"{P}/observations", {**body, "time": t}).json()["stored"][0]["id"]
    hr = {"code": "heart_rate", "value": 90, "unit": "/min", "time": t, "supersedes": first}
    en, fr = _both(svc, "nurse_a", f"{P}/observations", hr)
    _check(
        en,
        fr,
        "supersedes",
        f"event {first} has code 'temperature', not 'heart_rate'",
        f"supersedes = {first} : l'événement {first} a le code 'temperature', pas 'heart_rate'",
    )


def test_a_batch_lists_every_refused_row_in_french(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    t = _now(svc)
    rows = [
        {"patient_id": "P-A1", "code": "temperature", "value": 55, "unit": "Cel", "time": t},
        {"patient_id": "P-A1", "code": "heart_rate", "value": "fast", "unit": "/min", "time": t},
        {"patient_id": "P-A1", "code": "sbp", "value": 120, "unit": "mm[Hg]", "time": t, "end_time": t},
    ]
    en, fr = _both(svc, "nurse_a", "/api/v1/observations/batch", {"observations": rows})
    assert en["detail"].endswith("(and 2 more)") and fr["detail"].endswith("(et 2 autres)")
    assert [e["field"] for e in fr["errors"]] == [
        "observations.0.value",
        "observations.1.value",
        "observations.2.end_time",
    ]
    assert "sbp n'est pas un événement à durée" in fr["errors"][2]["message"]
    en, fr = _both(svc, "nurse_a", "/api/v1/observations/batch", {"observations": rows[:2]})
    assert en["detail"].endswith("(and 1 more)") and fr["detail"].endswith("(et 1 autre)")
    ghost = [{**rows[0], "patient_id": "P-ZZ", "value": 38}]
    en, fr = _both(svc, "nurse_a", "/api/v1/observations/batch", {"observations": ghost})
    _check(en, fr, "observations.0.patient_id", "no patient 'P-ZZ'", "aucun patient 'P-ZZ' dans vos unités")


# ----------------------------------------------------------------------------- FHIR import
def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


FHIR_CASES: list[tuple[Callable[[dict[str, Any]], Any], str, str, str]] = [
    (lambda b: b.update(resourceType="Observation"), "resourceType", "resourceType 'Bundle'", "« Bundle »"),
    (
        lambda b: b["entry"][1]["resource"].update(colour="red"),
        "entry.1.resource.colour",
        "Extra inputs are not permitted",
        "non conforme au modèle FHIR R4B ; message du validateur : « Extra inputs are not permitted »",
    ),
    (
        lambda b: b["entry"][1]["resource"]["valueQuantity"].update(value=50),
        "entry.1.resource.valueQuantity.value",
        "outside the physically possible range",
        "= 50.0 : hors de l'intervalle physiquement possible",
    ),
    (
        lambda b: b["entry"][1]["resource"]["valueQuantity"].update(system="http://example.org/units"),
        "entry.1.resource.valueQuantity.system",
        "units must be UCUM (http://unitsofmeasure.org)",
        "= 'http://example.org/units' : les unités doivent être en UCUM (http://unitsofmeasure.org)",
    ),
    (
        lambda b: b["entry"][1]["resource"]["subject"].update(reference="Patient/nobody"),
        "entry.1.resource.subject.reference",
        "no such patient (in the bundle or the service)",
        "= 'Patient/nobody' : patient introuvable (ni dans le bundle ni dans le service)",
    ),
    (
        lambda b: b["entry"][1]["resource"]["subject"].update(reference="Group/7"),
        "entry.1.resource.subject.reference",
        "expected 'Patient/<id>'",
        "= 'Group/7' : attendu : « Patient/<id> »",
    ),
    (
        lambda b: b["entry"][0]["resource"].update(id="-x"),  # a FHIR id, not ours
        "entry.0.resource.id",
        "expected letters, digits, '_', '.', '-' (max 64)",
        "= '-x' : attendu : lettres, chiffres, « _ », « . », « - » (64 au plus)",
    ),
]


@pytest.mark.parametrize(("mutate", "field", "english", "french"), FHIR_CASES)
def test_a_bad_bundle_is_refused_in_french_naming_the_element(
    sqlite_svc: Service, mutate: Callable[[dict[str, Any]], Any], field: str, english: str, french: str
) -> None:
    bundle = copy.deepcopy(official_bundle())
    mutate(bundle)
    en, fr = _both(sqlite_svc, "doc_a", IMPORT, bundle, params={"unit_id": "unit-a"})
    assert fr["title"] == "Invalid FHIR bundle" and fr["type"].endswith("invalid-fhir")
    _check(en, fr, field, english, french)
    assert sqlite_svc.sql("SELECT count(*) FROM clinical_event") == [(0,)]


def test_fhir_import_refusals_of_the_unit_and_a_time_are_written_in_french(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    en, fr = _both(svc, "doc_a", IMPORT, official_bundle())
    _check(
        en,
        fr,
        "query.unit_id",
        "patient 'example' is new: give unit_id to admit it",
        "le patient 'example' est nouveau : donnez unit_id pour l'admettre",
    )
    assert fr["errors"][0]["pointer"] == ""  # a query parameter is not in the body
    en, fr = _both(svc, "doc_a", IMPORT, official_bundle(), params={"unit_id": "unit-zz"})
    _check(en, fr, "query.unit_id", "no unit 'unit-zz'", "aucune unité 'unit-zz'")
    obs = copy.deepcopy(fixture("observation-heart-rate"))
    obs["subject"]["reference"] = "Patient/P-A1"
    for key in ("effectiveDateTime", "effectivePeriod", "effectiveInstant"):
        obs.pop(key, None)
    en, fr = _both(svc, "doc_a", IMPORT, _bundle(obs))
    _check(
        en,
        fr,
        "entry.0.resource.effectiveDateTime",
        "a time is required (effectiveDateTime or effectivePeriod.start)",
        "une heure est requise (effectiveDateTime ou effectivePeriod.start)",
    )


# ----------------------------------------------------------------------------- the mechanism
def test_a_refusal_keeps_its_status_and_is_written_again_in_each_language() -> None:
    """A 409 stays a 409; the English is written once and the French on demand; a plain English
    string (the account routes) is left as is."""
    err = field_error("alert_id", E("service.alert_already_resolved", alert="7"), 409)
    fr = err.in_lang("fr")
    assert (err.status, fr.status, err.code, fr.code) == (409, 409, "invalid-input", "invalid-input")
    assert err.detail == "alert_id: alert 7 is already resolved"
    assert fr.detail == "alert_id : l'alerte 7 est déjà résolue"
    assert fr.in_lang("en").detail == err.detail
    plain = field_error("password", "too short")
    assert plain.in_lang("fr") is plain
    many = refused(
        [FindingError("time", "x", E("service.end_future")), ("items", E("service.ice_needs_items"))]
    )
    assert many.in_lang("fr").detail == "time = 'x' : est dans le futur (et 1 autre)"
    assert [i.message for i in many.in_lang("fr").errors][1] == error_message(
        FindingError("items", None, E("service.ice_needs_items")), "fr"
    ).split(" : ", 1)[1]


def test_every_service_and_fhir_refusal_text_is_french_in_french() -> None:
    """Every text of errors.service and errors.fhir renders in both languages, differently, and
    the French has no English word (the generic test checks parameters and presence)."""
    import string
    import tomllib
    from importlib import resources

    doc = tomllib.loads(resources.files("immunotox").joinpath("data/messages.toml").read_text("utf-8"))
    seen = 0
    for section in ("service", "fhir"):
        for key, t in doc["errors"][section].items():
            params = {f: "x" for _, f, _, _ in string.Formatter().parse(t["text"]) if f}
            msg = Msg(id=f"messages:errors.{section}.{key}", params=params)
            en, fr = msg.text("en"), msg.text("fr")
            assert fr and not english_in(fr), (key, fr)
            if key not in ("field", "model"):  # frames whose words are all parameters
                assert en != fr, key
            seen += 1
            assert t["text_fr"]
    assert seen >= 45


def test_an_implausible_birth_date_is_refused_in_french(sqlite_svc: Service) -> None:
    body = {"birth_date": "1901-01-01"}
    en = sqlite_svc.patch("doc_a", P, body).json()
    fr = sqlite_svc.patch("doc_a", P, body, headers=FR).json()
    _check(
        en,
        fr,
        "birth_date",
        "gives an age of 124 years, outside 0–120",
        "birth_date = '1901-01-01' : donne un âge de 124 ans, hors de l'intervalle 0–120",
    )


def test_the_import_report_says_why_in_french_and_english(sqlite_svc: Service) -> None:
    """Each entry's reason (skipped, created, duplicate) is given in both languages."""
    svc = sqlite_svc
    first = svc.post("doc_a", IMPORT, official_bundle(), params={"unit_id": "unit-a"}).json()
    by = {e["outcome"]: e for e in first["entries"]}
    assert (
        by["skipped"]["reason"].startswith("medication not monitored (")
        and "Vancomycin" in by["skipped"]["reason"]
    )
    assert by["skipped"]["reason_fr"].startswith("médicament non surveillé (")
    assert "Vancomycin" in by["skipped"]["reason_fr"]
    assert (
        by["created"]["reason_fr"]
        == "classe thérapeutique fixée à car_t : corrigez le dossier si elle diffère"
    )
    assert by["stored"]["reason"] is None and by["stored"]["reason_fr"] is None
    again = svc.post("doc_a", IMPORT, official_bundle(), params={"unit_id": "unit-a"}).json()
    dup = next(e for e in again["entries"] if e["outcome"] == "duplicate")
    assert (dup["reason"], dup["reason_fr"]) == ("already imported", "déjà importé")
    cancelled = copy.deepcopy(fixture("observation-heart-rate"))
    cancelled.update(status="cancelled")
    cancelled["subject"]["reference"] = "Patient/P-A1"
    out = svc.post(
        "doc_a", IMPORT, _bundle(cancelled, {"resourceType": "Basic", "code": {"text": "x"}})
    ).json()
    assert [(e["reason"], e["reason_fr"]) for e in out["entries"]] == [
        ("status 'cancelled'", "statut 'cancelled'"),
        ("Basic is not imported", "Basic n'est pas importé"),
    ]


def test_a_conflict_written_as_data_stays_a_409_in_french() -> None:
    from immunotox.service.problems import conflict

    err = conflict(E("service.write_conflict", constraint="UNIQUE constraint failed: patient.id"))
    fr = err.in_lang("fr")
    assert (err.status, fr.status, fr.errors) == (409, 409, [])
    assert err.detail == "the write conflicts with stored data (UNIQUE constraint failed: patient.id)"
    assert fr.detail.startswith("l'écriture contredit des données déjà enregistrées (UNIQUE")
    assert conflict("patient id taken", "id").in_lang("fr").detail == "patient id taken"  # English only


def test_patient_record_refusals_are_written_in_french(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    body = {"id": "P-A1", "unit_id": "unit-a", "therapy_class": "car_t"}
    en, fr = _both(svc, "doc_a", "/api/v1/patients", body)
    assert en["status"] == 409 and fr["detail"] == "le patient 'P-A1' existe déjà"
    assert en["detail"] == "patient 'P-A1' exists"
    later = (svc.clock.now() + dt.timedelta(days=400)).isoformat()
    en, fr = _both(svc, "doc_a", "/api/v1/patients", {**body, "id": "P-NEW", "infusion_at": later})
    _check(en, fr, "infusion_at", "more than a year in the future", "plus d'un an dans le futur")
    en = svc.patch("doc_a", P, {"therapy_class": None}).json()
    fr = svc.patch("doc_a", P, {"therapy_class": None}, headers=FR).json()
    _check(en, fr, "therapy_class", "cannot be null", "ne peut pas être vide (null)")
    en = svc.patch("doc_a", P, {"unit_id": "unit-zz"}).json()
    fr = svc.patch("doc_a", P, {"unit_id": "unit-zz"}, headers=FR).json()
    _check(en, fr, "unit_id", "no unit 'unit-zz'", "aucune unité 'unit-zz'")


def test_account_refusals_are_written_in_french(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    user = {"username": "new-pat", "password": "a long enough pass phrase", "role": "patient"}
    en, fr = _both(svc, "admin", "/api/v1/users", user)
    _check(
        en,
        fr,
        "patient_id",
        "a patient account must name its patient record",
        "un compte patient doit désigner son dossier patient",
    )
    nurse = {**user, "username": "new-nurse", "role": "nurse", "unit_ids": []}
    en, fr = _both(svc, "admin", "/api/v1/users", nurse)
    _check(
        en,
        fr,
        "unit_ids",
        "a nurse must work in at least one unit",
        "un compte nurse doit être rattaché à au moins une unité",
    )
    en, fr = _both(svc, "admin", "/api/v1/users", {**nurse, "unit_ids": ["unit-zz"]})
    _check(en, fr, "unit_ids.0", "no unit 'unit-zz'", "aucune unité 'unit-zz'")
    en, fr = _both(svc, "admin", "/api/v1/units", {"id": "unit-a", "name": "A"})
    assert en["status"] == 409 and fr["detail"] == "l'unité 'unit-a' existe déjà"


def test_a_nul_character_in_the_query_is_refused_in_french(sqlite_svc: Service) -> None:
    path = "/api/v1/patients/P-A1/observations?code=temperature%00"
    en = sqlite_svc.get("nurse_a", path).json()
    fr = sqlite_svc.get("nurse_a", path, headers=FR).json()
    _check(en, fr, "query.code", "contains a NUL character", "contient un caractère NUL")


def test_the_service_refuses_with_message_ids_not_english_strings() -> None:
    """No ``field_error`` or ``conflict`` of the service is given an English string literal: a new
    refusal written in the code, in English only, fails here (the password rules, a variable,
    are the one text left in English)."""
    import ast
    from importlib import resources
    from pathlib import Path

    root = Path(str(resources.files("immunotox"))) / "service"
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            name = getattr(getattr(node, "func", None), "id", None)
            if isinstance(node, ast.Call) and name in ("field_error", "conflict") and len(node.args) > 0:
                text = node.args[1] if name == "field_error" and len(node.args) > 1 else node.args[0]
                if isinstance(text, ast.JoinedStr) or (isinstance(text, ast.Constant) and text.value):
                    found.append(f"{path.relative_to(root)}:{node.lineno}")
    assert found == [], found
