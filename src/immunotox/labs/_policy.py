"""Which CTCAE laboratory grades raise an alert: a policy per therapy class and phase, as data.

``data/lab_alert_policy.toml`` (grammar in the file, documented in docs/service.md) lists
phases of treatment by day relative to day 0 and an ordered list of rules; the first rule whose
therapy classes, phase and terms match a grade transition decides from which grade it alerts.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ..catalogue import all_scales
from ..errors import RuleSpecError
from ..messages import Catalogue, Msg
from ..sources import source

_FILE = "data/lab_alert_policy.toml"
P = Catalogue("lab_alert_policy")
UNKNOWN_PHASE = "unknown"
THERAPIES = ("car_t", "bispecific", "checkpoint_inhibitor")


@dataclass(frozen=True)
class Phase:
    id: str
    from_day: float
    to_day: float

    def text(self) -> Msg:
        return P(f"phase.{self.id}")


@dataclass(frozen=True)
class AlertRule:
    """One rule of the policy (``index``: its position in the file)."""

    index: int
    id: str
    therapy: tuple[str, ...]
    phase: tuple[str, ...]
    terms: tuple[str, ...]
    min_grade: int
    source: str

    def matches(self, therapy: str, phase: str, scale: str) -> bool:
        return all(
            "*" in allowed or value in allowed
            for allowed, value in ((self.therapy, therapy), (self.phase, phase), (self.terms, scale))
        )

    def alerts(self, grade: int | None) -> bool:
        """Whether a transition to ``grade`` raises an alert under this rule."""
        return self.min_grade > 0 and grade is not None and grade >= self.min_grade

    def why(self) -> Msg:
        return P(f"rule.{self.index}.why")

    def public(self) -> dict[str, Any]:
        """The rule as an alert's parameters record it (JSON)."""
        return {
            "rule": self.id,
            "min_grade": self.min_grade,
            "source": self.source,
            "citation": None if self.source == "D" else source(self.source).citation(),
        }


@dataclass(frozen=True)
class Policy:
    phases: tuple[Phase, ...]
    rules: tuple[AlertRule, ...]


def _strings(t: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    v = t.get(key)
    if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
        raise RuleSpecError(f"{where}: {key} must be a non-empty list of strings")
    return tuple(v)


@functools.cache
def policy() -> Policy:
    """The alert policy, read and checked once."""
    raw = tomllib.loads(resources.files("immunotox").joinpath(_FILE).read_text("utf-8"))
    phases = tuple(
        Phase(pid, float(t["from_day"]), float(t["to_day"])) for pid, t in raw.get("phase", {}).items()
    )
    for a in phases:
        if a.from_day > a.to_day:
            raise RuleSpecError(f"{_FILE} phase {a.id}: from_day > to_day")
        for b in phases:
            if a is not b and a.from_day <= b.to_day and b.from_day <= a.to_day:
                raise RuleSpecError(f"{_FILE}: phases {a.id} and {b.id} overlap")
    known_phases = {p.id for p in phases} | {UNKNOWN_PHASE, "*"}
    rules: list[AlertRule] = []
    for i, t in enumerate(raw.get("rule", [])):
        where = f"{_FILE} rule {i} ({t.get('id')})"
        rule = AlertRule(
            index=i,
            id=str(t["id"]),
            therapy=_strings(t, "therapy", where),
            phase=_strings(t, "phase", where),
            terms=_strings(t, "terms", where),
            min_grade=int(t["min_grade"]),
            source=str(t["source"]),
        )
        if not set(rule.therapy) <= {*THERAPIES, "*"}:
            raise RuleSpecError(f"{where}: unknown therapy class in {list(rule.therapy)}")
        if not set(rule.phase) <= known_phases:
            raise RuleSpecError(f"{where}: unknown phase in {list(rule.phase)}")
        unknown = [t for t in rule.terms if t != "*" and t not in all_scales()]
        if unknown:
            raise RuleSpecError(f"{where}: no scale {unknown} in the catalogue")
        if not 0 <= rule.min_grade <= 5:
            raise RuleSpecError(f"{where}: min_grade must be 0-5")
        if rule.source != "D":
            source(rule.source)
        if not t.get("why") or not t.get("why_fr"):
            raise RuleSpecError(f"{where}: why and why_fr are required")
        rules.append(rule)
    if not rules or not rules[-1].matches("*", "*", "*") or rules[-1].therapy != ("*",):
        raise RuleSpecError(f"{_FILE}: the last rule must match every therapy, phase and term")
    if rules[-1].phase != ("*",) or rules[-1].terms != ("*",):
        raise RuleSpecError(f"{_FILE}: the last rule must match every therapy, phase and term")
    return Policy(phases, tuple(rules))


def phase_of(time: dt.datetime, day0: dt.datetime | None) -> str:
    """The phase of a result taken at ``time`` (``unknown`` without day 0).

    >>> t0 = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)
    >>> [phase_of(t0 + dt.timedelta(days=d), t0) for d in (-0.5, 0, 30.9, 31)]
    ['before_day0', 'day0_30', 'day0_30', 'after_day30']
    """
    if day0 is None:
        return UNKNOWN_PHASE
    day = math.floor((time - day0) / dt.timedelta(days=1))
    for p in policy().phases:
        if p.from_day <= day <= p.to_day:
            return p.id
    return UNKNOWN_PHASE


def alert_rule(therapy: str, phase: str, scale: str) -> AlertRule:
    """The rule that decides whether a grade transition of ``scale`` alerts (the first match).

    >>> alert_rule("checkpoint_inhibitor", "day0_30", "ctcae5:alanine-aminotransferase-increased").min_grade
    2
    >>> alert_rule("car_t", "day0_30", "ctcae5:neutrophil-count-decreased").id
    'cart-early-cytopenias-icaht'
    """
    for rule in policy().rules:
        if rule.matches(therapy, phase, scale):
            return rule
    raise RuleSpecError(f"{_FILE}: no rule matches")  # pragma: no cover - checked at load
