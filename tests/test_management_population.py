"""The population gate: no amount written for adults reaches a child, a missing age is a missing
input, and every printed amount stays within the source's maxima for its population.

Golden cases: ASCO CAR-T 2021 (Santomasso et al., JCO 2021;39(35):3978, Tables 1-2) writes adult
doses (dexamethasone 10 mg, methylprednisolone 500 mg / 1,000 mg); tocilizumab's CRS indication
is for patients 2 years and older, 12 mg/kg under 30 kg, 8 mg/kg from 30 kg, at most 800 mg per
infusion (ACTEMRA US label; RoActemra EU SmPC section 4.1). Tisagenlecleucel is licensed in B-ALL
up to 25 years (Kymriah SmPC section 4.1 / USPI section 1, tagged M in data/drugs.toml).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from immunotox.management import Recommendation, dose_gate, list_guidelines, recommend
from immunotox.management._drugs import WEIGHT_PLAUSIBLE_KG, drug_data
from immunotox.management._population import AMOUNT_RE

from .test_management import assert_within_documented_max

NOW = datetime(2025, 3, 2, 12, 0, tzinfo=UTC)
CHILD_CRS4 = {"product": "tisa-cel", "weight_kg": 15, "age_years": 4}
# an independent, broader pattern than the gate's own: any number followed by a mass or unit
ANY_AMOUNT = re.compile(r"\d\s*(?:mg|µg|ug|mcg|g|U|IU|UI|units?|unités?)(?![A-Za-zÀ-ÿ])")


def texts(r: Recommendation) -> list[str]:
    out = [w for w in r.warnings]
    for a in r.actions:
        out += [a.text, a.escalation or ""]
        if a.dose is not None and (a.dose.withheld or a.dose.check is None):
            out.append(a.dose.expression)
    return out


def test_child_crs_grade_4_gets_no_adult_steroid_amount_but_the_label_tocilizumab_dose() -> None:
    r = recommend("crs", 4, CHILD_CRS4, now=NOW, lang="fr", jurisdiction="US")
    assert r.population is not None and not r.population.covered
    assert r.population.population == "adultes (18 ans et plus)"
    methyl = [a for a in r.actions if a.dose is not None and a.dose.drug == "methylprednisolone"]
    assert methyl and all(a.withheld and a.dose and a.dose.amount is None for a in methyl)
    assert all("500" not in a.text and "1 000" not in a.text for a in r.actions)
    assert any(
        "Patient pédiatrique : dose selon le protocole pédiatrique de l'unité." in w for w in r.warnings
    )
    toci = next(a for a in r.actions if a.dose is not None and a.dose.drug == "tocilizumab")
    assert toci.dose is not None and toci.dose.dose_mg == 180.0  # 12 mg/kg x 15 kg, label population >= 2 y
    for t in texts(r):
        assert not ANY_AMOUNT.search(t), t


def test_child_crs_grade_3_and_icans_get_no_dexamethasone_amount() -> None:
    for tox, grade, extra in (
        ("crs", 3, {}),
        ("icans", 2, {"concurrent_crs_grade": 0}),
        ("icans", 3, {"concurrent_crs_grade": 1}),
    ):
        r = recommend(tox, grade, CHILD_CRS4 | extra, now=NOW)
        dexa = [a for a in r.actions if a.dose is not None and a.dose.drug == "dexamethasone"]
        assert dexa and all(a.dose and a.dose.withheld and a.dose.amount is None for a in dexa)
        assert any("Paediatric patient: dose per the unit's paediatric protocol." in w for w in r.warnings)


def test_a_missing_age_for_a_product_licensed_in_children_is_a_missing_input() -> None:
    r = recommend("crs", 3, {"product": "tisa-cel", "weight_kg": 60}, now=NOW)
    assert r.missing == ["context.age_years"]
    assert all(a.dose is None or a.dose.amount is None for a in r.actions)
    assert any("A missing age is never read as adult" in w for w in r.warnings)
    # an adult-only product: the set's adult doses apply without an age
    r = recommend("crs", 3, {"product": "axi-cel", "weight_kg": 60}, now=NOW)
    assert r.missing == [] and r.population is not None and r.population.covered
    # the licensed ages that let the adult doses through are shipped unverified, and say so
    assert any("licensed population of axi-cel (EU) is NOT verified" in w for w in r.warnings)
    dexa = next(a for a in r.actions if a.dose is not None and a.dose.drug == "dexamethasone")
    assert dexa.dose is not None and dexa.dose.dose_mg == 10


def test_band_edges_of_the_adult_population() -> None:
    young = recommend("crs", 3, {"product": "tisa-cel", "weight_kg": 60, "age_years": 17.99}, now=NOW)
    adult = recommend("crs", 3, {"product": "tisa-cel", "weight_kg": 60, "age_years": 18}, now=NOW)
    assert young.population is not None and not young.population.covered
    assert adult.population is not None and adult.population.covered
    assert "Paediatric patient" in " ".join(young.warnings) and not adult.missing


def test_every_packaged_set_and_dose_rule_declares_its_population() -> None:
    for gs in list_guidelines():
        assert gs.population.text.en and gs.population.text.fr and gs.population.locator
    for rule in drug_data().dose_rules.values():
        assert rule.population.age_from_years == 2  # tocilizumab-crs: the label's CRS indication
    for p in drug_data().products.values():
        if p.id.endswith("-other"):
            assert p.licensed == {}  # investigational: population unknown
        else:
            assert set(p.licensed) == {"EU", "US"}
            assert all(lic.verification == "M" for lic in p.licensed.values())  # shipped marked


def test_gate_redaction_pattern_finds_every_amount_of_the_shipped_texts() -> None:
    for gs in list_guidelines():
        for rr in gs.rules:
            for a in rr.rule.action:
                for lang in ("en", "fr"):
                    t = a.text.get(lang)
                    assert bool(AMOUNT_RE.search(t)) == bool(ANY_AMOUNT.search(t)), t


DOSED = sorted(
    {
        (gs.id, tox, g)
        for gs in list_guidelines()
        for rr in gs.rules
        for tox in rr.rule.toxicities
        for g in rr.rule.grades
        if any(a.dose is not None for a in rr.rule.action)
    }
)
PRODUCT_OF = {
    "asco2021-cart": "tisa-cel",
    "labels-bispecific": "teclistamab",
    "asco2021-ici": "pembrolizumab",
    "example-local-fr": "tisa-cel",
}
WEIGHT_EDGES = sorted({WEIGHT_PLAUSIBLE_KG[0], WEIGHT_PLAUSIBLE_KG[1], 29.999, 30.0, 30.001, 100.0, 100.1})
AGE_EDGES = [0.0, 1.99, 2.0, 17.99, 18.0, 25.99, 26.0, 100.0]


@settings(max_examples=200, deadline=None)
@given(
    case=st.sampled_from(DOSED),
    age=st.one_of(st.floats(min_value=0, max_value=100), st.sampled_from(AGE_EDGES)),
    weight=st.one_of(
        st.floats(min_value=WEIGHT_PLAUSIBLE_KG[0], max_value=WEIGHT_PLAUSIBLE_KG[1]),
        st.sampled_from(WEIGHT_EDGES),
    ),
)
def test_outside_a_sets_population_no_amount_and_inside_every_amount_within_the_maxima(
    case: tuple[str, str, int], age: float, weight: float
) -> None:
    gid, tox, grade = case
    product = PRODUCT_OF[gid]
    ctx: dict[str, Any] = {
        "weight_kg": weight,
        "ideal_body_weight_kg": min(weight, 150),
        "age_years": age,
        "product": product,
    }
    if tox == "icans":
        ctx["concurrent_crs_grade"] = 1
    r = recommend(tox, grade, ctx, guideline=gid, now=NOW, jurisdiction="US")
    assert r.population is not None
    inside = r.population.covered
    assert inside == (age >= 18)  # every shipped set is written for adults
    for a in r.actions:
        d = a.dose
        if not inside:
            for t in (a.text, a.escalation or ""):
                assert not ANY_AMOUNT.search(t), t
        if d is None:
            continue
        if d.check is not None:  # tocilizumab: its own label population, 2 years and older
            if age < 2:
                assert d.amount is None and d.withheld
            else:
                assert d.dose_mg is not None
                assert d.dose_mg <= 800 and d.dose_mg <= (12 if weight < 30 else 8) * weight + 1e-9
            continue
        if not inside:
            assert d.amount is None and d.amount_range is None and d.withheld
            continue
        if d.computed:
            assert_within_documented_max(d)


def test_dose_gate_is_the_one_used_by_the_public_api() -> None:
    from immunotox.management._drugs import dose_rule

    g = dose_gate(dose_rule("tocilizumab-crs").population, age_years=1, weight_kg=9, licences=None, what="x")
    assert not g.covered and "paediatric protocol" in (g.reason or "")


def test_a_recorded_dose_outside_the_population_is_flagged_by_the_same_gate() -> None:
    from immunotox.management import RecordedDose, review_recorded_doses

    found = review_recorded_doses(
        "tocilizumab-crs", [RecordedDose("1", NOW, 100.0)], ["1"], weight_kg=9, age_years=1
    )
    assert [(f.kind, f.state) for f in found] == [("population", "outside_population")]
    assert "Patient pédiatrique" in found[0].detail.fr and "2 years and older" in found[0].detail.en
    # 12 mg/kg under 30 kg: 9 kg -> at most 108 mg
    found = review_recorded_doses(
        "tocilizumab-crs", [RecordedDose("1", NOW, 120.0)], ["1"], weight_kg=9, age_years=5
    )
    assert [(f.kind, f.state) for f in found] == [("max_mg_per_kg", "exceeded")]
