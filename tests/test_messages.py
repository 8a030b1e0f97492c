"""Texts for people in French and English (issue 11): every text of a translated scale exists in
both languages, with the same parameters, and a French result carries no English sentence.

Driven by the data: every table with a ``text`` in the message files of the translated scales,
and every conformance vector of those scales graded and rendered in both languages.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest

import immunotox
from immunotox import risk
from immunotox.errors import FindingError, RuleSpecError
from immunotox.findings import vocabulary
from immunotox.messages import LANGS, Msg, entry, error_message, html, parse_lang, quote, render, walk
from immunotox.result import GradeResult
from immunotox.scales.ctcae import translated
from immunotox.scales.ctcae_spec import load_table
from tests.test_conformance import CASES

TRANSLATED = {sid: s for sid, s in immunotox.all_scales().items() if s.texts is not None}
SCORES = risk.all_scores()
FILES = sorted(
    {"messages", *(s.texts.name for s in TRANSLATED.values() if s.texts), *(s.file for s in SCORES.values())}
)

# Scales (by id prefix) whose texts are still written in the code, in English. Empty since ICAHT
# (ehaebmt2023) moved its texts to data (issue 11): every scale is translated, and none may be added.
NOT_YET_TRANSLATED: set[str] = set()


# text fields of the risk-score files, each with its French sibling <field>_fr
_RISK_TEXT_FIELDS = ("title", "formula", "notes", "outcome", "population", "timing", "flags")


def _tables(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if isinstance(node.get("text"), str):
            yield path, node
        for k, v in node.items():
            strings = isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
            if k in _RISK_TEXT_FIELDS and strings:
                items = v if isinstance(v, list) else [v]
                fr = node.get(f"{k}_fr")
                frs = fr if isinstance(fr, list) else [fr]
                for i, text in enumerate(items):
                    yield f"{path}.{k}.{i}", {"text": text, "text_fr": frs[i] if i < len(frs) else None}
                continue
            yield from _tables(v, f"{path}.{k}" if path else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _tables(v, f"{path}.{i}")


def _texts(name: str) -> list[tuple[str, dict[str, Any]]]:
    doc = tomllib.loads(resources.files("immunotox").joinpath(f"data/{name}.toml").read_text("utf-8"))
    return list(_tables(doc, ""))


def _params(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


# English words that never belong in a French sentence (code in `backticks` and quotations are
# left out before the check).
_ENGLISH = re.compile(
    r"\b(the|and|with|without|of|is|are|not|no|or|requiring|missing|could|given|fever|grade could|"
    r"criteria|met|due|death|present|above|below|lower bound|most severe)\b",
    re.IGNORECASE,
)
_FRENCH_SAFE = {"grade", "hypotension", "CAPD", "ICE"}
# English words of the computed dose texts (management): « mg/kg/j », « poids réel », « toutes les 6 h »
_DOSE_ENGLISH = re.compile(
    r"\b(day|body|weight|actual|ideal|capped|documented|computed|withheld|every|q\d+h)\b"
)


def english_in(text: str) -> list[str]:
    """English words found in a French text (code spans and quotations removed)."""
    text = re.sub(r"`[^`]*`|«[^»]*»|“[^”]*”|'[^']*'|\([a-z0-9_]+\)|\{[a-z_]+\}", " ", text)
    text = re.sub(r"\b[a-z0-9]+_[a-z0-9_]+\b", " ", text)  # identifiers such as o2_flow_l_min
    text = re.sub(r"\b[a-z0-9]+:[a-z0-9-]+\b", " ", text)  # scale ids such as ctcae5:fever
    return [m.group(0) for m in _ENGLISH.finditer(text) if m.group(0) not in _FRENCH_SAFE]


def english_in_dose(text: str) -> list[str]:
    """English words found in a French dose text (:func:`english_in` and the dose vocabulary)."""
    return english_in(text) + [m.group(0) for m in _DOSE_ENGLISH.finditer(text)]


@pytest.mark.parametrize("name", FILES)
def test_every_text_of_a_translated_file_exists_in_both_languages_with_the_same_parameters(name: str) -> None:
    tables = _texts(name)
    assert tables
    for path, t in tables:
        assert isinstance(t.get("text_fr"), str) and t["text_fr"].strip(), f"{name}:{path}: no text_fr"
        assert _params(t["text"]) == _params(t["text_fr"]), f"{name}:{path}: parameters differ"
        assert not english_in(t["text_fr"]), f"{name}:{path}: English in French: {english_in(t['text_fr'])}"


def _graded(case: dict[str, Any]) -> GradeResult | None:
    try:
        return immunotox.grade(
            case["scale"], case["findings"], ignore_unused=case.get("ignore_unused", False)
        )
    except FindingError:
        return None


TRANSLATED_CASES = [c for c in CASES if c["scale"] in TRANSLATED]


def test_the_translated_scales_have_conformance_vectors() -> None:
    assert {c["scale"] for c in TRANSLATED_CASES} == set(TRANSLATED)
    assert {"astct2019:crs", "astct2019:icans"} <= set(TRANSLATED)


@pytest.mark.parametrize("case", TRANSLATED_CASES, ids=[c["id"] for c in TRANSLATED_CASES])
def test_every_reason_a_scale_produces_renders_in_both_languages(case: dict[str, Any]) -> None:
    r = _graded(case)
    if r is None:
        return
    assert r.texts is not None
    msgs = [r.texts.title, *r.texts.reasons, *r.texts.notes, *r.texts.deciding]
    msgs += [h.message() for h in r.fired]
    for m in msgs:
        untranslated = [x.params["text"] for x in walk(m) if x.id == "verbatim"]
        assert not untranslated, f"text written in the code, not in the data: {untranslated}"
    fr = r.in_lang("fr")
    assert fr.lang == "fr" and fr.grade == r.grade and fr.missing == r.missing
    assert r.in_lang("en").reasons == r.reasons  # English is the default rendering
    explained = fr.explain().split("\nSources :")[0]  # citations keep their own language
    for text in [fr.title, *fr.reasons, *fr.notes, *(h.text for h in fr.fired), explained]:
        assert not english_in(text), f"English in French output: {english_in(text)} in {text[:300]!r}"
    assert fr.reasons != r.reasons


def test_explain_renders_in_the_language_asked_and_a_round_trip_keeps_the_texts() -> None:
    f = {"temperature_c": 39.2, "hypotension": True, "vasopressors": ["norepinephrine"]}
    r = immunotox.grade("astct2019:crs", f)
    again = GradeResult.model_validate(r.model_dump(mode="json"))  # as the service stores it
    assert again.explain("fr") == r.explain("fr") == immunotox.grade("astct2019:crs", f, lang="fr").explain()
    text = r.explain("fr")
    assert "Fièvre : température 39,2 °C >= 38 °C → grade 1" in text
    assert (
        "Hypotension nécessitant un vasopresseur, avec ou sans vasopressine (norepinephrine) → grade 3"
        in text
    )
    assert "Données manquantes : oxygen" in text and "oxygen : Support en oxygène le plus intensif" in text
    assert "Fever: temperature 39.2 °C >= 38 °C → grade 1" in r.explain()


def test_a_missing_translation_is_a_packaging_error() -> None:
    with pytest.raises(RuleSpecError, match="no table"):
        render(Msg(id="scales/astct2019:messages.no_such_text"), "fr")
    with pytest.raises(RuleSpecError, match="parameter 'temp' not given"):
        render(Msg(id="scales/astct2019:messages.no_fever", params={"thr": 38.0}), "fr")
    assert entry("scales/astct2019:messages.no_fever")["text_fr"].startswith("Pas de fièvre")


def test_quotations_of_an_english_source_stay_in_english_and_are_marked() -> None:
    m = Msg(id="messages:hit_grade", params={"text": quote("Hospitalization <24 hrs"), "grade": 2})
    assert render(m, "fr") == "“Hospitalization <24 hrs” → grade 2"
    assert html(m, "fr") == '<q lang="en">Hospitalization &lt;24 hrs</q> → grade 2'


@pytest.mark.parametrize("bad", ["de", "FR", "", None, "english"])
def test_unknown_language_is_refused(bad: Any) -> None:
    with pytest.raises(FindingError, match=r"^lang = .*unknown language; expected one of \['en', 'fr'\]"):
        parse_lang(bad)


def test_languages() -> None:
    assert LANGS == ("en", "fr")


def test_every_scale_is_translated() -> None:
    """Every scale of the catalogue has its texts as data, in French and English (issue 11)."""
    missing = {sid.split(":")[0] for sid, s in immunotox.all_scales().items() if s.texts is None}
    assert missing == NOT_YET_TRANSLATED == set()
    assert {"ehaebmt2023:icaht", "ehaebmt2023:icaht-early", "ehaebmt2023:icaht-late"} <= set(TRANSLATED)


def _full_findings(score: risk.ScoreSpec) -> dict[str, Any]:
    """Every input of ``score`` given, in its canonical unit, mid-range (booleans true)."""
    out: dict[str, Any] = {}
    for key in score.inputs:
        spec = vocabulary()[key]
        if spec.kind == "bool":
            out[key] = True
        else:
            assert spec.range is not None
            lo, hi = spec.range
            out[key] = {"value": lo + (hi - lo) / 4 or 1.0, "unit": spec.unit}
    return out


@pytest.mark.parametrize("score_id", list(SCORES))
@pytest.mark.parametrize("complete", [True, False])
def test_every_risk_score_text_renders_in_both_languages(score_id: str, complete: bool) -> None:
    spec = SCORES[score_id]
    r = risk.score(score_id, _full_findings(spec) if complete else {})
    assert r.texts is not None and r.lang == "en"
    msgs = [r.texts.title, *r.texts.reasons, *r.texts.notes, *r.texts.flags]
    if r.texts.risk is not None:
        rt = r.texts.risk
        msgs += [rt.label, rt.rule, rt.outcome, rt.population, rt.timing]
    assert not [x.params["text"] for m in msgs for x in walk(m) if x.id == "verbatim"]
    fr = r.in_lang("fr")
    assert fr.value == r.value and fr.missing == r.missing and fr.reasons != r.reasons
    explained = fr.explain().split("\nSources :")[0]
    assert not english_in(explained), english_in(explained)
    assert r.explain("en") == r.explain() and fr.explain("en") == r.explain()


# CTCAE tables whose every text for people has its French beside it (a table leaves this list
# never: a text added in English only fails here).
CTCAE_TRANSLATED = ("ctcae5", "ctcae4")


@pytest.mark.parametrize("name", CTCAE_TRANSLATED)
def test_every_ctcae_term_text_exists_in_french(name: str) -> None:
    """The term names, notes, analytes, adjustments, named conditions and implications of a CTCAE table have
    their French sibling, without English (the NCI wording they cite is quoted “…”)."""
    table = load_table(name)
    assert translated(table), f"{name}: a term_fr, notes_fr, analyte_fr or text_fr is missing"
    pairs = list(zip(table.meta.notes, table.meta.notes_fr, strict=True))
    for slug, t in table.term.items():
        pairs += [(t.term, t.term_fr), *zip(t.notes, t.notes_fr, strict=True)]
        pairs += [(i.text, i.text_fr) for i in t.implied]
        if t.lab:
            pairs += [(t.lab.analyte, t.lab.analyte_fr)]
            pairs += [(c.text, c.text_fr) for c in t.lab.conditions.values()]
            pairs += [(a.name, a.name_fr) for a in t.lab.adjust] + [
                (a.formula, a.formula_fr) for a in t.lab.adjust
            ]
        for en, fr in pairs:
            assert fr.strip() and not english_in(fr), f"{name}:{slug}: {english_in(fr)} in {fr!r} ({en!r})"
    scales = [s for sid, s in immunotox.all_scales().items() if sid.startswith(f"{name}:")]
    assert scales and all(s.texts is not None and s.texts.name == "scales/ctcae" for s in scales)


def test_explain_names_a_missing_lab_input_by_what_it_is_in_the_users_language() -> None:
    """A missing ULN was named « uln : uln »: it is the ULN of the term's analyte, in its unit."""
    r = immunotox.grade("ctcae5:alanine-aminotransferase-increased", {"value": 250})
    assert r.missing == ["uln", "baseline"]
    fr = r.explain("fr")
    assert "  - uln : Limite supérieure de la normale du dosage (ALAT) (U/L)" in fr
    assert "  - baseline : ALAT de référence : valeur avant le traitement évalué (U/L)" in fr
    assert "uln : uln" not in fr
    assert "  - uln: Upper limit of normal of the ALT assay (U/L)" in r.explain("en")
    hapto = immunotox.grade("ctcae5:haptoglobin-decreased", {"value": {"value": 0.2, "unit": "g/L"}})
    assert "  - lln : Limite inférieure de la normale du dosage (Haptoglobine) (g/L)" in hapto.explain("fr")


@pytest.mark.parametrize(
    ("scale", "findings", "en", "fr"),
    [
        (
            "astct2019:crs",
            {"temperature_c": 55},
            "temperature_c = 55: outside the physiologically possible range 25–45 °C. Hint: check the unit "
            "and the decimal point",
            "temperature_c = 55 : hors de l'intervalle physiologiquement possible 25–45 °C. Indication : "
            "vérifiez l'unité et la virgule décimale",
        ),
        (
            "astct2019:crs",
            {"temperature_c": {"value": 38, "unit": "mg"}},
            "temperature_c.unit = 'mg': cannot convert 'mg' to 'Cel' for temperature_c. Hint: use a unit of "
            "the same kind, such as 'Cel' or '[degF]'",
            "temperature_c.unit = 'mg' : impossible de convertir 'mg' en 'Cel' pour temperature_c. "
            "Indication : utilisez une unité de même nature, telle que 'Cel' ou '[degF]'",
        ),
        (
            "ehaebmt2023:icaht",
            {"anc_series": [{"day": 0, "value": 2}]},
            "anc_series[0].value = 2: a bare number is refused: laboratories report this analyte in "
            "different units (French and US labs differ), so the unit is never guessed. Hint: give it as "
            '{"value": 2, "unit": "<UCUM>"} with the unit of your laboratory, e.g. \'10*9/L\' or \'/uL\', '
            'or the unit once for the whole series: {"unit": "<UCUM>", "points": [...]}',
            "anc_series[0].value = 2 : un nombre sans unité est refusé : les laboratoires rendent cette "
            "analyse dans des unités différentes (laboratoires français et américains), l'unité n'est donc "
            'jamais devinée. Indication : donnez-la sous la forme {"value": 2, "unit": "<UCUM>"} avec '
            "l'unité de votre laboratoire, p. ex. '10*9/L' ou '/uL', ou l'unité une fois pour toute la "
            'série : {"unit": "<UCUM>", "points": [...]}',
        ),
        (
            "ehaebmt2023:icaht",
            {"anc_series": {"unit": "/uL", "points": [{"date": "2024-03-01", "value": 400}]}},
            "anc_series[0].date = '2024-03-01': a date needs infusion_date to be converted to a day after "
            "infusion. Hint: give infusion_date, or days instead of dates",
            "anc_series[0].date = '2024-03-01' : une date exige infusion_date pour être convertie en jour "
            "après la perfusion. Indication : donnez infusion_date, ou des jours au lieu de dates",
        ),
    ],
)
def test_a_refused_finding_is_explained_in_french_and_english(
    scale: str, findings: dict[str, Any], en: str, fr: str
) -> None:
    """Field, value as given, problem and expectation; the value is never translated (issue 11)."""
    with pytest.raises(FindingError) as err:
        immunotox.grade(scale, findings)
    assert str(err.value) == error_message(err.value, "en") == en
    assert error_message(err.value, "fr") == fr
    assert not english_in(fr.split(" : ", 1)[1].replace("'/uL'", ""))
    import pickle

    again = pickle.loads(pickle.dumps(err.value))
    assert (str(again), error_message(again, "fr")) == (en, fr)


def test_every_error_text_exists_in_both_languages() -> None:
    errors = [(p, t) for p, t in _texts("messages") if p.startswith("errors.")]
    assert len(errors) > 40
    for path, t in errors:
        assert t["text_fr"] and _params(t["text"]) == _params(t["text_fr"]), path
