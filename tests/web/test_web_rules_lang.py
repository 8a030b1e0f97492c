"""The rule by which each input of a live grade was read from the record ("rule of
reconstruction") is shown in the page's language (issue 11): French on a French page, without a
lang="en" mark; English on an English page."""

from __future__ import annotations

import html
import re

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
