"""The observation vocabulary: codes, units, LOINC aliases, plausible ranges, reconstruction rules.

Everything is declared once in ``timeline/observations.toml`` (grammar at the top of that file);
this module loads and checks it. Ranges, allowed values and molar masses are taken from the
findings vocabulary (:func:`immunotox.findings.vocabulary`) where the code names a finding, so the
timeline refuses exactly what the grading core would refuse.

>>> from immunotox.timeline.vocabulary import vocabulary
>>> v = vocabulary()
>>> v.lookup("8310-5").name, v.code("temperature").unit, v.code("temperature").range
('temperature', 'Cel', (25.0, 45.0))
>>> v.derivation("temperature_c").window_h
6.0
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from .. import units
from ..errors import RuleSpecError
from ..findings import FieldSpec
from ..findings import vocabulary as findings_vocabulary

CodeKind = Literal["quantity", "integer", "token", "bool", "open"]
Method = Literal[
    "window_max",
    "window_min",
    "last",
    "record_last",
    "device",
    "device_last",
    "active_set",
    "active_hours",
    "masking",
    "patient_last",
    "event_since",
]
_KINDS = ("quantity", "integer", "token", "bool", "open")
_METHODS = (
    "window_max",
    "window_min",
    "last",
    "record_last",
    "device",
    "device_last",
    "active_set",
    "active_hours",
    "masking",
    "patient_last",
    "event_since",
)
_BOOL_ALIASES = {"yes": "true", "no": "false", "1": "true", "0": "false", "y": "true", "n": "false"}
US_PER_HOUR = 3_600_000_000


@dataclass(frozen=True)
class CodeSpec:
    """One canonical observation code (see the grammar in ``observations.toml``)."""

    name: str
    index: int
    kind: CodeKind
    unit: str = ""
    interval: bool = False
    range: tuple[float, float] | None = None
    molar_mass: float | None = None
    tokens: tuple[str, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)
    loinc: tuple[str, ...] = ()
    ties: Literal["max", "min"] = "max"
    finding: str | None = None
    item: str | None = None
    intensity: tuple[str, ...] = ()

    @property
    def numeric(self) -> bool:
        """True for codes whose value is a number (quantity or integer)."""
        return self.kind in ("quantity", "integer")

    def token_map(self) -> dict[str, int]:
        """Lower-case token or alias -> index in :attr:`tokens` (severity order)."""
        out = {t.lower(): i for i, t in enumerate(self.tokens)}
        for alias, target in self.aliases.items():
            out[alias.lower()] = self.tokens.index(target)
        return out


@dataclass(frozen=True)
class Derivation:
    """How one finding is reconstructed from the observations at an assessment time."""

    finding: str
    method: Method
    codes: tuple[str, ...]
    window_h: float | None = None
    token: str | None = None
    unless: str | None = None

    @property
    def window_us(self) -> int:
        """The window length in microseconds (0 when the method has no window)."""
        return round((self.window_h or 0.0) * US_PER_HOUR)


@dataclass(frozen=True)
class Vocabulary:
    """The loaded vocabulary: codes by name and index, aliases, derivations."""

    codes: tuple[CodeSpec, ...]
    derivations: Mapping[str, Derivation]
    masking_scale: str
    _lookup: Mapping[str, int]

    def code(self, name: str) -> CodeSpec:
        """The code ``name`` (a packaging error if absent)."""
        i = self._lookup.get(name)
        if i is None or self.codes[i].name != name:
            raise RuleSpecError(f"observation code {name!r} is not declared in observations.toml")
        return self.codes[i]

    def lookup(self, raw: str) -> CodeSpec | None:
        """The code a raw ``code`` cell names (canonical name, any case, or LOINC alias), or None."""
        i = self._lookup.get(raw.strip().lower())
        return None if i is None else self.codes[i]

    def derivation(self, finding: str) -> Derivation:
        """The reconstruction rule of ``finding`` (a packaging error if absent)."""
        try:
            return self.derivations[finding]
        except KeyError:
            raise RuleSpecError(f"no reconstruction rule for finding {finding!r}") from None

    @property
    def aliases(self) -> dict[str, str]:
        """Every accepted spelling of a code (lower case) -> canonical code name."""
        return {k: self.codes[i].name for k, i in self._lookup.items()}


def _as_tuple(x: Any) -> tuple[str, ...]:
    if x is None:
        return ()
    return (x,) if isinstance(x, str) else tuple(x)


def _code_from_table(name: str, index: int, t: Mapping[str, Any], fv: Mapping[str, FieldSpec]) -> CodeSpec:
    kind = t.get("kind")
    if kind not in _KINDS:
        raise RuleSpecError(f"observation code {name!r}: unknown kind {kind!r}")
    unit = str(t.get("unit", ""))
    if kind == "quantity" and not units.is_known(unit):
        raise RuleSpecError(f"observation code {name!r}: unit {unit!r} is not a supported UCUM code")
    rng = tuple(float(x) for x in t["range"]) if "range" in t else None
    molar = t.get("molar_mass")
    tokens = _as_tuple(t.get("tokens"))
    aliases: dict[str, str] = {k.lower(): v for k, v in t.get("aliases", {}).items()}
    fname = t.get("finding")
    item = t.get("item")
    spec = fv.get(fname) if fname else None
    if fname and spec is None and kind != "quantity":
        raise RuleSpecError(f"observation code {name!r}: finding {fname!r} is not declared")
    if spec is not None:
        molar = spec.molar_mass if spec.molar_mass is not None else molar
        if item is not None:
            if item not in spec.fields:
                raise RuleSpecError(f"observation code {name!r}: {fname}.{item} is not declared")
            rng = tuple(float(x) for x in spec.fields[item])
        elif spec.range is not None:
            same_unit = spec.kind != "quantity" or (
                kind == "quantity" and units._normalise_code(str(spec.unit)) == units._normalise_code(unit)
            )
            if same_unit:
                rng = spec.range
            elif rng is None:
                # the finding is declared in another unit: this file must state the range in
                # `unit` (tests check it equals the finding's range converted with units.convert;
                # converting here would load pint on every run)
                raise RuleSpecError(
                    f"observation code {name!r}: finding {fname!r} is in {spec.unit!r}; "
                    f"give `range` in {unit!r}"
                )
        if spec.values:
            tokens = spec.values
            aliases = {**dict(spec.aliases), **aliases}
    if kind == "bool":
        tokens = ("false", "true")
        aliases = {**_BOOL_ALIASES, **aliases}
    if kind == "token" and not tokens:
        raise RuleSpecError(f"observation code {name!r}: a token code needs tokens or a finding")
    for target in aliases.values():
        if target not in tokens:
            raise RuleSpecError(f"observation code {name!r}: alias target {target!r} is not a token")
    intensity = _as_tuple(t.get("intensity"))
    if intensity and sorted(intensity) != sorted(tokens):
        raise RuleSpecError(f"observation code {name!r}: intensity must order exactly the tokens")
    ties = t.get("ties", "max")
    if ties not in ("max", "min"):
        raise RuleSpecError(f"observation code {name!r}: ties must be 'max' or 'min'")
    return CodeSpec(
        name=name,
        index=index,
        kind=kind,
        unit=unit,
        interval=bool(t.get("interval", False)),
        range=(rng[0], rng[1]) if rng else None,
        molar_mass=float(molar) if molar is not None else None,
        tokens=tokens,
        aliases=aliases,
        loinc=_as_tuple(t.get("loinc")),
        ties=ties,
        finding=fname,
        item=item,
        intensity=intensity,
    )


def _derivation(finding: str, t: Mapping[str, Any], codes: Mapping[str, CodeSpec]) -> Derivation:
    method = t.get("method")
    if method not in _METHODS:
        raise RuleSpecError(f"derive.{finding}: unknown method {method!r}")
    src = _as_tuple(t.get("from"))
    for c in src:
        if c not in codes:
            raise RuleSpecError(f"derive.{finding}: code {c!r} is not declared")
    window = t.get("window_h")
    needs_window = method in ("window_max", "window_min", "last", "record_last", "device_last")
    if needs_window and not (isinstance(window, (int, float)) and window > 0):
        raise RuleSpecError(f"derive.{finding}: method {method} needs a positive window_h")
    return Derivation(
        finding=finding,
        method=method,
        codes=src,
        window_h=float(window) if window is not None else None,
        token=t.get("token"),
        unless=t.get("unless"),
    )


@functools.cache
def vocabulary() -> Vocabulary:
    """The observation vocabulary (loaded once from ``timeline/observations.toml``)."""
    text = resources.files("immunotox.timeline").joinpath("observations.toml").read_text("utf-8")
    doc = tomllib.loads(text)
    fv = findings_vocabulary()
    codes: list[CodeSpec] = []
    lookup: dict[str, int] = {}
    for i, (name, t) in enumerate(doc["code"].items()):
        spec = _code_from_table(name, i, t, fv)
        codes.append(spec)
        for key in (name.lower(), *(x.lower() for x in spec.loinc)):
            if key in lookup:
                raise RuleSpecError(f"observation code alias {key!r} is declared twice")
            lookup[key] = i
    by_name = {c.name: c for c in codes}
    derivations = {f: _derivation(f, t, by_name) for f, t in doc["derive"].items()}
    return Vocabulary(
        codes=tuple(codes),
        derivations=derivations,
        masking_scale=str(doc["masking"]["scale"]),
        _lookup=lookup,
    )
