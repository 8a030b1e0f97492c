"""The codes the service accepts and the checking of one contract row.

Declarations live in the one observation vocabulary, ``data/observations.toml``
(:mod:`immunotox.vocabulary`), read also by the timeline engine and the simulator, so the API
and a cohort file accept and reject the same rows (``tests/service/test_vocabulary_agreement.py``).
:func:`normalize` turns what a client sent (code or LOINC alias, value, unit) into the stored
canonical form, or raises :class:`~immunotox.errors.FindingError` naming the field — never a
guess: no unit means no conversion, an impossible value is refused, not clipped. The checks run
in the timeline reader's order: the value, then the unit, then the possible range.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import units
from ..errors import FindingError, UnitError
from ..messages import Msg
from ..messages import error as E
from ..vocabulary import CodeSpec, unitless
from ..vocabulary import vocabulary as observation_vocabulary

__all__ = [
    "CodeSpec",
    "Normalized",
    "accepted_codes",
    "check_dose",
    "loinc_index",
    "normalize",
    "resolve",
    "vocabulary",
]


@dataclass(frozen=True)
class Normalized:
    """A checked value: the contract string, the canonical number (if any), what was sent."""

    code: str
    value: str
    value_num: float | None
    unit: str
    source_value: str | None
    source_unit: str | None


def vocabulary() -> Mapping[str, CodeSpec]:
    """Every code the service accepts, by canonical code (the contract's and its own)."""
    return observation_vocabulary().all_codes


@functools.cache
def loinc_index() -> dict[str, str]:
    """LOINC code -> canonical code."""
    out: dict[str, str] = {}
    for spec in observation_vocabulary().all_codes.values():
        for loinc in spec.loinc:
            out[loinc] = spec.name
    return out


def accepted_codes() -> list[str]:
    """Every code a client may write: each canonical code, then its LOINC aliases."""
    return [c for spec in observation_vocabulary().all_codes.values() for c in (spec.name, *spec.loinc)]


def resolve(code: str, field_name: str = "code") -> CodeSpec:
    """The declaration of ``code``: a canonical code (any case, spaces around ignored, as the
    timeline reader reads it) or a LOINC alias."""
    vocab = observation_vocabulary().all_codes
    key = code.strip()
    spec = vocab.get(key) or vocab.get(key.lower())
    if spec is None:
        canon = loinc_index().get(key)
        if canon is not None:
            return vocab[canon]
        raise FindingError(field_name, code, E("svc_unknown_code"), E("svc_unknown_code_hint"))
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
    if spec.kind == "quantity":
        return _quantity(spec, value, unit, vf, uf)
    if spec.kind == "integer":
        n = _number(value, vf)
        if not float(n).is_integer():
            raise FindingError(vf, value, E("whole_number"))
        _unitless(spec, unit, uf)
        assert spec.range is not None
        lo, hi = spec.range
        if not lo <= n <= hi:
            raise FindingError(vf, value, E("svc_int_range", lo=int(lo), hi=int(hi), name=spec.name))
        return Normalized(spec.name, str(int(n)), float(n), "", None, None)
    if isinstance(value, bool) and spec.kind == "bool":
        value = "true" if value else "false"
    if not isinstance(value, str):
        raise FindingError(vf, value, _choices("svc_token_expected", spec))
    raw = value.strip()
    token = spec.accepts_token(raw)
    if token is None:
        if spec.kind == "open":
            raise FindingError(vf, value, E("svc_open_token"))
        raise FindingError(vf, value, _choices("svc_unknown_value", spec))
    _unitless(spec, unit, uf)
    return Normalized(spec.name, token, None, "", raw if raw != token else None, None)


def _unitless(spec: CodeSpec, unit: Any, uf: str) -> None:
    if not (unit is None or isinstance(unit, str)) or not unitless(unit):
        raise FindingError(uf, unit, E("svc_unitless", name=spec.name), E("svc_leave_unit_empty"))


def _choices(key: str, spec: CodeSpec) -> Msg:
    """The problem ``key`` (``errors.<key>``), with the accepted tokens when the code lists them."""
    if spec.tokens:
        return E(f"{key}_choices", name=spec.name, values=str(list(spec.tokens)))
    return E(key, name=spec.name)


def _number(value: Any, vf: str) -> float:
    if isinstance(value, bool):
        raise FindingError(vf, value, E("svc_number"))
    if isinstance(value, (int, float)):
        x = float(value)
    elif isinstance(value, str):
        try:
            x = float(value.strip())
        except ValueError:
            raise FindingError(vf, value, E("svc_number_plain")) from None
    else:
        raise FindingError(vf, value, E("svc_number"))
    if not math.isfinite(x):
        raise FindingError(vf, value, E("not_finite"))
    return x


def _quantity(spec: CodeSpec, value: Any, unit: str | None, vf: str, uf: str) -> Normalized:
    x = _number(value, vf)
    if unit is None or (isinstance(unit, str) and unit.strip() == ""):
        raise FindingError(
            uf,
            unit,
            E("svc_unit_required", name=spec.name),
            E("svc_unit_required_hint", unit=repr(spec.unit)),
        )
    if not isinstance(unit, str):
        raise FindingError(uf, unit, E("ucum_string"), E("eg", example=repr(spec.unit)))
    try:
        canon = units.convert(spec.name, x, unit, spec.unit, spec.molar_mass)
    except UnitError as exc:
        raise UnitError(uf, unit, *exc.texts()) from None
    converted = units._normalise_code(unit) != units._normalise_code(spec.unit)
    if spec.range is not None:
        lo, hi = spec.range
        if not lo <= canon <= hi:
            bounds = {"lo": f"{lo:g}", "hi": f"{hi:g}", "unit": spec.unit, "name": spec.name}
            problem = (
                E("svc_out_of_range_converted", canon=f"{canon:g}", **bounds)
                if converted
                else E("svc_out_of_range", **bounds)
            )
            raise FindingError(vf, value, problem, E("check_unit"))
    return Normalized(
        spec.name,
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
        raise FindingError(f"{prefix}dose", None, E("svc_dose_unit_alone"))
    x = _number(dose, f"{prefix}dose")
    if x <= 0:
        raise FindingError(f"{prefix}dose", dose, E("svc_dose_positive"))
    if dose_unit in (None, ""):
        raise FindingError(
            f"{prefix}dose_unit", dose_unit, E("svc_dose_unit_needed"), E("eg", example="'mg'")
        )
    assert dose_unit is not None
    if not units.is_known(dose_unit):
        raise FindingError(
            f"{prefix}dose_unit",
            dose_unit,
            E("svc_unknown_ucum"),
            E("eg", example="'mg', 'mg/kg', 'ug/kg/min'"),
        )
    return x, dose_unit
