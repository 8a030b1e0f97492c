"""Catalogues: complete in French, in sync with the sources, compiled; pages really translated;
every asset shipped in the package (nothing from a CDN)."""

from __future__ import annotations

import html
import re
from importlib import resources
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from immunotox.web import security
from tests.web.conftest import Web

WEB = Path(str(resources.files("immunotox.web")))
LOCALE = WEB / "locale"
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def po(lang: str) -> Catalog:
    with open(LOCALE / lang / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f)


def msgids(cat: Catalog) -> set[str | tuple[str, ...]]:
    return {m.id for m in cat if m.id}


def source_msgids() -> set[str | tuple[str, ...]]:
    out: set[str | tuple[str, ...]] = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(
        str(WEB), METHODS, options_map=OPTIONS, keywords=KEYWORDS
    ):
        out.add(message if isinstance(message, str) else tuple(message))
    return out


def test_every_msgid_is_translated_in_french() -> None:
    cat = po("fr")
    untranslated = [
        m.id for m in cat if m.id and (not m.string or (isinstance(m.string, tuple) and not all(m.string)))
    ]
    fuzzy = [m.id for m in cat if m.id and m.fuzzy]
    assert untranslated == [] and fuzzy == []
    assert len(msgids(cat)) > 300


def test_catalogues_match_the_strings_of_the_sources() -> None:
    expected = source_msgids()
    with open(LOCALE / "messages.pot", "rb") as f:
        pot = read_po(f)
    assert msgids(pot) == expected, "run the pybabel extract/update commands of docs/web.md"
    for lang in ("fr", "en"):
        assert msgids(po(lang)) == expected, lang


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_compiled_catalogues_are_up_to_date(lang: str) -> None:
    with open(LOCALE / lang / "LC_MESSAGES" / "messages.mo", "rb") as f:
        mo = read_mo(f)

    def key(x: object) -> object:
        return tuple(x) if isinstance(x, (list, tuple)) else x

    compiled = {key(m.id): key(m.string) for m in mo if m.id}
    source = {key(m.id): key(m.string) for m in po(lang) if m.id and m.string}
    assert compiled == source, "run pybabel compile (docs/web.md)"


def test_placeholders_survive_translation() -> None:
    problems = [(m.id, errors) for m, errors in po("fr").check()]
    assert problems == []
    for m in po("fr"):
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        wanted = set(re.findall(r"%\(\w+\)", ids[-1]))
        for s in strings:
            assert set(re.findall(r"%\(\w+\)", s)) == wanted, m.id


def test_french_pages_show_no_untranslated_ui_string(web: Web) -> None:
    english = {
        m.id
        for m in po("fr")
        if isinstance(m.id, str) and m.string != m.id and len(m.id.split()) >= 3 and "%" not in m.id
    }
    web.login("nurse_a")
    pages = [web.client.get(p).text for p in ("/ward", "/patients/P-A1", "/patients/P-A1/bedside", "/alerts")]
    web.client.cookies.clear()
    web.login("pat_a1")
    pages.append(web.client.get("/portal").text)
    # texts the grading core writes in English are marked lang="en" (announced as such): not UI strings
    marked_en = re.compile(r'<(\w+)[^>]*\blang="en"[^>]*>.*?</\1>', re.S)
    shown = html.unescape(marked_en.sub("", "\n".join(pages)))
    leaked = sorted(s for s in english if s in shown)
    assert leaked == []


def test_assets_are_shipped_and_nothing_comes_from_another_site(web: Web) -> None:
    for asset in ("app.css", "app.js", "favicon.svg"):
        resp = web.client.get(f"/static/{asset}")
        assert resp.status_code == 200 and resp.content == (WEB / "static" / asset).read_bytes()
    external = re.compile(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", re.I)
    for path in [*WEB.glob("templates/*.html"), *WEB.glob("static/*")]:
        hits = [
            m.group(0) for m in external.finditer(path.read_text("utf-8")) if "www.w3.org" not in m.group(0)
        ]
        assert hits == [], path
    page = web.client.get("/login").text
    assert re.findall(r'(?:src|href)="(https?:)?//', page) == []


def test_french_patient_page_shows_the_grading_reasons_in_french(web: Web) -> None:
    # issue 11: reasons, fired-rule texts and notes come from the rule data in the page language
    web.login("nurse_a")
    fr = html.unescape(web.client.get("/patients/P-A1").text)
    assert "Fièvre : température 38,5 °C >= 38 °C" in fr
    assert "Syndrome de relargage cytokinique (CRS) — gradation consensuelle ASTCT" in fr
    assert "Le grade 5 exige <code>" not in fr and "Le grade 5 exige `death_due_to_crs`" in fr
    assert "Fever: temperature" not in fr and "most severe domain" not in fr
    web.client.cookies.set(security.LANG_COOKIE, "en")
    en = html.unescape(web.client.get("/patients/P-A1").text)
    assert "Fever: temperature 38.5 °C >= 38 °C" in en
