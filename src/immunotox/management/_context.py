"""The clinical context of a recommendation, checked field by field.

Fields (all optional unless a toxicity or a weight-based dose requires them; unknown keys are
refused, so a misspelt field is never silently ignored):

=======================  ===================================================================
``product``              therapy product id, INN or brand (``"axi-cel"``, ``"Yescarta"``), or a
                         list of them (checkpoint-inhibitor combinations)
``therapy_class``        ``car_t``, ``bispecific`` or ``checkpoint_inhibitor``; must agree with the
                         product. Product or therapy class chooses the guideline sets: one of
                         them is required (no CAR-T default)
``weight_kg``            body weight, kg or ``{"value": x, "unit": "[lb_av]"}``, 1–350 kg
``ideal_body_weight_kg`` for doses written per kg of ideal body weight (levothyroxine)
``age_years``            0–120
``concurrent_crs_grade``  ASTCT CRS grade 0–4 at the same time (0 = no CRS)
``concurrent_icans_grade`` ASTCT ICANS grade 0–4 at the same time (0 = no ICANS)
``doses_given``          ``[{"drug": "tocilizumab", "time": "<ISO 8601 with timezone>"}, ...]``
``current_steroid``      ``{"drug": "dexamethasone", "mg": 10, "interval_h": 6}`` or
                         ``{"drug": "prednisone", "mg_per_day": 60}``
``at``                   time of the assessment / intended dose (ISO 8601 with timezone); default now
=======================  ===================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import FindingError
from ..messages import error
from ._drugs import Product, check_agreement, drug_data, parse_therapy_class, resolve_product, steroid_table
from ._inputs import _number, format_time, parse_age, parse_time, parse_weight

CONTEXT_FIELDS: tuple[str, ...] = (
    "product",
    "therapy_class",
    "weight_kg",
    "ideal_body_weight_kg",
    "age_years",
    "concurrent_crs_grade",
    "concurrent_icans_grade",
    "doses_given",
    "current_steroid",
    "at",
)


@dataclass(frozen=True)
class GivenDose:
    drug: str
    time: datetime
    mg: float | None = None


@dataclass(frozen=True)
class CurrentSteroid:
    drug: str
    mg: float | None
    interval_h: float | None
    mg_per_day: float


@dataclass(frozen=True)
class Context:
    """A checked context; ``None`` means *not given* (never read as normal)."""

    products: tuple[Product, ...]
    therapy_class: str | None
    weight_kg: float | None
    ideal_body_weight_kg: float | None
    age_years: float | None
    concurrent_crs_grade: int | None
    concurrent_icans_grade: int | None
    doses_given: tuple[GivenDose, ...]
    current_steroid: CurrentSteroid | None
    at: datetime
    given_fields: frozenset[str]

    @property
    def product_ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.products)

    @property
    def product_classes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.product_class for p in self.products))

    def doses_of(self, drug: str) -> list[datetime]:
        return [d.time for d in self.doses_given if d.drug == drug]

    def echo(self) -> dict[str, Any]:
        """The context as understood (canonical ids and units, UTC times), for the output."""
        out: dict[str, Any] = {
            "product": list(self.product_ids) or None,
            "product_class": list(self.product_classes) or None,
            "therapy_class": self.therapy_class,
            "weight_kg": self.weight_kg,
            "ideal_body_weight_kg": self.ideal_body_weight_kg,
            "age_years": self.age_years,
            "concurrent_crs_grade": self.concurrent_crs_grade,
            "concurrent_icans_grade": self.concurrent_icans_grade,
            "doses_given": [
                {"drug": d.drug, "time": format_time(d.time)} | ({"mg": d.mg} if d.mg is not None else {})
                for d in self.doses_given
            ],
            "current_steroid": None,
            "at": format_time(self.at),
        }
        if self.current_steroid is not None:
            cs = self.current_steroid
            out["current_steroid"] = {
                "drug": cs.drug,
                "mg": cs.mg,
                "interval_h": cs.interval_h,
                "mg_per_day": cs.mg_per_day,
            }
        return out


def _grade(field: str, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise FindingError(field, raw, error("mg_whole_grade"))
    if isinstance(raw, float) and not raw.is_integer():
        raise FindingError(field, raw, error("mg_whole_grade"))
    if not 0 <= raw <= 4:
        raise FindingError(field, raw, error("mg_grade_range"))
    return int(raw)


def _doses(raw: Any, at: datetime, now: datetime) -> tuple[GivenDose, ...]:
    field = "context.doses_given"
    if not isinstance(raw, list):
        raise FindingError(field, raw, error("mg_doses_list"))
    out: list[GivenDose] = []
    for i, item in enumerate(raw):
        f = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise FindingError(f, item, error("mg_dose_item"))
        extra = sorted(set(item) - {"drug", "time", "mg"})
        if extra:
            raise FindingError(
                f"{f}.{extra[0]}",
                item[extra[0]],
                error("unknown_key"),
                error("mg_expected_keys", keys="drug, time, mg"),
            )
        name = item.get("drug")
        if not isinstance(name, str) or name.strip().lower() not in drug_data().drugs:
            raise FindingError(
                f"{f}.drug",
                name,
                error("mg_unknown_drug"),
                error("mg_known_drugs", drugs=", ".join(drug_data().drugs)),
            )
        if "time" not in item:
            raise FindingError(f"{f}.time", None, error("mg_dose_time_missing"))
        t = parse_time(f"{f}.time", item["time"])
        if t > now:
            raise FindingError(
                f"{f}.time",
                item["time"],
                error("mg_dose_future", now=format_time(now)),
            )
        if t > at:
            raise FindingError(f"{f}.time", item["time"], error("mg_dose_after_at", at=format_time(at)))
        mg = _number(f"{f}.mg", item["mg"], lo=1e-6, hi=100_000) if item.get("mg") is not None else None
        key = name.strip().lower()
        if any(d.drug == key and d.time == t for d in out):
            raise FindingError(f"{f}.time", item["time"], error("mg_dose_twice", drug=key))
        out.append(GivenDose(drug=key, time=t, mg=mg))
    return tuple(sorted(out, key=lambda d: (d.time, d.drug)))


def _steroid(raw: Any) -> CurrentSteroid:
    field = "context.current_steroid"
    if not isinstance(raw, dict):
        raise FindingError(field, raw, error("mg_steroid_object"))
    extra = sorted(set(raw) - {"drug", "mg", "interval_h", "mg_per_day"})
    if extra:
        raise FindingError(
            f"{field}.{extra[0]}",
            raw[extra[0]],
            error("unknown_key"),
            error("mg_expected_keys", keys="drug, mg, interval_h, mg_per_day"),
        )
    table = steroid_table().mg
    name = raw.get("drug")
    if not isinstance(name, str) or name.strip().lower() not in table:
        raise FindingError(
            f"{field}.drug", name, error("mg_not_steroid"), error("mg_use_one_of", values=str(list(table)))
        )
    has_dose = raw.get("mg") is not None or raw.get("interval_h") is not None
    if has_dose == (raw.get("mg_per_day") is not None):
        raise FindingError(field, raw, error("mg_steroid_either"))
    if has_dose:
        if raw.get("mg") is None or raw.get("interval_h") is None:
            raise FindingError(field, raw, error("mg_steroid_pair"))
        mg = _number(f"{field}.mg", raw["mg"], lo=1e-6, hi=10_000)
        interval = _number(f"{field}.interval_h", raw["interval_h"], lo=1, hi=168)
        per_day = mg * 24 / interval
        return CurrentSteroid(drug=name.strip().lower(), mg=mg, interval_h=interval, mg_per_day=per_day)
    per_day = _number(f"{field}.mg_per_day", raw["mg_per_day"], lo=1e-6, hi=20_000)
    return CurrentSteroid(drug=name.strip().lower(), mg=None, interval_h=None, mg_per_day=per_day)


def parse_context(raw: Any, now: datetime | None = None) -> Context:
    """Check ``raw`` (a mapping or None); raise FindingError naming ``context.<field>``."""
    now_ = (now or datetime.now(UTC)).astimezone(UTC)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise FindingError("context", raw, error("mg_json_object"))
    unknown = sorted(k for k in raw if k not in CONTEXT_FIELDS)
    if unknown:
        raise FindingError(
            f"context.{unknown[0]}",
            raw[unknown[0]],
            error("mg_unknown_context"),
            error("mg_expected_one_of", values=str(list(CONTEXT_FIELDS))),
        )
    given = {k for k, v in raw.items() if v is not None}
    at = parse_time("context.at", raw["at"]) if raw.get("at") is not None else now_
    products: tuple[Product, ...] = ()
    if raw.get("product") is not None:
        names = raw["product"] if isinstance(raw["product"], list) else [raw["product"]]
        if not names:
            raise FindingError("context.product", raw["product"], error("mg_empty_products"))
        products = tuple(
            resolve_product(
                f"context.product[{i}]" if isinstance(raw["product"], list) else "context.product", n
            )
            for i, n in enumerate(names)
        )
    tc = raw.get("therapy_class")
    therapy_class = check_agreement(
        products, parse_therapy_class("context.therapy_class", tc) if tc is not None else None
    )
    weight = parse_weight("context.weight_kg", raw["weight_kg"]) if raw.get("weight_kg") is not None else None
    ibw = raw.get("ideal_body_weight_kg")
    ideal = parse_weight("context.ideal_body_weight_kg", ibw) if ibw is not None else None
    age = parse_age("context.age_years", raw["age_years"]) if raw.get("age_years") is not None else None
    crs = raw.get("concurrent_crs_grade")
    icans = raw.get("concurrent_icans_grade")
    ctx = Context(
        products=products,
        therapy_class=therapy_class,
        weight_kg=weight,
        ideal_body_weight_kg=ideal,
        age_years=age,
        concurrent_crs_grade=_grade("context.concurrent_crs_grade", crs) if crs is not None else None,
        concurrent_icans_grade=_grade("context.concurrent_icans_grade", icans) if icans is not None else None,
        doses_given=_doses(raw["doses_given"], at, now_) if raw.get("doses_given") is not None else (),
        current_steroid=_steroid(raw["current_steroid"]) if raw.get("current_steroid") is not None else None,
        at=at,
        given_fields=frozenset(given),
    )
    return ctx
