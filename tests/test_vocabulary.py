"""The one observation vocabulary (data/observations.toml) and the rules its loader enforces."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

import pytest

import immunotox
from immunotox import ruledata, units
from immunotox.errors import RuleSpecError
from immunotox.findings import vocabulary as findings_vocabulary
from immunotox.simulate import _vocab as simulated
from immunotox.vocabulary import _code_from_table, vocabulary

RAW = tomllib.loads(resources.files("immunotox").joinpath("data/observations.toml").read_text("utf-8"))


def _load(name: str, table: dict[str, Any]) -> Any:
    return _code_from_table(name, 0, table, findings_vocabulary())


def test_molar_masses_come_from_the_analyte_table_only() -> None:
    assert not any("molar_mass" in t for t in RAW["code"].values())
    with_mass = {c.name: c.molar_mass for c in vocabulary().codes if c.molar_mass is not None}
    assert with_mass == {
        "hemoglobin": units.analyte("hemoglobin").molar_mass,
        "creatinine": units.analyte("creatinine").molar_mass,
        "bilirubin": units.analyte("bilirubin").molar_mass,
        "free_t4": units.analyte("free_t4").molar_mass,
        "cortisol": units.analyte("cortisol").molar_mass,
        "fasting_glucose": units.analyte("glucose").molar_mass,
    }
    assert with_mass["creatinine"] == 113.12


def test_the_loader_refuses_what_the_grammar_forbids() -> None:
    base = {"resource": "observation", "kind": "quantity", "unit": "mg/dL", "range": [0.0, 10.0]}
    _load("x", base)
    cases = [
        ({**base, "molar_mass": 113.12}, "unknown keys ['molar_mass']"),
        ({**base, "analyte": "creatinine", "unit": "mg/L"}, "is not analyte 'creatinine'"),
        ({**base, "resource": "lab"}, "unknown resource 'lab'"),
        ({**base, "category": "labs"}, "unknown category 'labs'"),
        ({**{k: v for k, v in base.items() if k != "range"}}, "a number needs a range or a finding"),
        ({"resource": "event", "kind": "token", "unit": "mg", "tokens": ["a"]}, "only a quantity has a unit"),
        ({**base, "unit": "U/L", "finding": "ast", "range": [0.0, 5.0]}, "differs from finding 'ast'"),
        ({"resource": "report", "kind": "token", "values_from": "pathway"}, "values_from must be 'handouts'"),
        (
            {"resource": "report", "kind": "token", "values_from": "handouts", "tokens": ["a"]},
            "values_from must be 'handouts' and excludes tokens",
        ),
    ]
    for table, message in cases:
        with pytest.raises(RuleSpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
            _load("x", table)


def test_every_code_has_its_texts_and_every_lab_its_category() -> None:
    for spec in vocabulary().all_codes.values():
        assert spec.text and spec.text_fr, spec.name
    labs = {c.name for c in vocabulary().codes if c.category == "laboratory"}
    assert {"alt", "ast", "bilirubin", "creatinine", "anc", "platelets"} <= labs
    assert not labs & {"temperature", "oxygen", "ice_score"}


def test_the_simulator_writes_the_vocabularys_units_tokens_and_aliases() -> None:
    voc = vocabulary()
    for spec in simulated.CODES:
        code = voc.code(spec.code)
        assert spec.unit == code.unit, spec.code
        assert all(code.accepts_token(t) == t for t in spec.tokens), spec.code
        if spec.kind == "number":
            assert code.range is not None
            assert code.range[0] <= spec.low <= spec.high <= code.range[1], spec.code
    assert {a: c.name for c in voc.codes for a in c.loinc} == simulated.LOINC_TO_CODE


def test_device_intensity_never_ranks_a_device_above_one_of_a_higher_astct_grade() -> None:
    """The service and the timeline engine pick THE device by the vocabulary's intensity order;
    it must agree with the ASTCT 2019 hypoxia grade each device supports (so the grade never
    depends on which of two simultaneous devices is reported)."""
    rows = ruledata.load("astct2019")["crs"]["oxygen"]
    grades = [int(rows[d]["grade"]) for d in vocabulary().code("oxygen").intensity]
    assert grades == sorted(grades) and len(grades) == len(rows)


@pytest.mark.parametrize(
    ("scale", "findings", "field", "problem"),
    [
        (  # a quantity object with a key besides value and unit (the first in sorted order)
            "astct2019:crs",
            {"temperature_c": {"value": 39.0, "unit": "Cel", "zz": 1, "note": "x"}},
            "temperature_c.note",
            "unknown key; expected value and unit",
        ),
        (  # a record with an item it does not declare
            "astct2019:icans",
            {"ice_items": {"orientation": 4, "spelling": 1, "colour": 2}},
            "ice_items.colour",
            "unknown item",
        ),
        (  # a series point with keys besides its index, date and value
            "ehaebmt2023:icaht",
            {"anc_series": {"unit": "/uL", "points": [{"day": 0, "value": 900}, {"day": 1, "v": 2, "u": 3}]}},
            "anc_series[1].u",
            "unknown key",
        ),
    ],
)
def test_keys_a_finding_does_not_declare_are_refused_by_name(
    scale: str, findings: dict[str, Any], field: str, problem: str
) -> None:
    with pytest.raises(immunotox.FindingError) as err:
        immunotox.grade(scale, findings)
    assert err.value.field == field and problem in str(err.value)
