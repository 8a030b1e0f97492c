"""Management recommendations: guideline sets as data, the engine, provenance and bad input.

Expected actions cite the source row they come from: ASCO CAR-T 2021 (Santomasso et al., JCO
2021;39(35):3978, pocket guide Tables 1-2) and ASCO ICI 2021 (Schneider et al., JCO
2021;39(36):4073, doi:10.1200/JCO.21.01440, organ tables; pocket guide, Guideline Central).
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import immunotox
from immunotox.errors import FindingError, RuleSpecError
from immunotox.management import Recommendation, list_guidelines, load_guideline, recommend
from immunotox.management._drugs import drug, drug_data
from immunotox.management._inputs import format_time
from immunotox.result import GradeResult
from immunotox.sources import all_sources

NOW = datetime(2025, 3, 2, 12, 0, tzinfo=UTC)
CTX70 = {"weight_kg": 70, "at": "2025-03-02T12:00:00Z"}


ADULT = {"age_years": 50}


def rec(
    toxicity: Any, grade: int | None = None, context: dict[str, Any] | None = None, **kw: Any
) -> Recommendation:
    """An adult patient under US labels unless the test says otherwise (the population gate and
    the jurisdiction have their own tests)."""
    kw.setdefault("jurisdiction", "US")
    ctx = ADULT | context if isinstance(context, dict) else ADULT if context is None else context
    if isinstance(ctx, dict) and "product" not in ctx and "therapy_class" not in ctx:
        ctx = ctx | {"therapy_class": therapy_class_for(toxicity, kw.get("guideline"))}
    return recommend(toxicity, grade, ctx, now=NOW, **kw)


def therapy_class_for(toxicity: Any, guideline: str | None) -> str:
    """The therapy class a test means when it names neither product nor class (the set decides)."""
    if guideline is not None and guideline in {g.id for g in list_guidelines()}:
        return drug_data().therapy_class_of(load_guideline(guideline).product_classes[0]) or "car_t"
    name = toxicity.scale if isinstance(toxicity, GradeResult) else str(toxicity)
    return "car_t" if any(k in name for k in ("crs", "icans", "iec-hs")) else "checkpoint_inhibitor"


def ago(hours: float) -> str:
    return format_time(NOW - timedelta(hours=hours))


def drugs_of(r: Recommendation) -> list[str]:
    return [a.dose.drug for a in r.actions if a.dose is not None]


def action_with(r: Recommendation, drug_id: str) -> Any:
    return next(a for a in r.actions if a.dose is not None and a.dose.drug == drug_id)


# ------------------------------------------------------------------------------ every action is cited
def product_for(set_id: str) -> str:
    """A product of a class the set is written for (axi-cel for the CAR-T sets)."""
    classes = load_guideline(set_id).product_classes
    if "cart-cd19" in classes:
        return "axi-cel"
    return next(p.id for p in drug_data().products.values() if p.product_class in classes)


def all_cases() -> list[tuple[str, str, str, int, dict[str, Any]]]:
    """(set, rule id, toxicity, grade, context) for every rule and grade; the context meets its conditions."""
    classes = {p.product_class: p.id for p in reversed(drug_data().products.values())}
    cases: list[tuple[str, str, str, int, dict[str, Any]]] = []
    for gs in list_guidelines():
        for rr in gs.rules:
            w = rr.rule.when
            ctx: dict[str, Any] = {"weight_kg": 70, "ideal_body_weight_kg": 62, "product": product_for(gs.id)}
            if w.product_in:
                ctx["product"] = w.product_in[0]
            if w.product_class_in:
                ctx["product"] = classes[w.product_class_in[0]]
            crs = w.concurrent_crs_grade_min if w.concurrent_crs_grade_min is not None else 0
            for tox in rr.rule.toxicities:
                c = dict(ctx)
                if (
                    "concurrent_crs_grade" in gs.toxicities[tox].requires
                    or w.concurrent_crs_grade_max is not None
                ) or w.concurrent_crs_grade_min is not None:
                    c["concurrent_crs_grade"] = crs
                for g in rr.rule.grades:
                    cases.append((gs.id, rr.rule.id, tox, g, c))
    return cases


CASES = all_cases()


@pytest.mark.parametrize(
    ("gid", "rule", "tox", "grade", "ctx"), CASES, ids=[f"{c[0]}:{c[1]}:g{c[3]}" for c in CASES]
)
def test_every_rule_is_reachable_and_every_action_cites_its_source(
    gid: str, rule: str, tox: str, grade: int, ctx: dict[str, Any]
) -> None:
    r = rec(tox, grade, ctx, guideline=gid)
    assert any(a.rule.endswith("/" + rule) for a in r.actions), f"{gid}/{rule} not selected for grade {grade}"
    assert r.guideline.id == gid and r.guideline.version and len(r.guideline.sha256) == 64
    known = all_sources()
    for a in r.actions:
        assert a.sources, a
        for s in a.sources:
            assert s.key in known and s.citation and s.locator
            assert s.verification in ("V", "V2", "M", "D")
        assert re.fullmatch(r"[a-z0-9-]+@[0-9.]+", a.guideline)
        assert a.rule.startswith(a.guideline + "/")
        if a.verification == "M":
            assert a.unverified and a.text.startswith("UNVERIFIED")
        else:
            assert not a.unverified and not a.text.startswith("UNVERIFIED")
        if a.verification == "D":
            assert a.derived and a.text.startswith("Project interpretation")
    assert r.unverified_actions == sum(a.unverified for a in r.actions)
    if r.unverified_actions:
        assert any("NOT verified" in w for w in r.warnings)


def test_every_guideline_set_is_bilingual_and_lists_its_sources() -> None:
    for gs in list_guidelines():
        assert gs.title.en and gs.title.fr
        for rr in gs.rules:
            for a in rr.rule.action:
                assert a.text.en.strip() and a.text.fr.strip() and a.text.en != a.text.fr
        assert gs.sources


# ------------------------------------------------------------------------------ CRS (ASCO CAR-T 2021)
def test_crs_grade_2_tocilizumab_dose_and_provenance() -> None:
    r = rec("crs", 2, CTX70)
    assert r.toxicity == "crs" and r.guideline.id == "asco2021-cart" and r.guideline.version == "1.0.0"
    toci = action_with(r, "tocilizumab")
    assert toci.dose.dose_mg == 560.0 and toci.dose.weight_kg == 70 and toci.dose.cap == 800
    assert toci.dose.interval_h == 8 and toci.dose.route == "IV"
    assert toci.dose.check.allowed is True
    assert toci.sources[0].key == "santomasso2021"
    assert toci.rule == "asco2021-cart@1.0.0/crs-g2"
    assert toci.escalation and "grade 3" in toci.escalation
    # the ASCO G2 dexamethasone interval is [M]: emitted flagged, no interval invented
    dex = action_with(r, "dexamethasone")
    assert dex.unverified and dex.dose.dose_mg == 10 and dex.dose.interval_h is None
    assert "NOT verified" in dex.text


def test_crs_grade_1_unverified_tocilizumab_trigger_is_flagged_or_left_out() -> None:
    r = rec("crs", 1, CTX70)
    toci = action_with(r, "tocilizumab")
    assert toci.unverified and toci.verification == "M"
    v = rec("crs", 1, {}, verified_only=True)  # no weight needed once the unverified dose is left out
    assert "tocilizumab" not in drugs_of(v)
    assert all(a.verification in ("V", "V2") for a in v.actions)
    assert any("left out on request" in w for w in v.warnings)


def test_crs_grade_3_dexamethasone_every_6_hours() -> None:
    r = rec("crs", 3, CTX70)
    dex = action_with(r, "dexamethasone")
    assert (dex.dose.dose_mg, dex.dose.interval_h, dex.verification) == (10, 6, "V")
    assert any(a.kind == "admission" and a.referral and a.referral.id == "intensive_care" for a in r.actions)


def test_crs_grade_4_methylprednisolone_schedule_and_escalation() -> None:
    r = rec("crs", 4, CTX70)
    mp = [a for a in r.actions if a.dose is not None and a.dose.drug == "methylprednisolone"]
    assert [(a.kind, a.dose.dose_mg, a.dose.interval_h) for a in mp] == [
        ("drug", 500, 12),
        ("escalation", 1000, 12),
    ]
    assert "anakinra" in mp[1].text and all(a.verification == "V" for a in mp)


def test_product_specific_variant_axicel_brexucel() -> None:
    axi = rec("crs", 1, CTX70 | {"product": "Yescarta"})
    ids = {a.rule.split("/")[1] for a in axi.actions}
    assert {"crs-product-axicel-brexucel", "crs-g1-axicel-brexucel"} <= ids
    note = next(a for a in axi.actions if a.rule.endswith("crs-product-axicel-brexucel"))
    assert "earlier corticosteroid" in note.text and note.verification == "V"
    assert note.condition == "product_in [axi-cel, brexu-cel]"
    tisa = rec("crs", 1, CTX70 | {"product": "tisa-cel"})
    assert not any("axicel" in a.rule for a in tisa.actions)
    assert not any("Product not given" in w for w in tisa.warnings)
    unknown = rec("crs", 1, CTX70)
    assert any("Product not given" in w and "crs-g1-axicel-brexucel" in w for w in unknown.warnings)
    icans = rec("icans", 3, CTX70 | {"product": "brexu-cel", "concurrent_crs_grade": 0})
    assert any(a.rule.endswith("icans-g3-axicel-brexucel") for a in icans.actions)


# ------------------------------------------------------------------------------ ICANS with / without CRS
@pytest.mark.parametrize("grade", [1, 2, 3])
def test_icans_tocilizumab_only_with_concurrent_crs(grade: int) -> None:
    without = rec("icans", grade, CTX70 | {"concurrent_crs_grade": 0})
    assert "tocilizumab" not in drugs_of(without)
    with_crs = rec("icans", grade, CTX70 | {"concurrent_crs_grade": 1})
    toci = action_with(with_crs, "tocilizumab")
    assert toci.dose.dose_mg == 560 and toci.rule.endswith("icans-with-crs-tocilizumab")
    assert "Caution with repeated tocilizumab doses" in toci.text


def test_icans_grade_1_without_crs_is_supportive_care() -> None:
    r = rec("icans", 1, {"concurrent_crs_grade": 0})
    assert any("Tocilizumab is not indicated without CRS" in a.text for a in r.actions)
    assert any(a.referral and a.referral.id == "neurology" for a in r.actions)
    assert drugs_of(r) == []


def test_icans_grade_2_steroids_differ_with_and_without_crs() -> None:
    without = rec("icans", 2, CTX70 | {"concurrent_crs_grade": 0})
    dex = action_with(without, "dexamethasone")
    assert (dex.dose.dose_mg, dex.dose.interval_h, dex.dose.doses) == (10, (6.0, 12.0), 2)
    with_crs = rec("icans", 2, CTX70 | {"concurrent_crs_grade": 2})
    mp = action_with(with_crs, "methylprednisolone")
    assert (mp.dose.dose_mg, mp.dose.interval_h) == (70, 12)  # 1 mg/kg q12h
    assert any(a.rule.endswith("icans-g2-with-crs-g2plus-icu") for a in with_crs.actions)
    assert not any(
        a.rule.endswith("icans-g2-with-crs-g2plus-icu")
        for a in rec("icans", 2, CTX70 | {"concurrent_crs_grade": 1}).actions
    )


def test_icans_requires_the_concurrent_crs_grade() -> None:
    with pytest.raises(FindingError, match="missing: required for icans") as exc:
        rec("icans", 2, CTX70)
    assert exc.value.field == "context.concurrent_crs_grade"


def test_icans_grade_4_is_unverified() -> None:
    r = rec("icans", 4, CTX70 | {"concurrent_crs_grade": 0})
    g4 = [a for a in r.actions if a.rule.endswith("/icans-g4")]
    assert g4 and all(a.unverified for a in g4)
    mp = action_with(r, "methylprednisolone")
    assert mp.dose.dose_mg == 1000 and mp.dose.per == "day" and mp.unverified


# ------------------------------------------------------------------------------ IEC-HS
def test_iechs_first_line_is_flagged_unverified_without_doses() -> None:
    r = rec("iec-hs", 2)
    assert [a.verification for a in r.actions] == ["M", "M", "D"]
    assert all(a.dose is None for a in r.actions)
    assert "anakinra" in r.actions[0].text
    res = immunotox.grade("astct2023:iec-hs", {"iec_hs_present": True, "iec_hs_grade": 3})
    r2 = rec(res)
    assert (
        r2.toxicity == "iec-hs"
        and r2.grade == 3
        and r2.grade_input
        and r2.grade_input.scale == "astct2023:iec-hs"
    )


# ---------------------------------------------------------------- tocilizumab limits in a recommendation
def test_fifth_tocilizumab_dose_is_replaced_by_a_refusal() -> None:
    doses = [{"drug": "tocilizumab", "time": ago(h)} for h in (40, 32, 24, 16)]
    r = rec("crs", 3, CTX70 | {"doses_given": doses})
    refused = [a for a in r.actions if a.refused]
    assert len(refused) == 1
    a = refused[0]
    assert a.kind == "drug_refused" and a.dose.check.allowed is False and a.dose.check.next_allowed_at is None
    assert "Do NOT give tocilizumab now" in a.text and "maximum of 4 in total" in a.text
    assert "Escalate per the guideline" in a.text
    assert any("Do NOT give tocilizumab" in w for w in r.warnings)
    # the steroid of grade 3 is still there
    assert action_with(r, "dexamethasone").dose.dose_mg == 10


def test_fourth_tocilizumab_dose_within_24_hours_is_refused_with_next_time() -> None:
    doses = [{"drug": "tocilizumab", "time": ago(h)} for h in (23, 15, 7.5)]
    r = rec("crs", 2, CTX70 | {"doses_given": doses})
    a = next(a for a in r.actions if a.refused)
    assert a.dose.check.next_allowed_at == ago(-1)  # the dose of 23 h ago leaves the 24 h window in 1 h
    assert "Earliest time another dose is allowed" in a.text


def test_tocilizumab_allowed_dose_reports_the_history() -> None:
    r = rec("crs", 2, CTX70 | {"doses_given": [{"drug": "tocilizumab", "time": ago(9)}]})
    check = action_with(r, "tocilizumab").dose.check
    assert check.allowed and check.total_doses == 1 and check.hours_since_last == 9


def test_dose_history_of_other_drugs_does_not_count() -> None:
    r = rec("crs", 2, CTX70 | {"doses_given": [{"drug": "dexamethasone", "time": ago(1)}]})
    assert action_with(r, "tocilizumab").dose.check.allowed


# ------------------------------------------------------------------------------ irAEs (ASCO ICI 2021)
def ici(r: Recommendation) -> list[str]:
    return [a.ici_action.id for a in r.actions if a.ici_action is not None]


def referrals(r: Recommendation) -> set[str]:
    return {a.referral.id for a in r.actions if a.referral is not None}


def steroid(r: Recommendation) -> tuple[str, float | tuple[float, float] | None, str] | None:
    for a in r.actions:
        d = a.dose
        if d is not None and d.drug in ("prednisone", "methylprednisolone"):
            return d.drug, d.dose_mg if d.dose_mg is not None else d.dose_mg_range, d.per
    return None


IRAE_CASES: list[tuple[str, int, dict[str, Any], list[str], Any, set[str]]] = [
    # (toxicity or CTCAE scale id, grade, extra context, ICI actions,
    #  steroid (drug, mg at 70 kg, per), referrals)
    ("ctcae5:diarrhea", 1, {}, ["continue"], None, set()),
    ("ctcae5:diarrhea", 2, {}, ["hold", "rechallenge"], ("prednisone", 70, "day"), {"gastroenterology"}),
    (
        "ctcae5:colitis",
        3,
        {},
        ["hold", "rechallenge"],
        ("prednisone", (70, 140), "day"),
        {"gastroenterology"},
    ),
    (
        "ctcae5:colitis",
        3,
        {"product": "ipilimumab"},
        # the CTLA-4 agent's own row, then the general rechallenge rule and its combination clause
        ["hold", "consider_discontinue", "rechallenge", "rechallenge"],
        ("prednisone", (70, 140), "day"),
        {"gastroenterology"},
    ),
    ("colitis", 4, {}, ["discontinue"], ("methylprednisolone", (70, 140), "day"), {"gastroenterology"}),
    ("ctcae5:alanine-aminotransferase-increased", 1, {}, ["continue"], None, set()),
    (
        "ctcae5:aspartate-aminotransferase-increased",
        2,
        {},
        ["hold", "rechallenge"],
        ("prednisone", (35, 70), "day"),
        {"hepatology"},
    ),
    (
        "ctcae5:blood-bilirubin-increased",
        3,
        {},
        ["consider_discontinue"],
        ("methylprednisolone", (70, 140), "day"),
        {"hepatology"},
    ),
    ("hepatitis", 4, {}, ["discontinue"], ("methylprednisolone", 140, "day"), {"hepatology"}),
    ("ctcae5:pneumonitis", 1, {}, ["consider_hold"], None, set()),
    ("ctcae5:pneumonitis", 2, {}, ["hold", "rechallenge"], ("prednisone", (70, 140), "day"), {"pneumology"}),
    ("ctcae4:pneumonitis", 3, {}, ["discontinue"], ("methylprednisolone", (70, 140), "day"), {"pneumology"}),
    ("ctcae5:rash-maculo-papular", 1, {}, ["continue"], None, set()),
    (
        "ctcae5:rash-maculo-papular",
        2,
        {},
        ["consider_hold", "rechallenge"],
        ("prednisone", (35, 70), "day"),
        set(),
    ),
    (
        "ctcae5:rash-maculo-papular",
        3,
        {},
        ["hold", "rechallenge"],
        ("prednisone", 70, "day"),
        {"dermatology"},
    ),
    ("rash", 4, {}, ["hold"], ("methylprednisolone", (70, 140), "day"), {"dermatology"}),
    ("ctcae5:hypothyroidism", 1, {}, ["continue"], None, set()),
    ("ctcae5:hypothyroidism", 2, {}, ["continue_or_hold"], None, set()),
    ("ctcae5:hypothyroidism", 3, {}, ["hold"], None, {"endocrinology"}),
    ("ctcae5:hyperthyroidism", 2, {}, ["consider_hold"], None, {"endocrinology"}),
    ("ctcae5:hyperthyroidism", 4, {}, ["hold"], None, {"endocrinology"}),
    ("ctcae5:adrenal-insufficiency", 1, {}, ["consider_hold"], None, {"endocrinology"}),
    ("ctcae5:adrenal-insufficiency", 4, {}, ["hold"], None, {"endocrinology"}),
    ("ctcae5:hypophysitis", 1, {}, ["consider_hold"], None, {"endocrinology"}),
    ("ctcae5:hypopituitarism", 2, {}, ["consider_hold"], ("prednisone", (70, 140), "day"), {"endocrinology"}),
    ("ctcae5:hyperglycemia", 2, {}, ["consider_hold"], None, {"endocrinology"}),
    ("ciadm", 4, {}, ["hold"], None, {"endocrinology"}),
    ("ctcae4:acute-kidney-injury", 1, {}, ["consider_hold"], None, set()),
    (
        "ctcae4:acute-kidney-injury",
        2,
        {},
        ["hold", "rechallenge"],
        ("prednisone", (35, 70), "day"),
        {"nephrology"},
    ),
    ("ctcae5:creatinine-increased", 3, {}, ["discontinue"], ("prednisone", (70, 140), "day"), {"nephrology"}),
    ("myocarditis", 1, {}, ["hold"], None, {"cardiology"}),
    ("ctcae5:myocarditis", 2, {}, ["discontinue"], ("prednisone", (70, 140), "day"), {"cardiology"}),
]


IRAE_IDS = [f"{c[0]}-g{c[1]}" + (f"-{c[2]['product']}" if c[2] else "") for c in IRAE_CASES]


@pytest.mark.parametrize(("tox", "grade", "extra", "ici_actions", "ster", "refs"), IRAE_CASES, ids=IRAE_IDS)
def test_irae_rules(
    tox: str, grade: int, extra: dict[str, Any], ici_actions: list[str], ster: Any, refs: set[str]
) -> None:
    r = rec(tox, grade, CTX70 | extra)
    assert r.guideline.id == "asco2021-ici"
    assert ici(r) == ici_actions
    got = steroid(r)
    if ster is None:
        assert got is None
    else:
        drug_id, mg, per = ster
        expected = mg if isinstance(mg, (int, float)) else (float(mg[0]), float(mg[1]))
        assert got == (drug_id, expected, per)
    assert refs <= referrals(r)
    assert all(s.key == "schneider2021" for a in r.actions for s in a.sources)


def test_irae_hormone_replacement() -> None:
    hypo = rec("ctcae5:hypothyroidism", 2, CTX70)
    levo = action_with(hypo, "levothyroxine")
    assert levo.kind == "hormone_replacement" and levo.dose.computed is False
    assert "ideal_body_weight_kg" in (levo.dose.not_computed_reason or "")
    hypo2 = rec("ctcae5:hypothyroidism", 2, CTX70 | {"ideal_body_weight_kg": 60})
    levo2 = action_with(hypo2, "levothyroxine").dose
    assert (levo2.amount, levo2.unit, levo2.per, levo2.weight_basis) == (96.0, "ug", "day", "ideal")
    adrenal = rec("ctcae5:adrenal-insufficiency", 3, CTX70)
    hc = action_with(adrenal, "hydrocortisone").dose
    assert (hc.dose_mg_range, hc.interval_h, hc.route) == ((50.0, 100.0), (6.0, 8.0), "IV")
    dm = rec("diabetes", 2, CTX70)
    ins = action_with(dm, "insulin").dose
    assert (ins.amount_range, ins.unit, ins.per) == ((21.0, 28.0), "U", "day")  # 0.3-0.4 U/kg/day x 70 kg
    ai1 = action_with(rec("ctcae5:adrenal-insufficiency", 1, {}), "hydrocortisone").dose
    assert ai1.dose_mg_range == (15.0, 20.0) and ai1.per == "day"


def test_every_irae_toxicity_grade_has_an_ici_action_and_a_specialist() -> None:
    gs = load_guideline("asco2021-ici")
    for tid, tox in gs.toxicities.items():
        seen_referral = False
        for g in range(tox.grades[0], tox.grades[1] + 1):
            r = rec(tid, g, CTX70 | {"ideal_body_weight_kg": 60})
            assert len(ici(r)) >= 1, (tid, g)
            seen_referral |= bool(referrals(r))
        assert seen_referral, tid


# every CTCAE v5 term of the grading core that is an irAE managed by ASCO ICI 2021
IRAE_TERMS = [
    "diarrhea",
    "colitis",
    "alanine-aminotransferase-increased",
    "aspartate-aminotransferase-increased",
    "blood-bilirubin-increased",
    "pneumonitis",
    "rash-maculo-papular",
    "hypothyroidism",
    "hyperthyroidism",
    "adrenal-insufficiency",
    "hypophysitis",
    "hypopituitarism",
    "hyperglycemia",
    "glucose-intolerance",
    "creatinine-increased",
    "acute-kidney-injury",
    "myocarditis",
]


@pytest.mark.parametrize("term", IRAE_TERMS)
def test_every_ctcae_irae_term_has_rules(term: str) -> None:
    for g in (1, 2, 3, 4):
        r = rec(f"ctcae5:{term}", g, CTX70)
        assert r.actions and ici(r)


def test_irae_scale_ids_exist_in_the_catalogue_once_ctcae_is_there() -> None:
    ids = set(immunotox.all_scales())
    if not any(i.startswith("ctcae5:") for i in ids):
        pytest.skip("the CTCAE scales of the grading core are not in the catalogue yet")
    gs = load_guideline("asco2021-ici")
    declared = {p for tox in gs.toxicities.values() for p in tox.scales if p.startswith("ctcae5:")}
    assert declared <= ids, sorted(declared - ids)


def test_recommend_from_a_ctcae_grade_of_the_grading_core() -> None:
    if "ctcae5:alanine-aminotransferase-increased" not in immunotox.all_scales():
        pytest.skip("the CTCAE scales of the grading core are not in the catalogue yet")
    # ALT 250 U/L with ULN 40 and a normal baseline: 6.25 x ULN -> CTCAE v5 grade 3 (>5.0-20.0 x ULN)
    res = immunotox.grade(
        "ctcae5:alanine-aminotransferase-increased", {"value": 250, "uln": 40, "baseline": 30}
    )
    r = rec(res, None, CTX70)
    assert (r.toxicity, r.grade, ici(r)) == ("hepatitis", 3, ["consider_discontinue"])
    assert steroid(r) == ("methylprednisolone", (70.0, 140.0), "day")


def test_grading_differences_are_warned() -> None:
    r = rec("ctcae5:hyperglycemia", 3, CTX70)
    assert any("check that the grades correspond" in w for w in r.warnings)
    assert r.grading_note and "fasting glucose" in r.grading_note
    assert not any("correspond" in w for w in rec("ctcae4:acute-kidney-injury", 3, CTX70).warnings)


# ------------------------------------------------------------------------------ bispecific label set
def test_bispecific_set_is_product_specific() -> None:
    tec = rec("icans", 2, {"product": "Tecvayli"}, guideline="labels-bispecific")
    assert [a.kind for a in tec.actions] == ["product_action", "drug"]
    dex = action_with(tec, "dexamethasone")
    assert (dex.dose.dose_mg, dex.dose.interval_h, dex.sources[0].key) == (10, 6, "tecvayli-label")
    glofit = rec("icans", 2, {"product": "glofitamab"}, guideline="labels-bispecific")
    assert action_with(glofit, "dexamethasone").dose.interval_h == 12
    none = rec("crs", 3, {"product": "glofitamab"}, guideline="labels-bispecific")
    assert none.actions == [] and any("No rule of labels-bispecific" in w for w in none.warnings)
    with pytest.raises(FindingError, match="missing: required for icans") as exc:
        rec("icans", 2, {}, guideline="labels-bispecific")
    assert exc.value.field == "context.product"


# ------------------------------------------------------------------------------ from a grading result
def test_recommend_from_a_grade_result() -> None:
    res = immunotox.grade(
        "astct2019:crs",
        {
            "temperature_c": 39.5,
            "vasopressors": ["norepinephrine"],
            "oxygen": "low_flow_nasal_cannula",
            "o2_flow_l_min": 2,
        },
    )
    r = rec(res, None, CTX70)
    assert r.grade == 3 and r.toxicity == "crs"
    assert r.grade_input is not None and r.grade_input.scale == "astct2019:crs" and r.grade_input.complete
    assert not any("LOWER BOUND" in w for w in r.warnings)


def test_incomplete_grade_is_flagged_as_a_lower_bound() -> None:
    res = immunotox.grade("astct2019:crs", {"temperature_c": 39.5, "hypotension": True, "oxygen": "none"})
    assert not res.complete
    r = rec(res, None, CTX70)
    assert r.grade == res.grade
    assert any("LOWER BOUND" in w and "vasopressors" in w for w in r.warnings)


def test_legacy_scale_grade_must_be_regraded() -> None:
    res = GradeResult(
        scale="lee2014:crs",
        title="Lee 2014 CRS",
        version="2014",
        grade=2,
        grade_range=(2, 2),
        complete=True,
        status="assessed",
        deciding_domains=[],
        missing=[],
        reasons=[],
        fired=[],
        notes=[],
        sources=[],
    )
    with pytest.raises(FindingError, match="regrade with astct2019:crs"):
        rec(res, None, CTX70)
    with pytest.raises(FindingError, match="regrade with astct2019:crs"):
        rec("penn:crs", 2, CTX70)


def test_grade_zero_gives_no_action() -> None:
    r = rec("crs", 0)
    assert r.actions == [] and any("Grade 0" in w for w in r.warnings)
    assert rec("icans", 0).actions == []  # no context needed when nothing is recommended


# ------------------------------------------------------------------------------ language, steroid context
def test_french_output() -> None:
    r = rec("crs", 2, CTX70, lang="fr")
    toci = action_with(r, "tocilizumab")
    assert toci.text.startswith("Tocilizumab 8 mg/kg IV en 1 heure")
    assert toci.kind_label == "médicament" and r.lang == "fr"
    assert r.disclaimer.startswith("Aide à la décision")
    dex = action_with(r, "dexamethasone")
    assert dex.text.startswith("NON VÉRIFIÉ")


def test_current_steroid_is_expressed_in_equivalents() -> None:
    r = rec("crs", 3, CTX70 | {"current_steroid": {"drug": "dexamethasone", "mg": 10, "interval_h": 6}})
    assert r.current_steroid is not None and r.current_steroid.mg == 40
    assert r.current_steroid.equivalents_mg["prednisone"] == pytest.approx(266.667)
    assert r.context["current_steroid"]["mg_per_day"] == 40


# ------------------------------------------------------------------------------ local guideline sets
def test_example_local_french_set_derives_from_asco() -> None:
    r = rec("icans", 2, CTX70 | {"concurrent_crs_grade": 0}, guideline="example-local-fr")
    assert r.guideline.id == "example-local-fr" and r.guideline.derives_from == "asco2021-cart@1.0.0"
    assert r.guideline.chain == ["asco2021-cart@1.0.0", "example-local-fr@0.1.0"]
    seizure = next(a for a in r.actions if a.rule.endswith("icans-all-seizure-prophylaxis"))
    assert seizure.guideline == "example-local-fr@0.1.0" and seizure.sources[0].key == "galli2025"
    assert "SFGM-TC" in seizure.text
    inherited = next(a for a in r.actions if a.rule.endswith("icans-all-workup"))
    assert inherited.guideline == "asco2021-cart@1.0.0"
    assert r.actions[-1].rule == "example-local-fr@0.1.0/icans-no-crs-steroids-first-fr"
    # the seizure note keeps the position of the base rule it replaced
    base = rec("icans", 2, CTX70 | {"concurrent_crs_grade": 0})
    pos = [a.rule.split("/")[1] for a in base.actions].index("icans-all-seizure-prophylaxis")
    assert r.actions[pos].rule.endswith("icans-all-seizure-prophylaxis")
    iechs = rec("iec-hs", 2, guideline="example-local-fr")
    assert [a.verification for a in iechs.actions] == ["V", "V", "V", "V"]
    assert "10,000 ng/mL" in iechs.actions[0].text


LOCAL_HEAD = """
id = "my-centre"
version = "2.0"
lifecycle = "reviewed"
title.en = "My centre"
title.fr = "Mon centre"
sources = ["santomasso2021"]
derives_from = { id = "asco2021-cart", version = "1.0.0" }
"""

LOCAL_RULE = """
[[rule]]
id = "crs-g2"
toxicity = "crs"
grades = [2]
[[rule.action]]
kind = "drug"
text.en = "Tocilizumab (local: at most 2 doses before senior review)."
text.fr = "Tocilizumab (local : au plus 2 doses avant avis senior)."
dose = { drug = "tocilizumab", rule = "tocilizumab-crs", %s }
source = "santomasso2021"
locator = "Table 1, G2"
verification = "V"
"""


def write_local(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "guidelines"
    folder.mkdir(exist_ok=True)
    (folder / "my-centre.toml").write_text(text, "utf-8")
    return folder


def test_local_set_from_a_folder_tightens_a_dose_limit(tmp_path: Path) -> None:
    folder = write_local(tmp_path, LOCAL_HEAD + LOCAL_RULE % "max_total = 2")
    doses = [{"drug": "tocilizumab", "time": ago(h)} for h in (20, 10)]
    r = rec("crs", 2, CTX70 | {"doses_given": doses}, guideline="my-centre", guideline_dirs=[folder])
    a = next(a for a in r.actions if a.rule.endswith("crs-g2"))
    assert a.refused and "maximum of 2 in total" in a.text and a.guideline == "my-centre@2.0"
    assert any("Local limit applied (my-centre@2.0)" in w for w in r.warnings)
    assert not any("lifecycle" in w and "my-centre" in w for w in r.warnings if "draft" in w)
    assert "my-centre" in {g.id for g in list_guidelines([folder])}


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ("max_total = 6", "may only tighten"),
        ("max_mg = 1000", "may only tighten"),
        ("min_interval_h = 4", "may only tighten"),
    ],
)
def test_local_set_cannot_loosen_a_documented_limit(tmp_path: Path, override: str, problem: str) -> None:
    folder = write_local(tmp_path, LOCAL_HEAD + LOCAL_RULE % override)
    with pytest.raises(RuleSpecError, match=problem):
        load_guideline("my-centre", [folder])


@pytest.mark.parametrize(
    ("dose", "problem"),
    [
        (
            '{ drug = "dexamethasone", mg = 20, route = "IV", interval_h = 6 }',
            "exceeds the documented maximum",
        ),
        ('{ drug = "dexamethasone", mg = 10, route = "IV", interval_h = 4 }', "60/day > documented 40/day"),
        (
            '{ drug = "methylprednisolone", mg_per_kg = 3, per = "day", route = "IV" }',
            "3/kg/day > documented 2/kg/day",
        ),
        (
            '{ drug = "prednisone", mg_per_kg = 1, per = "day", route = "IV" }',
            "route 'IV' is not a route of prednisone",
        ),
        ('{ drug = "anakinra", mg = 100, route = "SC" }', "has no documented maximum"),
        ('{ drug = "unobtainium", mg = 1 }', "unknown drug"),
    ],
)
def test_local_set_cannot_exceed_documented_maxima(tmp_path: Path, dose: str, problem: str) -> None:
    rule = LOCAL_RULE.replace('{ drug = "tocilizumab", rule = "tocilizumab-crs", %s }', dose)
    folder = write_local(tmp_path, LOCAL_HEAD + rule)
    with pytest.raises(RuleSpecError, match=re.escape(problem)):
        load_guideline("my-centre", [folder])


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            lambda s: s.replace('version = "1.0.0" }', 'version = "0.9" }'),
            "derives from asco2021-cart 0.9 but version 1.0.0",
        ),
        (
            lambda s: s.replace('text.fr = "Tocilizumab (local', 'text.de = "Tocilizumab (local'),
            "text.fr: Field required",
        ),
        (lambda s: s.replace('verification = "V"', 'verification = "X"'), "verification"),
        (
            lambda s: s.replace('source = "santomasso2021"\nlocator', 'source = "nobody2020"\nlocator'),
            "nobody2020",
        ),
        (lambda s: s.replace('id = "my-centre"', 'id = "asco2021-cart"'), "defined twice"),
        (
            lambda s: s.replace("derives_from = {", 'remove_rules = ["no-such-rule"]\nderives_from = {'),
            "remove_rules ['no-such-rule'] not in asco2021-cart@1.0.0",
        ),
        (lambda s: s.replace('toxicity = "crs"', 'toxicity = "cytokine-storm"'), "not declared"),
        (lambda s: s.replace("grades = [2]", "grades = [7]"), "outside crs grades"),
        (
            lambda s: s.replace('title.en = "My centre"', 'title.en = "My centre"\ndefault_for = ["crs"]'),
            "reserved",
        ),
    ],
)
def test_malformed_local_sets_are_refused(tmp_path: Path, edit: Any, problem: str) -> None:
    folder = write_local(tmp_path, edit(LOCAL_HEAD + LOCAL_RULE % "max_total = 2"))
    with pytest.raises((RuleSpecError, FindingError)) as exc:
        load_guideline("my-centre", [folder])
    assert problem in str(exc.value)


def test_copy_of_a_packaged_set_under_a_new_id_loads(tmp_path: Path) -> None:
    src = resources.files("immunotox").joinpath("data/guidelines/asco2021-ici.toml")
    folder = tmp_path / "g"
    folder.mkdir()
    text = (
        src.read_text("utf-8")
        .replace('id = "asco2021-ici"', 'id = "my-ici"')
        .replace("default_for = [", "# [")
    )
    (folder / "my-ici.toml").write_text(text, "utf-8")
    r = rec("colitis", 2, CTX70, guideline="my-ici", guideline_dirs=[folder])
    assert r.guideline.id == "my-ici" and ici(r) == ["hold", "rechallenge"]
    shutil.rmtree(folder)


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("args", "kwargs", "field", "problem"),
    [
        (("crs", 2, CTX70 | {"product": "super-cel"}), {}, "context.product", "unknown product"),
        (("crs", 2, CTX70), {"guideline": "nccn2024"}, "guideline", "unknown guideline set"),
        (("crs", 7, CTX70), {}, "grade", "out of range"),
        (("crs", -1, CTX70), {}, "grade", "out of range"),
        (("crs", 5, CTX70), {}, "grade", "grade 5 (death)"),
        (("crs", 2.5, CTX70), {}, "grade", "whole number"),
        (("crs", None, CTX70), {}, "grade", "missing"),
        (("crs", 2, {"weight_kg": 700}), {}, "context.weight_kg", "outside the plausible body weight range"),
        (("crs", 2, {}), {}, "context.weight_kg", "recommends weight-based doses (tocilizumab)"),
        (("colitis", 2, {}), {}, "context.weight_kg", "weight-based doses (prednisone)"),
        (("crs", 2, CTX70 | {"wieght_kg": 70}), {}, "context.wieght_kg", "unknown context field"),
        (
            ("crs", 2, CTX70 | {"doses_given": [{"drug": "tocilizumab", "time": "2099-01-01T00:00:00Z"}]}),
            {},
            "context.doses_given[0].time",
            "cannot be in the future",
        ),
        (
            ("crs", 2, CTX70 | {"doses_given": [{"drug": "tocilizumab", "time": "2025-03-01T08:00"}]}),
            {},
            "context.doses_given[0].time",
            "time without a timezone",
        ),
        (
            ("crs", 2, CTX70 | {"doses_given": [{"drug": "tocilizumab"}]}),
            {},
            "context.doses_given[0].time",
            "missing",
        ),
        (
            ("crs", 2, CTX70 | {"doses_given": [{"drug": "aspirin", "time": ago(1)}]}),
            {},
            "context.doses_given[0].drug",
            "unknown drug",
        ),
        (("crs", 2, CTX70 | {"at": "2025-03-02"}), {}, "context.at", "time without a timezone"),
        (
            ("icans", 2, CTX70 | {"concurrent_crs_grade": 5}),
            {},
            "context.concurrent_crs_grade",
            "outside the grade range",
        ),
        (("crs", 2, CTX70 | {"age_years": 150}), {}, "context.age_years", "outside the possible range"),
        (
            ("crs", 2, CTX70 | {"current_steroid": {"drug": "dexamethasone", "mg": 10}}),
            {},
            "context.current_steroid",
            "interval_h",
        ),
        (("sunburn", 2, CTX70), {}, "toxicity", "unknown toxicity"),
        (("colitis", 2, CTX70), {"guideline": "asco2021-cart"}, "toxicity", "not covered by guideline set"),
        (("crs", 2, CTX70), {"lang": "de"}, "lang", "unsupported language"),
        (("crs", 2, [70]), {}, "context", "expected a JSON object"),
    ],
)
def test_bad_input_names_the_field(
    args: tuple[Any, ...], kwargs: dict[str, Any], field: str, problem: str
) -> None:
    with pytest.raises(FindingError) as exc:
        rec(*args, **kwargs)
    assert exc.value.field == field
    assert problem in str(exc.value)


# ------------------------------------------------------------------------------ documented maxima (property)
def assert_within_documented_max(d: Any) -> None:
    """A computed dose stays within its drug's documented maxima per dose, per day, per kg."""
    mx = drug(d.drug).max
    assert mx is not None
    w = d.weight_kg or 0
    high = d.amount if d.amount is not None else d.amount_range[1]
    assert high is not None and high > 0
    iv = d.interval_h
    shortest = iv if isinstance(iv, (int, float)) else iv[0] if iv else 24.0
    per_day = high if d.per == "day" else high * 24 / shortest
    if d.per == "dose" and mx.per_dose is not None:
        assert high <= mx.per_dose
    if mx.per_day is not None:
        assert per_day <= mx.per_day + 1e-6
    if d.weight_kg is not None and mx.per_kg_per_dose is not None and d.per == "dose":
        assert high <= mx.per_kg_per_dose * w + 1e-6
    if d.weight_kg is not None and mx.per_kg_per_day is not None:
        assert per_day <= mx.per_kg_per_day * w + 1e-6


DOSED = [
    (gs.id, tox, g, rr.rule.id)
    for gs in list_guidelines()
    for rr in gs.rules
    for tox in rr.rule.toxicities
    for g in rr.rule.grades
    if any(a.dose is not None for a in rr.rule.action)
]


@settings(max_examples=150, deadline=None)
@given(
    case=st.sampled_from(DOSED),
    weight=st.floats(min_value=1, max_value=300, allow_nan=False),
    ideal=st.floats(min_value=1, max_value=150, allow_nan=False),
    n_doses=st.integers(min_value=0, max_value=5),
    spacing_h=st.floats(min_value=0.5, max_value=30),
)
def test_no_recommended_dose_exceeds_a_documented_maximum(
    case: tuple[str, str, int, str], weight: float, ideal: float, n_doses: int, spacing_h: float
) -> None:
    gid, tox, grade, _ = case
    doses = [{"drug": "tocilizumab", "time": ago(1 + i * spacing_h)} for i in range(n_doses)]
    ctx: dict[str, Any] = {
        "weight_kg": weight,
        "ideal_body_weight_kg": ideal,
        "doses_given": doses,
        "product": product_for(gid),
        "at": format_time(NOW),
    }
    if tox == "icans":
        ctx["concurrent_crs_grade"] = 1
    r = rec(tox, grade, ctx, guideline=gid)
    for a in r.actions:
        d = a.dose
        if d is None or not d.computed:
            continue
        assert_within_documented_max(d)
        if d.check is not None and d.check.allowed:
            assert d.check.total_doses < 4 and d.check.doses_in_last_24h < 3


# ------------------------------------------------------------------------------ dose texts in French
# Issue 11 "explanations in the user's language": a computed dose is written in the caller's
# language (« mg/kg/j », « toutes les 6 h », decimal comma); the English texts are unchanged.
_CRS_EU = ("crs", 3, {"product": "tisa-cel", "weight_kg": 70, "age_years": 50}, "EU")
_HEPATITIS = ("hepatitis", 3, {"product": "pembrolizumab", "weight_kg": 80, "age_years": 60}, "EU")


def _dose_lines(rec: Recommendation) -> list[str]:
    return [t for a in rec.actions if a.dose for t in (a.dose.expression, a.dose.not_computed_reason or "")]


@pytest.mark.parametrize(
    ("case", "en", "fr"),
    [
        (
            _CRS_EU,
            ["8 mg/kg × 70 kg = 560 mg", "10 mg, q6h"],
            ["8 mg/kg × 70 kg = 560 mg", "10 mg, toutes les 6 h"],
        ),
        (_HEPATITIS, ["1–2 mg/kg/day × 80 kg = 80–160 mg/day"], ["1–2 mg/kg/j × 80 kg = 80–160 mg/j"]),
    ],
    ids=["crs-g3-tisa-cel-70kg", "hepatitis-g3-pembrolizumab-80kg"],
)
def test_a_french_recommendation_writes_its_doses_in_french(
    case: tuple[str, int, dict[str, Any], str], en: list[str], fr: list[str]
) -> None:
    from tests.test_messages import english_in_dose as english_in

    tox, grade, ctx, jur = case
    english = recommend(tox, grade, ctx, lang="en", jurisdiction=jur)
    french = recommend(tox, grade, ctx, lang="fr", jurisdiction=jur)
    assert [a.dose.expression for a in english.actions if a.dose] == en
    assert [a.dose.expression for a in french.actions if a.dose] == fr
    for line in _dose_lines(french) + [x for x in french.explain().splitlines() if "dose" in x]:
        assert not english_in(line), f"English in French dose line: {english_in(line)} in {line!r}"


def test_a_french_dose_uses_a_decimal_comma() -> None:
    ctx = {"product": "pembrolizumab", "weight_kg": 72.5, "age_years": 60}
    fr = recommend("hepatitis", 3, ctx, lang="fr", jurisdiction="EU")
    en = recommend("hepatitis", 3, ctx, lang="en", jurisdiction="EU")
    assert [a.dose.expression for a in fr.actions if a.dose] == ["1–2 mg/kg/j × 72,5 kg = 72,5–145 mg/j"]
    assert [a.dose.expression for a in en.actions if a.dose] == ["1–2 mg/kg/day × 72.5 kg = 72.5–145 mg/day"]


# ------------------------------------------------------------------------------ refusals in French
@pytest.mark.parametrize(
    ("toxicity", "grade", "ctx", "jurisdiction", "fr"),
    [
        ("crs", 5, {"product": "tisa-cel"}, None, "grade = 5 : le grade 5 (décès) n'a pas de recommandation"),
        (
            "crs",
            3,
            {"product": "tisa-cell"},
            None,
            "context.product = 'tisa-cell' : produit inconnu. Indication",
        ),
        (
            "crs",
            3,
            {"product": "tisa-cel", "weight_kg": 900},
            None,
            "hors de l'intervalle plausible de poids",
        ),
        (
            "crs",
            3,
            {"product": "tisa-cel", "weight_kg": 70},
            "XX",
            "jurisdiction = 'XX' : juridiction inconnue",
        ),
        (
            "crs",
            3,
            {"product": "tisa-cel", "age_years": 50},
            None,
            "context.weight_kg = null : requis : crs grade 3",
        ),
        (
            "crs",
            3,
            {"product": "tisa-cel", "doses_given": [{"drug": "tocilizumab"}]},
            None,
            "absent : chaque dose",
        ),
        (
            "crs",
            3,
            {"therapy_class": "car_t", "at": "2025-03-01T08:00:00"},
            None,
            "heure sans fuseau horaire",
        ),
    ],
    ids=[
        "grade-5",
        "unknown-product",
        "weight",
        "jurisdiction",
        "weight-required",
        "dose-time",
        "naive-time",
    ],
)
def test_a_management_refusal_is_explained_in_french(
    toxicity: str, grade: int, ctx: dict[str, Any], jurisdiction: str | None, fr: str
) -> None:
    from immunotox.messages import error_message
    from tests.test_messages import english_in

    with pytest.raises(FindingError) as info:
        recommend(toxicity, grade, ctx, lang="fr", jurisdiction=jurisdiction)
    text = error_message(info.value, "fr")
    assert fr in text, text
    assert not english_in(text), f"English in French refusal: {english_in(text)} in {text!r}"
    assert error_message(info.value, "en") == str(info.value) != text
