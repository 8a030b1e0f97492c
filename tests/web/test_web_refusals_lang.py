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
