"""Checkpoint-inhibitor patients in the service (issue 17): the ASCO 2021 organ grade of an
immune-related adverse event is handed to the management module like a CRS grade, so the alert it
raises carries the ASCO actions and the corticosteroid dose for the patient's weight."""

from __future__ import annotations

from typing import Any

import immunotox
from immunotox.jurisdiction import parse_jurisdiction
from immunotox.service import recommend
from immunotox.service.models import Patient
from tests.service.conftest import Service


def test_only_the_organ_grades_and_crs_icans_get_a_recommendation() -> None:
    assert recommend.recommendable("asco2021:hepatitis") and recommend.recommendable("astct2019:crs")
    # a single CTCAE term is not the organ grade ASCO's tables key on
    assert not recommend.recommendable("ctcae5:alanine-aminotransferase-increased")


def test_pembrolizumab_80kg_alt_250_alert_recommendation_in_french(sqlite_svc: Service) -> None:
    res = immunotox.grade("asco2021:hepatitis", {"alt": 250, "alt_uln": 40})
    with sqlite_svc.db.session() as s:
        p = s.get(Patient, "P-B1")  # pembrolizumab, 80 kg, adult
        assert p is not None
        stored = recommend.for_grade(
            s, p, res, now=sqlite_svc.clock.now(), jurisdiction=parse_jurisdiction("FR")
        )
    assert stored is not None and stored["available"] is True
    assert "other causes are excluded" in stored["actions"][0]["text"]  # stored in English and French
    rec = recommend.in_lang(stored, "fr")
    assert rec["guideline"] == "asco2021-ici@1.0.0"
    texts = [a["text"] for a in rec["actions"]]
    assert texts[0].startswith("Si l'événement est attribué à l'inhibiteur de point de contrôle")
    assert any("Envisager l'arrêt définitif de l'inhibiteur" in t for t in texts)
    doses = [a["dose"] for a in rec["actions"] if a["dose"]]
    assert doses and "80" in doses[0] and "160" in doses[0]  # methylprednisolone 1-2 mg/kg x 80 kg
    assert any("hépatologie" in t for t in texts)


def test_an_irae_episode_exports_as_an_adverse_event_with_its_grade_and_organ() -> None:
    import datetime as dt

    from fhir.resources.R4B.adverseevent import AdverseEvent

    from immunotox.service import fhir
    from immunotox.service.models import Episode

    t = dt.datetime(2025, 3, 10, tzinfo=dt.UTC)
    ep = Episode(
        id=7,
        patient_id="P-B1",
        scale="asco2021:hepatitis",
        onset_at=t,
        peak_grade=3,
        peak_at=t,
        last_positive_at=t,
        updated_at=t,
    )
    p = Patient(id="P-B1", unit_id="unit-b", therapy_class="checkpoint_inhibitor", product="pembrolizumab")
    ae = fhir._adverse_event(ep, p)
    AdverseEvent.model_validate(ae)  # valid FHIR R4B (wire-compatible with R4)
    ext = {x["url"].rsplit("/", 1)[1]: x for x in ae["extension"]}
    assert ext["toxicity-grade"]["valueInteger"] == 3
    assert ext["grading-scale"]["valueString"] == "asco2021:hepatitis"
    assert ext["organ-class"]["valueCodeableConcept"]["text"] == "Hepatobiliary disorders"
    assert ae["severity"]["coding"][0]["code"] == "severe"
    assert ae["contained"][0]["code"]["text"] == "pembrolizumab"
    # a CTCAE term exports its own system organ class; CRS has none
    assert fhir.organ_class(immunotox.get_scale("ctcae5:hypothyroidism")) == "Endocrine disorders"
    assert fhir.organ_class(immunotox.get_scale("astct2019:crs")) is None


def test_the_demo_ward_shows_a_checkpoint_inhibitor_colitis_rising_in_the_first_minute() -> None:
    """At the demo's speed (one simulated hour in 30 s), an immune colitis charted at grade 1
    before the start reaches ASCO grade 2 (4-6 stools per day over baseline) at the bedside round
    30 simulated minutes after the start."""
    import datetime as dt

    from immunotox.service import demo

    start = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
    ward = demo.simulated_ward(start, n_patients=6, seed=7)
    ici = [p for p in ward.patients if p.therapy_class == "checkpoint_inhibitor"]
    assert ici and ici[0].product in ("pembrolizumab", "nivolumab") and ici[0].weight_kg
    stools = sorted(
        (r["time"], int(r["value"]))
        for r in ward.rows
        if r["patient_id"] == ici[0].id and r["code"] == "stools_over_baseline"
    )
    before = [v for t, v in stools if t < start]
    first2 = next((t, v) for t, v in stools if v >= 4)  # grade 2 (4-6 stools per day over baseline)
    assert before and before[0] == 0 and 1 <= before[-1] < 4  # a baseline, then grade 1 before the start
    assert first2[0] == start + dt.timedelta(minutes=30)


def test_bedside_irae_findings_are_checked_against_their_possible_range(sqlite_svc: Service) -> None:
    ok = sqlite_svc.obs("nurse_b", "P-B1", "stools_over_baseline", 5)
    assert ok.status_code == 201, ok.text
    ok = sqlite_svc.obs("nurse_b", "P-B1", "tsh", 12, "uIU/mL")
    assert ok.status_code == 201, ok.text
    bad = sqlite_svc.obs("nurse_b", "P-B1", "stools_over_baseline", 60)
    assert bad.status_code == 422 and "stools_over_baseline" in bad.text and "60" in bad.text
    bad = sqlite_svc.obs("nurse_b", "P-B1", "rash_bsa", 130, "%")
    assert bad.status_code == 422 and "rash_bsa" in bad.text
    bad = sqlite_svc.obs("nurse_b", "P-B1", "free_t4", 20)  # pmol/L or ng/dL: never guessed
    assert bad.status_code == 422 and "free_t4" in bad.text


def test_stools_of_a_checkpoint_inhibitor_patient_are_graded_live_with_an_alert(sqlite_svc: Service) -> None:
    """Issue 17: the live service grades the ASCO 2021 colitis of a pembrolizumab patient from
    the bedside count, raises a new-irAE alert then a grade-increase alert, each carrying the ASCO
    actions with the corticosteroid dose for the patient's 80 kg."""
    r = sqlite_svc.obs("nurse_b", "P-B1", "stools_over_baseline", 0)
    assert r.status_code == 201, r.text
    grades = {g["scale"]: g["grade"] for g in r.json()["grades"]}
    # every irAE scale the record can reconstruct is shown; one not charted is not assessable
    assert grades == {
        "asco2021:colitis": 0,
        "asco2021:diabetes": None,
        "asco2021:hepatitis": None,
        "asco2021:hyperthyroidism": None,
        "asco2021:hypothyroidism": None,
        "asco2021:myocarditis": None,
        "asco2021:nephritis": None,
        "asco2021:rash": None,
    }
    assert r.json()["alerts"] == []
    r = sqlite_svc.obs("nurse_b", "P-B1", "stools_over_baseline", 2)
    assert {g["scale"]: g["grade"] for g in r.json()["grades"]}["asco2021:colitis"] == 1
    assert [(a["kind"], a["scale"], a["grade"]) for a in r.json()["alerts"]] == [
        ("new_toxicity", "asco2021:colitis", 1)
    ]
    r = sqlite_svc.obs("nurse_b", "P-B1", "stools_over_baseline", 5)
    (alert,) = r.json()["alerts"]
    assert (alert["kind"], alert["grade"]) == ("grade_increase", 2)
    rec = alert["recommendation"]
    assert rec["available"] is True and rec["guideline"] == "asco2021-ici@1.0.0"
    texts = [a["text"] for a in rec["actions"]]
    assert "Hold the checkpoint inhibitor at least until recovery to grade 1." in texts
    assert any(a["dose"] and "80" in a["dose"] for a in rec["actions"])  # prednisone 1 mg/kg x 80 kg
    # a CAR-T patient's bedside stools are stored, not graded on an irAE scale
    r = sqlite_svc.obs("nurse_a", "P-A1", "stools_over_baseline", 5)
    assert r.status_code == 201 and all(not g["scale"].startswith("asco2021:") for g in r.json()["grades"])


def test_the_demo_ici_patient_gets_its_irae_grade_and_alert_as_the_clock_runs(tmp_path: Any) -> None:
    """Issue 17's done-when, in the demo: within a minute of the demo (two simulated hours) the
    checkpoint-inhibitor patient's colitis grade rises from 1 to 2 and its alert carries the ASCO
    actions and the corticosteroid dose for that patient's weight, in French."""
    import datetime as dt
    import json

    from sqlalchemy import text

    from immunotox.service import demo
    from immunotox.service.config import Settings
    from immunotox.service.db import Database, migrate
    from tests.service.conftest import ManualClock

    start = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    migrate(url)
    settings = Settings(database_url=url, sweep_seconds=0, demo=True)
    ward = demo.simulated_ward(start, n_patients=4, seed=7)
    pid = next(p.id for p in ward.patients if p.therapy_class == "checkpoint_inhibitor")
    db = Database(settings)
    try:
        demo.seed(db, settings, ward, start)
        clock = ManualClock(start)
        replayer = demo.Replayer(db, settings, clock, ward.rows, start)

        def colitis() -> tuple[int | None, list[tuple[str, int, str | None]]]:
            with db.engine.connect() as conn:
                g = conn.execute(
                    text(
                        "SELECT grade FROM current_grade WHERE patient_id = :p AND scale = 'asco2021:colitis'"
                    ),
                    {"p": pid},
                ).scalar()
                alerts = conn.execute(
                    text("SELECT kind, grade, recommendation FROM alert WHERE patient_id = :p ORDER BY id"),
                    {"p": pid},
                ).all()
            return g, [(k, gr, r) for k, gr, r in alerts]

        grade, alerts = colitis()  # the rounds before the start: grade 1
        assert grade == 1 and [(k, g) for k, g, _ in alerts] == [("new_toxicity", 1)]
        clock.advance(hours=2)  # one minute of demo at 120x
        replayer.step()
        grade, alerts = colitis()
        assert grade == 2 and [(k, g) for k, g, _ in alerts][-1] == ("grade_increase", 2)
        rec = alerts[-1][2]
        rec = json.loads(rec) if isinstance(rec, str) else rec
        fr = rec["fr"]["actions"]
        assert any("Suspendre l'inhibiteur au moins jusqu'au retour au grade 1." in a["text"] for a in fr)
        weight = next(p.weight_kg for p in ward.patients if p.id == pid)
        doses = [a["dose"] for a in fr if a["dose"]]
        fr_weight = f"{weight:g}".replace(".", ",")  # French decimal comma
        assert doses and f"1 mg/kg/j × {fr_weight} kg" in doses[0], doses  # prednisone 1 mg/kg/day
    finally:
        db.dispose()


def test_issue_17_done_when_through_the_api(sqlite_svc: Service) -> None:
    """Pembrolizumab, 80 kg: a pre-infusion ALT of 25 U/L, then an ALT of 250 U/L (reference
    7-40): CTCAE v5.0 grade 3, an alert, and a recommendation that names holding or discontinuing
    the checkpoint inhibitor and a corticosteroid dose for 80 kg."""
    import datetime as dt

    svc = sqlite_svc
    t = svc.clock.now()
    infusion = t - dt.timedelta(days=20)  # P-B1's first dose (conftest)
    r = svc.obs(
        "nurse_b", "P-B1", "alt", 25, "U/L", at=infusion - dt.timedelta(days=2), ref_low=7, ref_high=40
    )
    assert r.status_code == 201, r.text
    r = svc.obs("nurse_b", "P-B1", "alt", 250, "U/L", at=t - dt.timedelta(hours=1), ref_low=7, ref_high=40)
    assert r.status_code == 201, r.text
    grades = {g["scale"]: g["grade"] for g in r.json()["grades"]}
    assert grades["ctcae5:alanine-aminotransferase-increased"] == 3
    alerts = [a for a in r.json()["alerts"] if a["scale"] == "ctcae5:alanine-aminotransferase-increased"]
    assert alerts and alerts[0]["grade"] == 3
    rec = alerts[0]["recommendation"]
    assert rec["available"] is True and rec["guideline"] == "asco2021-ici@1.0.0"
    texts = " ".join(a["text"] for a in rec["actions"])
    assert "permanently discontinu" in texts  # hepatitis G3: consider / permanently discontinue
    doses = [a["dose"] for a in rec["actions"] if a["dose"]]
    assert doses and "80 kg" in doses[0] and "80–160 mg" in doses[0], doses  # methylprednisolone 1-2 mg/kg
    # the guideline grades the organ, not one analyte: said with the recommendation
    assert any("correspond" in w for w in rec["warnings"])
    page = svc.get("doc_b", "/api/v1/patients/P-B1/recommendations")
    assert page.status_code == 200 and "asco2021-ici" in page.text


# ----------------------------------------------------------------------------- organ grades from labs
# Golden cases: Schneider BJ et al. Management of immune-related adverse events in patients treated
# with immune checkpoint inhibitor therapy: ASCO guideline update. J Clin Oncol 2021;39(36):4073-4126,
# doi:10.1200/JCO.21.01440 — Table 2.2 (hepatitis: AST or ALT 5-20 x ULN is grade 3), Table 6.2
# (nephritis: creatinine 2-3 x baseline is grade 2; > 4.0 mg/dL is grade 3), Table 4.4 (diabetes:
# fasting glucose > 250-500 mg/dL is grade 3), Table 4 section 4.1.2 (thyrotoxicosis).


def _organ(resp: Any, scale: str) -> dict[str, Any]:
    return next(g for g in resp.json()["grades"] if g["scale"] == scale)


def test_alt_250_grades_the_asco_hepatitis_live_with_its_own_reference_and_alert(sqlite_svc: Service) -> None:
    """The done-when patient (pembrolizumab, 80 kg): ALT 250 U/L with its reference 7-40 is
    6.25 x ULN: ASCO hepatitis grade 3 at least (AST, bilirubin and liver function not charted),
    its alert carrying the hepatology management with methylprednisolone 1-2 mg/kg for 80 kg."""
    import datetime as dt

    svc = sqlite_svc
    t = svc.clock.now()
    r = svc.obs("nurse_b", "P-B1", "alt", 250, "U/L", at=t - dt.timedelta(hours=1), ref_low=7, ref_high=40)
    assert r.status_code == 201, r.text
    g = _organ(r, "asco2021:hepatitis")
    assert (g["grade"], g["grade_range"], g["deciding_domains"]) == (3, [3, 4], ["alt"])
    assert {"ast", "bilirubin", "liver_dysfunction"} <= set(g["missing"])  # named, never assumed normal
    uln = g["inputs"]["alt_uln"]
    assert uln["value"] == 40 and "40" in uln["rule_fr"] and uln["interval"] == "observation"
    (alert,) = [a for a in r.json()["alerts"] if a["scale"] == "asco2021:hepatitis"]
    assert (alert["kind"], alert["grade"]) == ("new_toxicity", 3)
    assert alert["title_fr"].startswith("Nouvel effet indésirable — Hépatite : grade 3")
    rec = recommend.in_lang(alert["recommendation"], "fr")
    assert rec["guideline"] == "asco2021-ici@1.0.0"
    doses = [a["dose"] for a in rec["actions"] if a["dose"]]
    assert doses and "80 kg" in doses[0] and "80–160 mg" in doses[0], doses
    assert any("hépatologie" in a["text"] for a in rec["actions"])
    # the same result without a reference interval: the site's default interval, said so
    r = svc.obs("nurse_b", "P-B1", "alt", 30, "U/L")
    assert _organ(r, "asco2021:hepatitis")["inputs"]["alt_uln"]["interval"] in ("site_default", "none")


def test_creatinine_grades_the_asco_nephritis_on_the_pre_treatment_baseline(sqlite_svc: Service) -> None:
    import datetime as dt

    svc = sqlite_svc
    t = svc.clock.now()
    # no baseline yet: 4.5 mg/dL is > 4.0 mg/dL, grade 3 at least whatever the baseline
    r = svc.obs("nurse_b", "P-B1", "creatinine", 4.5, "mg/dL", at=t - dt.timedelta(hours=2))
    g = _organ(r, "asco2021:nephritis")
    assert g["grade_range"] == [3, 4] and "creatinine_baseline" in g["missing"]
    assert "J0" in g["inputs"]["creatinine_baseline"]["rule_fr"]  # why there is none, in French
    # a baseline before the first dose (day 0 = 20 days ago), then 177 umol/L = 2.0 mg/dL: 2.5x
    infusion = t - dt.timedelta(days=20)
    svc.obs("nurse_b", "P-B1", "creatinine", 0.8, "mg/dL", at=infusion - dt.timedelta(days=2))
    r = svc.obs("nurse_b", "P-B1", "creatinine", 177, "umol/L", at=t - dt.timedelta(hours=1))
    g = _organ(r, "asco2021:nephritis")
    assert (g["grade"], g["deciding_domains"]) == (2, ["creatinine"])
    assert g["inputs"]["creatinine_baseline"]["value"] == 0.8
    assert "creatinine_baseline" not in g["missing"]


def test_fasting_glucose_and_free_t4_grade_diabetes_and_thyrotoxicosis_live(sqlite_svc: Service) -> None:
    svc = sqlite_svc
    r = svc.obs("nurse_b", "P-B1", "fasting_glucose", 16.7, "mmol/L")  # 301 mg/dL
    g = _organ(r, "asco2021:diabetes")
    assert (g["grade"], g["grade_range"]) == (3, [3, 3])  # > 250-500 mg/dL: no ULN needed
    r = svc.obs("nurse_b", "P-B1", "free_t4", 30, "pmol/L", ref_low=12, ref_high=22)
    g = _organ(r, "asco2021:hyperthyroidism")
    assert g["grade"] == 1 and g["grade_range"] == [1, 4] and "symptom_severity" in g["missing"]
    # a CAR-T patient's ALT is graded on the CTCAE term only, never on an irAE organ scale
    r = svc.obs("nurse_a", "P-A1", "alt", 250, "U/L", ref_low=7, ref_high=40)
    assert r.status_code == 201 and not [g for g in r.json()["grades"] if g["scale"].startswith("asco2021:")]


def test_crs_signs_of_a_checkpoint_inhibitor_patient_are_kept_not_graded_and_the_reason_is_given(
    sqlite_svc: Service,
) -> None:
    """ASTCT 2019 CRS (Lee DW et al., Biol Blood Marrow Transplant 2019, doi:10.1016/j.bbmt.2018.12.758)
    grades immune effector cell therapies and T-cell engagers, not checkpoint inhibitors: a fever
    of a pembrolizumab patient is stored, no CRS grade is computed, and the reason is given."""
    from immunotox.service.usecases.ungraded import ungraded

    assert sqlite_svc.obs("nurse_b", "P-B1", "age", 64, "a").status_code == 201  # an attribute
    r = sqlite_svc.obs("nurse_b", "P-B1", "temperature", 39.2, "Cel")
    assert r.status_code == 201, r.text
    assert not [g for g in r.json()["grades"] if g["scale"].startswith("astct2019:")]
    with sqlite_svc.db.session() as s:
        p = s.get(Patient, "P-B1")
        assert p is not None
        (crs,) = [u for u in ungraded(s, p) if u.scale == "astct2019:crs"]
    assert [(x.code, x.count) for x in crs.stored] == [("temperature", 1)]  # never age or weight
    assert crs.therapies == ("bispecific", "car_t") and crs.therapy == "checkpoint_inhibitor"
    fr = crs.text("fr")
    assert fr.startswith("Syndrome de relargage cytokinique (CRS)")
    assert "ce patient est sous inhibiteur de point de contrôle" in fr and "Température corporelle (1" in fr
    assert "this patient is on a checkpoint inhibitor" in crs.text("en")


def test_every_therapy_class_has_its_scales_and_an_unknown_one_is_refused() -> None:
    """The classes the input schema admits are exactly those with scales, and a class without
    scales is refused by name, never graded on the CAR-T scales by default (safety stance)."""
    import typing

    import pytest

    from immunotox.service.grades import SCALES, SCALES_BY_THERAPY, scales_of
    from immunotox.service.schemas import TherapyClass

    assert set(typing.get_args(TherapyClass)) == set(SCALES_BY_THERAPY)
    assert scales_of(Patient(id="p1", therapy_class="car_t")) == SCALES
    assert "astct2019:crs" not in scales_of(Patient(id="p2", therapy_class="checkpoint_inhibitor"))
    with pytest.raises(KeyError, match=r"therapy_class 'gene_therapy' of patient 'p3' has no scales"):
        scales_of(Patient(id="p3", therapy_class="gene_therapy"))
