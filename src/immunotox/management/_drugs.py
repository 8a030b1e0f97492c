"""Drugs, dose rules, steroid equivalence and products, read once from ``data/drugs.toml``.

The file's grammar is written at its top. This module validates it (pydantic models with
``extra="forbid"``, cross-checks between dose rules and the drugs' documented maxima) and offers
small lookups: :func:`drug`, :func:`dose_rule`, :func:`resolve_product`, :func:`steroid_table`.
A malformed file is a packaging error (:class:`~immunotox.errors.RuleSpecError`).
"""

from __future__ import annotations

import functools
import tomllib
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import FindingError, RuleSpecError
from ..jurisdiction import jurisdictions
from ..messages import error
from ..sources import source
from ._population import Licence, Population
from ._vocab import Text

Verification = Literal["V", "V2", "M", "D"]
DoseUnit = Literal["mg", "ug", "U"]
ProductClass = Literal[
    "cart-cd19", "cart-bcma", "bispecific", "ici-pd1", "ici-pdl1", "ici-ctla4", "ici-lag3", "other"
]

_STRICT = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class DrugMax(BaseModel):
    """Documented maxima of a drug: no computed dose and no guideline set may exceed them."""

    model_config = _STRICT

    per_dose: float | None = Field(default=None, gt=0)
    per_day: float | None = Field(default=None, gt=0)
    per_kg_per_dose: float | None = Field(default=None, gt=0)
    per_kg_per_day: float | None = Field(default=None, gt=0)
    source: str
    locator: str
    verification: Verification
    note: str | None = None


class Drug(BaseModel):
    """One drug: names, dose unit, routes, documented maxima."""

    model_config = _STRICT

    id: str
    name: Text
    drug_class: str = Field(alias="class")
    dose_unit: DoseUnit
    routes: tuple[str, ...]
    max: DrugMax | None = None

    def label(self, lang: str) -> str:
        return self.name.get(lang)


class Band(BaseModel):
    """A weight band of a dose rule: ``from_kg <= weight < below_kg`` (either bound optional)."""

    model_config = _STRICT

    below_kg: float | None = Field(default=None, gt=0)
    from_kg: float | None = Field(default=None, ge=0)
    mg_per_kg: float = Field(gt=0)
    label_only: bool = False
    sources: tuple[str, ...]
    locator: str
    verification: Verification
    text: Text

    def holds(self, weight_kg: float) -> bool:
        """True when ``weight_kg`` falls in ``[from_kg, below_kg)``."""
        if self.below_kg is not None and not weight_kg < self.below_kg:
            return False
        return self.from_kg is None or weight_kg >= self.from_kg


class Limit(BaseModel):
    """An administration limit of a dose rule (see the grammar in ``drugs.toml``)."""

    model_config = _STRICT

    kind: Literal["max_per_dose_mg", "min_interval_h", "max_in_window", "max_total"]
    value: float = Field(gt=0)
    window_h: float | None = Field(default=None, gt=0)
    sources: tuple[str, ...]
    locator: str
    verification: Verification
    text: Text

    @model_validator(mode="after")
    def _window(self) -> Limit:
        if (self.kind == "max_in_window") != (self.window_h is not None):
            raise ValueError("window_h is required for max_in_window and only there")
        return self


class LabelRef(BaseModel):
    """The product information of a drug in one jurisdiction."""

    model_config = _STRICT

    source: str
    locator: str
    verification: Verification


class DoseRule(BaseModel):
    """A weight-banded dose with administration limits (e.g. ``tocilizumab-crs``)."""

    model_config = _STRICT

    id: str
    drug: str
    route: str
    infusion_min: int | None = None
    title: Text
    scope: Text
    population: Population
    label: dict[str, LabelRef] = Field(
        default_factory=dict, description="Product information per jurisdiction"
    )
    band: tuple[Band, ...] = Field(min_length=1)
    limit: tuple[Limit, ...]

    def band_for(self, weight_kg: float) -> Band:
        """The band holding ``weight_kg`` (bands are checked to cover every weight at load)."""
        for b in self.band:
            if b.holds(weight_kg):
                return b
        raise RuleSpecError(f"dose rule {self.id!r}: no weight band holds {weight_kg} kg")

    def limit_of(self, kind: str) -> Limit | None:
        found = [lim for lim in self.limit if lim.kind == kind]
        return found[0] if found else None


class SteroidTable(BaseModel):
    """Equivalent glucocorticoid doses (mg) and where they come from."""

    model_config = _STRICT

    basis: Text
    sources: tuple[str, ...]
    locator: str
    verification: Verification
    note: Text
    mg: dict[str, float]


class Product(BaseModel):
    """A therapy product a recommendation context may name."""

    model_config = _STRICT

    id: str
    name: str
    brand: str
    product_class: ProductClass = Field(alias="class")
    aliases: tuple[str, ...] = ()
    licensed: dict[str, Licence] = Field(
        default_factory=dict, description="Licensed population per jurisdiction code (EU, US)"
    )

    def licences(self, jurisdiction: str | None) -> tuple[Licence, ...] | None:
        """The licensed populations in ``jurisdiction`` (every jurisdiction when None).

        None when none is on file (an investigational product): its population is unknown.
        """
        if jurisdiction is not None:
            lic = self.licensed.get(jurisdiction)
            return (lic,) if lic is not None else None
        return tuple(self.licensed.values()) or None


class TherapyClass(BaseModel):
    """A therapy class (car_t, bispecific, checkpoint_inhibitor) and its product classes."""

    model_config = _STRICT

    id: str
    name: Text
    product_classes: tuple[ProductClass, ...] = Field(min_length=1)


class DrugData(BaseModel):
    """Everything in ``data/drugs.toml``."""

    model_config = _STRICT

    drugs: dict[str, Drug]
    dose_rules: dict[str, DoseRule]
    steroids: SteroidTable
    products: dict[str, Product]
    therapy_classes: dict[str, TherapyClass]
    label_sources: dict[str, str] = Field(
        default_factory=dict, description="Label source key -> jurisdiction"
    )

    def therapy_class_of(self, product_class: str) -> str | None:
        """The therapy class a product class belongs to (None for 'other')."""
        return next((t.id for t in self.therapy_classes.values() if product_class in t.product_classes), None)


WEIGHT_PLAUSIBLE_KG = (1.0, 350.0)
"""Weights accepted for a dose computation [D]: outside, the weight is refused as implausible."""


def _check(data: DrugData) -> None:
    for d in data.drugs.values():
        if d.max is not None:
            source(d.max.source)
    owner: dict[str, str] = {}
    for t in data.therapy_classes.values():
        for pc in t.product_classes:
            if pc in owner:
                raise RuleSpecError(
                    f"drugs.toml: product class {pc!r} is in therapy classes {owner[pc]} and {t.id}"
                )
            owner[pc] = t.id
    known_j = jurisdictions()
    for p in data.products.values():
        for code, lic in p.licensed.items():
            if code not in known_j:
                raise RuleSpecError(f"drugs.toml: product {p.id!r} licensed in unknown jurisdiction {code!r}")
            source(lic.source)
    for key, code in data.label_sources.items():
        source(key)
        if code not in known_j:
            raise RuleSpecError(f"drugs.toml: label source {key!r} in unknown jurisdiction {code!r}")
    for r in data.dose_rules.values():
        source(r.population.source)
        for code, ref in r.label.items():
            if code not in known_j or data.label_sources.get(ref.source) != code:
                raise RuleSpecError(
                    f"drugs.toml: dose rule {r.id!r} label {code}: {ref.source!r} is not a {code} label"
                )
        drug_ = data.drugs.get(r.drug)
        if drug_ is None:
            raise RuleSpecError(f"drugs.toml: dose rule {r.id!r} names unknown drug {r.drug!r}")
        if r.route not in drug_.routes:
            raise RuleSpecError(f"drugs.toml: dose rule {r.id!r} route {r.route!r} not in {drug_.routes}")
        for key in [k for b in r.band for k in b.sources] + [k for lim in r.limit for k in lim.sources]:
            source(key)
        # bands must cover every plausible weight exactly once, boundaries included
        probes = {WEIGHT_PLAUSIBLE_KG[0], WEIGHT_PLAUSIBLE_KG[1]}
        for b in r.band:
            for edge in (b.below_kg, b.from_kg):
                if edge is not None:
                    probes |= {edge - 1e-6, edge, edge + 1e-6}
        for w in sorted(p for p in probes if WEIGHT_PLAUSIBLE_KG[0] <= p <= WEIGHT_PLAUSIBLE_KG[1]):
            n = sum(b.holds(w) for b in r.band)
            if n != 1:
                raise RuleSpecError(f"drugs.toml: dose rule {r.id!r}: {n} weight bands hold {w} kg")
        mx = drug_.max
        cap = r.limit_of("max_per_dose_mg")
        for b in r.band:
            if mx is None or mx.per_kg_per_dose is None or b.mg_per_kg > mx.per_kg_per_dose:
                raise RuleSpecError(
                    f"drugs.toml: dose rule {r.id!r}: {b.mg_per_kg} mg/kg is above the documented "
                    f"maximum per kg of {r.drug}"
                )
        if cap is None or mx is None or mx.per_dose is None or cap.value > mx.per_dose:
            raise RuleSpecError(
                f"drugs.toml: dose rule {r.id!r} needs a max_per_dose_mg limit within the documented "
                f"maximum of {r.drug}"
            )
    for key in data.steroids.sources:
        source(key)
    for name in data.steroids.mg:
        if name not in data.drugs:
            raise RuleSpecError(f"drugs.toml: steroid_equivalence names unknown drug {name!r}")
    seen: dict[str, str] = {}
    for p in data.products.values():
        for alias in (p.id, p.name, *p.aliases):
            key = alias.strip().lower()
            if seen.get(key, p.id) != p.id:
                raise RuleSpecError(f"drugs.toml: product alias {alias!r} is used by {seen[key]} and {p.id}")
            seen[key] = p.id


@functools.cache
def drug_data() -> DrugData:
    """The validated content of ``data/drugs.toml``."""
    text = resources.files("immunotox").joinpath("data/drugs.toml").read_text("utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleSpecError(f"data/drugs.toml: {exc}") from None
    try:
        data = DrugData(
            drugs={k: Drug(id=k, **v) for k, v in raw.get("drug", {}).items()},
            dose_rules={k: DoseRule(id=k, **v) for k, v in raw.get("dose_rule", {}).items()},
            steroids=SteroidTable(**raw["steroid_equivalence"]),
            products={k: Product(id=k, **v) for k, v in raw.get("product", {}).items()},
            therapy_classes={k: TherapyClass(id=k, **v) for k, v in raw.get("therapy_class", {}).items()},
            label_sources=dict(raw.get("label_source", {})),
        )
    except (ValidationError, KeyError, TypeError) as exc:
        raise RuleSpecError(f"data/drugs.toml does not follow its grammar: {exc}") from None
    _check(data)
    return data


def drug(drug_id: str) -> Drug:
    """The drug ``drug_id``; an unknown id is a packaging error."""
    try:
        return drug_data().drugs[drug_id]
    except KeyError:
        raise RuleSpecError(f"drug {drug_id!r} is not in data/drugs.toml") from None


def dose_rule(rule_id: str) -> DoseRule:
    """The dose rule ``rule_id``; an unknown id is a packaging error."""
    try:
        return drug_data().dose_rules[rule_id]
    except KeyError:
        raise RuleSpecError(f"dose rule {rule_id!r} is not in data/drugs.toml") from None


def steroid_table() -> SteroidTable:
    """The glucocorticoid equivalence table."""
    return drug_data().steroids


@functools.cache
def _product_index() -> dict[str, str]:
    out: dict[str, str] = {}
    for p in drug_data().products.values():
        for alias in (p.id, p.name, *p.aliases):
            out[alias.strip().lower()] = p.id
    return out


def resolve_product(field: str, raw: Any) -> Product:
    """The product named ``raw`` (id, INN or brand, any case); unknown names raise FindingError."""
    if not isinstance(raw, str) or not raw.strip():
        raise FindingError(field, raw, error("mg_product_name"))
    pid = _product_index().get(raw.strip().lower())
    if pid is None:
        raise FindingError(
            field,
            raw,
            error("mg_unknown_product"),
            error("mg_known_products", products=", ".join(drug_data().products)),
        )
    return drug_data().products[pid]


def parse_therapy_class(field: str, raw: Any) -> TherapyClass:
    """The therapy class named ``raw`` (car_t, bispecific, checkpoint_inhibitor); else FindingError."""
    known = drug_data().therapy_classes
    if not isinstance(raw, str) or raw.strip().lower() not in known:
        raise FindingError(field, raw, error("mg_unknown_class"), error("mg_one_of", values=", ".join(known)))
    return known[raw.strip().lower()]


def check_agreement(
    products: Any, therapy_class: TherapyClass | None, field: str = "context.product"
) -> str | None:
    """The one therapy class of ``products`` (and ``therapy_class``), or None when neither is given.

    Products of different therapy classes, or a product whose class is not ``therapy_class``,
    raise FindingError naming ``field``.
    """
    data = drug_data()
    found: dict[str, str] = {}
    for p in products:
        tc = data.therapy_class_of(p.product_class)
        if tc is not None:
            found.setdefault(tc, p.id)
    if therapy_class is not None:
        for tc, pid in found.items():
            if tc != therapy_class.id:
                raise FindingError(
                    field,
                    pid,
                    error("mg_class_disagrees", tc=repr(tc), given=repr(therapy_class.id)),
                    error("mg_class_disagrees_hint"),
                )
        return therapy_class.id
    if len(found) > 1:
        raise FindingError(
            field,
            sorted(found.values()),
            error("mg_mixed_classes", classes=", ".join(sorted(found))),
            error("mg_mixed_classes_hint"),
        )
    return next(iter(found), None)


def documented_max(drug_id: str) -> dict[str, Any] | None:
    """The documented maxima of ``drug_id`` as a plain dict (for output), or None."""
    mx = drug(drug_id).max
    if mx is None:
        return None
    return {k: v for k, v in mx.model_dump().items() if v is not None}
