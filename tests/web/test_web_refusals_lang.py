"""A refusal of the service's use cases reads in the page's language on the web forms (issue 11:
the French UI showed « alert 3 is acknowledged, not open » and « event 5 was superseded »)."""

from __future__ import annotations

import html
from typing import Any

from tests.web.conftest import Web


def text(resp: Any) -> str:
    return html.unescape(resp.text)


def test_an_alert_acknowledged_twice_is_explained_in_french(web: Web) -> None:
    web.login("nurse_a")
    (alert,) = web.alerts("P-A1")
    assert web.post(f"/alerts/{alert.id}/acknowledge", {"comment": "vu"}).status_code == 303
    again = web.post(f"/alerts/{alert.id}/acknowledge", {"comment": "bis"})
    page = text(again)
    assert again.status_code == 409
    assert f"alert_id : l'alerte {alert.id} est déjà acquittée, elle n'est plus ouverte" in page
    assert "not open" not in page


def test_a_second_stop_of_oxygen_is_explained_in_french(web: Web) -> None:
    web.login("nurse_a")
    web.post(
        "/patients/P-A1/administrations",
        {"code": "oxygen", "value": "low_flow_nasal_cannula", "o2_flow_l_min": "3"},
    )
    (o2,) = web.events("P-A1", "oxygen")
    web.clock.advance(hours=1)
    assert web.post(f"/patients/P-A1/administrations/{o2.id}/stop", {"time": ""}).status_code == 200
    newer = web.events("P-A1", "oxygen")[1].id
    again = web.post(f"/patients/P-A1/administrations/{o2.id}/stop", {"time": ""})
    page = text(again)
    assert again.status_code == 422
    assert (
        f"event_id : l'événement {o2.id} a été remplacé par l'événement {newer} ; "
        "utilisez la version la plus récente" in page
    )
    assert "superseded" not in page


def test_vitals_refused_row_by_row_read_in_french_beside_each_field(web: Web) -> None:
    web.login("nurse_a")
    resp = web.post("/patients/P-A1/vitals", {"temperature": "55", "heart_rate": "900"})
    page = text(resp)
    assert resp.status_code == 422
    assert "(et 1 autre)" in page and "(and 1 more)" not in page
    assert page.count("hors de l'intervalle physiquement possible") >= 2
    assert "outside the physically possible range" not in page


def test_a_pathway_refusal_on_the_patient_page_is_in_the_page_language() -> None:
    """A CAR-T patient recorded in a phase that cannot be current on this day (screening on day 1)
    gets the pathway's refusal instead of a status, in the page's language (English before)."""
    import datetime as dt

    from immunotox.service.models import Patient
    from immunotox.web import views

    p = Patient(
        id="P-PW",
        therapy_class="car_t",
        product="tisa-cel",
        infusion_at=dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC),
        pathway_phase="screening",
    )
    now = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)
    status, fr = views.pathway_view(p, now, "fr", [], "clinician", None)
    assert status is None and fr is not None
    assert "phase = 'screening' : ne peut pas être la phase en cours" in fr
    assert "cannot be" not in fr
    status, en = views.pathway_view(p, now, "en", [], "clinician", None)
    assert status is None and en is not None and "cannot be the current phase" in en
