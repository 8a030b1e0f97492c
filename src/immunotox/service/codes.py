"""The codes the service accepts and the checking of one contract row.

Declarations live in ``service/data/codes.toml`` (grammar at its top): canonical codes of the
observation contract, their canonical UCUM unit, plausibility range, tokens and LOINC aliases.
:func:`normalize` turns what a client sent (code or LOINC alias, value, unit) into the stored
canonical form, or raises :class:`~immunotox.errors.FindingError` naming the field — never a
guess: no unit means no conversion, an impossible value is refused, not clipped.
"""

from __future__ import annotations

import functools
import math
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from .. import units
from ..errors import FindingError, RuleSpecError, UnitError

Kind = Literal["observation", "administration", "assessment", "event", "attribute", "report"]
ValueType = Literal["quantity", "integer", "token", "bool"]

TOKEN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class CodeSpec:
    """Declaration of one canonical code (see ``data/codes.toml``)."""

    code: str
    kind: Kind
    type: ValueType
    unit: str = ""
    molar_mass: float | None = None
    range: tuple[float, float] | None = None
    values: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    loinc: tuple[str, ...] = ()
    interval: bool = False
    patient: bool = False
    text: str = ""
    text_fr: str = ""


@dataclass(frozen=True)
class Normalized:
    """A checked value: the contract string, the canonical number (if any), what was sent."""

    code: str
    value: str
    value_num: float | None
    unit: str
    source_value: str | None
    source_unit: str | None


@functools.cache
def vocabulary() -> dict[str, CodeSpec]:
    """Every code the service accepts, by canonical code."""
    text = resources.files("immunotox.service").joinpath("data/codes.toml").read_text("utf-8")
    out: dict[str, CodeSpec] = {}
    for code, t in tomllib.loads(text).items():
        if t.get("type") == "quantity" and not units.is_known(t.get("unit", "")):
            raise RuleSpecError(f"code {code!r}: unit {t.get('unit')!r} is not a supported UCUM code")
        rng = t.get("range")
        out[code] = CodeSpec(
            code=code,
            kind=t["kind"],
            type=t["type"],
            unit=t.get("unit", ""),
            molar_mass=t.get("molar_mass"),
            range=(float(rng[0]), float(rng[1])) if rng else None,
            values=_values(code, t),
            aliases={k.lower(): v for k, v in t.get("aliases", {}).items()},
            loinc=tuple(t.get("loinc", ())),
            interval=bool(t.get("interval", False)),
            patient=bool(t.get("patient", False)),
            text=t.get("text", ""),
            text_fr=t.get("text_fr", ""),
        )
    return out


def _values(code: str, t: dict[str, Any]) -> tuple[str, ...]:
    """The tokens of a token code: ``values``, or ``values_from = "handouts"`` for the portal's
    symptoms, whose single list is :mod:`immunotox.handouts` (``data/handouts/symptoms.toml``)."""
    source = t.get("values_from")
    if source is None:
        return tuple(t.get("values", ()))
    if source != "handouts" or "values" in t:
        raise RuleSpecError(f"code {code!r}: values_from must be 'handouts' and excludes values")
    from ..handouts import symptom_tokens

    return symptom_tokens()


@functools.cache
def loinc_index() -> dict[str, str]:
    """LOINC code -> canonical code."""
    out: dict[str, str] = {}
    for spec in vocabulary().values():
        for loinc in spec.loinc:
            out[loinc] = spec.code
    return out


def resolve(code: str, field_name: str = "code") -> CodeSpec:
    """The declaration of ``code`` (a canonical code or a LOINC alias)."""
    vocab = vocabulary()
    spec = vocab.get(code)
    if spec is None:
        canon = loinc_index().get(code)
        if canon is not None:
            return vocab[canon]
        raise FindingError(
            field_name, code, "unknown code", "use a canonical code (e.g. 'temperature') or a LOINC alias"
        )
    return spec


def format_number(x: float) -> str:
    """A number written plainly for the contract's ``value`` column (``38.6``, ``100``)."""
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    text = f"{x:.10g}"
    if "e" in text:
        text = f"{x:.12f}".rstrip("0").rstrip(".")
    return text


def normalize(spec: CodeSpec, value: Any, unit: str | None, prefix: str = "") -> Normalized:
    """Check ``value`` (and ``unit``) against ``spec``; return the canonical form.

    ``prefix`` is prepended to field names in errors (e.g. ``observations[3].``).
    """
    vf, uf = f"{prefix}value", f"{prefix}unit"
    if spec.type == "quantity":
        return _quantity(spec, value, unit, vf, uf)
    if unit not in (None, "", "1"):
        raise FindingError(uf, unit, f"{spec.code} is unitless", "leave unit empty")
    if spec.type == "integer":
        n = _number(value, vf)
        if not float(n).is_integer():
            raise FindingError(vf, value, "expected a whole number")
        assert spec.range is not None
        lo, hi = spec.range
        if not lo <= n <= hi:
            raise FindingError(vf, value, f"outside the possible range {int(lo)}–{int(hi)} for {spec.code}")
        return Normalized(spec.code, str(int(n)), float(n), "", None, None)
    if spec.type == "bool":
        if isinstance(value, bool):
            b = value
        elif isinstance(value, str) and value.strip().lower() in ("true", "false"):
            b = value.strip().lower() == "true"
        else:
            raise FindingError(vf, value, f"{spec.code} expects true or false")
        return Normalized(spec.code, "true" if b else "false", None, "", None, None)
    # token
    if not isinstance(value, str):
        raise FindingError(vf, value, f"{spec.code} expects a token" + _choices(spec))
    raw = value.strip()
    token = spec.aliases.get(raw.lower(), raw.lower())
    if spec.values:
        if token not in spec.values:
            raise FindingError(vf, value, f"not a known {spec.code} value" + _choices(spec))
    elif not TOKEN.match(token):
        raise FindingError(vf, value, "expected a lower-case token of letters, digits, '_', '.', '-'")
    return Normalized(spec.code, token, None, "", raw if raw != token else None, None)


def _choices(spec: CodeSpec) -> str:
    return f"; expected one of {list(spec.values)}" if spec.values else ""


def _number(value: Any, vf: str) -> float:
    if isinstance(value, bool):
        raise FindingError(vf, value, "expected a number")
    if isinstance(value, (int, float)):
        x = float(value)
    elif isinstance(value, str):
        try:
            x = float(value.strip())
        except ValueError:
            raise FindingError(vf, value, "expected a number written plainly, e.g. 38.6") from None
    else:
        raise FindingError(vf, value, "expected a number")
    if not math.isfinite(x):
        raise FindingError(vf, value, "not a finite number")
    return x


def _quantity(spec: CodeSpec, value: Any, unit: str | None, vf: str, uf: str) -> Normalized:
    x = _number(value, vf)
    if unit is None or unit == "":
        raise FindingError(
            uf, unit, f"a unit is required for {spec.code}", f"give the UCUM code, e.g. {spec.unit!r}"
        )
    if not isinstance(unit, str):
        raise FindingError(uf, unit, "expected a UCUM code as a string", f"e.g. {spec.unit!r}")
    try:
        canon = units.convert(spec.code, x, unit, spec.unit, spec.molar_mass)
    except UnitError as exc:
        raise UnitError(uf, unit, exc.problem, exc.hint) from None
    converted = units._normalise_code(unit) != units._normalise_code(spec.unit)
    if spec.range is not None:
        lo, hi = spec.range
        if not lo <= canon <= hi:
            shown = f" (= {canon:g} {spec.unit})" if converted else ""
            raise FindingError(
                vf,
                value,
                f"outside the physically possible range {lo:g}–{hi:g} {spec.unit} for {spec.code}{shown}",
                "check the unit and the decimal point",
            )
    return Normalized(
        spec.code,
        format_number(canon),
        canon,
        spec.unit,
        format_number(x) if converted else None,
        unit if converted else None,
    )


def check_dose(dose: Any, dose_unit: str | None, prefix: str = "") -> tuple[float | None, str | None]:
    """Check an administration's dose and its UCUM unit (both or neither)."""
    if dose is None and dose_unit in (None, ""):
        return None, None
    if dose is None:
        raise FindingError(f"{prefix}dose", None, "dose_unit given without a dose")
    x = _number(dose, f"{prefix}dose")
    if x <= 0:
        raise FindingError(f"{prefix}dose", dose, "a dose must be > 0")
    if dose_unit in (None, ""):
        raise FindingError(f"{prefix}dose_unit", dose_unit, "a dose needs its UCUM unit", "e.g. 'mg'")
    assert dose_unit is not None
    if not units.is_known(dose_unit):
        raise FindingError(
            f"{prefix}dose_unit", dose_unit, "unknown UCUM unit", "e.g. 'mg', 'mg/kg', 'ug/kg/min'"
        )
    return x, dose_unit
