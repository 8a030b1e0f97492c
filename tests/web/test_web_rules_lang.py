"""The rule by which each input of a live grade was read from the record ("rule of
reconstruction") is shown in the page's language (issue 11): French on a French page, without a
lang="en" mark; English on an English page."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from immunotox.web import security
from tests.web.conftest import Web


def _rule_cells(page: str) -> list[tuple[str, str]]:
    """(lang attribute, text) of the rule cells of the inputs tables."""
    cells = re.findall(r'<td(?: lang="(\w+)")? class="muted">([^<]*)</td>', page)
    return [(lang, html.unescape(text)) for lang, text in cells]


def test_the_rule_of_each_input_is_written_in_the_page_language(web: Web) -> None:
    web.login("nurse_a")
    fr = _rule_cells(web.client.get("/patients/P-A1").text)
    assert ("", "valeur la plus élevée de temperature sur (t-6 h, t]") in fr
    assert not [c for c in fr if c[0] == "en"], fr
    assert not any("highest" in text or "running at t" in text for _, text in fr)
    web.client.cookies.set(security.LANG_COOKIE, "en")
    en = _rule_cells(web.client.get("/patients/P-A1").text)
    assert ("", "highest temperature in (t-6h, t]") in en
    assert not [c for c in en if c[0] == "fr"], en


def test_recorded_data_left_out_of_a_grade_is_shown_in_the_page_language(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A grade computed without part of the record (findings that contradict each other: an
    oxygen flow while no oxygen runs) keeps the scale's refusal in English and French, and the
    page says what was left out, in its language. The live derivations never build that pair
    (the flow is read only while a device runs), so the CRS findings are given the flow here;
    the refusal, the retry without the finding and the page are the real ones."""
    from immunotox.service import grades

    real = grades.grade_findings
    retry = [False]

    def contradicting(scale_id: str, findings: dict[str, Any]) -> Any:
        if scale_id != "astct2019:crs" or findings.get("oxygen") != "none" or retry[0]:
            retry[0] = False
            return real(scale_id, findings)
        retry[0] = True  # the next call is grade_from's retry without the refused finding
        return real(scale_id, {**findings, "o2_flow_l_min": 2})

    monkeypatch.setattr(grades, "grade_findings", contradicting)
    web.login("nurse_a")
    fr = web.client.get("/patients/P-A1").text
    notice = re.search(r'<div class="notice notice-warn set-aside">(.*?)</div>', fr, re.S)
    assert notice is not None, "the French page must show the data left out"
    text = html.unescape(re.sub(r"<[^>]+>", "", notice.group(1)))
    assert "Données enregistrées écartées de ce grade" in text
    assert "débit d'oxygène renseigné alors que oxygen = 'none'" in text, text
    assert "lang=" not in notice.group(1) and "oxygen flow given" not in text
    web.client.cookies.set(security.LANG_COOKIE, "en")
    en = web.client.get("/patients/P-A1").text
    notice = re.search(r'<div class="notice notice-warn set-aside">(.*?)</div>', en, re.S)
    assert notice is not None
    text = html.unescape(re.sub(r"<[^>]+>", "", notice.group(1)))
    assert "Recorded data left out of this grade" in text
    assert "oxygen flow given while oxygen = 'none'" in text, text


def test_a_grade_without_part_of_the_record_is_a_new_clinical_state() -> None:
    """The same grade computed with and without a contradicting finding gets two clinical
    fingerprints: the store keeps a history record whose inputs name what was left out."""
    from immunotox.service.grades import grade_from
    from tests.web.conftest import T0

    clean = grade_from("p", "astct2019:crs", T0, {"temperature_c": 38.5, "oxygen": "none"}, {})
    inputs: dict[str, object] = {}
    odd = grade_from(
        "p", "astct2019:crs", T0, {"temperature_c": 38.5, "oxygen": "none", "o2_flow_l_min": 2}, inputs
    )
    assert (clean.result.grade, odd.result.grade) == (1, 1)
    assert "error" in inputs and clean.clinical != odd.clinical
