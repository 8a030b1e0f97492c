"""UCUM unit parsing and conversion (pint), with the conversions clinical data needs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from immunotox import units
from immunotox.errors import FindingError, UnitError

CREATININE_G_MOL = 113.12
BILIRUBIN_G_MOL = 584.66
HEMOGLOBIN_G_MOL = 16114.5


@pytest.mark.parametrize(
    ("value", "unit", "to", "mw", "expected"),
    [
        (100.4, "[degF]", "Cel", None, 38.0),
        (212, "[degF]", "Cel", None, 100.0),
        (311.15, "K", "Cel", None, 38.0),
        (38, "°C", "Cel", None, 38.0),
        (88.42, "umol/L", "mg/dL", CREATININE_G_MOL, 1.0002),  # 1 mg/dL creatinine = 88.4 µmol/L
        (1.0, "mg/dL", "umol/L", CREATININE_G_MOL, 88.42),
        (17.1, "umol/L", "mg/dL", BILIRUBIN_G_MOL, 1.0),  # 1 mg/dL bilirubin = 17.1 µmol/L
        (6.2, "mmol/L", "g/dL", HEMOGLOBIN_G_MOL, 9.991),  # CTCAE: 10.0 g/dL ~ 6.2 mmol/L
        (100, "g/L", "g/dL", None, 10.0),
        (1500, "/uL", "10*9/L", None, 1.5),
        (1500, "/mm3", "10*9/L", None, 1.5),
        (1.5, "10*3/uL", "10*9/L", None, 1.5),
        (75000, "/mm3", "10*9/L", None, 75.0),
        (30, "mg/L", "mg/dL", None, 3.0),
        (650, "ug/L", "ng/mL", None, 650.0),
        (0.4, "1", "%", None, 40.0),
        (40, "IU/L", "U/L", None, 40.0),
        (12, "kPa", "mm[Hg]", None, 90.0),
        (154, "[lb_av]", "kg", None, 69.853),
        # TSH: international units of a hormone, 1 uIU/mL = 1 mIU/L (issue 17)
        (4.5, "u[IU]/mL", "m[IU]/L", None, 4.5),
        (4.5, "uIU/mL", "m[IU]/L", None, 4.5),
        (10, "mIU/L", "m[IU]/L", None, 10.0),
        # free T4: 1 ng/dL = 12.87 pmol/L (thyroxine 776.87 g/mol); cortisol 3 ug/dL = 82.8 nmol/L
        (1.0, "ng/dL", "pmol/L", 776.87, 12.872),
        (3.0, "ug/dL", "nmol/L", 362.46, 82.768),
    ],
)
def test_known_conversions(value: float, unit: str, to: str, mw: float | None, expected: float) -> None:
    assert units.convert("x", value, unit, to, mw) == pytest.approx(expected, rel=2e-3)


def test_exact_threshold_survives_conversion() -> None:
    # 75,000/mm3 must stay exactly on CTCAE's 75.0 x 10e9/L threshold, not 75.00000000000001
    assert units.convert("platelets", 75000, "/mm3", "10*9/L") == 75.0
    assert units.convert("anc", 500, "/uL", "10*9/L") == 0.5


def test_a_molar_mass_converts_mass_and_substance_only() -> None:
    """pmol/L of free T4 against kg or a bare ratio is refused naming the field; pint's chemistry
    context would otherwise try molarity <-> amount through a volume of 0 (division by zero)."""
    for unit, to, mw in (("kg", "pmol/L", 776.87), ("1", "nmol/L", 362.46), ("pmol/L", "kg", 776.87)):
        with pytest.raises(UnitError, match=f"cannot convert {unit!r} to {to!r}"):
            units.convert("free_t4", 1.0, unit, to, mw)


@pytest.mark.parametrize(
    ("unit", "to", "message"),
    [
        ("degX", "Cel", "unknown UCUM unit 'degX'"),
        ("mg/dL", "Cel", "cannot convert 'mg/dL' to 'Cel'"),
        ("umol/L", "mg/dL", "cannot convert 'umol/L' to 'mg/dL'"),  # no molar mass given
        ("10^9/L", "10*9/L", "unsupported UCUM term"),
    ],
)
def test_bad_units_name_the_field(unit: str, to: str, message: str) -> None:
    with pytest.raises(UnitError) as err:
        units.convert("creatinine", 1.0, unit, to)
    assert err.value.field == "creatinine.unit"
    assert message in str(err.value)
    assert str(err.value).startswith(f"creatinine.unit = {unit!r}")


@given(st.floats(-50, 50))
def test_celsius_fahrenheit_round_trip(c: float) -> None:
    f = units.convert("t", c, "Cel", "[degF]")
    assert units.convert("t", f, "[degF]", "Cel") == pytest.approx(c, abs=1e-6)


@given(st.floats(0.01, 100))
def test_creatinine_round_trip(mg_dl: float) -> None:
    umol = units.convert("c", mg_dl, "mg/dL", "umol/L", CREATININE_G_MOL)
    assert units.convert("c", umol, "umol/L", "mg/dL", CREATININE_G_MOL) == pytest.approx(mg_dl, rel=1e-8)


@given(st.floats(1, 1e6))
def test_cell_count_round_trip(per_ul: float) -> None:
    g_l = units.convert("anc", per_ul, "/uL", "10*9/L")
    assert g_l == pytest.approx(per_ul / 1000, rel=1e-9)
    assert units.convert("anc", g_l, "10*9/L", "/uL") == pytest.approx(per_ul, rel=1e-8)


def _pint_direct(value: float, unit: str, to: str, mw: float | None) -> float:
    """The conversion as pint computes it for this one value (the former per-call path)."""
    f_from, expr_from = units.parse_ucum(unit)
    f_to, expr_to = units.parse_ucum(to)
    ureg = units.registry()
    q = ureg.Quantity(value * f_from, ureg.parse_units(expr_from))
    target = ureg.parse_units(expr_to)
    if q.dimensionality != ureg.Quantity(1, target).dimensionality:
        out = q.to(target, "chemistry", mw=mw * ureg("g/mol"))
    else:
        out = q.to(target)
    return float(f"{float(out.magnitude) / f_to:.10g}")


PAIRS = [
    ("[degF]", "Cel", None),
    ("K", "Cel", None),
    ("umol/L", "mg/dL", CREATININE_G_MOL),
    ("mg/dL", "umol/L", CREATININE_G_MOL),
    ("umol/L", "mg/dL", BILIRUBIN_G_MOL),
    ("mmol/L", "g/dL", HEMOGLOBIN_G_MOL),
    ("/mm3", "10*9/L", None),
    ("10*3/uL", "10*9/L", None),
    ("/uL", "10*9/L", None),
    ("kPa", "mm[Hg]", None),
    ("[lb_av]", "kg", None),
    ("1", "%", None),
]


@given(st.sampled_from(PAIRS), st.floats(0, 1e6) | st.integers(0, 10**6).map(float))
def test_cached_affine_conversion_equals_pint_on_each_value(
    pair: tuple[str, str, float | None], v: float
) -> None:
    """Conversion factors are cached per (unit, canonical unit, molar mass): pint's result.

    Both round to 10 significant digits; on an exact tie in the 11th digit the last digit may
    round the other way (19 of 36,000 random values, all hemoglobin above 60,000 mmol/L), hence
    one unit in the 10th digit of tolerance.
    """
    unit, to, mw = pair
    expected = _pint_direct(v, unit, to, mw)
    assert units.convert("x", v, unit, to, mw) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_conversion_errors_are_not_cached() -> None:
    for _ in range(2):
        with pytest.raises(UnitError, match="cannot convert 'mg/dL' to '10\\*9/L'"):
            units.convert("anc", 1.0, "mg/dL", "10*9/L")


# ----------------------------------------------------------------- units never guessed (issue 11)
def _unit_required() -> dict[str, tuple[str, ...]]:
    from immunotox.catalogue import all_scales
    from immunotox.findings import vocabulary

    out = {k: v.unit_required for k, v in vocabulary().items() if v.unit_required}
    for scale in all_scales().values():
        for k, v in scale.findings.items():
            if v.unit_required:
                out[f"{scale.id}:{k}"] = v.unit_required
    return out


def test_analytes_whose_unit_differs_between_french_and_us_labs_declare_it() -> None:
    required = _unit_required()
    assert {"crp", "creatinine", "triglycerides", "fibrinogen"} <= set(required)
    for term in (
        "blood-bilirubin-increased",
        "creatinine-increased",
        "hyperglycemia",
        "fibrinogen-decreased",
    ):
        assert f"ctcae5:{term}:value" in required, term
    # cell counts: G/L (10*9/L) in French labs, cells/uL or 10*3/uL in US labs (issue 11)
    assert {"platelets", "anc", "wbc", "anc_series"} <= set(required)
    # (every count term refusing a bare value: tests/test_ctcae.py)
    assert required["ctcae5:platelet-count-decreased:value"] == ("10*9/L", "/uL")
    assert required["ctcae4:neutrophil-count-decreased:lln"] == ("10*9/L", "/uL")
    # analytes reported in the same unit in France and the US keep a bare number
    assert not {"ldh", "ast", "ferritin", "hemoglobin", "temperature_c"} & set(required)


def test_every_unit_required_finding_refuses_a_bare_number_and_accepts_each_declared_unit() -> None:
    from immunotox.catalogue import all_scales
    from immunotox.findings import vocabulary

    specs = [*vocabulary().values(), *(f for s in all_scales().values() for f in s.findings.values())]
    checked = 0
    for spec in specs:
        if not spec.unit_required or spec.kind != "quantity":
            continue
        with pytest.raises(FindingError, match=r"^" + spec.name + r" = 1: a bare number is refused"):
            spec.parse(1)
        assert spec.range is not None
        mid = sum(spec.range) / 2
        for unit in spec.unit_required:
            given = units.convert(spec.name, mid, str(spec.unit), unit, spec.molar_mass)
            assert spec.parse({"value": given, "unit": unit}) == pytest.approx(mid)
        checked += 1
    assert checked >= 10


def test_unit_required_must_name_convertible_units() -> None:
    from immunotox.errors import RuleSpecError
    from immunotox.findings import spec_from_table

    with pytest.raises(RuleSpecError, match="unit_required 'mmol/L'"):
        spec_from_table("crp", {"kind": "quantity", "unit": "mg/dL", "unit_required": ["mmol/L"]})
    with pytest.raises(RuleSpecError, match="list of UCUM codes"):
        spec_from_table("crp", {"kind": "quantity", "unit": "mg/dL", "unit_required": True})


def test_the_timeline_never_hands_a_bare_number_for_a_unit_required_finding() -> None:
    # a derived finding that needs its unit (creatinine, glucose, bilirubin, free T4: laboratories
    # report them in different units) would be refused at every assessment as a bare number: the
    # cohort engines hand it as {"value", "unit"} in its code's canonical unit, which the finding
    # accepts as the same value (a series hands its points with their unit: anc_series,
    # tests/test_timeline_icaht.py)
    from immunotox.findings import vocabulary
    from immunotox.timeline._snapshot import finding_value
    from immunotox.vocabulary import vocabulary as observations

    voc = observations()
    derivations = voc.derivations
    assert derivations["anc_series"].method == "series" and vocabulary()["anc_series"].unit_required
    needing = [d for k, d in derivations.items() if d.method != "series" and vocabulary()[k].unit_required]
    assert {d.finding for d in needing} >= {"creatinine", "bilirubin"}
    for d in needing:
        spec = vocabulary()[d.finding]
        lo, hi = spec.range if spec.range is not None else (0.0, 2.0)
        x = (lo + hi) / 2  # a plausible value in the code's unit
        given = finding_value(d, x, voc, with_units=True)
        assert given == {"value": x, "unit": voc.code(d.codes[0]).unit}, d.finding
        assert spec.parse(given) == pytest.approx(x), d.finding
        with pytest.raises(FindingError, match="a bare number is refused"):
            spec.parse(x)  # the bare number is what the core refuses
