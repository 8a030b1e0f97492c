"""The service model's own refusals of a web form (pydantic's validation messages) read in the
page's language (issue 11: the French bedside form said « Input should be less than or equal to 32 »)."""

from __future__ import annotations

from tests.web.conftest import Web
from tests.web.test_web_refusals_lang import text


def test_a_capd_score_out_of_range_is_refused_in_french_then_in_english(web: Web) -> None:
    web.login("nurse_a")
    resp = web.post("/patients/P-A1/assessments", {"capd_score": "40"})
    page = text(resp)
    assert resp.status_code == 422
    assert "la valeur doit être inférieure ou égale à 32" in page
    assert "Input should" not in page
    assert web.post("/lang", {"lang": "en", "next": "/ward"}).status_code == 303
    page = text(web.post("/patients/P-A1/assessments", {"capd_score": "40"}))
    assert "Input should be less than or equal to 32" in page


def test_an_oxygen_flow_out_of_range_is_refused_in_french(web: Web) -> None:
    web.login("nurse_a")
    form = {"code": "oxygen", "value": "low_flow_nasal_cannula", "o2_flow_l_min": "90"}
    resp = web.post("/patients/P-A1/administrations", form)
    page = text(resp)
    assert resp.status_code == 422
    assert "la valeur doit être inférieure ou égale à 80" in page
    assert "Input should" not in page
