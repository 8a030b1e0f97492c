"""Handouts and triage from one data file per therapy class (issue 11 item 4).

The portal answered "Noté" to tremor after CAR-T, offered no chest pain, palpitations, muscle
weakness, double vision or bleeding, and there was no handout for bispecific or
checkpoint-inhibitor patients; the CAR-T handout did not say not to take an antipyretic before
calling. These tests check that, for every class, what the handout tells patients to call for and
what the portal triages as "call the unit now" are the same set, in both languages, each line
citing its sources.
"""

from __future__ import annotations

import copy
import tomllib
from importlib import resources
from typing import Any

import pytest

from immunotox import handouts
from immunotox.errors import FindingError, RuleSpecError
from immunotox.service import selfreport
from immunotox.sources import source

CLASSES = handouts.THERAPY_CLASSES


def _doc(therapy_class: str) -> dict[str, Any]:
    text = resources.files("immunotox").joinpath(f"data/handouts/{therapy_class}.toml").read_text("utf-8")
    return tomllib.loads(text)


@pytest.mark.parametrize("therapy_class", CLASSES)
def test_handout_and_triage_agree(therapy_class: str) -> None:
    """Every call-now line of the handout <-> an urgent portal symptom of the same class."""
    h = handouts.handout(therapy_class)
    in_handout = {tok for line in h.lines for tok in line.symptoms}
    assert in_handout == h.call_now()
    for line in h.lines:
        for tok in line.symptoms:
            assert h.symptoms[tok].urgency == "call_now", (therapy_class, tok)
        assert line.fr.strip() and line.en.strip() and line.fr != line.en
        assert line.sources, f"{therapy_class}: a handout line without source: {line.en}"
        for key in line.sources:
            assert source(key).citation()
    for s in h.symptoms.values():
        assert s.fr.strip() and s.en.strip()
    for lang in ("fr", "en"):
        assert h.title(lang) and h.emergency(lang) and h.before_calling(lang)
        assert len(h.call(lang)) == len(h.lines)


@pytest.mark.parametrize("therapy_class", CLASSES)
def test_the_portal_triages_every_handout_symptom_as_call_now(therapy_class: str) -> None:
    h = handouts.handout(therapy_class)
    offered = selfreport.symptom_labels(therapy_class)
    for tok in h.call_now():
        assert tok in offered
        t = selfreport.triage(therapy_class, None, [tok])
        assert t.decision == "call_now", (therapy_class, tok)
    for tok in set(offered) - h.call_now():
        assert selfreport.triage(therapy_class, None, [tok]).decision == "noted"


@pytest.mark.parametrize(
    ("therapy_class", "urgent"),
    [
        (
            "car_t",
            {"tremor", "chest_pain", "palpitations", "muscle_weakness", "bleeding_bruising", "fever"},
        ),
        (
            "bispecific",
            {"tremor", "bleeding_bruising", "fever", "confusion", "word_finding_difficulty", "seizure"},
        ),
        (
            "checkpoint_inhibitor",
            {
                "chest_pain",
                "palpitations",
                "muscle_weakness",
                "double_vision",
                "severe_diarrhea",
                "jaundice",
                "shortness_of_breath",
                "cough",
                "thirst_urination",
                "severe_headache",
                "vision_change",
                "bleeding_bruising",
                "fever",
            },
        ),
    ],
)
def test_issue_11_urgent_symptoms_are_call_now(therapy_class: str, urgent: set[str]) -> None:
    assert urgent <= handouts.handout(therapy_class).call_now()


def test_tremor_after_car_t_is_no_longer_noted() -> None:
    """Issue 11 item 4: the portal answered « Noté » to tremor after CAR-T."""
    t = selfreport.triage("car_t", None, ["tremor"])
    assert t.decision == "call_now" and t.priority == "high"
    assert t.reasons_fr[0].startswith("Tremblements, mouvements anormaux : ")
    assert any("BCMA" in line.en and "tremor" in line.symptoms for line in handouts.handout("car_t").lines)


def test_checkpoint_chest_pain_is_critical() -> None:
    t = selfreport.triage("checkpoint_inhibitor", 37.0, ["rash", "chest_pain"])
    assert t.decision == "call_now" and t.priority == "critical"
    assert len(t.reasons) == 1 and t.reasons[0].startswith("Chest pain: myocarditis")
    assert any("Schneider" in c for c in t.sources)


@pytest.mark.parametrize("therapy_class", CLASSES)
def test_antipyretic_instruction_in_both_languages(therapy_class: str) -> None:
    h = handouts.handout(therapy_class)
    fr, en = h.before_calling("fr"), h.before_calling("en")
    assert "Ne prenez pas de paracétamol ni d'anti-inflammatoire" in fr and "avant d'avoir appelé" in fr
    assert "Do not take paracetamol" in en and "anti-inflammatory" in en and "before calling" in en
    assert h.before_calling_sources
    assert fr in h.render("fr") and en in h.render("en")


def test_car_t_fever_masking_names_crs() -> None:
    h = handouts.handout("car_t")
    assert "syndrome de relargage cytokinique" in h.before_calling("fr")
    assert "cytokine release syndrome" in h.before_calling("en")


def test_the_pathway_shows_the_car_t_handout() -> None:
    from datetime import date

    from immunotox import pathway

    s = pathway.status(date(2026, 12, 1), today=date(2026, 12, 10), lang="fr", info_audience="patient")
    assert s.info is not None
    h = handouts.handout("car_t")
    assert s.info.call == list(h.call("fr"))
    assert s.info.before_calling == h.before_calling("fr")


def test_a_handout_line_for_a_symptom_the_portal_only_notes_is_refused() -> None:
    doc = copy.deepcopy(_doc("car_t"))
    doc["symptom"]["tremor"]["urgency"] = "noted"
    with pytest.raises(RuleSpecError) as err:
        handouts.parse_handout("car_t", doc)
    assert str(err.value) == (
        "data/handouts/car_t.toml [[handout.item]] #5: the handout tells patients to call for 'tremor', "
        "which is not a call_now symptom of the portal for this class"
    )


def test_an_urgent_symptom_missing_from_the_handout_is_refused() -> None:
    doc = copy.deepcopy(_doc("checkpoint_inhibitor"))
    doc["handout"]["item"] = [i for i in doc["handout"]["item"] if "jaundice" not in i["symptoms"]]
    with pytest.raises(RuleSpecError) as err:
        handouts.parse_handout("checkpoint_inhibitor", doc)
    assert str(err.value) == (
        "data/handouts/checkpoint_inhibitor.toml: call_now symptoms ['jaundice'] are not in the "
        "handout's when-to-call list"
    )


def test_a_line_without_english_is_refused() -> None:
    doc = copy.deepcopy(_doc("bispecific"))
    doc["handout"]["item"][0]["en"] = " "
    with pytest.raises(RuleSpecError, match=r"#0: en is required"):
        handouts.parse_handout("bispecific", doc)


def test_unknown_therapy_class_is_refused() -> None:
    with pytest.raises(FindingError) as err:
        handouts.handout("cart")
    assert err.value.field == "therapy_class"


def test_the_symptom_code_vocabulary_is_the_handouts_list() -> None:
    from immunotox.service import codes

    assert codes.vocabulary()["symptom"].values == handouts.symptom_tokens()
    assert set(handouts.symptom_tokens()) == {t for c in CLASSES for t in handouts.handout(c).symptoms}
