"""The observation vocabulary: codes, units, LOINC aliases, possible ranges, reconstruction rules.

Everything is declared once in ``data/observations.toml`` (grammar at the top of that file) and
read by every entry point: the service (:mod:`immunotox.service.codes`: API, FHIR, forms), the
timeline engine (:mod:`immunotox.timeline`), the simulator (:mod:`immunotox.simulate`). Ranges,
allowed values and aliases are taken from the findings vocabulary
(:func:`immunotox.findings.vocabulary`) where the code names a finding, so an observation is
refused exactly when the grading core would refuse it; molar masses come from the analyte table
(:func:`immunotox.units.analyte`).

>>> v = vocabulary()
>>> v.lookup("8331-1").name, v.code("temperature").unit, v.code("temperature").range
('temperature', 'Cel', (25.0, 45.0))
>>> v.code("creatinine").molar_mass
113.12
>>> v.derivation("temperature_c").window_h, v.episode_resolution_h
(6.0, 24.0)
>>> "symptom" in v.all_codes, v.lookup("symptom") is None
(True, True)
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal, get_args

from . import units
from .errors import RuleSpecError
from .findings import FieldSpec
from .findings import vocabulary as findings_vocabulary
from .handouts import symptom_tokens

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
    "series",
]
_KINDS: tuple[str, ...] = get_args(CodeKind)
_METHODS: tuple[str, ...] = get_args(Method)
Resource = Literal["observation", "administration", "assessment", "event", "attribute", "report"]
RESOURCES: tuple[str, ...] = get_args(Resource)
Category = Literal["vital-signs", "laboratory", "survey"]
CATEGORIES: tuple[str, ...] = get_args(Category)
OPEN_TOKEN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
"""What an ``open`` code accepts, after stripping and lower-casing."""
_UNITLESS = re.compile(r"^(|1|\{[^}]*\})$")
_KEYS = {
    "resource",
    "kind",
    "contract",
    "interval",
    "unit",
    "analyte",
    "finding",
    "item",
    "range",
    "tokens",
    "values_from",
    "aliases",
    "loinc",
    "ties",
    "intensity",
    "category",
    "patient",
    "text",
    "text_fr",
}
_BOOL_ALIASES = {"yes": "true", "no": "false", "1": "true", "0": "false", "y": "true", "n": "false"}
US_PER_HOUR = 3_600_000_000


@dataclass(frozen=True)
class CodeSpec:
    """One canonical observation code (see the grammar in ``data/observations.toml``).

    ``index`` is the code's position among the contract codes (the timeline engine's code id),
    -1 for a code outside the contract."""

    name: str
    index: int
    kind: CodeKind
    resource: Resource = "observation"
    contract: bool = True
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
    analyte: str | None = None
    category: Category = "survey"
    patient: bool = False
    text: str = ""
    text_fr: str = ""

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

    def accepts_token(self, raw: str) -> str | None:
        """The canonical token a token, bool or open ``raw`` value stands for, or None.

        >>> vocabulary().code("antipyretic").accepts_token(" Acetaminophen ")
        'paracetamol'
        >>> v = vocabulary()
        >>> v.code("raised_icp_signs").accepts_token("Y"), v.code("infusion").accepts_token("Axi-Cel")
        ('true', 'axi-cel')
        """
        word = raw.strip().lower()
        if self.kind == "open":
            return word if OPEN_TOKEN.match(word) else None
        i = self.token_map().get(word)
        return None if i is None else self.tokens[i]


def unitless(unit: str | None) -> bool:
    """True when ``unit`` is acceptable for a unitless code: none, empty, ``1`` or an annotation.

    >>> [unitless(u) for u in (None, "", " 1 ", "{score}", "mg")]
    [True, True, True, True, False]
    """
    return unit is None or bool(_UNITLESS.match(unit.strip()))


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
    """The loaded vocabulary: contract codes by name and index, aliases, derivations; and every
    code (:attr:`all_codes`, with the service's own codes outside the contract)."""

    codes: tuple[CodeSpec, ...]
    derivations: Mapping[str, Derivation]
    masking_scale: str
    _lookup: Mapping[str, int]
    episode_resolution_h: float = 24.0
    all_codes: Mapping[str, CodeSpec] = field(default_factory=dict)

    def code(self, name: str) -> CodeSpec:
        """The code ``name`` (a packaging error if absent)."""
        spec = self.all_codes.get(name)
        if spec is None:
            raise RuleSpecError(f"observation code {name!r} is not declared in data/observations.toml")
        return spec

    def lookup(self, raw: str) -> CodeSpec | None:
        """The contract code a raw ``code`` cell names (canonical name, any case, or LOINC alias),
        or None."""
        i = self._lookup.get(raw.strip().lower())
        return None if i is None else self.codes[i]

    def derivation(self, finding: str) -> Derivation:
        """The reconstruction rule of ``finding`` (a packaging error if absent)."""
        try:
            return self.derivations[finding]
        except KeyError:
            raise RuleSpecError(f"no reconstruction rule for finding {finding!r}") from None

    def record_of(self, finding: str) -> Derivation | None:
        """The ``record_last`` derivation whose ``unless`` is ``finding``: a later record of its
        items supersedes ``finding`` (the latest assessment counts, whole or partial)."""
        return next(
            (d for d in self.derivations.values() if d.method == "record_last" and d.unless == finding), None
        )

    @property
    def aliases(self) -> dict[str, str]:
        """Every accepted spelling of a code (lower case) -> canonical code name."""
        return {k: self.codes[i].name for k, i in self._lookup.items()}


def _as_tuple(x: Any) -> tuple[str, ...]:
    if x is None:
        return ()
    return (x,) if isinstance(x, str) else tuple(x)


def _tokens(name: str, t: Mapping[str, Any]) -> tuple[str, ...]:
    """The tokens of a token code: ``tokens``, or ``values_from = "handouts"`` for the portal's
    symptoms, whose single list is :mod:`immunotox.handouts` (``data/handouts/symptoms.toml``)."""
    source = t.get("values_from")
    if source is None:
        return _as_tuple(t.get("tokens"))
    if source != "handouts" or "tokens" in t:
        raise RuleSpecError(f"observation code {name!r}: values_from must be 'handouts' and excludes tokens")
    return symptom_tokens()


def _code_from_table(name: str, index: int, t: Mapping[str, Any], fv: Mapping[str, FieldSpec]) -> CodeSpec:
    kind = t.get("kind")
    if kind not in _KINDS:
        raise RuleSpecError(f"observation code {name!r}: unknown kind {kind!r}")
    resource = t.get("resource")
    if resource not in RESOURCES:
        raise RuleSpecError(f"observation code {name!r}: unknown resource {resource!r}")
    category = t.get("category", "survey")
    if category not in CATEGORIES:
        raise RuleSpecError(f"observation code {name!r}: unknown category {category!r}")
    extra = sorted(set(t) - _KEYS)
    if extra:
        raise RuleSpecError(f"observation code {name!r}: unknown keys {extra}")
    unit = str(t.get("unit", ""))
    if kind == "quantity" and not units.is_known(unit):
        raise RuleSpecError(f"observation code {name!r}: unit {unit!r} is not a supported UCUM code")
    if kind != "quantity" and unit:
        raise RuleSpecError(f"observation code {name!r}: only a quantity has a unit")
    rng = tuple(float(x) for x in t["range"]) if "range" in t else None
    if kind in ("integer", "quantity") and rng is None and not t.get("finding"):
        raise RuleSpecError(f"observation code {name!r}: a number needs a range or a finding")
    analyte = t.get("analyte")
    molar = None
    if analyte is not None:
        a = units.analyte(analyte)
        if units._normalise_code(a.unit) != units._normalise_code(unit):
            raise RuleSpecError(
                f"observation code {name!r}: unit {unit!r} is not analyte {analyte!r}'s {a.unit!r}"
            )
        molar = a.molar_mass
    tokens = _tokens(name, t)
    aliases: dict[str, str] = {k.lower(): v for k, v in t.get("aliases", {}).items()}
    fname = t.get("finding")
    item = t.get("item")
    spec = fv.get(fname) if fname else None
    if fname and spec is None and kind != "quantity":
        raise RuleSpecError(f"observation code {name!r}: finding {fname!r} is not declared")
    if spec is not None:
        if item is not None:
            if item not in spec.fields:
                raise RuleSpecError(f"observation code {name!r}: {fname}.{item} is not declared")
            rng = tuple(float(x) for x in spec.fields[item])
        elif spec.range is not None:
            same_unit = spec.kind != "quantity" or (
                kind == "quantity" and units._normalise_code(str(spec.unit)) == units._normalise_code(unit)
            )
            if same_unit:
                if rng is not None and rng != tuple(float(x) for x in spec.range):
                    raise RuleSpecError(
                        f"observation code {name!r}: range {list(rng)} differs from finding "
                        f"{fname!r}'s {list(spec.range)}; give none (the finding's is used)"
                    )
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
        resource=resource,
        contract=bool(t.get("contract", True)),
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
        analyte=analyte,
        category=category,
        patient=bool(t.get("patient", False)),
        text=str(t.get("text", "")),
        text_fr=str(t.get("text_fr", "")),
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


def _positive(x: Any, what: str) -> float:
    if not (isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0):
        raise RuleSpecError(f"data/observations.toml: {what} must be a positive number of hours")
    return float(x)


@functools.cache
def vocabulary() -> Vocabulary:
    """The observation vocabulary (loaded once from ``data/observations.toml``)."""
    text = resources.files("immunotox").joinpath("data/observations.toml").read_text("utf-8")
    doc = tomllib.loads(text)
    fv = findings_vocabulary()
    codes: list[CodeSpec] = []
    every: dict[str, CodeSpec] = {}
    lookup: dict[str, int] = {}
    seen: set[str] = set()
    for name, t in doc["code"].items():
        index = len(codes) if t.get("contract", True) else -1
        spec = _code_from_table(name, index, t, fv)
        every[name] = spec
        for key in (name.lower(), *(x.lower() for x in spec.loinc)):
            if key in seen:
                raise RuleSpecError(f"observation code alias {key!r} is declared twice")
            seen.add(key)
            if spec.contract:
                lookup[key] = index
        if spec.contract:
            codes.append(spec)
    by_name = {c.name: c for c in codes}
    derivations = {f: _derivation(f, t, by_name) for f, t in doc["derive"].items()}
    return Vocabulary(
        codes=tuple(codes),
        derivations=derivations,
        masking_scale=str(doc["masking"]["scale"]),
        episode_resolution_h=_positive(doc["episode"]["resolution_h"], "[episode] resolution_h"),
        _lookup=lookup,
        all_codes=every,
    )
