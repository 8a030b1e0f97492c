"""Guideline sets chosen by product class (issue 11 item 3).

Teclistamab's label (TECVAYLI US prescribing information, neurologic toxicity table, read in
PMC10062534 [V2]) withholds teclistamab at ICANS grade 2 with dexamethasone 10 mg IV every 6 h;
the ASCO CAR-T 2021 set is written for CAR-T cells, the ASCO ICI 2021 set for checkpoint
inhibitors (which does not manage CRS).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from immunotox.errors import FindingError, RuleSpecError
from immunotox.management import recommend

NOW = datetime(2025, 3, 2, 12, 0, tzinfo=UTC)
ADULT = {"age_years": 60, "weight_kg": 70}


def test_teclistamab_icans_grade_2_gets_the_label_set_and_withholds_teclistamab() -> None:
    ctx = ADULT | {"product": "teclistamab", "concurrent_crs_grade": 0}
    r = recommend("icans", 2, ctx, now=NOW, jurisdiction="US")
    assert r.guideline.id == "labels-bispecific" and r.covered
    withhold = [a for a in r.actions if a.kind == "product_action"]
    assert withhold and withhold[0].text.startswith("Withhold teclistamab")
    assert all(a.guideline == "labels-bispecific@0.1.0" for a in r.actions)
    dexa = next(a for a in r.actions if a.dose is not None)
    assert dexa.dose is not None and (dexa.dose.dose_mg, dexa.interval_h) == (10, 6)


def test_pembrolizumab_with_crs_is_not_managed_by_the_car_t_set() -> None:
    r = recommend("crs", 2, ADULT | {"product": "pembrolizumab"}, now=NOW, lang="fr")
    assert not r.covered and r.actions == [] and r.guideline.id == "asco2021-ici"
    assert "n'est pas couvert" in r.warnings[0] and "asco2021-cart@1.0.0" in r.warnings[0]


def test_therapy_class_decides_without_a_product() -> None:
    r = recommend("crs", 3, ADULT | {"therapy_class": "car_t"}, now=NOW)
    assert r.guideline.id == "asco2021-cart"
    with pytest.raises(FindingError) as exc:  # the bispecific set's rules are product-specific
        recommend("crs", 1, ADULT | {"therapy_class": "bispecific"}, now=NOW)
    assert exc.value.field == "context.product"


@pytest.mark.parametrize(
    ("context", "kw", "field", "fragment"),
    [
        ({"product": "pembrolizumab", "therapy_class": "car_t"}, {}, "context.product", "not 'car_t'"),
        ({"product": ["axi-cel", "nivolumab"]}, {}, "context.product", "different therapy classes"),
        ({}, {}, "context.therapy_class", "never a CAR-T default"),
        ({"therapy_class": "chemo"}, {}, "context.therapy_class", "unknown therapy class"),
        ({"product": "teclistamab"}, {"guideline": "asco2021-cart"}, "guideline", "not for teclistamab"),
    ],
)
def test_product_class_and_set_must_agree(
    context: dict[str, object], kw: dict[str, str], field: str, fragment: str
) -> None:
    with pytest.raises(FindingError) as exc:
        recommend("crs", 2, ADULT | context, now=NOW, **kw)  # type: ignore[arg-type]
    assert exc.value.field == field and fragment in str(exc.value)


LOCAL = """
id = "my-bispecific"
version = "1"
lifecycle = "draft"
title.en = "Local bispecific set"
title.fr = "Jeu local bispécifiques"
sources = ["crombie2024"]
product_classes = ["bispecific"]

[population]
age_from_years = 18
text.en = "adults"
text.fr = "adultes"
source = "crombie2024"
locator = "scope"
verification = "D"

[toxicity.crs]
title.en = "CRS"
title.fr = "CRS"
grades = [1, 4]
scales = ["astct2019:crs"]
[[toxicity.crs.defer]]
grades = [3, 4]
to = "asco2021-cart"
text.en = "severe CRS: manage as after CAR-T cells"
text.fr = "CRS sévère : prise en charge comme après CAR-T"
source = "crombie2024"
locator = "test fixture: a deferral a source would state"
verification = "D"

[[rule]]
id = "crs-g1"
toxicity = "crs"
grades = [1]
[[rule.action]]
kind = "monitoring"
text.en = "Observe."
text.fr = "Surveiller."
source = "crombie2024"
locator = "CRS grade 1"
verification = "D"
"""


def test_a_set_defers_only_where_it_says_so_and_the_answer_cites_it(tmp_path: Path) -> None:
    (tmp_path / "my-bispecific.toml").write_text(LOCAL, "utf-8")
    ctx = ADULT | {"product": "glofitamab"}
    kw = {"guideline": "my-bispecific", "guideline_dirs": [tmp_path], "now": NOW}
    r = recommend("crs", 3, ctx, **kw)  # type: ignore[arg-type]
    assert r.guideline.id == "asco2021-cart"
    assert any("refers to asco2021-cart@1.0.0" in w and "Crombie" in w for w in r.warnings)
    r = recommend("crs", 2, ctx, **kw)  # type: ignore[arg-type]
    assert r.guideline.id == "my-bispecific" and r.actions == []
    assert any("does not refer to another set" in w for w in r.warnings)
    (tmp_path / "my-bispecific.toml").write_text(
        LOCAL.replace('to = "asco2021-cart"', 'to = "asco2021-ici"'), "utf-8"
    )
    with pytest.raises(RuleSpecError, match="defers to 'asco2021-ici', which does not manage it"):
        recommend("crs", 3, ctx, **kw)  # type: ignore[arg-type]
