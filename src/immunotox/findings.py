"""The findings vocabulary and the parsing of raw findings into checked, canonical values.

A *finding* is one clinical fact handed to a scale: ``temperature_c``, ``oxygen``,
``ice_score``… Its kind, canonical UCUM unit, physiologically possible range and allowed values
are declared once, in ``data/findings.toml``; every scale, the service and the cohort engine use
these declarations. Parsing never guesses: an unknown key, a wrong type, an impossible value or
an unknown unit raises :class:`~immunotox.errors.FindingError` naming the field and the value.
A key given as ``null`` is the same as an absent key: *not known*.
"""

from __future__ import annotations

import datetime
import functools
import math
import re
import tomllib
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from . import units
from .errors import FindingError, ImmunotoxError, RuleSpecError
from .messages import error as E
from .messages import or_list

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_QUANTITY_KEYS = frozenset(("value", "unit"))  # the keys of a quantity given as an object


def _unknown_keys(given: Mapping[str, Any], allowed: AbstractSet[str]) -> list[str]:
    """The keys of ``given`` not in ``allowed``, sorted (none: no set is built, the common case)."""
    return [] if given.keys() <= allowed else sorted(given.keys() - allowed)


Kind = Literal["quantity", "integer", "bool", "enum", "enum_list", "record", "series", "date"]


@dataclass(frozen=True)
class FieldSpec:
    """Declaration of one finding (see the grammar at the top of ``data/findings.toml``)."""

    name: str
    kind: Kind
    unit: str | None = None
    molar_mass: float | None = None
    unit_required: tuple[str, ...] = ()
    range: tuple[float, float] | None = None
    values: tuple[str, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    text: str = ""
    text_fr: str = ""

    def __post_init__(self) -> None:
        for u in self.unit_required:  # each unit a laboratory may report must convert
            try:
                units.convert(self.name, 1.0, u, str(self.unit), self.molar_mass)
            except ImmunotoxError as exc:
                raise RuleSpecError(f"finding {self.name!r}: unit_required {u!r}: {exc}") from None

    def parse(self, raw: Any, prefix: str = "") -> Any:
        """Check ``raw`` and return it in canonical form (float, int, bool, str, list, dict)."""
        name = prefix + self.name
        if self.kind == "quantity":
            return _parse_quantity(self, name, raw)
        if self.kind == "integer":
            return _parse_integer(name, raw, self.range)
        if self.kind == "bool":
            if not isinstance(raw, bool):
                raise FindingError(name, raw, E("bool_expected"))
            return raw
        if self.kind == "enum":
            return self._enum_value(name, raw)
        if self.kind == "enum_list":
            if not isinstance(raw, list):
                raise FindingError(name, raw, E("list_expected"), E("eg", example=f"[{self.values[0]!r}]"))
            out = [self._enum_value(name, item) for item in raw]
            return sorted(set(out), key=out.index)
        if self.kind == "record":
            if not isinstance(raw, dict):
                raise FindingError(name, raw, E("record_expected", keys=str(list(self.fields))))
            unknown = _unknown_keys(raw, self.fields.keys())
            if unknown:
                raise FindingError(
                    f"{name}.{unknown[0]}",
                    raw[unknown[0]],
                    E("unknown_item"),
                    E("expected", what=str(list(self.fields))),
                )
            return {
                k: _parse_integer(f"{name}.{k}", raw[k], self.fields[k])
                for k in self.fields
                if raw.get(k) is not None
            }
        if self.kind == "series":
            return _parse_series(self, name, raw)
        if self.kind == "date":
            return _parse_date(name, raw)
        raise RuleSpecError(f"finding {self.name!r} has kind {self.kind!r} with no parser")

    def _enum_value(self, name: str, raw: Any) -> str:
        if not isinstance(raw, str):
            raise FindingError(name, raw, E("enum_expected", values=str(list(self.values))))
        key = raw.strip()
        key = self.aliases.get(key.lower(), key.lower())
        if key not in self.values:
            raise FindingError(name, raw, E("enum_unknown", values=str(list(self.values))))
        return key


def _parse_quantity(spec: FieldSpec, name: str, raw: Any, default_unit: str | None = None) -> float:
    """``raw`` (a bare number, or ``{"value", "unit"}``) in the spec's canonical unit.

    ``default_unit`` is the unit of a bare number when the input states it once for several values
    (the ``unit`` of a series); without it, a bare number is in the canonical unit, or refused when
    the analyte declares ``unit_required``.
    """
    assert spec.unit is not None
    value, unit = units.as_quantity_input(raw)
    if unit is None and not isinstance(raw, dict):
        unit = default_unit
    if isinstance(raw, dict):
        extra = _unknown_keys(raw, _QUANTITY_KEYS)
        if extra:
            raise FindingError(f"{name}.{extra[0]}", raw[extra[0]], E("unknown_key_quantity"))
        if unit is not None and not isinstance(unit, str):
            raise FindingError(f"{name}.unit", unit, E("ucum_string"))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        quantity = '{"value": x, "unit": "<UCUM>"}'
        problem = (
            E("expected", what=quantity)
            if spec.unit_required
            else E("number_or_quantity", unit=repr(spec.unit), quantity=quantity)
        )
        raise FindingError(name, value, problem)
    if not math.isfinite(value):
        raise FindingError(name, value, E("not_finite"))
    if unit is None and spec.unit_required:
        hint = {
            "quantity": f'{{"value": {value!r}, "unit": "<UCUM>"}}',
            "units": or_list([repr(u) for u in spec.unit_required]),
        }
        if spec.kind == "series":
            hint["series"] = '{"unit": "<UCUM>", "points": [...]}'
        key = "bare_number_hint_series" if spec.kind == "series" else "bare_number_hint"
        raise FindingError(name, value, E("bare_number"), E(key, **hint))
    canon = float(value)
    if unit is not None:
        canon = units.convert(name, float(value), unit, spec.unit, spec.molar_mass)
    if spec.range is not None:
        lo, hi = spec.range
        if not lo <= canon <= hi:
            shown = units.display(spec.unit)
            raise FindingError(
                name,
                value,
                E("out_of_range_converted", lo=lo, hi=hi, unit=shown, canon=canon)
                if unit is not None
                else E("out_of_range", lo=lo, hi=hi, unit=shown),
                E("check_unit"),
            )
    return canon


def _parse_date(name: str, raw: Any) -> datetime.date:
    """A calendar date written ``YYYY-MM-DD`` (ISO 8601, no time, no other spelling)."""
    if not isinstance(raw, str) or not _ISO_DATE.match(raw):
        raise FindingError(name, raw, E("date_expected"), E("eg", example='"2024-03-01"'))
    try:
        return datetime.date.fromisoformat(raw)
    except ValueError:
        raise FindingError(name, raw, E("not_calendar_date")) from None


def _parse_series(spec: FieldSpec, name: str, raw: Any) -> list[dict[str, Any]]:
    """A dated series: a list of points ``{"<index>": n, "value": x}`` or ``{"date": d, "value": x}``,
    or ``{"unit": "<UCUM>", "points": [...]}`` (the unit of every bare value, stated once).

    ``<index>`` is the single integer key declared in the spec's ``fields`` (e.g. ``day``, with its
    range); ``value`` is a quantity (``{"value", "unit"}``, or a bare number in the series' unit, or
    in the spec's unit unless the spec declares ``unit_required``), checked against the spec's
    range. Points keep their input order; an empty list is a series with no values (known), not an
    unknown series.
    """
    if len(spec.fields) != 1:
        raise RuleSpecError(f"finding {spec.name!r}: a series declares exactly one index in fields")
    (index, rng), *_ = spec.fields.items()
    series_unit: str | None = None
    if isinstance(raw, dict):
        extra = sorted(set(raw) - {"unit", "points"})
        if extra:
            raise FindingError(f"{name}.{extra[0]}", raw[extra[0]], E("unknown_key_series"))
        series_unit = raw.get("unit")
        if not isinstance(series_unit, str):
            raise FindingError(f"{name}.unit", series_unit, E("ucum_string"), E("eg", example="'10*9/L'"))
        units.convert(name, 1.0, series_unit, str(spec.unit), spec.molar_mass)  # a bad unit is refused here
        raw = raw.get("points")
    if not isinstance(raw, list):
        example = f'[{{"{index}": 0, "value": 1200}}]'
        raise FindingError(name, raw, E("points_expected"), E("eg", example=example))
    out: list[dict[str, Any]] = []
    keys = frozenset((index, "date", "value"))  # the keys a point may have
    for i, point in enumerate(raw):
        where = f"{name}[{i}]"
        if not isinstance(point, dict):
            raise FindingError(where, point, E("point_expected", example=f'{{"{index}": n, "value": x}}'))
        extra = _unknown_keys(point, keys)
        if extra:
            raise FindingError(
                f"{where}.{extra[0]}", point[extra[0]], E("unknown_key"), E("point_keys", index=index)
            )
        if (point.get(index) is None) == (point.get("date") is None):
            raise FindingError(where, point, E("exactly_one", index=repr(index)))
        if point.get("value") is None:
            raise FindingError(f"{where}.value", None, E("value_absent"))
        value = _parse_quantity(spec, f"{where}.value", point["value"], series_unit)
        parsed: dict[str, Any] = {"value": value}
        if point.get(index) is not None:
            parsed[index] = _parse_integer(f"{where}.{index}", point[index], rng)
        else:
            parsed["date"] = _parse_date(f"{where}.date", point["date"])
        out.append(parsed)
    return out


def _parse_integer(name: str, raw: Any, rng: tuple[float, float] | None) -> int:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise FindingError(name, raw, E("whole_number"))
    if isinstance(raw, float):
        if not raw.is_integer():
            raise FindingError(name, raw, E("whole_number"))
        raw = int(raw)
    if rng is not None and not rng[0] <= raw <= rng[1]:
        raise FindingError(name, raw, E("int_range", lo=int(rng[0]), hi=int(rng[1])))
    return int(raw)


@functools.cache
def vocabulary() -> dict[str, FieldSpec]:
    """All findings declared in ``data/findings*.toml`` (one file per domain family), by key."""
    out: dict[str, FieldSpec] = {}
    data = resources.files("immunotox").joinpath("data")
    for path in sorted(data.iterdir(), key=lambda p: p.name):
        if not (path.name.startswith("findings") and path.name.endswith(".toml")):
            continue
        for k, v in tomllib.loads(path.read_text("utf-8")).items():
            if k in out:
                raise RuleSpecError(f"finding {k!r} is declared twice (again in {path.name})")
            out[k] = spec_from_table(k, v)
    return out


def spec_from_table(name: str, t: Mapping[str, Any]) -> FieldSpec:
    """Build a :class:`FieldSpec` from one TOML table of the vocabulary grammar."""
    kind = t.get("kind")
    if kind not in ("quantity", "integer", "bool", "enum", "enum_list", "record", "series", "date"):
        raise RuleSpecError(f"finding {name!r}: unknown kind {kind!r}")
    if "analyte" in t:  # unit, molar mass and lab units of an analyte row (data/analytes.toml)
        row = units.analyte(str(t["analyte"]))
        t = {"unit": row.unit, "molar_mass": row.molar_mass, "unit_required": list(row.unit_required), **t}
    if kind in ("quantity", "series") and not units.is_known(str(t.get("unit"))):
        raise RuleSpecError(f"finding {name!r}: unit {t.get('unit')!r} is not a supported UCUM code")
    rng = t.get("range")
    return FieldSpec(
        name=name,
        kind=kind,
        unit=t.get("unit"),
        molar_mass=t.get("molar_mass"),
        unit_required=_unit_required(name, kind, t),
        range=(float(rng[0]), float(rng[1])) if rng else None,
        values=tuple(t.get("values", ())),
        aliases={k.lower(): v for k, v in t.get("aliases", {}).items()},
        fields={k: (int(v[0]), int(v[1])) for k, v in t.get("fields", {}).items()},
        text=t.get("text", ""),
        text_fr=t.get("text_fr", ""),
    )


def _unit_required(name: str, kind: str, t: Mapping[str, Any]) -> tuple[str, ...]:
    """``unit_required``: the units laboratories report the analyte in, when they differ (French
    SI units vs US conventional units); a bare number is then refused. Each must convert to
    ``unit``."""
    given = t.get("unit_required", [])
    if not isinstance(given, list) or not all(isinstance(u, str) for u in given):
        raise RuleSpecError(f"finding {name!r}: unit_required is a list of UCUM codes")
    if given and kind not in ("quantity", "series"):
        raise RuleSpecError(f"finding {name!r}: unit_required is for quantities and series only")
    return tuple(given)


def pick(*names: str) -> dict[str, FieldSpec]:
    """The vocabulary entries ``names``, for a scale's declaration of the findings it reads."""
    vocab = vocabulary()
    missing = [n for n in names if n not in vocab]
    if missing:
        raise RuleSpecError(f"findings {missing} are not declared in data/findings.toml")
    return {n: vocab[n] for n in names}


def parse_findings(
    scale_id: str,
    specs: Mapping[str, FieldSpec],
    raw: Any,
    *,
    ignored: list[str] | None = None,
) -> dict[str, Any]:
    """Check every raw finding against ``specs``; return the known ones in canonical form.

    Absent keys and keys given as ``null`` are left out: they are *unknown*, never normal.
    A key of the shared vocabulary that this scale does not read (``fio2_pct`` given to ASTCT,
    which grades by device) is refused, unless a list is passed as ``ignored`` (regrading mode:
    one record graded under every scale): it is then still checked, and reported in the list.
    A key outside the vocabulary is always refused.
    """
    if type(raw) is not dict and not isinstance(raw, Mapping):  # a dict without the ABC check
        raise FindingError("findings", raw, E("findings_object"))
    out: dict[str, Any] = {}
    vocab = vocabulary()
    for key, value in raw.items():
        spec = specs.get(key)
        if spec is None:
            shared = vocab.get(key) if ignored is not None else None
            if shared is None:
                raise FindingError(
                    str(key),
                    value,
                    E("unknown_finding", scale=scale_id),
                    E("scale_reads", keys=str(sorted(specs))),
                )
            if value is not None:
                shared.parse(value)
                ignored.append(key)  # type: ignore[union-attr]
            continue
        if value is None:
            continue
        out[key] = spec.parse(value)
    return out
