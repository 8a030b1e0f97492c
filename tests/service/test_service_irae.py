"""Checkpoint-inhibitor patients in the service (issue 17): the ASCO 2021 organ grade of an
immune-related adverse event is handed to the management module like a CRS grade, so the alert it
raises carries the ASCO actions and the corticosteroid dose for the patient's weight."""

from __future__ import annotations

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
        rec = recommend.for_grade(
            s, p, res, now=sqlite_svc.clock.now(), lang="fr", jurisdiction=parse_jurisdiction("FR")
        )
    assert rec is not None and rec["available"] is True
    assert rec["guideline"] == "asco2021-ici@1.0.0"
    texts = [a["text"] for a in rec["actions"]]
    assert texts[0].startswith("Si l'événement est attribué à l'inhibiteur de point de contrôle")
    assert any("Envisager l'arrêt définitif de l'inhibiteur" in t for t in texts)
    doses = [a["dose"] for a in rec["actions"] if a["dose"]]
    assert doses and "80" in doses[0] and "160" in doses[0]  # methylprednisolone 1-2 mg/kg x 80 kg
    assert any("hépatologie" in t for t in texts)
