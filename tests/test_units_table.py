"""The analyte table (data/analytes.toml): one place for canonical units and molar masses.

Every molar mass written anywhere in the shipped data must be this table's value for the same
analyte, and the CTCAE lab terms take theirs from it; the conversions it drives are checked
against the SI equivalents NCI prints beside the conventional CTCAE thresholds.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest

from immunotox import units
from immunotox.errors import RuleSpecError, UnitError
from immunotox.findings import vocabulary as findings_vocabulary
from immunotox.scales.ctcae_spec import load_table

ROOT = resources.files("immunotox")


def _molar_masses(node: Any, path: str) -> Iterator[tuple[str, str, float]]:
    """(where, analyte name, molar mass) for every table in ``node`` that declares a molar mass."""
    if isinstance(node, dict):
        if "molar_mass" in node:
            name = node.get("finding") or path.rsplit(".", 1)[-1]
            yield path, str(name), float(node["molar_mass"])
        for k, v in node.items():
            yield from _molar_masses(v, f"{path}.{k}")


def _data_files() -> Iterator[tuple[str, Any]]:
    for folder in ("data",):
        for entry in ROOT.joinpath(folder).iterdir():
            if entry.name.endswith(".toml") and entry.name != "analytes.toml":
                yield f"{folder}/{entry.name}", tomllib.loads(entry.read_text("utf-8"))


def test_no_molar_mass_is_written_outside_the_table() -> None:
    # findings_risk, findings_irae and data/observations.toml name their analyte instead
    seen = [hit for name, data in _data_files() for hit in _molar_masses(data, name)]
    assert seen == []


def test_the_risk_findings_take_their_molar_mass_and_units_from_the_table() -> None:
    table = units.analytes()
    fv = findings_vocabulary()
    for name in ("creatinine", "hemoglobin", "triglycerides"):
        assert fv[name].molar_mass == table[name].molar_mass, name
        assert fv[name].unit_required == table[name].unit_required, name
    # creatinine 100 umol/L = 1.1312 mg/dL (113.12 g/mol), the EASIX unit
    assert units.convert("creatinine", 100, "umol/L", fv["creatinine"].unit, fv["creatinine"].molar_mass) == (
        pytest.approx(1.1312)
    )


def test_every_row_has_its_source_and_a_known_unit() -> None:
    for key, a in units.analytes().items():
        assert a.source and a.formula, key
        assert units.is_known(a.unit), key


def test_ctcae_lab_terms_take_their_molar_mass_from_the_table() -> None:
    for name in ("ctcae5", "ctcae4"):
        for slug, term in load_table(name).term.items():
            lab = term.lab
            if lab is not None and lab.substance is not None:
                a = units.analyte(lab.substance)
                assert (lab.unit, lab.molar_mass) == (a.unit, a.molar_mass), f"{name}:{slug}"


# conventional CTCAE threshold -> the SI equivalent NCI prints beside it (v5.0 text). NCI rounds
# its SI figures (11.5 mg/dL calcium = 2.87 mmol/L, printed 2.9): they agree within 2 %, and the
# table's notes list where the rounding moves a grade.
PRINTED = [
    ("calcium", 8.0, "mg/dL", "mmol/L", 2.0),
    ("calcium", 11.5, "mg/dL", "mmol/L", 2.9),
    ("magnesium", 1.2, "mg/dL", "mmol/L", 0.5),
    ("magnesium", 3.0, "mg/dL", "mmol/L", 1.23),
    ("glucose", 55.0, "mg/dL", "mmol/L", 3.0),
    ("glucose", 250.0, "mg/dL", "mmol/L", 13.9),
    ("phosphate", 2.5, "mg/dL", "mmol/L", 0.8),
    ("uric_acid", 10.0, "mg/dL", "mmol/L", 0.59),
    ("cholesterol", 300.0, "mg/dL", "mmol/L", 7.75),
    ("cholesterol", 500.0, "mg/dL", "mmol/L", 12.92),
    ("triglycerides", 500.0, "mg/dL", "mmol/L", 5.7),
    ("hemoglobin", 10.0, "g/dL", "mmol/L", 6.2),
    ("albumin", 3.0, "g/dL", "g/L", 30.0),
]


@pytest.mark.parametrize(("key", "x", "unit", "to", "printed"), PRINTED)
def test_conversions_match_the_printed_si_thresholds(
    key: str, x: float, unit: str, to: str, printed: float
) -> None:
    got = units.convert("value", x, unit, to, units.analyte(key).molar_mass)
    assert abs(got - printed) <= 0.02 * printed, got
    back = units.convert("value", got, to, unit, units.analyte(key).molar_mass)
    assert back == pytest.approx(x, rel=1e-9)


def test_counts_convert_between_si_and_conventional() -> None:
    assert units.convert("value", 100_000, "/mm3", "10*9/L") == 100.0
    assert units.convert("value", 500, "/uL", "10*9/L") == 0.5
    assert units.convert("value", 4.0, "10*3/uL", "10*9/L") == 4.0


def test_an_unknown_analyte_is_a_packaging_error() -> None:
    with pytest.raises(RuleSpecError, match=r"'sodium' is not in data/analytes\.toml"):
        units.analyte("sodium")


def test_a_mass_unit_without_molar_mass_is_refused() -> None:
    with pytest.raises(UnitError, match=r"cannot convert 'mmol/L' to 'g/dL'"):
        units.convert("value", 0.6, "mmol/L", "g/dL", units.analyte("albumin").molar_mass)
