"""The inputs of the dose engine, parsed and checked: times, body weight, age, amounts.

* **Times** are ISO 8601 strings with a timezone (``2025-03-01T08:00:00+01:00`` or ``...Z``). A time
  without a timezone is refused (never read as UTC or local time: the 8-hour rule would silently
  shift by the UTC offset). Output times are UTC, written with ``Z``.
* **Rounding**: weight-based amounts are rounded *down* to the unit's step (0.1 mg, µg or unit) so
  that a computed dose never exceeds ``per-kg dose × weight``; caps are applied after rounding.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from .. import units
from ..errors import FindingError
from ..messages import error
from ._drugs import WEIGHT_PLAUSIBLE_KG

# the rounding step of a weight-based amount, per dose unit (rounded down, see _floor)
_STEP: dict[str, float] = {"mg": 0.1, "ug": 0.1, "U": 0.1}


def parse_time(field: str, raw: Any) -> datetime:
    """An ISO 8601 time with a timezone, as an aware UTC datetime; else FindingError on ``field``."""
    if isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, str):
        try:
            value = datetime.fromisoformat(raw.strip())
        except ValueError:
            raise FindingError(field, raw, error("mg_iso_time"), error("mg_iso_time_hint")) from None
    else:
        raise FindingError(field, raw, error("mg_iso_time_string"))
    if value.tzinfo is None or value.utcoffset() is None:
        raise FindingError(
            field,
            raw if isinstance(raw, str) else value.isoformat(),
            error("mg_naive_time"),
            error("mg_naive_time_hint"),
        )
    return value.astimezone(UTC)


def format_time(value: datetime) -> str:
    """``value`` in UTC as ISO 8601 with ``Z`` (seconds precision)."""
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_weight(field: str, raw: Any) -> float:
    """A body weight in kg (number, or ``{"value": x, "unit": "<UCUM>"}``) within 1–350 kg."""
    value, unit = units.as_quantity_input(raw)
    if isinstance(raw, dict):
        extra = sorted(set(raw) - {"value", "unit"})
        if extra:
            raise FindingError(f"{field}.{extra[0]}", raw[extra[0]], error("unknown_key_quantity"))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FindingError(field, raw, error("mg_weight_number"))
    kg = float(value) if unit is None else units.convert(field, float(value), str(unit), "kg")
    lo, hi = WEIGHT_PLAUSIBLE_KG
    if not lo <= kg <= hi:
        raise FindingError(
            field,
            raw,
            error("mg_weight_range", lo=lo, hi=hi),
            error("mg_weight_hint"),
        )
    return kg


def _number(field: str, raw: Any, *, lo: float, hi: float) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise FindingError(field, raw, error("mg_number"))
    if not lo <= raw <= hi:
        raise FindingError(field, raw, error("int_range", lo=lo, hi=hi))
    return float(raw)


def parse_age(field: str, raw: Any) -> float:
    """An age in years, 0–120."""
    return _number(field, raw, lo=0, hi=120)


def _floor(x: float, step: float) -> float:
    # round first to absorb binary noise (12 x 25.3 = 303.59999...), then floor to the step
    return round(math.floor(round(x / step, 6)) * step, 6)


def _g(x: float) -> str:
    return f"{round(x, 3):g}"


def _n(lang: str, x: float) -> str:
    """``x`` as :func:`_g` writes it, with a decimal comma in French (« 0,5 mg/kg »)."""
    out = _g(x)
    return out.replace(".", ",") if lang == "fr" else out
