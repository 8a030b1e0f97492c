"""The pages and their flows through the real app: ward, patient, bedside entry, inbox, portal.

Grades and triage answers asserted here are those of the cited rules: ASTCT 2019 ICANS bands
(Lee DW et al., Biol Blood Marrow Transplant 2019;25(4):625-638, doi:10.1016/j.bbmt.2018.12.758):
ICE 10 -> 0, 7-9 -> 1, 3-6 -> 2, 0-2 -> 3; CRS fever >= 38.0 °C; hypotension without vasopressor
-> grade 2. Tocilizumab 8 mg/kg for >= 30 kg, at least 8 h apart (US label; ASCO 2021,
doi:10.1200/JCO.21.01992). Self-report triage: service/data/self_report.toml [D].
"""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import pytest

from immunotox.service.models import Patient
from tests.web.conftest import PHONE_A, T0, Web, _feed

NORMAL_NEURO = {
    "consciousness": "awake",
    "seizure": "none",
    "motor": "none",
    "cerebral_edema": "none",
    "raised_icp_signs": "false",
}


def text(resp: Any) -> str:
    return html.unescape(resp.text)


def ice(orientation: int, naming: int, commands: int, writing: int, attention: int) -> dict[str, str]:
    return {
        "ice_orientation": str(orientation),
        "ice_naming": str(naming),
        "ice_commands": str(commands),
        "ice_writing": str(writing),
        "ice_attention": str(attention),
    }


def badge(page: str, scale: str) -> str | None:
    m = re.search(rf'data-scale="{scale}" data-grade="([0-9]*)"', page)
    return m.group(1) if m else None


# ----------------------------------------------------------------------------- ward
def test_ward_rows_show_grades_in_words_alerts_and_checks(web: Web) -> None:
    web.login("nurse_a")
    page = text(web.client.get("/ward"))
    assert '<html lang="fr">' in page and "Tableau de bord du service" in page
    rows = re.findall(r'<tr data-patient="([^"]+)"', page)
    assert rows == ["P-A1", "P-A2"]  # the patient with an alert and a grade first
    assert badge(page, "astct2019:crs") == "1"
    assert "CRS grade 1" in page  # the grade in words, not colour alone
    assert "ICANS : non évaluable" in page  # nothing graded is "?", never 0
    assert "1 alerte · normale" in page
    assert "J2" in page and "Surveillance rapprochée" in page
    assert "il y a 1 h 00" in page  # last vital signs, by the service clock


def test_ward_marks_overdue_checks_from_the_pathway_monitoring(web: Web) -> None:
    web.login("nurse_a")
    # inpatient observation: vital signs every 4 h (data/pathway/monitoring.toml)
    web.clock.advance(hours=2, minutes=59)  # last vitals 3 h 59 ago: not overdue
    row = text(web.client.get("/ward")).split('data-patient="P-A1"')[1].split("</tr>")[0]
    assert "en retard" not in row.split("attendu toutes les 4 h")[0]
    web.clock.advance(minutes=2)  # 4 h 01
    row = text(web.client.get("/ward")).split('data-patient="P-A1"')[1].split("</tr>")[0]
    assert 'class="overdue"' in row and "en retard" in row


def test_a_patients_own_temperature_is_not_a_ward_check(web: Web) -> None:
    web.login("pat_a1")
    web.clock.advance(hours=3, minutes=30)
    web.post("/portal/report", {"temperature": "37.0"})
    web.client.cookies.clear()
    web.login("nurse_a")
    row = text(web.client.get("/ward")).split('data-patient="P-A1"')[1].split("</tr>")[0]
    assert "il y a 4 h 30" in row and "en retard" in row  # the ward's own reading is 4 h 30 old


def test_ward_poll_answers_small_until_something_changes(web: Web) -> None:
    web.login("nurse_a")
    page = web.client.get("/ward").text
    stamp = re.search(r'data-stamp="([^"]+)"', page)
    assert stamp is not None
    same = web.client.get(f"/ward/poll?stamp={stamp.group(1)}").json()
    assert same == {"stamp": stamp.group(1), "changed": False}
    # hypotension not requiring vasopressors -> CRS grade 2 (ASTCT 2019)
    assert web.post("/patients/P-A1/vitals", {"sbp": "82"}).status_code == 200
    new = web.client.get(f"/ward/poll?stamp={stamp.group(1)}").json()
    assert new["changed"] is True and new["stamp"] != stamp.group(1)
    assert badge(new["html"], "astct2019:crs") == "2"
    assert "2 alertes" in html.unescape(new["html"])  # the grade increase raised an alert
    assert "Mis à jour à" in html.unescape(new["status"])


def test_ward_poll_needs_a_session(web: Web) -> None:
    assert web.client.get("/ward/poll").status_code == 401


# ----------------------------------------------------------------------------- patient page
def test_patient_page_explains_the_grade_and_draws_the_timeline(web: Web) -> None:
    web.login("doc_a")
    page = text(web.client.get("/patients/P-A1"))
    assert "astct2019:crs/fever/present" in page  # the rule that fired
    assert "doi:10.1016/j.bbmt.2018.12.758" in page  # its source
    assert "Données manquantes" not in page.split('id="grade-astct2019-crs"')[1].split("</article>")[0]
    # the timeline: accessible SVG, fever threshold from the rule table, the reading at 38.5
    svg = page.split('<svg class="timeline"')[1].split("</svg>")[0]
    assert 'role="img"' in page and "<desc" in svg
    assert "fièvre ≥ 38 °C" in svg and "systolique < 90" in svg
    assert "Température 38,5 °C" in svg
    assert "1 températures, la plus haute 38,5 °C" in svg
    # the chart's data as a table, and the recommendation with the dose for 70 kg
    assert "<td>38,5</td>" in page
    assert "560 mg" in page and "Autorisé maintenant par les limites de dose." in page
    assert "Surveillance en vigueur" in page and "constantes toutes les 4 h" in page


@pytest.mark.parametrize("hours", [24, 72, 168])
def test_patient_page_time_windows(web: Web, hours: int) -> None:
    web.login("nurse_a")
    resp = web.client.get(f"/patients/P-A1?hours={hours}")
    assert resp.status_code == 200
    assert f'href="?hours={hours}" aria-current="true"' in resp.text


# ----------------------------------------------------------------------------- ICE and ICANS
@pytest.mark.parametrize(
    ("items", "score", "grade"),
    [
        ((4, 3, 1, 1, 1), 10, 0),  # ICE 10: no impairment
        ((4, 3, 1, 1, 0), 9, 1),  # 7-9 -> 1 (upper edge)
        ((4, 3, 0, 0, 0), 7, 1),  # 7-9 -> 1 (lower edge)
        ((4, 2, 0, 0, 0), 6, 2),  # 3-6 -> 2 (upper edge)
        ((3, 0, 0, 0, 0), 3, 2),  # 3-6 -> 2 (lower edge)
        ((2, 0, 0, 0, 0), 2, 3),  # 0-2 -> 3
    ],
)
def test_icans_preview_follows_the_ice_bands(
    web: Web, items: tuple[int, int, int, int, int], score: int, grade: int
) -> None:
    web.login("nurse_a")
    resp = web.client.post(
        "/patients/P-A1/icans-preview",
        data={**ice(*items), **NORMAL_NEURO},
        headers={"X-CSRF-Token": web.csrf()},
    )
    body = resp.json()
    assert resp.status_code == 200
    assert (body["ice_score"], body["grade"], body["status"]) == (score, grade, "assessed")
    assert body["badge"] == f"ICANS {grade}"


def test_icans_preview_of_a_partial_ice_is_a_range(web: Web) -> None:
    web.login("nurse_a")
    body = web.client.post(
        "/patients/P-A1/icans-preview",
        data={"ice_orientation": "3", "ice_naming": "3", **NORMAL_NEURO},
        headers={"X-CSRF-Token": web.csrf()},
    ).json()
    # 6 points on 2 items, 3 items untested: ICE between 6 and 9 -> grade 1 or 2
    assert body["ice_score"] is None
    assert body["range"] == [1, 2] and body["grade"] == 1 and body["status"] == "incomplete"
    assert body["badge"] == "ICANS ≥1"
    assert "Dénomination" not in body["detail"] and "Écriture" in body["detail"]
    empty = web.client.post("/patients/P-A1/icans-preview", data={}, headers={"X-CSRF-Token": web.csrf()})
    assert empty.json()["entered"] is False


def test_child_is_graded_with_capd(web: Web) -> None:
    web.login("nurse_a")
    bedside = text(web.client.get("/patients/P-A2/bedside"))
    assert "Enfant de moins de 12 ans" in bedside
    body = web.client.post(
        "/patients/P-A2/icans-preview",
        data={"capd_score": "9", **NORMAL_NEURO},
        headers={"X-CSRF-Token": web.csrf()},
    ).json()
    assert body["grade"] == 3  # CAPD >= 9 -> grade 3


def test_saving_an_ice_shows_the_servers_grade(web: Web) -> None:
    web.login("nurse_a")
    resp = web.post(
        "/patients/P-A1/assessments", {**ice(2, 2, 0, 0, 0), **NORMAL_NEURO, "form_key": "ice-key-0001"}
    )
    page = text(resp)
    assert resp.status_code == 200
    saved = page.split('id="saved"')[1].split("</section>")[0]
    assert "Score ICE 4/10" in saved
    assert badge(saved, "astct2019:icans") == "2"
    assert "Nouveau ICANS : grade 2" in saved  # the alert it raised
    assert [e.value_num for e in web.events("P-A1", "ice_score")] == [4.0]
    assert [e.value_num for e in web.events("P-A1", "ice_orientation")] == [2.0]


def test_an_assessment_with_nothing_entered_is_refused(web: Web) -> None:
    web.login("nurse_a")
    resp = web.post("/patients/P-A1/assessments", {"ice_orientation": "", "comment": ""})
    assert resp.status_code == 422
    assert "rien de saisi" in text(resp)
    assert web.events("P-A1", "ice_orientation") == []


# ----------------------------------------------------------------------------- vital signs
def test_vitals_carry_forward_partial_save_and_local_decimal(web: Web) -> None:
    web.login("nurse_a")
    bedside = web.client.get("/patients/P-A1/bedside").text
    (prev,) = web.events("P-A1", "temperature")
    assert f'name="prev_temperature" value="{prev.id}"' in bedside
    assert 'id="v-temperature" name="temperature"' in bedside and 'value="38,5"' in bedside
    web.clock.advance(hours=3)
    resp = web.post(
        "/patients/P-A1/vitals",
        {"temperature": "38,5", "prev_temperature": str(prev.id), "spo2": "95", "sbp": "", "heart_rate": ""},
    )
    assert resp.status_code == 200
    temps = web.events("P-A1", "temperature")
    assert [t.value_num for t in temps] == [38.5, 38.5]
    assert temps[1].note is not None and temps[1].note.startswith("carried forward: unchanged since")
    assert temps[1].time == T0.replace(hour=15)
    spo2 = web.events("P-A1", "spo2")
    assert [s.value_num for s in spo2] == [97.0, 95.0] and spo2[1].note is None
    assert len(web.events("P-A1", "sbp")) == 1  # empty: not saved
    assert "(reprise)" in text(resp)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Rien de saisi."),
        ({"temperature": "abc"}, "saisissez un nombre"),
        ({"temperature": "55"}, "intervalle physiquement possible"),
        ({"temperature": "38", "time": "pas une date"}, "saisissez une date et une heure"),
    ],
)
def test_vitals_errors_name_the_field_and_store_nothing(web: Web, data: dict[str, str], message: str) -> None:
    web.login("nurse_a")
    resp = web.post("/patients/P-A1/vitals", data)
    assert resp.status_code == 422
    assert message in text(resp)
    assert len(web.events("P-A1", "temperature")) == 1


def test_a_time_in_the_future_is_refused_by_the_service(web: Web) -> None:
    web.login("nurse_a")
    resp = web.post("/patients/P-A1/vitals", {"temperature": "38", "time": "2025-03-10T18:00"})
    assert resp.status_code == 422 and "est dans le futur (heure du service" in text(resp)
    assert "is in the future" not in text(resp)  # nor in the message beside the field (issue 11)


# ----------------------------------------------------------------------------- administrations
def test_tocilizumab_then_the_dose_limit_status(web: Web) -> None:
    web.login("doc_a")
    bedside = text(web.client.get("/patients/P-A1/bedside"))
    assert "Pour 70 kg : 560 mg." in bedside  # 8 mg/kg x 70 kg
    resp = web.post(
        "/patients/P-A1/administrations",
        {"code": "tocilizumab", "value": "tocilizumab", "dose": "560", "dose_unit": "mg"},
    )
    assert resp.status_code == 200 and "Administration enregistrée" in text(resp)
    (dose,) = web.events("P-A1", "tocilizumab")
    assert (dose.dose, dose.dose_unit) == (560.0, "mg")
    web.clock.advance(hours=1)
    page = text(web.client.get("/patients/P-A1"))
    assert "NON autorisé maintenant par les limites de dose." in page  # < 8 h since the dose
    assert "limite atteinte" in page
    assert 'class="c-marker c-tocilizumab"' in page  # the dose on the timeline


def test_oxygen_with_flow_then_stopped(web: Web) -> None:
    web.login("nurse_a")
    resp = web.post(
        "/patients/P-A1/administrations",
        {"code": "oxygen", "value": "low_flow_nasal_cannula", "o2_flow_l_min": "3"},
    )
    assert resp.status_code == 200
    (o2,) = web.events("P-A1", "oxygen")
    assert [f.value_num for f in web.events("P-A1", "o2_flow")] == [3.0]
    web.clock.advance(hours=2)
    bedside = text(web.client.get("/patients/P-A1/bedside"))
    assert "lunettes nasales à bas débit" in bedside and f"/administrations/{o2.id}/stop" in bedside
    page = text(web.client.get("/patients/P-A1"))
    assert 'class="c-oxygen"' in page and "lunettes nasales à bas débit 3 L/min" in page
    resp = web.post(f"/patients/P-A1/administrations/{o2.id}/stop", {"time": ""})
    assert resp.status_code == 200 and "Arrêté" in text(resp)
    rows = web.events("P-A1", "oxygen")
    assert rows[1].supersedes_id == o2.id and rows[1].end_time == web.clock.now()
    assert "Ni oxygène ni vasopresseur en cours." in text(web.client.get("/patients/P-A1/bedside"))


def test_vasopressor_raises_the_crs_grade(web: Web) -> None:
    web.login("nurse_a")
    web.post("/patients/P-A1/vitals", {"sbp": "80"})
    resp = web.post(
        "/patients/P-A1/administrations",
        {"code": "vasopressor", "value": "norepinephrine", "dose": "0.1", "dose_unit": "ug/kg/min"},
    )
    # hypotension requiring one vasopressor -> CRS grade 3 (ASTCT 2019)
    assert badge(text(resp).split('id="saved"')[1], "astct2019:crs") == "3"


# ----------------------------------------------------------------------------- alerts
def test_acknowledge_with_a_comment_is_audited(web: Web) -> None:
    web.login("nurse_a")
    (alert,) = web.alerts("P-A1")
    inbox = text(web.client.get("/alerts"))
    assert f'id="alert-{alert.id}"' in inbox and "Nouveau CRS : grade 1" in inbox
    resp = web.post(
        f"/alerts/{alert.id}/acknowledge", {"comment": "vu, paracétamol donné", "status": "active"}
    )
    assert resp.status_code == 303 and resp.headers["location"] == f"/alerts?status=active&done={alert.id}"
    (after,) = web.alerts("P-A1")
    assert (after.status, after.ack_comment) == ("acknowledged", "vu, paracétamol donné")
    entry = web.audit("alert.acknowledge")[-1]
    assert entry.actor_username == "nurse_a" and entry.details["comment"] == "vu, paracétamol donné"
    page = text(web.client.get(resp.headers["location"]))
    assert f"Alerte {alert.id} acquittée" in page and "Acquittée par nurse_a" in page
    again = web.post(f"/alerts/{alert.id}/acknowledge", {"comment": "bis"})
    assert again.status_code == 409 and "Déjà fait" in text(again)


def test_grade_alert_reads_in_the_page_language(web: Web) -> None:
    """The grading core explains itself in English; a French inbox names the deciding domain and
    the missing inputs with the UI's French labels instead."""
    web.login("nurse_a")
    (alert,) = web.alerts("P-A1")
    assert alert.params["deciding"] == ["fever"]
    inbox = text(web.client.get("/alerts"))
    body = inbox.split(f'id="alert-{alert.id}"')[1].split("</li>")[0]
    assert "CRS grade 1 selon astct2019:crs (version 2019). Décidé par : fièvre." in body
    assert "the more severe" not in body and "Grade 1:" not in body
    web.client.cookies.set("immunotox_lang", "en")
    body_en = text(web.client.get("/alerts")).split(f'id="alert-{alert.id}"')[1].split("</li>")[0]
    assert "fever" in body_en and "selon" not in body_en


@pytest.mark.parametrize("web", ["FR"], indirect=True)
def test_the_recommendation_of_an_alert_reads_in_the_page_language_for_the_sites_jurisdiction(
    web: Web,
) -> None:
    """It was computed without the site's jurisdiction and shown in English on French pages."""
    web.login("nurse_a")
    web.post("/patients/P-A1/vitals", {"sbp": "80"})  # hypotension without vasopressor: CRS grade 2
    alert = next(a for a in web.alerts("P-A1") if a.grade == 2)
    assert alert.recommendation is not None and alert.recommendation["jurisdiction"] == "EU"
    body = text(web.client.get("/alerts")).split(f'id="alert-{alert.id}"')[1].split("</li>\n  </ol>")[0]
    assert "Tocilizumab 8 mg/kg IV en 1 heure" in body and "asco2021-cart@1.0.0 · EU" in body
    assert "Tocilizumab 8 mg/kg IV over 1 hour" not in body
    web.client.cookies.set("immunotox_lang", "en")
    body_en = text(web.client.get("/alerts")).split(f'id="alert-{alert.id}"')[1]
    assert "Tocilizumab 8 mg/kg IV over 1 hour" in body_en


def test_escalation_state_is_shown(web: Web) -> None:
    from immunotox.service.background import run_sweeps

    web.login("nurse_a")
    web.clock.advance(minutes=31)
    run_sweeps(web.db, web.settings, web.clock)
    page = text(web.client.get("/alerts"))
    assert "escaladée : médecin responsable" in page


# ----------------------------------------------------------------------------- portal
@pytest.mark.parametrize(
    ("data", "decision"),
    [
        ({"temperature": "38.6", "symptoms": ["confusion"]}, "call_now"),
        ({"temperature": "38,0"}, "call_now"),  # >= 38.0 °C: fever (ASTCT threshold)
        ({"temperature": "37.9"}, "noted"),
        ({"temperature": "101.3", "temperature_unit": "[degF]"}, "call_now"),  # 38.5 °C
        ({"symptoms": ["headache"]}, "noted"),
        ({"symptoms": ["word_finding_difficulty"]}, "call_now"),
        ({"symptoms": ["tremor"]}, "call_now"),  # issue 11: was « Noté » after CAR-T
        ({"symptoms": ["bleeding_bruising"]}, "call_now"),
    ],
)
def test_portal_triage(web: Web, data: dict[str, Any], decision: str) -> None:
    web.login("pat_a1")
    before = len(web.alerts("P-A1"))
    resp = web.post("/portal/report", data)
    page = text(resp)
    assert resp.status_code == 200
    assert f'data-decision="{decision}"' in page
    if decision == "call_now":
        assert "Appelez le service maintenant" in page and PHONE_A in page
        assert [a.kind for a in web.alerts("P-A1")][before:] == ["patient_report"]
    else:
        assert "Noté : l'équipe va examiner votre signalement" in page
        assert len(web.alerts("P-A1")) == before


def test_patient_report_reaches_the_nurses_inbox(web: Web) -> None:
    web.login("pat_a1")
    web.post("/portal/report", {"temperature": "38.6", "symptoms": ["confusion"], "note": "mal à la tête"})
    (report,) = [a for a in web.alerts("P-A1") if a.kind == "patient_report"]
    assert report.priority == "critical"
    web.client.cookies.clear()
    web.login("nurse_a")
    inbox = text(web.client.get("/alerts"))
    assert "Signalement du patient à traiter" in inbox and "critique" in inbox
    assert text(web.client.get("/ward")).count("critique") >= 1
    web.client.cookies.clear()
    web.login("nurse_b")
    assert "Signalement du patient" not in text(web.client.get("/alerts"))


def test_portal_shows_phase_information_and_refuses_an_empty_report(web: Web) -> None:
    web.login("pat_a1")
    page = text(web.client.get("/portal"))
    assert "La surveillance rapprochée après la perfusion" in page  # data/pathway/info.toml
    assert "Pas de conduite" in page and PHONE_A in page
    resp = web.post("/portal/report", {"temperature": "", "note": ""})
    assert resp.status_code == 422 and "saisissez votre température" in text(resp)
    bad = web.post("/portal/report", {"symptoms": ["not_a_symptom"]})
    assert bad.status_code == 422 and "symptôme inconnu" in text(bad)


def test_portal_shows_the_handout_of_the_patients_class(web: Web) -> None:
    web.login("pat_a1")  # CAR-T
    page = text(web.client.get("/portal"))
    assert "Ne prenez pas de paracétamol ni d'anti-inflammatoire" in page
    assert "après des cellules CAR-T anti-BCMA" in page and 'value="tremor"' in page
    assert 'value="chest_pain"' in page and 'value="palpitations"' in page
    with web.db.writing() as s:
        p = s.get(Patient, "P-A1")
        assert p is not None
        p.therapy_class = "checkpoint_inhibitor"
    page = text(web.client.get("/portal"))
    for token in ("chest_pain", "palpitations", "muscle_weakness", "double_vision", "jaundice", "cough"):
        assert f'value="{token}"' in page
    assert 'value="handwriting_change"' not in page
    assert "myocardite" in page and "Ne prenez pas de paracétamol" in page
    resp = web.post("/portal/report", {"symptoms": ["double_vision"]})
    assert resp.status_code == 200 and 'data-decision="call_now"' in text(resp)
    assert "Vision double ou paupière qui tombe" in text(resp)


def test_ward_phase_uses_the_same_label_periods_as_the_patient_page() -> None:
    import datetime as dt

    from immunotox.jurisdiction import parse_jurisdiction
    from immunotox.web import queries

    d0, day20 = dt.date(2026, 12, 1), dt.date(2026, 12, 21)
    us = parse_jurisdiction("US")
    assert queries.planned_phase(d0, day20, us, "axi-cel") == "follow_up"  # 14-day proximity [V]
    # no jurisdiction, or an unknown product: the planning estimate (near the centre to day 28)
    assert queries.planned_phase(d0, day20) == "near_centre"
    assert queries.planned_phase(d0, day20, us, "not-a-product") == "near_centre"


def test_portal_without_jurisdiction_gives_no_label_period(web: Web) -> None:
    """Issue 11 item 2: the portal told a French patient the US fda-2025 periods by default."""
    web.login("pat_a1")  # axi-cel, day 2
    page = text(web.client.get("/portal"))
    assert "Pendant la durée fixée par votre équipe selon le RCP, vous êtes surveillé(e)" in page
    assert "Aucune juridiction n'est configurée" in page
    assert "au moins 7 jours" not in page and "fda-2025" not in page


@pytest.mark.parametrize("web", ["EU"], indirect=True)
def test_portal_in_the_eu_names_the_smpc_and_gives_no_unverified_number(web: Web) -> None:
    web.login("pat_a1")
    page = text(web.client.get("/portal"))
    assert "Durées selon : RCP européens (EMA), versions en vigueur [ema-smpc]" in page
    assert "Union européenne" in page and "votre équipe vous en précise la longueur" in page
    assert "la durée fixée par votre équipe selon le RCP" in page and "au moins 7 jours" not in page
    assert "fda-2025" not in page


@pytest.mark.parametrize("web", ["US"], indirect=True)
def test_portal_in_the_us_gives_the_verified_periods_and_names_the_label(web: Web) -> None:
    web.login("pat_a1")
    page = text(web.client.get("/portal"))
    assert "Pendant au moins 7 jours, vous êtes surveillé(e)" in page
    assert "[fda-2025]" in page and "États-Unis (FDA)" in page


# ----------------------------------------------------------------------------- languages
def test_french_by_default_english_by_switch(web: Web) -> None:
    login = web.client.get("/login")
    assert '<html lang="fr">' in login.text and "Connexion" in login.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
    assert token is not None
    resp = web.client.post("/lang", data={"lang": "en", "next": "/login", "csrf_token": token.group(1)})
    assert resp.status_code == 200 and '<html lang="en">' in resp.text and "Log in" in resp.text
    web.login("nurse_a")
    ward = text(web.client.get("/ward"))
    assert "Ward dashboard" in ward and "1 alert · normal" in ward and "D2" in ward
    page = text(web.client.get("/patients/P-A1"))
    assert "<td>38.5</td>" in page and "Mar 10" in page  # English number and date formats
    web.post("/lang", {"lang": "fr", "next": "/patients/P-A1"})
    page = text(web.client.get("/patients/P-A1"))
    assert "<td>38,5</td>" in page and "10 mars" in page and "Grades actuels" in page


def test_clinical_texts_follow_the_language(web: Web) -> None:
    web.login("pat_a1")
    fr = text(web.client.get("/portal"))
    web.post("/lang", {"lang": "en", "next": "/portal"})
    en = text(web.client.get("/portal"))
    # symptom labels from service/data/self_report.toml, phase text from data/pathway/info.toml
    assert "Difficulté à trouver ses mots" in fr and "Trouble finding words" in en
    assert "La surveillance rapprochée après la perfusion" in fr
    assert "La surveillance rapprochée" not in en


def test_a_lab_grade_says_its_interval_and_baseline_in_french(web: Web) -> None:
    """A CTCAE laboratory grade on the patient page: which reference interval and which baseline
    were used, in the page's language (issue 16)."""
    now = web.clock.now()
    with web.db.session() as s:
        p = s.get(Patient, "P-A1")
        assert p is not None and p.infusion_at is not None
        day0 = p.infusion_at
    rows = [
        {"code": "alt", "time": day0 - dt.timedelta(days=1), "value": 25, "unit": "U/L"},
        {"code": "alt", "time": now, "value": 250, "unit": "U/L", "ref_low": 7, "ref_high": 40},
    ]
    _feed(web.db, web.settings, "P-A1", rows, now)
    web.login("doc_a")
    page = text(web.client.get("/patients/P-A1"))
    card = page.split('id="grade-ctcae5-alanine-aminotransferase-increased"')[1].split("</article>")[0]
    assert "l'intervalle de référence rendu avec le résultat (7–40 U/L)" in card
    assert "le dernier résultat avant J0" in card
    assert "6,25 × LSN" in card


def test_a_colitis_count_on_a_car_t_patient_is_kept_and_the_page_says_why_it_is_not_graded(web: Web) -> None:
    """Issue 17, bad input: the ASCO 2021 colitis grade (Schneider et al., J Clin Oncol 2021,
    doi:10.1200/JCO.21.01440) is for checkpoint-inhibitor patients; stools per day charted for a
    CAR-T patient are stored as an observation, never graded, and the patient page says why, in
    French and in English."""
    _feed(
        web.db,
        web.settings,
        "P-A1",
        [{"code": "stools_over_baseline", "time": T0 - dt.timedelta(minutes=30), "value": 5}],
        T0,
    )
    assert [e.value for e in web.events("P-A1", "stools_over_baseline")] == ["5"]  # kept
    web.login("nurse_a")
    page = text(web.client.get("/patients/P-A1"))
    assert badge(page, "asco2021:colitis") is None  # not graded
    assert "Enregistré mais non gradé" in page
    why = re.search(r'<li data-scale="asco2021:colitis">([^<]*)</li>', page)
    assert why is not None, page
    assert "s'applique aux patients sous inhibiteur de point de contrôle" in why.group(1)
    assert "ce patient est sous cellules CAR-T" in why.group(1)
    assert "Selles par jour au-dessus de l'état de base (1, dernier le" in why.group(1)
    web.client.cookies.set("immunotox_lang", "en")
    page = text(web.client.get("/patients/P-A1"))
    assert "Recorded but not graded" in page
    assert "it applies to patients on a checkpoint inhibitor, and this patient is on CAR-T cells" in page
    # a patient with nothing of the kind: no such section
    page = text(web.client.get("/patients/P-A2"))
    assert "Recorded but not graded" not in page


def test_the_ward_lists_each_scale_once_and_names_lab_terms_in_french(web: Web) -> None:
    _feed(
        web.db,
        web.settings,
        "P-A1",
        [{"code": "alt", "time": T0 - dt.timedelta(minutes=20), "value": 30, "unit": "U/L"}],
        T0,
    )
    web.login("nurse_a")
    page = text(web.client.get("/ward"))
    row = page[page.index('<tr data-patient="P-A1"') :]
    row = row[: row.index("</tr>")]
    scales = re.findall(r'class="badge[^"]*" data-scale="([^"]+)"', row)
    assert len(scales) == len(set(scales)) and "ctcae5:alanine-aminotransferase-increased" in scales
    assert "Augmentation des alanine aminotransférases (ALAT)" in row
    assert ">ctcae5:" not in row  # never a scale id for a name


def test_portal_shows_every_refusal_beside_its_field(web: Web) -> None:
    """A refused note (too long) or temperature unit was answered 422 with nothing shown: the
    patient saw the form again without knowing why."""
    web.login("pat_a1")
    long = web.post("/portal/report", {"note": "x" * 2001})
    assert long.status_code == 422
    assert 'id="err-note" role="alert"' in long.text and "2000" in text(long)
    unit = web.post("/portal/report", {"temperature": "37.0", "temperature_unit": "K"})
    assert unit.status_code == 422 and 'id="err-temperature" role="alert"' in unit.text
