"""Jurisdiction: whose product label applies is a setting, never inferred (issue 11).

The tocilizumab dose under 30 kg (12 mg/kg) comes only from the product label (ACTEMRA US label
[V2]; RoActemra EU SmPC section 4.2 not read [M]); ASCO CAR-T 2021 gives 8 mg/kg from 30 kg.
The teclistamab ICANS table is the US label's (TECVAYLI USPI, read in PMC10062534 [V2]).
"""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime

import pytest

from immunotox.errors import FindingError
from immunotox.management import recommend
from immunotox.management._vocab import message, vocabulary

NOW = datetime(2025, 3, 2, 12, 0, tzinfo=UTC)
CHILD = {"product": "tisa-cel", "weight_kg": 20, "age_years": 8}
TEC = {"product": "teclistamab", "weight_kg": 70, "age_years": 60, "concurrent_crs_grade": 0}


def toci(r: object) -> object:
    return next(a for a in r.actions if a.dose is not None and a.dose.drug == "tocilizumab")  # type: ignore[attr-defined]


def test_label_only_dose_needs_a_jurisdiction_and_names_its_label() -> None:
    none = toci(recommend("crs", 2, CHILD, now=NOW))
    assert none.dose.amount is None and none.dose.withheld  # type: ignore[attr-defined]
    assert "No jurisdiction configured" in none.dose.not_computed_reason  # type: ignore[attr-defined]
    # no label number either: the 12 mg/kg of the label is not printed anywhere
    check = none.dose.check  # type: ignore[attr-defined]
    assert not any("12 mg" in t for t in [none.dose.not_computed_reason, *check.reasons, *check.warnings])  # type: ignore[attr-defined]
    us = toci(recommend("crs", 2, CHILD, now=NOW, jurisdiction="US"))
    assert us.dose.dose_mg == 240 and us.dose.check.label.source == "actemra-us-label"  # type: ignore[attr-defined]
    eu = recommend("crs", 2, CHILD, now=NOW, jurisdiction="FR", lang="fr")
    assert eu.jurisdiction == "EU"
    assert toci(eu).dose.check.label.verification == "M"  # type: ignore[attr-defined]
    assert any(w.startswith("NON VÉRIFIÉ : les éléments de l'AMM") for w in eu.warnings)


def test_a_guideline_dose_from_30_kg_needs_no_label_and_says_none_is_named() -> None:
    r = recommend("crs", 2, {"product": "axi-cel", "weight_kg": 70, "age_years": 50}, now=NOW)
    d = toci(r).dose  # type: ignore[attr-defined]
    assert d.dose_mg == 560 and d.check.label is None and d.check.jurisdiction is None
    assert any("no product label is named" in x for x in d.check.reasons)


def test_label_actions_apply_only_under_their_jurisdiction() -> None:
    def dexa(j: str | None) -> object:
        r = recommend("icans", 2, TEC, now=NOW, jurisdiction=j)
        return next(a for a in r.actions if a.dose is not None)

    us = dexa("US")
    assert us.dose.dose_mg == 10 and us.label == "US prescribing information (USPI) (US)"  # type: ignore[attr-defined]
    for j, fragment in ((None, "No jurisdiction configured"), ("EU", "not transcribed")):
        a = dexa(j)
        assert a.dose.amount is None and a.withheld and "10 mg" not in a.text  # type: ignore[attr-defined]
        assert fragment in a.dose.not_computed_reason  # type: ignore[attr-defined]
    # the instruction to withhold teclistamab is given whatever the jurisdiction
    r = recommend("icans", 2, TEC, now=NOW)
    assert any(a.kind == "product_action" and "Withhold teclistamab" in a.text for a in r.actions)


def test_unknown_jurisdiction_is_refused_never_defaulted() -> None:
    with pytest.raises(FindingError) as exc:
        recommend("crs", 2, CHILD, now=NOW, jurisdiction="mars")
    assert exc.value.field == "jurisdiction"


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def test_every_engine_message_exists_in_french_and_english_with_the_same_placeholders() -> None:
    for key, text in vocabulary()["message"].items():
        assert text.en.strip() and text.fr.strip(), key
        assert _fields(text.en) == _fields(text.fr), key
    assert (
        message("svc_no_grade", "fr")
        == "aucun grade actuel ≥ 1 : aucune prise en charge de toxicité recommandée"
    )
    assert message("svc_no_grade", "en") == "no current grade >= 1: no toxicity management recommended"


def test_french_rendering_has_no_english_engine_sentence() -> None:
    r = recommend("crs", 4, {"product": "tisa-cel", "weight_kg": 15, "age_years": 4}, now=NOW, lang="fr")
    text = r.explain()
    english = [m.en for m in vocabulary()["message"].values() if len(m.en) > 25 and "{" not in m.en]
    assert not any(e in text for e in english)
    assert "Avertissements" in text and "Warnings" not in text
    assert not re.search(r"\bdose \(NOT allowed", text)
