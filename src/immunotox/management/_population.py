"""Populations: whom a dose is written for, whom a product is licensed for — and the dose gate.

Every dose the engine can print belongs to a population declared as data: a guideline set's
``[population]`` (``data/guidelines/*.toml``) covers the doses of its actions, a dose rule's
``[dose_rule.<id>.population]`` (``data/drugs.toml``) covers the amounts of that rule. Each
product declares the populations it is licensed for, per jurisdiction
(``[product.<id>.licensed.<EU|US>]``).

:func:`dose_gate` decides, once for every amount (recommendations, ``immunotox dose``, the
service's tocilizumab panel and its alerts):

* age given and inside the population → the amount may be printed;
* age given and outside → no amount; a child gets « patient pédiatrique : dose selon le
  protocole pédiatrique de l'unité » (no paediatric dose is printed unless a dose rule whose
  population covers the child was read in a primary text);
* age missing → the amount is printed only when every product the patient may have received is
  licensed solely inside the population; otherwise (a product licensed in children, an
  investigational product, no product at all) the age is a **missing input**, never "adult".

:func:`redact_amounts` removes the amounts from a text written for another population.

>>> from immunotox.management._population import Population, dose_gate
>>> adults = Population(age_from_years=18, text={"en": "adults", "fr": "adultes"},
...                     source="santomasso2021", locator="doses", verification="D")
>>> dose_gate(adults, age_years=4, weight_kg=15, licences=None, what="ASCO").covered
False
>>> dose_gate(adults, age_years=40, weight_kg=70, licences=None, what="ASCO").covered
True
>>> g = dose_gate(adults, age_years=None, weight_kg=70, licences=None, what="ASCO")
>>> g.covered, g.missing
(False, ('context.age_years',))
>>> redact_amounts("Dexamethasone 10 mg IV every 6 hours; then 1,000 mg twice a day", "en")
'Dexamethasone [amount withheld] IV every 6 hours; then [amount withheld] twice a day'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ._vocab import Text, message

Verification = Literal["V", "V2", "M", "D"]
ADULT_AGE_YEARS = 18.0
"""Where a source says "adult" without defining it: 18 years and older [D]."""

_STRICT = ConfigDict(frozen=True, extra="forbid")


class Population(BaseModel):
    """A population a dose is written for: ``age_from_years <= age < age_below_years`` (and weight)."""

    model_config = _STRICT

    age_from_years: float = Field(default=0.0, ge=0, le=120)
    age_below_years: float | None = Field(default=None, gt=0, le=121)
    weight_from_kg: float | None = Field(default=None, gt=0)
    weight_below_kg: float | None = Field(default=None, gt=0)
    text: Text
    source: str
    locator: str = Field(min_length=1)
    verification: Verification

    @model_validator(mode="after")
    def _bounds(self) -> Population:
        if self.age_below_years is not None and self.age_below_years <= self.age_from_years:
            raise ValueError("age_below_years must be above age_from_years")
        return self

    def holds_age(self, age: float) -> bool:
        return age >= self.age_from_years and (self.age_below_years is None or age < self.age_below_years)

    def holds_weight(self, weight: float | None) -> bool | None:
        """True/False for a weight; None when the population has a weight bound and no weight is known."""
        if self.weight_from_kg is None and self.weight_below_kg is None:
            return True
        if weight is None:
            return None
        if self.weight_from_kg is not None and weight < self.weight_from_kg:
            return False
        return self.weight_below_kg is None or weight < self.weight_below_kg

    def contains(self, lic: Licence) -> bool:
        """True when every age ``lic`` is licensed for lies inside this population."""
        if lic.age_from_years < self.age_from_years:
            return False
        if self.age_below_years is None:
            return True
        return lic.age_below_years is not None and lic.age_below_years <= self.age_below_years


class Licence(BaseModel):
    """The ages a product is licensed for in one jurisdiction (all its indications together)."""

    model_config = _STRICT

    age_from_years: float = Field(ge=0, le=120)
    age_below_years: float | None = Field(default=None, gt=0, le=121)
    text: Text
    source: str
    locator: str = Field(min_length=1)
    verification: Verification

    @property
    def in_children(self) -> bool:
        return self.age_from_years < ADULT_AGE_YEARS


class PopulationCheck(BaseModel):
    """The outcome of the dose gate, as shown in an output."""

    model_config = ConfigDict(frozen=True)

    covered: bool = Field(description="True: amounts may be printed for this patient")
    population: str = Field(description="Whom the doses are written for")
    source: str
    locator: str
    verification: str
    missing: list[str] = Field(default_factory=list, description="Inputs whose absence withholds the amounts")
    reason: str | None = Field(default=None, description="Why amounts are withheld (None when covered)")


@dataclass(frozen=True)
class Gate:
    """The dose gate's decision for one population and one patient."""

    covered: bool
    missing: tuple[str, ...]
    reason: str | None
    population: Population
    lang: str

    def out(self) -> PopulationCheck:
        p = self.population
        return PopulationCheck(
            covered=self.covered,
            population=p.text.get(self.lang),
            source=p.source,
            locator=p.locator,
            verification=p.verification,
            missing=list(self.missing),
            reason=self.reason,
        )


def _age_text(age: float) -> str:
    return f"{round(age, 1):g}"


def dose_gate(
    population: Population,
    *,
    age_years: float | None,
    weight_kg: float | None,
    licences: Sequence[Licence] | None,
    what: str,
    lang: str = "en",
    age_field: str = "context.age_years",
    weight_field: str = "context.weight_kg",
) -> Gate:
    """May an amount written for ``population`` be printed for this patient?

    ``licences`` are the licensed populations of every product the patient may have received
    (``None``: unknown — no product, or an investigational one). ``what`` names the dose source
    in the messages (a guideline set or a dose rule).
    """
    pop = population.text.get(lang)
    if age_years is None:
        if licences is not None and licences and all(population.contains(lic) for lic in licences):
            return _weight_gate(population, weight_kg, what, lang, weight_field)
        licensed = (
            "; ".join(dict.fromkeys(lic.text.get(lang) for lic in licences))
            if licences
            else message("licence_unknown", lang)
        )
        reason = message(
            "population_age_missing", lang, field=age_field, what=what, population=pop, licensed=licensed
        )
        return Gate(False, (age_field,), reason, population, lang)
    if not population.holds_age(age_years):
        reason = message("population_outside", lang, what=what, population=pop, age=_age_text(age_years))
        if age_years < ADULT_AGE_YEARS:
            reason += " " + message("paediatric_protocol", lang)
        return Gate(False, (), reason, population, lang)
    return _weight_gate(population, weight_kg, what, lang, weight_field)


def _weight_gate(population: Population, weight_kg: float | None, what: str, lang: str, field: str) -> Gate:
    held = population.holds_weight(weight_kg)
    pop = population.text.get(lang)
    if held is None:
        reason = message("population_weight_missing", lang, field=field, what=what, population=pop)
        return Gate(False, (field,), reason, population, lang)
    if not held:
        weight = f"{weight_kg:g}"
        reason = message("population_weight_outside", lang, what=what, population=pop, weight=weight)
        return Gate(False, (), reason, population, lang)
    return Gate(True, (), None, population, lang)


_NUM = r"\d+(?:[.,]\d+|[\u202f\u00a0 ]\d{3}(?!\d))*"
_UNIT = r"(?:mg|µg|ug|mcg|g|units?|unités?|U|IU|UI)(?![A-Za-zÀ-ÿ])"
_PER = r"(?:\s*/\s*(?:kg|m2|m²))?(?:\s*/\s*(?:day|jour|j|d|dose|24\s*h))?"
AMOUNT_RE = re.compile(rf"{_NUM}(?:\s*(?:–|-|to|à)\s*{_NUM})?\s*{_UNIT}{_PER}")
"""An amount of drug in a text: ``10 mg``, ``1,000 mg``, ``1 000 mg``, ``0.3–0.4 units/kg/day``."""


def redact_amounts(text: str, lang: str) -> str:
    """``text`` with every amount of drug replaced by « [dose retirée] » / "[amount withheld]"."""
    return AMOUNT_RE.sub(message("amount_withheld", lang), text)
