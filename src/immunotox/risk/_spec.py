"""Score specifications: the tables of ``data/risk/*.toml`` read into frozen dataclasses.

Three shapes are supported (see the grammar at the top of ``data/risk/easix.toml`` and
``data/risk/car-hematotox.toml``):

* ``ratio`` — value = product(numerator) / product(denominator) (EASIX family);
* ``points`` — total of component points, each component being
  ``bands`` (first and only band whose bounds all hold) or ``count`` (points by the number of
  conditions that hold).

Every threshold is data; this module checks the grammar and fails loudly
(:class:`~immunotox.errors.RuleSpecError`) on a malformed file, so a packaging error never
reaches a patient.
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
from ..findings import FieldSpec, vocabulary
from ..messages import Catalogue, Msg
from ..sources import source

Comparator = Literal["gt", "ge", "lt", "le"]
_COMPARATORS: tuple[Comparator, ...] = ("gt", "ge", "lt", "le")
_SYMBOL: dict[str, str] = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


@dataclass(frozen=True)
class Bound:
    """One comparison ``value <op> threshold`` (``gt`` is ``>``, ``le`` is ``<=``…)."""

    op: Comparator
    threshold: float

    def holds(self, value: float) -> bool:
        if self.op == "gt":
            return value > self.threshold
        if self.op == "ge":
            return value >= self.threshold
        if self.op == "lt":
            return value < self.threshold
        return value <= self.threshold

    def text(self) -> str:
        return f"{_SYMBOL[self.op]} {self.threshold:g}"

    def msg(self) -> Msg:
        return Catalogue("messages")("risk.bound", op=_SYMBOL[self.op], x=self.threshold)


@dataclass(frozen=True)
class Band:
    """Points given when every bound holds."""

    points: int
    bounds: tuple[Bound, ...]

    def holds(self, value: float) -> bool:
        return all(b.holds(value) for b in self.bounds)

    def text(self) -> str:
        return " and ".join(b.text() for b in self.bounds)

    def msg(self) -> Msg:
        from ..scales._base import and_list

        return and_list([b.msg() for b in self.bounds])


@dataclass(frozen=True)
class Condition:
    """A yes/no condition of a ``count`` component: a bound on a quantity, or a boolean finding."""

    finding: str
    unit: str | None = None
    bound: Bound | None = None
    is_: bool | None = None

    def text(self) -> str:
        if self.bound is not None:
            return f"{self.finding} {self.bound.text()} {self.unit or ''}".rstrip()
        return f"{self.finding} is {'true' if self.is_ else 'false'}"


@dataclass(frozen=True)
class Component:
    """One scored item of a ``points`` score."""

    name: str
    kind: Literal["bands", "count"]
    verbatim: str
    finding: str | None = None
    unit: str | None = None
    bands: tuple[Band, ...] = ()
    conditions: tuple[Condition, ...] = ()
    points_by_count: tuple[int, ...] = ()

    @property
    def findings(self) -> tuple[str, ...]:
        if self.kind == "bands":
            assert self.finding is not None
            return (self.finding,)
        return tuple(dict.fromkeys(c.finding for c in self.conditions))

    @property
    def possible_points(self) -> tuple[int, ...]:
        pts = [b.points for b in self.bands] if self.kind == "bands" else list(self.points_by_count)
        return tuple(sorted(set(pts)))


@dataclass(frozen=True)
class RiskRule:
    """A published cut-off turning a value (or total) into a risk category."""

    cutoff: float
    high_if: Literal["gt", "ge"]
    outcome: str
    outcome_fr: str
    population: str
    timing: str
    source: str
    verification: str
    label_high: str = "high"
    label_low: str = "low"
    flags: tuple[str, ...] = ()

    def is_high(self, value: float) -> bool:
        return value > self.cutoff if self.high_if == "gt" else value >= self.cutoff

    def rule_text(self) -> str:
        return f"{_SYMBOL[self.high_if]} {self.cutoff:g}"


@dataclass(frozen=True)
class ScoreSpec:
    """One risk score: identity, inputs, formula or points, optional cut-off, sources."""

    id: str
    rank: int
    title: str
    title_fr: str
    version: str
    kind: Literal["ratio", "points"]
    source_keys: tuple[str, ...]
    verification: str
    notes: tuple[str, ...]
    formula: str = ""
    numerator: tuple[str, ...] = ()
    denominator: tuple[str, ...] = ()
    units: Mapping[str, str] = field(default_factory=dict)
    components: tuple[Component, ...] = ()
    risk: RiskRule | None = None
    file: str = ""  # the data file, for the ids of its texts ("risk/easix")

    def text(self, path: str, **params: Any) -> Msg:
        """The text at ``path`` of this score's table (``title``, ``notes.0``, ``risk.outcome``)."""
        return Catalogue(self.file)(f"{self.id}.{path}", **params)

    @property
    def inputs(self) -> tuple[str, ...]:
        """Finding keys the score reads, in a stable order."""
        if self.kind == "ratio":
            return tuple(dict.fromkeys((*self.numerator, *self.denominator)))
        return tuple(dict.fromkeys(f for c in self.components for f in c.findings))

    def citations(self) -> list[str]:
        return [source(k).citation() for k in self.source_keys]


# ---------------------------------------------------------------------------------------- loading
def _bounds(where: str, t: Mapping[str, Any]) -> tuple[Bound, ...]:
    out: list[Bound] = []
    for op in _COMPARATORS:
        if op in t:
            v = t[op]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise RuleSpecError(f"{where}: {op} must be a number, got {v!r}")
            out.append(Bound(op, float(v)))
    if not out or len(out) > 2:
        raise RuleSpecError(f"{where}: a band states one or two bounds (gt|ge and/or lt|le)")
    return tuple(out)


def _component(sid: str, i: int, t: Mapping[str, Any], vocab: Mapping[str, FieldSpec]) -> Component:
    where = f"data/risk: {sid}.components[{i}]"
    name, kind = t.get("name"), t.get("kind")
    if not isinstance(name, str) or kind not in ("bands", "count"):
        raise RuleSpecError(f"{where}: needs a name and kind = 'bands' or 'count'")
    verbatim = str(t.get("verbatim", ""))
    if kind == "bands":
        finding, unit = t.get("finding"), t.get("unit")
        _check_quantity(where, finding, unit, vocab)
        bands = tuple(
            Band(int(b["points"]), _bounds(f"{where}.bands[{j}]", b)) for j, b in enumerate(t["bands"])
        )
        return Component(name, "bands", verbatim, finding=finding, unit=unit, bands=bands)
    conditions: list[Condition] = []
    for j, c in enumerate(t.get("conditions", [])):
        cw = f"{where}.conditions[{j}]"
        f = c.get("finding")
        if "is" in c:
            if f not in vocab or vocab[f].kind != "bool":
                raise RuleSpecError(f"{cw}: {f!r} is not a bool finding")
            conditions.append(Condition(f, is_=bool(c["is"])))
        else:
            _check_quantity(cw, f, c.get("unit"), vocab)
            (bound,) = _bounds(cw, c)
            conditions.append(Condition(f, unit=c["unit"], bound=bound))
    pbc = tuple(int(p) for p in t.get("points_by_count", []))
    if len(pbc) != len(conditions) + 1:
        raise RuleSpecError(f"{where}: points_by_count needs {len(conditions) + 1} entries (0..n)")
    return Component(name, "count", verbatim, conditions=tuple(conditions), points_by_count=pbc)


def _check_quantity(where: str, finding: Any, unit: Any, vocab: Mapping[str, FieldSpec]) -> None:
    if finding not in vocab or vocab[finding].kind != "quantity":
        raise RuleSpecError(f"{where}: {finding!r} is not a quantity finding of the vocabulary")
    if not isinstance(unit, str) or not units.is_known(unit):
        raise RuleSpecError(f"{where}: unit {unit!r} is not a supported UCUM code")


def _risk(sid: str, t: Mapping[str, Any]) -> RiskRule:
    where = f"data/risk: {sid}.risk"
    try:
        rule = RiskRule(
            cutoff=float(t["cutoff"]),
            high_if=t["high_if"],
            outcome=t["outcome"],
            outcome_fr=t["outcome_fr"],
            population=t["population"],
            timing=t["timing"],
            source=t["source"],
            verification=t["verification"],
            label_high=t.get("label_high", "high"),
            label_low=t.get("label_low", "low"),
            flags=tuple(t.get("flags", ())),
        )
    except KeyError as exc:
        raise RuleSpecError(f"{where}: missing {exc.args[0]!r}") from None
    if rule.high_if not in ("gt", "ge"):
        raise RuleSpecError(f"{where}: high_if must be 'gt' or 'ge'")
    source(rule.source)  # a missing source key is a packaging error
    return rule


def _spec(sid: str, t: Mapping[str, Any], vocab: Mapping[str, FieldSpec], file: str = "") -> ScoreSpec:
    where = f"data/risk: {sid}"
    kind = t.get("kind")
    if kind not in ("ratio", "points"):
        raise RuleSpecError(f"{where}: kind must be 'ratio' or 'points'")
    for k in t.get("sources", ()):
        source(k)
    common: dict[str, Any] = {
        "id": sid,
        "rank": int(t.get("rank", 99)),
        "title": t["title"],
        "title_fr": t["title_fr"],
        "version": t["version"],
        "kind": kind,
        "source_keys": tuple(t["sources"]),
        "verification": t["verification"],
        "notes": tuple(t.get("notes", ())),
        "risk": _risk(sid, t["risk"]) if "risk" in t else None,
        "file": file,
    }
    if kind == "ratio":
        spec_units = dict(t["units"])
        for f in (*t["numerator"], *t["denominator"]):
            _check_quantity(where, f, spec_units.get(f), vocab)
        return ScoreSpec(
            **common,
            formula=t["formula"],
            numerator=tuple(t["numerator"]),
            denominator=tuple(t["denominator"]),
            units=spec_units,
        )
    comps = tuple(_component(sid, i, c, vocab) for i, c in enumerate(t["components"]))
    return ScoreSpec(**common, components=comps)


@functools.cache
def all_specs() -> dict[str, ScoreSpec]:
    """Every score of ``data/risk/*.toml``, by id (files in name order)."""
    vocab = vocabulary()
    out: dict[str, ScoreSpec] = {}
    folder = resources.files("immunotox").joinpath("data/risk")
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if not path.name.endswith(".toml"):
            continue
        try:
            doc = tomllib.loads(path.read_text("utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise RuleSpecError(f"data/risk/{path.name}: {exc}") from None
        for sid, t in doc.items():
            if sid in out:
                raise RuleSpecError(f"score {sid!r} is defined twice (again in data/risk/{path.name})")
            out[sid] = _spec(sid, t, vocab, f"data/risk/{path.name}"[5:-5])
    return dict(sorted(out.items(), key=lambda kv: (kv[1].rank, kv[0])))
