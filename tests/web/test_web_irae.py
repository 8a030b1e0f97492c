"""Checkpoint-inhibitor irAE grades on the ward (issue 17): their names come from the scales' data
in the reader's language (no gettext entry per organ)."""

from __future__ import annotations

from typing import Any

from immunotox.web import labels, queries
from immunotox.web.i18n import use


def test_irae_scale_names_follow_the_language() -> None:
    with use("fr"):
        assert queries.scale_short("asco2021:hepatitis") == "Hépatite"
        assert labels.scale_short("asco2021:adrenal-insufficiency") == "Insuffisance surrénale"
        assert queries.badge_of("asco2021:colitis", 2, (2, 4), "incomplete", None).short == "Colite"
    with use("en"):
        assert queries.scale_short("asco2021:hyperthyroidism") == "Thyrotoxicosis"
        assert labels.scale_short("astct2019:crs") == "CRS"
    assert labels.scale_short("no:such-scale") == "no:such-scale"
    assert {"asco2021:hepatitis", "astct2019:crs"} <= set(labels.named_scales())


def test_ward_and_patient_page_show_a_live_irae_grade_with_the_asco_actions_in_french(web: Any) -> None:
    """Issue 17: a pembrolizumab patient of 80 kg whose stools rise: the ward shows the colitis
    grade, the patient page explains it and recommends the ASCO actions with the dose for 80 kg."""
    import datetime as dt
    import html

    from immunotox.service.models import Patient
    from tests.web.conftest import _feed

    with web.db.writing() as s:
        p = s.get(Patient, "P-B1")
        assert p is not None
        p.therapy_class, p.product = "checkpoint_inhibitor", "pembrolizumab"
    t = web.clock.now() - dt.timedelta(hours=2)
    rows = [
        {"code": "stools_over_baseline", "time": t - dt.timedelta(days=1), "value": 0},
        {"code": "stools_over_baseline", "time": t, "value": 5},
    ]
    _feed(web.db, web.settings, "P-B1", rows, web.clock.now())
    web.login("doc_b")
    ward = html.unescape(web.client.get("/ward").text)
    assert 'data-scale="asco2021:colitis" data-grade="2"' in ward and "Colite" in ward
    page = html.unescape(web.client.get("/patients/P-B1").text)
    assert "Colite et diarrhée immuno-induites — gradation ASCO 2021" in page
    assert "Augmentation de 4–6 selles par jour par rapport à l'état de base" in page
    assert "Suspendre l'inhibiteur au moins jusqu'au retour au grade 1." in page
    assert "exclusion des autres causes" in page
    assert "1 mg/kg/j × 80 kg = 80 mg/j" in page  # prednisone (ASCO 2021 colitis G2), in French
    assert "mg/kg/day" not in page
    # the deciding criterion by its French name, never its key (« Décidé par : stools » before)
    assert "Décidé par :</strong> selles par jour au-dessus de l'état de base" in page
    assert "Décidé par :</strong> stools" not in page
