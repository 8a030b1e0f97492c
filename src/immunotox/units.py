"""Units: UCUM codes in, canonical units out, through pint.

Findings carry their unit as a UCUM code (https://ucum.org). This module translates the UCUM
codes that clinical data actually uses into pint expressions, converts to a finding's canonical
unit and refuses, with a message naming the field, any unit that is unknown or of another
dimension. Molar-to-mass conversions (µmol/L ↔ mg/dL) use pint's ``chemistry`` context with the
molar mass declared for the analyte in the findings vocabulary.

Supported UCUM grammar (subset): unit atoms joined by ``.`` (product) and ``/`` (quotient),
optional integer exponents (``mm3``), powers of ten written ``10*N`` (``10*9/L``), bracketed
atoms (``[degF]``, ``[IU]``, ``mm[Hg]``, ``[lb_av]``), ``%`` and ``1`` for unitless values.
"""

from __future__ import annotations

import functools
import math
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

import pint

from .errors import RuleSpecError, UnitError
from .messages import Msg, error, or_list

# UCUM atom -> pint unit name. Anything not listed here is refused: we do not guess.
_ATOMS: dict[str, str] = {
    "Cel": "degC",
    "[degF]": "degF",
    "K": "kelvin",
    "g": "gram",
    "mg": "milligram",
    "ug": "microgram",
    "ng": "nanogram",
    "pg": "picogram",
    "kg": "kilogram",
    "[lb_av]": "pound",
    "mol": "mole",
    "mmol": "millimole",
    "umol": "micromole",
    "nmol": "nanomole",
    "pmol": "picomole",
    "L": "liter",
    "dL": "deciliter",
    "mL": "milliliter",
    "uL": "microliter",
    "mm3": "millimeter**3",
    "U": "enzyme_unit",
    "[IU]": "enzyme_unit",
    "[iU]": "enzyme_unit",
    # hormones in international units (TSH): UCUM prefixes a bracketed atom ("m[IU]/L")
    "m[IU]": "millienzyme_unit",
    "u[IU]": "microenzyme_unit",
    "m[iU]": "millienzyme_unit",
    "u[iU]": "microenzyme_unit",
    "mm[Hg]": "millimeter_Hg",
    "kPa": "kilopascal",
    "s": "second",
    "min": "minute",
    "h": "hour",
    "d": "day",
    "wk": "week",
    "mo": "month",
    "a": "year",
    "%": "percent",
    "1": "dimensionless",
    # pH has its own dimension: it is not a ratio, so "1" or "%" never converts to it
    "[pH]": "pH_unit",
    # UCUM annotation for renal function indexed to a standard body surface (eGFR): its own
    # dimension, so that mL/min (not indexed) is refused instead of silently accepted
    "{1.73_m2}": "body_surface_1_73_m2",
}

# Frequent non-UCUM spellings accepted as exact synonyms (never heuristics on the value).
_SYNONYMS: dict[str, str] = {
    "°C": "Cel",
    "degC": "Cel",
    "°F": "[degF]",
    "degF": "[degF]",
    "mmHg": "mm[Hg]",
    "IU/L": "[IU]/L",
    "mIU/L": "m[IU]/L",
    "uIU/mL": "u[IU]/mL",
    "mU/L": "m[IU]/L",
    "/mm³": "/mm3",
    "lb": "[lb_av]",
    "pH": "[pH]",
    "mL/min/1.73m2": "mL/min/{1.73_m2}",
    "mL/min/1.73 m2": "mL/min/{1.73_m2}",
    "": "1",
}

# '/' and '.' separate terms except inside a {annotation} ("mL/min/{1.73_m2}")
_OUTSIDE_BRACES_SLASH = re.compile(r"/(?![^{]*\})")
_OUTSIDE_BRACES_DOT = re.compile(r"\.(?![^{]*\})")
_TOKEN = re.compile(
    r"^(?P<atom>10\*[-+]?\d+|[mu]?\[[^\]]+\]|\{[^}]+\}|mm\[Hg\]|[A-Za-z%]+|1)(?P<exp>[-+]?\d+)?$"
)


@functools.cache
def registry() -> pint.UnitRegistry:  # type: ignore[type-arg]
    """The shared pint registry (created once, with the chemistry context available)."""
    ureg: pint.UnitRegistry = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)  # type: ignore[type-arg]
    ureg.define("pH_unit = [acidity]")
    ureg.define("body_surface_1_73_m2 = [standard_body_surface]")
    return ureg


def _normalise_code(code: str) -> str:
    code = code.strip().replace("µ", "u").replace("μ", "u")
    return _SYNONYMS.get(code, code)


@functools.cache
def parse_ucum(code: str) -> tuple[float, str]:
    """Translate a UCUM code into ``(factor, pint expression)``.

    Raises
    ------
    ValueError
        If the code uses an atom outside the supported subset.
    """
    norm = _normalise_code(code)
    if norm in ("1", ""):
        return 1.0, "dimensionless"
    # split on '/' keeping the first term as numerator; "/uL" has an empty numerator
    parts = _OUTSIDE_BRACES_SLASH.split(norm)
    factor = 1.0
    pieces: list[str] = []
    for i, part in enumerate(parts):
        sign = 1 if i == 0 else -1
        if part == "" and i == 0:
            continue
        for term in _OUTSIDE_BRACES_DOT.split(part):
            m = _TOKEN.match(term)
            if not m:
                raise ValueError(f"unsupported UCUM term {term!r}")
            atom, exp_s = m.group("atom"), m.group("exp")
            exp = int(exp_s) if exp_s else 1
            if atom.startswith("10*"):
                factor *= 10.0 ** (int(atom[3:]) * sign)
                continue
            if atom == "mm" and exp == 3:  # "mm3" tokenises as atom "mm" + exponent 3
                atom, exp = "mm3", 1
            name = _ATOMS.get(atom)
            if name is None:
                raise ValueError(f"unknown UCUM unit {atom!r}")
            pieces.append(f"({name})**{exp * sign}")
    return factor, " * ".join(pieces) if pieces else "dimensionless"


def convert(
    field: str,
    value: float,
    unit: str,
    to_unit: str,
    molar_mass_g_mol: float | None = None,
) -> float:
    """Convert ``value`` in UCUM ``unit`` to UCUM ``to_unit`` for finding ``field``.

    Every supported conversion is affine (``scale * value + offset``: °F -> °C has an offset,
    the others none, molar <-> mass included), so pint derives ``(scale, offset)`` once per
    (unit, canonical unit, molar mass) and each call is one multiplication and one addition.

    Raises
    ------
    UnitError
        Naming ``field``, when ``unit`` is unknown or cannot be converted to ``to_unit``.
    """
    try:
        same = _same(unit, to_unit)
    except TypeError:  # not a string (unhashable): fails below as it always did
        same = _normalise_code(unit) == _normalise_code(to_unit)
    if same:
        return float(value)
    try:
        scale, offset = _affine(unit, to_unit, molar_mass_g_mol)
    except ValueError as exc:
        raise UnitError(
            f"{field}.unit",
            unit,
            error("unit_unsupported", error=str(exc), field=field, unit=repr(to_unit)),
            error("unit_examples", examples=_examples(to_unit)),
        ) from None
    except pint.DimensionalityError:
        raise UnitError(
            f"{field}.unit",
            unit,
            error("unit_dimension", unit=repr(unit), to_unit=repr(to_unit), field=field),
            error("unit_same_kind", examples=_examples(to_unit)),
        ) from None
    # Round away binary floating-point noise (75000/mm3 -> 75.00000000000001 x10*9/L) so that a
    # value exactly on a printed threshold stays on it; 10 significant digits is far below any
    # clinical precision.
    result = float(f"{float(value) * scale + offset:.10g}")
    if not math.isfinite(result):
        raise UnitError(f"{field}.unit", unit, error("unit_not_finite"))
    return result


def _as_mass(dim: Any) -> dict[str, float]:
    """A dimensionality with amount of substance counted as mass: the only change a molar mass
    makes. ``pmol/L`` and ``ng/dL`` agree; ``pmol/L`` and ``kg`` do not (pint's chemistry context
    would otherwise try molarity <-> amount through a volume of 0 and divide by zero)."""
    out: dict[str, float] = {}
    for k, e in dict(dim).items():
        key = "[mass]" if k == "[substance]" else k
        out[key] = out.get(key, 0) + e
    return {k: e for k, e in out.items() if e}


@functools.lru_cache(maxsize=1024)
def _same(unit: str, to_unit: str) -> bool:
    """Whether two UCUM codes are written the same once normalised (µ, synonyms): a pure
    function of the two strings, kept per pair (bounded: codes come from the input)."""
    return _normalise_code(unit) == _normalise_code(to_unit)


@functools.lru_cache(maxsize=1024)
def _affine(unit: str, to_unit: str, molar_mass_g_mol: float | None) -> tuple[float, float]:
    """``(scale, offset)`` converting ``unit`` to ``to_unit``, derived with pint (cached).

    Raises ``ValueError`` for an unsupported UCUM code and ``pint.DimensionalityError`` for units
    of another dimension (an error is not cached: it is raised again on the next call).
    """
    f_from, expr_from = parse_ucum(unit)
    f_to, expr_to = parse_ucum(to_unit)
    ureg = registry()
    target = ureg.parse_units(expr_to)
    source = ureg.parse_units(expr_from)

    def at(x: float) -> float:
        q = ureg.Quantity(x * f_from, source)
        target_dim = ureg.Quantity(1, target).dimensionality
        if q.dimensionality != target_dim:
            # a molar mass converts amount of substance <-> mass, nothing else ("10 kg" of
            # haemoglobin must be refused, not sent through the chemistry context)
            if (
                molar_mass_g_mol is None
                or "[substance]" not in (*q.dimensionality, *target_dim)
                or _as_mass(q.dimensionality) != _as_mass(target_dim)
            ):
                raise pint.DimensionalityError(q.units, target)
            out = q.to(target, "chemistry", mw=molar_mass_g_mol * ureg("g/mol"))
        else:
            out = q.to(target)
        return float(out.magnitude) / f_to

    offset = at(0.0)
    return at(1.0) - offset, offset


_EXAMPLES: dict[str, tuple[str, ...]] = {
    "Cel": ("Cel", "[degF]"),
    "mg/dL": ("mg/dL", "mg/L", "umol/L"),
    "10*9/L": ("10*9/L", "10*3/uL", "/uL"),
    "g/dL": ("g/dL", "g/L", "mmol/L"),
}


def _examples(to_unit: str) -> Msg | str:
    """Units of the same kind as ``to_unit``, for people: « 'mg/dL', 'mg/L' or 'umol/L' »."""
    return or_list([repr(u) for u in _EXAMPLES.get(to_unit, (to_unit,))], commas=True)


_DISPLAY: dict[str, str] = {
    "Cel": "°C",
    "[degF]": "°F",
    "mm[Hg]": "mmHg",
    "10*9/L": "×10⁹/L",
    "a": "years",
    "m[IU]/L": "mIU/L",
}


def display(code: str) -> str:
    """A unit for people (``Cel`` -> ``°C``); UCUM codes stay the machine contract."""
    return _DISPLAY.get(code, code)


def is_known(code: str) -> bool:
    """True when ``code`` is a UCUM code this module can read."""
    try:
        parse_ucum(code)
    except ValueError:
        return False
    return True


def as_quantity_input(raw: Any) -> tuple[Any, str | None]:
    """Split a finding given as a bare number or ``{"value": x, "unit": u}`` into (value, unit)."""
    if isinstance(raw, dict):
        return raw.get("value"), raw.get("unit")
    return raw, None


@dataclass(frozen=True)
class Analyte:
    """One row of ``data/analytes.toml``: canonical unit, molar mass and where it comes from."""

    key: str
    unit: str
    molar_mass: float | None
    formula: str
    source: str
    note: str = ""
    unit_required: tuple[str, ...] = ()


@functools.cache
def analytes() -> dict[str, Analyte]:
    """The analyte table ``data/analytes.toml`` (the one place molar masses are written)."""
    text = resources.files("immunotox").joinpath("data/analytes.toml").read_text("utf-8")
    out: dict[str, Analyte] = {}
    for key, row in tomllib.loads(text).items():
        extra = sorted(set(row) - {"unit", "molar_mass", "formula", "source", "note", "unit_required"})
        if extra or not {"unit", "formula", "source"} <= set(row):
            raise RuleSpecError(f"data/analytes.toml: [{key}] needs unit, formula, source; unknown {extra}")
        if not is_known(row["unit"]):
            raise RuleSpecError(f"data/analytes.toml: [{key}] unit {row['unit']!r} is not a known UCUM code")
        mm = row.get("molar_mass")
        out[key] = Analyte(
            key,
            row["unit"],
            float(mm) if mm is not None else None,
            row["formula"],
            row["source"],
            row.get("note", ""),
            tuple(row.get("unit_required", ())),
        )
    return out


def analyte(key: str) -> Analyte:
    """The analyte ``key`` of ``data/analytes.toml``; an unknown key is a packaging error.

    >>> analyte("calcium").molar_mass, analyte("calcium").unit
    (40.078, 'mmol/L')
    >>> convert("value", 10.0, "mg/dL", "mmol/L", analyte("calcium").molar_mass)
    2.495134488
    """
    try:
        return analytes()[key]
    except KeyError:
        raise RuleSpecError(f"analyte {key!r} is not in data/analytes.toml") from None
