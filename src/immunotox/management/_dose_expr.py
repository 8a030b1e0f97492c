"""Doses written in a guideline set: :class:`DoseExpr` (fixed or per kg, one value or a range,
per dose or per day) computed for a patient by :func:`compute_dose` and capped at the drug's
documented maxima; :func:`assert_within_max` refuses, when a set is loaded, any expression that
could go above them. An expression with a dose ``rule`` (tocilizumab) is checked by
:func:`immunotox.management._dose_rule.check_dose_rule` and wrapped by :func:`dose_from_rule`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import RuleSpecError
from ._dose_rule import DoseDecision, _effective_limits
from ._drugs import DoseUnit, documented_max, dose_rule, drug
from ._inputs import _STEP, _floor, _n
from ._population import Gate
from ._vocab import message

Range = tuple[float, float]

_UNIT_TEXT: dict[str, str] = {"mg": "mg", "ug": "µg", "U": "U"}


def _as_range(v: Any) -> Any:
    if v is None or isinstance(v, tuple):
        return v
    if isinstance(v, bool):
        raise ValueError("expected a number or [low, high]")
    if isinstance(v, (int, float)):
        return (float(v), float(v))
    if isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v):
        lo, hi = float(v[0]), float(v[1])
        if not 0 < lo <= hi:
            raise ValueError("expected 0 < low <= high")
        return (lo, hi)
    raise ValueError("expected a number or [low, high]")


_AMOUNT_KEYS: dict[str, tuple[DoseUnit, bool]] = {
    "mg": ("mg", False),
    "mg_per_kg": ("mg", True),
    "ug_per_kg": ("ug", True),
    "units_per_kg": ("U", True),
}


class DoseExpr(BaseModel):
    """A dose written in a guideline set (see the grammar in ``asco2021-cart.toml``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    drug: str
    rule: str | None = None
    mg: Range | None = None
    mg_per_kg: Range | None = None
    ug_per_kg: Range | None = None
    units_per_kg: Range | None = None
    per: Literal["dose", "day"] = "dose"
    route: str | None = None
    interval_h: Range | None = None
    doses: int | None = Field(default=None, ge=1)
    max_mg: float | None = Field(default=None, gt=0)
    weight_basis: Literal["actual", "ideal"] = "actual"
    max_total: int | None = Field(default=None, ge=1)
    max_in_window: int | None = Field(default=None, ge=1)
    min_interval_h: float | None = Field(default=None, gt=0)

    _ranges = field_validator("mg", "mg_per_kg", "ug_per_kg", "units_per_kg", "interval_h", mode="before")(
        _as_range
    )

    @model_validator(mode="after")
    def _shape(self) -> DoseExpr:
        amounts = [k for k in _AMOUNT_KEYS if getattr(self, k) is not None]
        if self.rule is not None:
            if amounts or self.interval_h or self.per != "dose":
                raise ValueError("a dose with `rule` takes its amount and interval from the dose rule")
        else:
            if len(amounts) != 1:
                raise ValueError(f"exactly one of {list(_AMOUNT_KEYS)} is required (found {amounts})")
            if any(x is not None for x in (self.max_total, self.max_in_window, self.min_interval_h)):
                raise ValueError("max_total, max_in_window and min_interval_h need a dose `rule`")
            if self.per == "day" and self.interval_h is not None:
                raise ValueError("a daily dose (per = 'day') takes no interval_h")
        return self

    @property
    def amount_key(self) -> str:
        return next(k for k in _AMOUNT_KEYS if getattr(self, k) is not None)

    @property
    def unit(self) -> DoseUnit:
        return _AMOUNT_KEYS[self.amount_key][0]

    @property
    def per_kg(self) -> bool:
        return self.rule is not None or _AMOUNT_KEYS[self.amount_key][1]

    @property
    def amount(self) -> Range:
        value: Range = getattr(self, self.amount_key)
        return value

    def overrides(self) -> dict[str, float]:
        out = {
            k: float(getattr(self, k))
            for k in ("max_total", "max_in_window", "min_interval_h", "max_mg")
            if getattr(self, k) is not None
        }
        return out


def _doses_per_day(interval: Range | None) -> float:
    return 24.0 / interval[0] if interval else 1.0


def assert_within_max(expr: DoseExpr, where: str) -> None:
    """Refuse (RuleSpecError) a dose expression that could exceed the drug's documented maxima."""
    d = drug(expr.drug)
    if expr.route is not None and expr.route not in d.routes:
        raise RuleSpecError(f"{where}: route {expr.route!r} is not a route of {expr.drug} {d.routes}")
    if expr.rule is not None:
        rule = dose_rule(expr.rule)
        if rule.drug != expr.drug:
            raise RuleSpecError(f"{where}: dose rule {expr.rule!r} is for {rule.drug}, not {expr.drug}")
        _effective_limits(rule, expr.overrides(), where)
        return
    if expr.unit != d.dose_unit:
        raise RuleSpecError(f"{where}: {expr.drug} is dosed in {d.dose_unit}, not {expr.unit}")
    mx = d.max
    if mx is None:
        raise RuleSpecError(
            f"{where}: {expr.drug} has no documented maximum in data/drugs.toml; add one (with its "
            "source) before a guideline set can dose it"
        )
    hi = expr.amount[1]
    per_day = hi if expr.per == "day" else hi * _doses_per_day(expr.interval_h)
    problems: list[str] = []
    if expr.per_kg:
        if expr.per == "dose" and mx.per_kg_per_dose is not None and hi > mx.per_kg_per_dose:
            problems.append(f"{hi:g}/kg per dose > documented {mx.per_kg_per_dose:g}/kg")
        if mx.per_kg_per_day is not None and per_day > mx.per_kg_per_day + 1e-9:
            problems.append(f"{per_day:g}/kg/day > documented {mx.per_kg_per_day:g}/kg/day")
        if mx.per_kg_per_dose is None and mx.per_kg_per_day is None:
            problems.append("no documented maximum per kg")
    else:
        if expr.per == "dose" and mx.per_dose is not None and hi > mx.per_dose:
            problems.append(f"{hi:g} per dose > documented {mx.per_dose:g}")
        if mx.per_day is not None and per_day > mx.per_day + 1e-9:
            problems.append(f"{per_day:g}/day > documented {mx.per_day:g}/day")
        if mx.per_dose is None and mx.per_day is None:
            problems.append("no documented absolute maximum")
    if expr.max_mg is not None and mx.per_dose is not None and expr.max_mg > mx.per_dose:
        problems.append(f"cap {expr.max_mg:g} > documented {mx.per_dose:g}")
    if problems:
        raise RuleSpecError(
            f"{where}: dose of {expr.drug} exceeds the documented maximum ({'; '.join(problems)}; "
            f"source {mx.source})"
        )


class ComputedDose(BaseModel):
    """A dose from a guideline action, computed for the patient and capped at documented maxima."""

    model_config = ConfigDict(frozen=True)

    drug: str
    drug_name: str
    unit: str
    per: Literal["dose", "day"]
    route: str | None
    amount: float | None = Field(description="The dose when it is a single value")
    amount_range: tuple[float, float] | None = Field(description="The dose when the source gives a range")
    dose_mg: float | None
    dose_mg_range: tuple[float, float] | None
    expression: str
    weight_kg: float | None
    weight_basis: str | None
    cap: float | None
    capped: bool
    interval_h: float | tuple[float, float] | None
    doses: int | None
    computed: bool
    not_computed_reason: str | None = None
    withheld: bool = Field(default=False, description="No amount: the patient is outside its population")
    documented_max: dict[str, Any] | None
    check: DoseDecision | None = Field(default=None, description="Dose-rule check (tocilizumab)")


def _span(lo: float, hi: float, lang: str) -> str:
    """``lo`` or ``lo–hi``, numbers written for ``lang``."""
    return _n(lang, lo) if lo == hi else f"{_n(lang, lo)}–{_n(lang, hi)}"


def _range_out(r: Range) -> float | tuple[float, float]:
    return r[0] if r[0] == r[1] else r


def compute_dose(
    expr: DoseExpr,
    *,
    weight_kg: float | None,
    ideal_weight_kg: float | None = None,
    gate: Gate | None = None,
    lang: str = "en",
) -> ComputedDose:
    """Compute ``expr`` for a patient (expressions with a dose ``rule`` go through check_dose_rule).

    A weight-based dose on actual weight needs ``weight_kg`` (the caller refuses its absence);
    a dose on ideal body weight without ``ideal_weight_kg`` is returned *not computed*, with why.
    ``gate`` is the population gate of the set the expression comes from: when it does not cover
    the patient, no amount is given (``withheld``).
    """
    d = drug(expr.drug)
    if gate is not None and not gate.covered:
        return withheld_dose(expr.drug, gate.reason or "", lang, route=expr.route, per=expr.per)
    mx = d.max
    unit = expr.unit
    per_txt = message("per_day", lang) if expr.per == "day" else ""
    lo, hi = expr.amount
    shown = _span(lo, hi, lang)
    weight: float | None = None
    if expr.per_kg:
        weight = ideal_weight_kg if expr.weight_basis == "ideal" else weight_kg
        if weight is None:
            need = "ideal_body_weight_kg" if expr.weight_basis == "ideal" else "weight_kg"
            return ComputedDose(
                drug=expr.drug,
                drug_name=d.label(lang),
                unit=unit,
                per=expr.per,
                route=expr.route,
                amount=None,
                amount_range=None,
                dose_mg=None,
                dose_mg_range=None,
                expression=f"{shown} {_UNIT_TEXT[unit]}/kg{per_txt} "
                + message(f"weight_basis_{expr.weight_basis}", lang),
                weight_kg=None,
                weight_basis=expr.weight_basis,
                cap=None,
                capped=False,
                interval_h=_range_out(expr.interval_h) if expr.interval_h else None,
                doses=expr.doses,
                computed=False,
                not_computed_reason=message("dose_needs_weight", lang, field=f"context.{need}"),
                documented_max=documented_max(expr.drug),
            )
        step = _STEP[unit]
        raw_lo, raw_hi = _floor(lo * weight, step), _floor(hi * weight, step)
    else:
        raw_lo, raw_hi = lo, hi
    caps = [c for c in (expr.max_mg,) if c is not None]
    if mx is not None:
        if expr.per == "dose" and mx.per_dose is not None:
            caps.append(mx.per_dose)
        if mx.per_day is not None:
            # a per-dose amount given every interval_h must stay within the daily maximum
            caps.append(mx.per_day if expr.per == "day" else mx.per_day / _doses_per_day(expr.interval_h))
    cap = min(caps) if caps else None
    out_lo = min(raw_lo, cap) if cap is not None else raw_lo
    out_hi = min(raw_hi, cap) if cap is not None else raw_hi
    capped = (out_lo, out_hi) != (raw_lo, raw_hi)
    ut = _UNIT_TEXT[unit]
    result = _span(out_lo, out_hi, lang)
    if expr.per_kg:
        expression = message(
            "dose_per_kg",
            lang,
            amount=shown,
            unit=ut,
            per=per_txt,
            weight=_n(lang, weight or 0),
            result=result,
        )
    else:
        expression = f"{result} {ut}{per_txt}"
    if capped:
        expression += " " + message("expression_capped", lang, cap=_n(lang, cap or 0), unit=ut)
    if expr.interval_h:
        iv = expr.interval_h
        expression += (
            message("dose_interval", lang, hours=_n(lang, iv[0]))
            if iv[0] == iv[1]
            else message("dose_interval_range", lang, low=_n(lang, iv[0]), high=_n(lang, iv[1]))
        )
    if expr.doses:
        expression += f" × {expr.doses}"
    single = out_lo == out_hi
    return ComputedDose(
        drug=expr.drug,
        drug_name=d.label(lang),
        unit=unit,
        per=expr.per,
        route=expr.route,
        amount=out_lo if single else None,
        amount_range=None if single else (out_lo, out_hi),
        dose_mg=out_lo if single and unit == "mg" else None,
        dose_mg_range=(out_lo, out_hi) if not single and unit == "mg" else None,
        expression=expression,
        weight_kg=weight,
        weight_basis=expr.weight_basis if expr.per_kg else None,
        cap=cap,
        capped=capped,
        interval_h=_range_out(expr.interval_h) if expr.interval_h else None,
        doses=expr.doses,
        computed=True,
        documented_max=documented_max(expr.drug),
    )


def withheld_dose(
    drug_id: str,
    reason: str,
    lang: str,
    *,
    route: str | None = None,
    per: Literal["dose", "day"] = "dose",
    check: DoseDecision | None = None,
) -> ComputedDose:
    """A dose whose amount is withheld by the population gate: no number, the reason instead."""
    d = drug(drug_id)
    return ComputedDose(
        drug=drug_id,
        drug_name=d.label(lang),
        unit=d.dose_unit,
        per=per,
        route=route,
        amount=None,
        amount_range=None,
        dose_mg=None,
        dose_mg_range=None,
        expression=message("dose_withheld", lang, drug=d.label(lang), reason=reason),
        weight_kg=None,
        weight_basis=None,
        cap=None,
        capped=False,
        interval_h=None,
        doses=None,
        computed=False,
        not_computed_reason=reason,
        withheld=True,
        documented_max=None,
        check=check,
    )


def dose_from_rule(decision: DoseDecision, expr: DoseExpr, lang: str) -> ComputedDose:
    """Wrap a dose-rule decision (tocilizumab) as the ComputedDose of a guideline action."""
    d = drug(expr.drug)
    if decision.withheld or decision.dose_mg is None or decision.mg_per_kg is None:
        return withheld_dose(
            expr.drug, decision.withheld_reason or "", lang, route=decision.route, check=decision
        )
    interval = next((lim.limit for lim in decision.limits if lim.kind == "min_interval_h"), None)
    expression = (
        f"{_n(lang, decision.mg_per_kg)} mg/kg × {_n(lang, decision.weight_kg)} kg = "
        f"{_n(lang, decision.uncapped_mg or 0)} mg"
    )
    if decision.capped:
        expression += " " + message("expression_capped", lang, cap=_n(lang, decision.cap_mg), unit="mg")
    return ComputedDose(
        drug=expr.drug,
        drug_name=d.label(lang),
        unit="mg",
        per="dose",
        route=decision.route,
        amount=decision.dose_mg,
        amount_range=None,
        dose_mg=decision.dose_mg,
        dose_mg_range=None,
        expression=expression,
        weight_kg=decision.weight_kg,
        weight_basis="actual",
        cap=decision.cap_mg,
        capped=decision.capped,
        interval_h=interval,
        doses=None,
        computed=True,
        documented_max=documented_max(expr.drug),
        check=decision,
    )
