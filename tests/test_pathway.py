"""The CAR-T pathway: state machine, dates from the infusion date, label periods, monitoring
escalation and the bilingual patient/clinician information.

Label periods are per (jurisdiction, product, label version): FDA safety communication of
26 June 2025 — monitor >= 2 weeks incl. daily >= 1 week [V], proximity 2 weeks [V], driving
2 weeks [V2]; previous US labels 4 weeks proximity, 8 weeks driving [V]. EU SmPC periods are not
verified here: shown without a number. No jurisdiction configured -> no period (never the US
label by default). A period of N days runs to day N inclusive (day 0 = infusion).
"""

from __future__ import annotations

import itertools
import re
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from immunotox import pathway as pw
from immunotox.pathway import IllegalTransitionError, PathwayError

D0 = date(2026, 12, 1)
PHASES = list(pw.phases())
US: dict[str, str] = {"jurisdiction": "US", "product": "axi-cel"}


# ---------------------------------------------------------------------------------- state machine
LEGAL = [
    ("screening", "leukapheresis"),
    ("leukapheresis", "manufacturing"),
    ("manufacturing", "lymphodepletion"),
    ("manufacturing", "leukapheresis"),  # manufacturing failure → new collection
    ("lymphodepletion", "infusion"),
    ("infusion", "inpatient_observation"),
    ("inpatient_observation", "near_centre"),
    ("inpatient_observation", "follow_up"),  # discharged after the proximity period
    ("near_centre", "inpatient_observation"),  # readmission
    ("near_centre", "follow_up"),
    ("follow_up", "long_term_follow_up"),
    ("long_term_follow_up", "completed"),
    ("screening", "off_pathway"),  # not eligible
    ("follow_up", "off_pathway"),
]
ILLEGAL = [
    ("screening", "infusion"),
    ("leukapheresis", "lymphodepletion"),
    ("manufacturing", "infusion"),
    ("lymphodepletion", "manufacturing"),
    ("infusion", "off_pathway"),
    ("infusion", "follow_up"),
    ("follow_up", "infusion"),
    ("follow_up", "inpatient_observation"),
    ("long_term_follow_up", "follow_up"),
    ("completed", "screening"),
    ("off_pathway", "screening"),
    ("screening", "screening"),
]


@pytest.mark.parametrize(("a", "b"), LEGAL)
def test_legal_transitions(a: str, b: str) -> None:
    pw.check_transition(a, b)


@pytest.mark.parametrize(("a", "b"), ILLEGAL)
def test_illegal_transitions_are_refused_with_the_allowed_ones(a: str, b: str) -> None:
    with pytest.raises(IllegalTransitionError) as err:
        pw.check_transition(a, b)
    e = err.value
    assert e.field == "to" and e.value == b
    assert f"illegal transition {a} → {b}" in str(e)
    assert ", ".join(pw.allowed_next(a)) in str(e) or "final phase" in str(e)
    assert "\n" not in str(e)


def test_unknown_phases_are_named() -> None:
    with pytest.raises(PathwayError) as err:
        pw.check_transition("recovery", "infusion")
    assert err.value.field == "phase" and "unknown phase" in str(err.value)
    with pytest.raises(PathwayError) as err:
        pw.check_transition("screening", "apheresis")
    assert err.value.field == "to"


def test_every_phase_is_reachable_and_every_path_can_end() -> None:
    seen, todo = {"screening"}, ["screening"]
    while todo:
        for n in pw.allowed_next(todo.pop()):
            if n not in seen:
                seen.add(n)
                todo.append(n)
    assert seen == set(PHASES)
    finals = {p for p in PHASES if not pw.allowed_next(p)}
    assert finals == {"completed", "off_pathway"}
    for p in PHASES:  # from any phase a final phase is reachable
        reach, todo = {p}, [p]
        while todo:
            for n in pw.allowed_next(todo.pop()):
                if n not in reach:
                    reach.add(n)
                    todo.append(n)
        assert reach & finals


def test_journey_through_the_whole_pathway() -> None:
    j = pw.Journey.begin(date(2026, 10, 10))
    for phase, on in [
        ("leukapheresis", date(2026, 10, 27)),
        ("manufacturing", date(2026, 10, 28)),
        ("lymphodepletion", date(2026, 11, 26)),
        ("infusion", D0),
        ("inpatient_observation", D0),
        ("near_centre", date(2026, 12, 9)),
        ("inpatient_observation", date(2026, 12, 11)),  # readmitted
        ("near_centre", date(2026, 12, 13)),
        ("follow_up", date(2026, 12, 16)),
        ("long_term_follow_up", date(2027, 12, 1)),
        ("completed", date(2041, 12, 2)),
    ]:
        j = j.advance(phase, on)
    assert j.current == "completed" and j.infusion_date == D0
    assert len(j.entries) == 12


def test_journey_refuses_going_back_in_time_and_illegal_steps() -> None:
    j = pw.Journey.begin(date(2026, 10, 10)).advance("leukapheresis", date(2026, 10, 27))
    with pytest.raises(PathwayError) as err:
        j.advance("manufacturing", date(2026, 10, 20))
    assert err.value.field == "on" and "cannot start before leukapheresis" in str(err.value)
    with pytest.raises(IllegalTransitionError):
        j.advance("infusion", D0)
    assert j.current == "leukapheresis"  # immutable: the refused step changed nothing


# ------------------------------------------------------------------------------------------ dates
def test_visits_from_infusion_date() -> None:
    visits = {v.id: v for v in pw.plan(D0).visits()}
    assert visits["d14"].on == date(2026, 12, 15) and visits["d14"].day == 14
    assert visits["d28"].on == date(2026, 12, 29) and visits["d28"].day == 28
    assert visits["m3"].on == date(2027, 3, 1)
    assert visits["m12"].on == date(2027, 12, 1)
    assert visits["y-annual-15"].on == date(2041, 12, 1)


@pytest.mark.parametrize(
    ("label", "proximity_until", "driving_until"),
    [
        (None, date(2026, 12, 15), date(2026, 12, 15)),  # current US version: 14 and 14 days
        ("fda-rems", date(2026, 12, 29), date(2027, 1, 26)),  # 28 days; 8 weeks = 56 days
    ],
)
def test_us_label_periods_are_versioned_data(
    label: str | None, proximity_until: date, driving_until: date
) -> None:
    p = pw.plan(D0, label=label, **US)
    r = {x.id: x for x in p.restrictions()}
    assert r["proximity"].until == proximity_until
    assert r["no_driving"].until == driving_until
    assert p.step("near_centre") is not None
    assert p.step("near_centre").end == proximity_until  # type: ignore[union-attr]


@pytest.mark.parametrize("product", ["axi-cel", "brexu-cel", "tisa-cel", "liso-cel", "ide-cel", "cilta-cel"])
def test_current_us_label_is_fda_2025_for_the_six_rems_products(product: str) -> None:
    p = pw.plan(D0, jurisdiction="US", product=product)
    assert p.label.status == "ok" and p.label.version is not None and p.label.version.id == "fda-2025"
    periods = p.label.periods()
    assert periods["proximity"].verification == "V" and periods["proximity"].days == 14
    assert periods["daily_monitoring"].days == 7 and periods["monitoring"].days == 14
    assert periods["no_driving"].verification == "V2" and periods["no_driving"].days == 14
    assert all(x.source == "fda2025rems" for x in periods.values())


def test_no_jurisdiction_gives_no_period_and_says_so() -> None:
    """Issue 11 item 2: `pathway --infusion-date 2026-12-01 --lang fr` told a French patient the
    US periods (« Pas de conduite … jusqu'au 15 décembre »)."""
    for product in (None, "axi-cel"):
        s = pw.status(D0, today=date(2026, 12, 10), lang="fr", product=product, info_audience="patient")
        assert s.label["status"] == "no_jurisdiction" and s.label["id"] is None
        assert all(r.days is None and r.until is None and r.active is None for r in s.restrictions)
        assert all(r.text == "la durée fixée par votre équipe selon le RCP" for r in s.restrictions)
        assert any("Aucune juridiction n'est configurée" in n for n in s.notes)
        assert s.info is not None
        assert "Aucune juridiction n'est configurée" in s.info.text
        assert "15 décembre" not in s.info.text and "14 jours" not in s.info.text
        assert "durée fixée par votre équipe selon le RCP" in s.info.text


@pytest.mark.parametrize("jurisdiction", ["EU", "FR", "de"])
@pytest.mark.parametrize("product", ["axi-cel", "Kymriah", "tecartus", "liso-cel", "ide-cel", "cilta-cel"])
def test_eu_periods_are_unverified_shown_without_number_and_flagged(jurisdiction: str, product: str) -> None:
    s = pw.status(D0, today=date(2026, 12, 10), lang="fr", jurisdiction=jurisdiction, product=product)
    assert s.label["jurisdiction"] == "EU" and s.label["id"] == "ema-smpc" and s.label["status"] == "ok"
    assert all(r.days is None and r.until is None for r in s.restrictions)
    assert all(r.verification == "M" for r in s.restrictions)
    assert sum("NON VÉRIFIÉ [M]" in n for n in s.notes) == 4
    assert "Union européenne" in s.label["message"] and "ema-smpc" in s.label["message"]


def test_eu_never_falls_back_to_the_us_label() -> None:
    eu = pw.plan(D0, jurisdiction="EU", product="axi-cel")
    assert eu.label.jurisdiction is not None and eu.label.jurisdiction.code == "EU"
    assert all(r.until is None for r in eu.restrictions())
    with pytest.raises(PathwayError) as err:
        pw.plan(D0, jurisdiction="EU", product="axi-cel", label="fda-2025")
    assert err.value.field == "label" and "a US label version, but the jurisdiction is EU" in str(err.value)


def test_verified_periods_are_flagged_only_when_unverified() -> None:
    s = pw.status(D0, today=date(2026, 12, 10), **US)
    assert not any("UNVERIFIED" in n for n in s.notes)
    assert any("fda-2025" in n and "United States" in n for n in s.notes)
    obe = pw.status(D0, today=date(2026, 12, 10), jurisdiction="US", product="obe-cel")
    assert sum("UNVERIFIED [M]" in n for n in obe.notes) == 4
    assert all(r.until is None for r in obe.restrictions)


def test_a_product_the_version_does_not_describe_has_no_period() -> None:
    c = pw.resolve_label("US", "cart-cd19-other")
    assert c.status == "not_covered" and all(p.days is None for p in c.periods().values())
    assert "is not described by" in c.message("en")
    c = pw.resolve_label("US", None)
    assert c.status == "no_product" and all(p.days is None for p in c.periods().values())
    c = pw.resolve_label("US", "tisa-cel", "fda-rems")
    assert c.status == "ok" and c.periods()["proximity"].days == 28


@pytest.mark.parametrize(
    ("jurisdiction", "product", "label", "field", "message"),
    [
        ("mars", "axi-cel", None, "jurisdiction", "jurisdiction = 'mars': unknown jurisdiction"),
        ("EU", "axi-cil", None, "product", "product = 'axi-cil': unknown product"),
        ("EU", "pembrolizumab", None, "product", "a ici-pd1 product: the CAR-T pathway does not apply"),
        (None, "axi-cel", "fda-2025", "label", "a US label version, but no jurisdiction is configured"),
        ("US", "axi-cel", "eu-smpc", "label", "label = 'eu-smpc': unknown label version"),
    ],
)
def test_bad_label_settings_name_the_field(
    jurisdiction: str | None, product: str, label: str | None, field: str, message: str
) -> None:
    with pytest.raises(PathwayError) as err:
        pw.plan(D0, jurisdiction=jurisdiction, product=product, label=label)
    assert err.value.field == field and message in str(err.value)


def test_every_label_product_is_a_known_car_t_product() -> None:
    for (version, product), lab in pw.labels().items():
        assert pw.check_product(product) is not None, (version, product)
        assert lab.jurisdiction == pw.label_versions()[version].jurisdiction
        for p in lab.periods().values():
            assert (p.days is None) == (p.verification == "M")


def test_without_a_verified_proximity_period_the_near_centre_end_is_an_estimate() -> None:
    s = pw.status(D0, today=date(2026, 12, 10), lang="en")
    near = next(x for x in s.steps if x.phase == "near_centre")
    assert near.estimated and near.end == D0 + timedelta(days=28)
    assert any("a planning estimate (day 28), not a label period" in n for n in s.notes)


def test_steps_are_contiguous_and_ordered() -> None:
    p = pw.plan(D0)
    steps = [s for s in p.steps if s.phase not in ("infusion",)]
    for a, b in itertools.pairwise(steps):
        assert a.end is not None
        assert b.start == a.end + timedelta(days=1), (a, b)
    assert p.step("infusion").start == D0  # type: ignore[union-attr]
    assert p.step("lymphodepletion").end == D0 - timedelta(days=1)  # type: ignore[union-attr]
    assert p.step("long_term_follow_up").end == date(2041, 12, 1)  # type: ignore[union-attr]


def test_actual_dates_replace_estimates() -> None:
    p = pw.plan(
        D0,
        screening_date=date(2026, 10, 1),
        leukapheresis_date=date(2026, 10, 20),
        lymphodepletion_date=date(2026, 11, 27),
        discharge_date=date(2026, 12, 6),
    )
    assert p.step("screening").start == date(2026, 10, 1)  # type: ignore[union-attr]
    assert not p.step("screening").estimated  # type: ignore[union-attr]
    assert p.step("manufacturing").start == date(2026, 10, 21)  # type: ignore[union-attr]
    assert p.step("near_centre").start == date(2026, 12, 7)  # type: ignore[union-attr]


def test_late_discharge_skips_the_near_centre_phase() -> None:
    p = pw.plan(D0, discharge_date=date(2026, 12, 20), **US)
    assert p.step("near_centre") is None and p.skipped == ("near_centre",)
    assert p.step("follow_up").start == date(2026, 12, 21)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"screening_date": date(2026, 12, 5)}, "screening_date"),
        (
            {"screening_date": date(2026, 10, 20), "leukapheresis_date": date(2026, 10, 10)},
            "leukapheresis_date",
        ),
        ({"lymphodepletion_date": D0}, "lymphodepletion_date"),
        (
            {"leukapheresis_date": date(2026, 11, 1), "lymphodepletion_date": date(2026, 11, 1)},
            "lymphodepletion_date",
        ),
        ({"discharge_date": date(2026, 11, 30)}, "discharge_date"),
        ({"leukapheresis_date": date(2026, 11, 30)}, "leukapheresis_date"),  # no room for LD
        ({"label": "ema-2019", "jurisdiction": "EU"}, "label"),
        ({"jurisdiction": "XX"}, "jurisdiction"),
        ({"product": "unknown-cel"}, "product"),
        ({"indication": "lupus"}, "indication"),
    ],
)
def test_impossible_plans_are_refused(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(PathwayError) as err:
        pw.plan(D0, **kwargs)  # type: ignore[arg-type]
    assert err.value.field == field


@pytest.mark.parametrize(
    ("today", "phase"),
    [
        (date(2026, 9, 1), "screening"),  # before the estimated screening start
        (date(2026, 10, 27), "leukapheresis"),
        (date(2026, 11, 10), "manufacturing"),
        (date(2026, 11, 28), "lymphodepletion"),
        (D0, "infusion"),
        (date(2026, 12, 2), "inpatient_observation"),
        (date(2026, 12, 9), "near_centre"),
        (date(2026, 12, 15), "near_centre"),  # last day of the 14-day proximity period
        (date(2026, 12, 16), "follow_up"),
        (date(2027, 12, 1), "long_term_follow_up"),
        (date(2042, 1, 1), "completed"),
    ],
)
def test_current_phase_from_planned_dates(today: date, phase: str) -> None:
    assert pw.status(D0, today=today, **US).current_phase == phase


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        ({"today": date(2026, 11, 20), "phase": "follow_up"}, "phase", "starts on day 1 at the earliest"),
        ({"today": date(2026, 12, 5), "phase": "manufacturing"}, "phase", "ends by day -1"),
        ({"today": date(2026, 12, 2), "phase": "infusion"}, "phase", "ends by day 0"),
        (
            {"today": date(2026, 10, 1), "screening_date": date(2026, 10, 15)},
            "today",
            "before the screening date",
        ),
        ({"today": date(2026, 11, 1), "phase": "screening", "to": "infusion"}, "to", "illegal transition"),
        ({"today": date(2026, 12, 2), "phase": "lymphodepletion", "to": "infusion"}, "to", "ends by day 0"),
        ({"today": date(2026, 12, 10), "phase": "recovery"}, "phase", "unknown phase"),
        ({"today": date(2026, 12, 10), "crs_grade": 5}, "crs_grade", "0-4"),
        ({"today": date(2026, 11, 10), "phase": "manufacturing", "icans_grade": 1}, "icans_grade", "before"),
        ({"today": date(2026, 12, 10), "lang": "de"}, "lang", "unknown language"),
        ({"today": date(2026, 12, 10), "info_audience": "nurse"}, "audience", "unknown audience"),
    ],
)
def test_impossible_status_is_refused(kwargs: dict[str, object], field: str, fragment: str) -> None:
    with pytest.raises(PathwayError) as err:
        pw.status(D0, **kwargs)  # type: ignore[arg-type]
    assert err.value.field == field
    assert fragment in str(err.value)


def test_transition_on_the_infusion_day() -> None:
    s = pw.status(D0, today=D0, phase="lymphodepletion", to="infusion")
    assert s.current_phase == "infusion"
    assert s.transition == {"from": "lymphodepletion", "to": "infusion", "on": "2026-12-01"}


def test_readmission_escalates_monitoring() -> None:
    s = pw.status(D0, today=date(2026, 12, 11), phase="near_centre", to="inpatient_observation", crs_grade=2)
    assert s.current_phase == "inpatient_observation"
    assert s.monitoring.setting == "ward" and s.monitoring.vitals_every_h == 2


def test_restrictions_active_only_during_their_period() -> None:
    def active(today: date) -> dict[str, bool]:
        return {r.id: bool(r.active) for r in pw.status(D0, today=today, **US).restrictions}

    assert active(date(2026, 11, 28)) == dict.fromkeys(active(D0), False)  # before infusion
    assert active(date(2026, 12, 15))["proximity"] is True  # day 14, inclusive
    assert active(date(2026, 12, 16))["proximity"] is False


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)), st.integers(0, 240))
def test_add_months_stays_in_range_and_keeps_the_day(d: date, n: int) -> None:
    r = pw.add_months(d, n)
    assert (r.year - d.year) * 12 + r.month - d.month == n
    assert r.day == d.day or (r.day < d.day and (r + timedelta(days=1)).day == 1)


def test_add_months_clamps_to_month_end() -> None:
    assert pw.add_months(date(2027, 1, 31), 1) == date(2027, 2, 28)
    assert pw.add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert pw.add_years(date(2028, 2, 29), 1) == date(2029, 2, 28)


# ------------------------------------------------------------------------------------- monitoring
@pytest.mark.parametrize("phase", ["inpatient_observation", "near_centre", "follow_up"])
def test_monitoring_escalates_with_crs_grade(phase: str) -> None:
    ms = [pw.monitoring(phase, crs_grade=g) for g in range(5)]
    levels = [m.level for m in ms]
    assert levels == [0, 1, 2, 3, 4]
    vitals = [m.vitals_every_h for m in ms[1:]]
    assert all(v is not None for v in vitals)
    assert vitals == sorted(vitals, reverse=True)  # intervals never lengthen as the grade rises
    assert vitals[1] < vitals[0] and vitals[2] < vitals[1]  # grade 2 and 3 tighten
    settings = [m.setting for m in ms]
    assert settings[3] == settings[4] == "icu"
    assert settings[1] == "ward"  # grade 1 outside hospital → evaluation at the centre


def test_monitoring_escalates_with_icans_grade() -> None:
    ice = [pw.monitoring("inpatient_observation", icans_grade=g).ice_every_h for g in range(5)]
    assert ice == [12, 8, 4, 2, 1]


def test_inpatient_baseline_and_combined_escalation() -> None:
    m = pw.monitoring("inpatient_observation")
    assert (m.setting, m.vitals_every_h, m.ice_every_h, m.level) == ("ward", 4, 12, 0)
    both = pw.monitoring("inpatient_observation", crs_grade=1, icans_grade=3)
    assert both.setting == "icu" and both.ice_every_h == 2 and both.level == 3
    assert both.drivers == ("phase inpatient_observation", "CRS grade 1", "ICANS grade 3")


def test_icu_for_grade_3_cites_asco() -> None:
    for tox in ("crs_grade", "icans_grade"):
        m = pw.monitoring("inpatient_observation", **{tox: 3})
        icu = [i for i in m.items if "ICU" in i.text.en]
        assert icu and all(i.source == "santomasso2021" and i.basis == "V" for i in icu)


def test_infection_checks_in_follow_up() -> None:
    m = pw.monitoring("follow_up")
    texts = " ".join(i.text.en for i in m.items)
    assert "IgG" in texts and "Blood count" in texts
    assert {"hill2019", "rejeski2023"} <= set(m.source_keys())


def test_every_monitoring_item_has_a_basis_and_both_languages() -> None:
    for phase in PHASES:
        for g in range(5):
            post = pw.phases()[phase].side != "pre"
            m = pw.monitoring(phase, crs_grade=g if post else 0, icans_grade=g if post else 0)
            for i in m.items:
                assert i.basis in ("V", "V2", "M", "D")
                assert i.text.fr and i.text.en and i.text.fr != i.text.en


def test_ltfu_duration_is_flagged_unverified() -> None:
    s = pw.status(D0, today=date(2028, 6, 1))
    assert s.current_phase == "long_term_follow_up"
    assert any("UNVERIFIED [M]" in n and "15 years" in n for n in s.notes)


# ------------------------------------------------------------------------------------ information
ACCENTED = re.compile("[éèàùâêîôûçœÉ]")


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("audience", ["patient", "clinician"])
def test_info_exists_in_french_and_english(phase: str, audience: str) -> None:
    fr = pw.info(phase, audience, "fr")
    en = pw.info(phase, audience, "en")
    assert fr.strip() and en.strip() and fr != en
    assert ACCENTED.search(fr), "French text written with its accents"
    assert "{" not in fr and "{" not in en, "every placeholder filled"


@pytest.mark.parametrize("phase", ["inpatient_observation", "near_centre", "follow_up"])
def test_patient_info_after_infusion_says_when_to_call(phase: str) -> None:
    fr = pw.info_text(phase, "patient", "fr")
    en = pw.info_text(phase, "patient", "en")
    assert len(fr.call) == len(en.call) >= 8
    joined_fr, joined_en = " ".join(fr.call), " ".join(en.call)
    for word in ("38 °C", "confusion", "écriture", "mots", "somnolence", "convulsive", "essoufflement"):
        assert word in joined_fr
    for word in (
        "38 °C",
        "confusion",
        "handwriting",
        "words",
        "drowsiness",
        "seizure",
        "shortness of breath",
    ):
        assert word in joined_en
    assert "15" in fr.emergency


def test_near_centre_info_uses_the_label_periods_and_names_the_label() -> None:
    fr = pw.info("near_centre", "patient", "fr", **US)
    assert "au moins 14 jours" in fr
    assert (
        "Durées selon : Notices américaines (FDA) après la suppression du REMS (26 juin 2025) [fda-2025]"
        in fr
    )
    assert "États-Unis (FDA)" in fr
    assert "at least 28 days" in pw.info("near_centre", "patient", "en", label="fda-rems", **US)
    assert "at least 56 days" in pw.info("near_centre", "patient", "en", label="fda-rems", **US)
    assert "ne conduisez pas" in fr.lower()
    eu = pw.info("near_centre", "patient", "fr", jurisdiction="FR", product="Yescarta")
    assert "jours" not in eu.split("Durées selon")[0]
    assert "la durée fixée par votre équipe selon le RCP" in eu and "[ema-smpc]" in eu
    assert "Union européenne" in eu


def test_clinician_checklist_is_a_list() -> None:
    t = pw.info_text("lymphodepletion", "clinician", "fr")
    assert t.items and not t.text and not t.call
    assert any("CAR-HEMATOTOX" in i for i in t.items)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("nowhere", "patient", "fr"), "phase"),
        (("screening", "nurse", "fr"), "audience"),
        (("screening", "patient", "de"), "lang"),
    ],
)
def test_info_bad_input(args: tuple[str, str, str], field: str) -> None:
    with pytest.raises(PathwayError) as err:
        pw.info(*args)
    assert err.value.field == field


def test_autoimmune_indication_uses_the_same_steps() -> None:
    onc = pw.status(D0, today=date(2026, 12, 10))
    auto = pw.status(D0, today=date(2026, 12, 10), indication="autoimmune", lang="fr")
    assert [s.phase for s in onc.steps] == [s.phase for s in auto.steps]
    assert auto.indication["id"] == "autoimmune" and "lupus" in auto.indication["title"]
    assert "immunosuppresseurs" in auto.indication["bridging"]


def test_status_json_is_serialisable_and_in_one_language() -> None:
    import json

    s = pw.status(D0, today=date(2026, 12, 10), lang="fr", info_audience="clinician", crs_grade=1)
    j = json.loads(json.dumps(s.as_json()))
    assert j["current_phase"] == "near_centre" and j["day"] == 9
    assert j["monitoring"]["setting"] == "ward"
    assert j["info"]["title"].startswith("Période de proximité")
    assert j["steps"][0]["title"] == "Bilan d'éligibilité"
    assert any("Santomasso" in x for x in j["sources"])
