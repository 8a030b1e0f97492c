"""The typed rule tables: every scale's TOML is validated at load, and an edit that breaks the
grammar (a misspelt key, a wrong type, a missing key) fails naming the file and the key."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from importlib import resources

import pytest
from pydantic import BaseModel

from immunotox import ruledata
from immunotox.errors import RuleSpecError
from immunotox.scales import asco2021_spec, astct2019_spec, icaht_spec, iechs_spec, legacy_crs_spec

TABLES: dict[str, type[BaseModel]] = {
    "icaht": icaht_spec.IcahtTable,
    "astct2019": astct2019_spec.AstctTable,
    "legacy_crs": legacy_crs_spec.LegacyTable,
    "iechs": iechs_spec.IecHsTable,
    "asco2021": asco2021_spec.AscoTable,
}


def _text(name: str) -> str:
    return resources.files("immunotox").joinpath(f"data/scales/{name}.toml").read_text("utf-8")


def _edited(name: str, old: str, new: str) -> dict[str, object]:
    text = _text(name)
    assert text.count(old) >= 1, f"{old!r} not in {name}.toml"
    return tomllib.loads(text.replace(old, new, 1))


@pytest.mark.parametrize("name", sorted(TABLES))
def test_shipped_table_is_valid(name: str) -> None:
    table = ruledata.typed(name, TABLES[name])
    assert isinstance(table, TABLES[name])


# (file, old text, new text, the key path the error must name, what it must say)
BROKEN = [
    (
        "legacy_crs",
        "fio2_high_min_pct = 40.0",
        "fio2_high_min_pc = 40.0",
        "common.fio2_high_min_pc",
        "unknown key",
    ),
    (
        "legacy_crs",
        'hypoxia_rule = "device"',
        'hypoxia_rule = "devices"',
        "penn.hypoxia_rule",
        "'device' or 'fio2'",
    ),
    (
        "legacy_crs",
        "by_ctcae_grade = [0, 0, 2, 3, 4]",
        "by_ctcae_grade = [0, 0, 2, 3]",
        "lee2014.organ.by_ctcae_grade",
        "at least 5",
    ),
    (
        "legacy_crs",
        "long_vasopressor_min_hours = 24.0",
        'long_vasopressor_min_hours = "24 h"',
        "mskcc.long_vasopressor_min_hours",
        "valid number",
    ),
    ("iechs", "below = 1.5", "bellow = 1.5", "features[3].bellow", "unknown key"),
    ("iechs", "above = 5.0", 'above = "5"', "features[4].above", "valid number"),
    ("astct2019", "fever_min_c = 38.0", "fever_min = 38.0", "crs.fever_min", "unknown key"),
    ("astct2019", "sbp_below_mmhg = 90.0", 'sbp_below_mmhg = "90"', "crs.sbp_below_mmhg", "valid number"),
    (
        "astct2019",
        "[crs.oxygen.cpap]\ngrade = 4",
        '[crs.oxygen.cpap]\ngrade = "4"',
        "crs.oxygen.cpap.grade",
        "valid integer",
    ),
    (
        "astct2019",
        "[crs.hypotension.no_vasopressor]",
        "[crs.hypotension.no_vasopresor]",
        "crs.hypotension.no_vasopresor",
        "unknown key",
    ),
    ("icaht", "max_filled_gap_days = 7", "max_filed_gap_days = 7", "early.max_filed_gap_days", "unknown key"),
    (
        "icaht",
        "max_filled_gap_days = 7",
        "max_filed_gap_days = 7",
        "early.max_filled_gap_days",
        "missing key",
    ),
    ("icaht", "min_values = 2", 'min_values = "2"', "late.min_values", "valid integer"),
    ("icaht", "max_per_ul = 500.0", 'max_per_ul = "500"', "early.thresholds[0].max_per_ul", "valid number"),
    (
        "icaht",
        'grade = 4\ntext = "Nadir',
        'grade = 5\ntext = "Nadir',
        "late.bands[0].grade",
        "less than or equal to 4",
    ),
    ("asco2021", 'ref = "alt_uln"', 'reff = "alt_uln"', "hepatitis.criteria.alt.reff", "unknown key"),
    (
        "asco2021",
        '{ grade = 2, gt = 3.0, text = "ALT',
        '{ grade = 2, gt = "3.0", text = "ALT',
        "hepatitis.criteria.alt.bands[1].gt",
        "valid number",
    ),
    ("asco2021", 'soc = "Renal and urinary disorders"', "", "nephritis.soc", "missing key"),
    (
        "asco2021",
        'kind = "bool"\nfinding = "dialysis_indicated"',
        'kind = "boolean"\nfinding = "dialysis_indicated"',
        "nephritis.criteria.dialysis.kind",
        "'multiple', 'number', 'enum' or 'bool'",
    ),
]


@pytest.mark.parametrize(("name", "old", "new", "key", "says"), BROKEN)
def test_broken_table_names_file_and_key(name: str, old: str, new: str, key: str, says: str) -> None:
    with pytest.raises(RuleSpecError) as exc:
        ruledata.validate(name, TABLES[name], _edited(name, old, new))
    msg = str(exc.value)
    assert msg.startswith(f"data/scales/{name}.toml: ")
    errors = msg.removeprefix(f"data/scales/{name}.toml: ").split("; ")
    assert any(e.startswith(f"{key}: ") and says in e for e in errors), msg


def test_icaht_structure_checked() -> None:
    # a gap between duration bands would leave some episode lengths without a grade
    with pytest.raises(RuleSpecError, match=r"icaht\.toml: early\.thresholds\[1\].*without gap"):
        ruledata.validate(
            "icaht",
            icaht_spec.IcahtTable,
            _edited(
                "icaht", "min_days = 7\nmax_days = 13\ngrade = 3", "min_days = 8\nmax_days = 13\ngrade = 3"
            ),
        )
    with pytest.raises(RuleSpecError, match="never_recovered_threshold_key 'anc_le_50'"):
        ruledata.validate(
            "icaht",
            icaht_spec.IcahtTable,
            _edited(
                "icaht",
                'never_recovered_threshold_key = "anc_le_500"',
                'never_recovered_threshold_key = "anc_le_50"',
            ),
        )


def test_astct_structure_checked() -> None:
    # a row for a token the findings vocabulary does not know would never be read
    with pytest.raises(
        RuleSpecError, match=r"astct2019\.toml: crs:.*crs\.oxygen.*missing \['cpap'\], unknown \['cpapp'\]"
    ):
        ruledata.validate(
            "astct2019",
            astct2019_spec.AstctTable,
            _edited("astct2019", "[crs.oxygen.cpap]", "[crs.oxygen.cpapp]"),
        )
    with pytest.raises(RuleSpecError, match=r"icans\.ice_bands: bands must cover 0-10"):
        ruledata.validate(
            "astct2019",
            astct2019_spec.AstctTable,
            _edited("astct2019", "min = 7\nmax = 9", "min = 8\nmax = 9"),
        )


def test_astct_possible_grades_come_from_the_table() -> None:
    t = astct2019_spec.table()
    # the hypotension rows: none 0, no vasopressor 2, one vasopressor 3, multiple 4
    assert t.crs.hypotension.grades(None, pressors_known=False) == (0, 2, 3, 4)
    assert t.crs.hypotension.grades(True, pressors_known=False) == (2, 3, 4)
    assert t.crs.hypotension.grades(False, pressors_known=False) == (0, 3, 4)
    assert t.crs.hypotension.grades(None, pressors_known=True) == (0, 2)
    assert t.crs.oxygen_grades(some_oxygen=True) == (2, 3, 4)
    assert t.icans.encephalopathy_grades() == (0, 1, 2, 3)
    assert t.icans.capd_grades() == (0, 1, 3)
    assert t.icans.edema_grades() == (0, 3, 4)


def test_legacy_structure_checked() -> None:
    # a hypotension rule without the rows it reads
    edited = _edited(
        "legacy_crs", "[mskcc.hypotension.vasopressor_under_24h]", "[mskcc.hypotension.vasopressor_below_24h]"
    )
    with pytest.raises(
        RuleSpecError, match=r"legacy_crs\.toml: mskcc: .*hypotension rule 'duration' reads the rows"
    ):
        ruledata.validate("legacy_crs", legacy_crs_spec.LegacyTable, edited)
    edited = _edited(
        "legacy_crs", 'ventilator_devices = ["mechanical_ventilation"]', 'ventilator_devices = ["ventilator"]'
    )
    with pytest.raises(
        RuleSpecError, match=r"common: .*ventilator_devices: not oxygen tokens \['ventilator'\]"
    ):
        ruledata.validate("legacy_crs", legacy_crs_spec.LegacyTable, edited)


def test_iechs_structure_checked() -> None:
    edited = _edited("iechs", 'finding = "fibrinogen"', 'finding = "fibrinogen_g_l"')
    with pytest.raises(RuleSpecError, match=r"features\[3\]: .*'fibrinogen_g_l': not a finding"):
        ruledata.validate("iechs", iechs_spec.IecHsTable, edited)


def test_a_broken_table_fails_when_its_scale_is_imported() -> None:
    """In a fresh process, each scale module imported with a misspelt key in its table fails at
    import, naming the file and the key (not later, as a wrong grade)."""
    cases = [
        ("immunotox.scales.icaht", "icaht", "max_filled_gap_days = 7", "max_filed_gap_days = 7"),
        ("immunotox.scales.astct2019", "astct2019", "fever_min_c = 38.0", "fever_minimum_c = 38.0"),
        ("immunotox.scales.legacy_crs", "legacy_crs", "room_air_fio2_pct = 21.0", "room_air_fio2 = 21.0"),
        ("immunotox.scales.iechs", "iechs", "below = 1.5", "bellow = 1.5"),
        ("immunotox.scales.asco2021", "asco2021", 'ref = "alt_uln"', 'ref_key = "alt_uln"'),
    ]
    script = textwrap.dedent(
        """
        import importlib, json, sys, tomllib
        from immunotox import ruledata
        from immunotox.errors import RuleSpecError
        original = ruledata.load
        out = []
        for module, name, old, new in json.loads(sys.argv[1]):
            text = open(sys.argv[2] + "/" + name + ".toml", encoding="utf-8").read()
            broken = tomllib.loads(text.replace(old, new, 1))
            ruledata.load = lambda n, name=name, broken=broken: broken if n == name else original(n)
            try:
                importlib.import_module(module)
                out.append("imported")
            except RuleSpecError as exc:
                out.append(str(exc))
            ruledata.load = original
        print(json.dumps(out))
        """
    )
    folder = str(resources.files("immunotox").joinpath("data/scales"))
    run = subprocess.run(
        [sys.executable, "-c", script, json.dumps(cases), folder], capture_output=True, text=True, check=True
    )
    messages = json.loads(run.stdout)
    assert (
        messages[0].startswith("data/scales/icaht.toml: ")
        and "early.max_filed_gap_days: unknown key" in messages[0]
    )
    assert "data/scales/astct2019.toml: " in messages[1] and "crs.fever_minimum_c: unknown key" in messages[1]
    assert (
        "data/scales/legacy_crs.toml: " in messages[2] and "common.room_air_fio2: unknown key" in messages[2]
    )
    assert "data/scales/iechs.toml: " in messages[3] and "features[3].bellow: unknown key" in messages[3]
    assert (
        "data/scales/asco2021.toml: " in messages[4]
        and "hepatitis.criteria.alt.ref_key: unknown key" in messages[4]
    )


def test_asco2021_structure_checked() -> None:
    """Schneider et al., J Clin Oncol 2021 (ASCO irAE guideline): a band with two comparisons, a
    band list out of order, an enum value its finding does not allow, or a reference in another
    unit would grade wrongly; each fails at load naming the criterion."""
    alt, ast = '{ grade = 1, gt = 1.0, text = "ALT', '{ grade = 1, gt = 1.0, text = "AST'
    cases = [
        (alt, alt.replace("gt = 1.0", "gt = 1.0, ge = 1.0"), "exactly one of"),
        (ast, ast.replace("grade = 1", "grade = 3"), "least to the most severe"),
        ("values.symptomatic = {", "values.symptomatic_x = {", "['symptomatic_x'] are not values"),
        ('ref = "alt_uln"', 'ref = "bilirubin_uln"', "is not in the unit of 'alt'"),
        ('finding = "liver_dysfunction"', 'finding = "liver_dysfunctions"', "not a finding"),
    ]
    for old, new, says in cases:
        with pytest.raises(RuleSpecError) as exc:
            ruledata.validate("asco2021", asco2021_spec.AscoTable, _edited("asco2021", old, new))
        assert str(exc.value).startswith("data/scales/asco2021.toml: hepatitis.criteria."), str(exc.value)
        assert says in str(exc.value), (says, str(exc.value))
