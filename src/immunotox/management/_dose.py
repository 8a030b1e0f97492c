"""Dose computation and dose safety.

Map of the module
-----------------
* :func:`check_dose_rule` — a weight-banded dose (``data/drugs.toml`` ``[dose_rule.*]``) checked
  against its administration limits and a history of doses; :func:`tocilizumab_dose` is the
  ``tocilizumab-crs`` case.
* :class:`DoseExpr` and :func:`compute_dose` — a dose written in a guideline set (fixed or per kg,
  one value or a range, per dose or per day) computed for a weight and capped at the drug's
  documented maxima; :func:`assert_within_max` refuses, when a set is loaded, any expression that
  could go above them.
* :func:`convert_steroid`, :func:`steroid_equivalents` — the glucocorticoid equivalence table.

Semantics
---------
* **Times** are ISO 8601 strings with a timezone (``2025-03-01T08:00:00+01:00`` or ``...Z``). A time
  without a timezone is refused (never read as UTC or local time: the 8-hour rule would silently
  shift by the UTC offset). Output times are UTC, written with ``Z``.
* **Windows**: "at most N doses in W hours" counts the doses in ``(at - W, at]``; a dose given
  exactly W hours before ``at`` is outside. "At least H hours between doses" allows a dose at
  exactly H hours after the last one.
* **Rounding**: weight-based amounts are rounded *down* to 0.1 (mg, µg or unit) so that a
  computed dose never exceeds ``per-kg dose × weight``; caps are applied after rounding.

References
----------
Genentech. ACTEMRA (tocilizumab) US prescribing information, CRS dosage (via drugs.com, 2019).
Santomasso BD, et al. Management of immune-related adverse events in patients treated with CAR
T-cell therapy: ASCO guideline. J Clin Oncol 2021;39(35):3978-3992. doi:10.1200/JCO.21.01992
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .. import units
from ..errors import FindingError, RuleSpecError
from ..jurisdiction import jurisdictions
from ..sources import source
from ._drugs import WEIGHT_PLAUSIBLE_KG, DoseRule, DoseUnit, documented_max, dose_rule, drug, steroid_table
from ._population import Gate, Licence, PopulationCheck, dose_gate
from ._vocab import check_lang, message

Range = tuple[float, float]

_STEP: dict[str, float] = {"mg": 0.1, "ug": 0.1, "U": 0.1}
_UNIT_TEXT: dict[str, str] = {"mg": "mg", "ug": "µg", "U": "U"}


# ------------------------------------------------------------------------------ parsing
def parse_time(field: str, raw: Any) -> datetime:
    """An ISO 8601 time with a timezone, as an aware UTC datetime; else FindingError on ``field``."""
    if isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, str):
        try:
            value = datetime.fromisoformat(raw.strip())
        except ValueError:
            raise FindingError(
                field, raw, "not an ISO 8601 date-time", "write e.g. 2025-03-01T08:00:00+01:00"
            ) from None
    else:
        raise FindingError(field, raw, "expected an ISO 8601 date-time string")
    if value.tzinfo is None or value.utcoffset() is None:
        raise FindingError(
            field,
            raw if isinstance(raw, str) else value.isoformat(),
            "time without a timezone",
            "add the offset (e.g. +01:00) or Z for UTC; naive times are refused, never guessed",
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
            raise FindingError(f"{field}.{extra[0]}", raw[extra[0]], "unknown key; expected value and unit")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FindingError(field, raw, 'expected a number of kg or {"value": x, "unit": "<UCUM>"}')
    kg = float(value) if unit is None else units.convert(field, float(value), str(unit), "kg")
    lo, hi = WEIGHT_PLAUSIBLE_KG
    if not lo <= kg <= hi:
        raise FindingError(
            field,
            raw,
            f"outside the plausible body weight range {lo:g}–{hi:g} kg",
            "check the value and the unit (kg, or give a unit such as [lb_av])",
        )
    return kg


def _number(field: str, raw: Any, *, lo: float, hi: float) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise FindingError(field, raw, "expected a number")
    if not lo <= raw <= hi:
        raise FindingError(field, raw, f"outside the possible range {lo:g}–{hi:g}")
    return float(raw)


def parse_age(field: str, raw: Any) -> float:
    """An age in years, 0–120."""
    return _number(field, raw, lo=0, hi=120)


def _floor(x: float, step: float) -> float:
    # round first to absorb binary noise (12 x 25.3 = 303.59999...), then floor to the step
    return round(math.floor(round(x / step, 6)) * step, 6)


def _g(x: float) -> str:
    return f"{round(x, 3):g}"


# ------------------------------------------------------------------------------ dose rules
class LimitCheck(BaseModel):
    """One administration limit checked for an intended dose."""

    model_config = ConfigDict(frozen=True)

    kind: str
    limit: float
    window_h: float | None = None
    observed: float | None = Field(description="Count or hours observed in the history")
    ok: bool
    text: str
    sources: list[str]
    verification: str
    local_override: bool = False


class SourceRef(BaseModel):
    """A cited source as shown in an output."""

    model_config = ConfigDict(frozen=True)

    key: str
    citation: str
    locator: str
    verification: str = Field(description="Verification of the content taken from this locator")


class LabelApplied(BaseModel):
    """The product information a dose rule's label-dependent items were taken from."""

    model_config = ConfigDict(frozen=True)

    jurisdiction: str
    document: str
    source: str
    locator: str
    verification: str


class DoseDecision(BaseModel):
    """The dose for an intended administration and whether the limits allow it now.

    ``dose_mg`` is the dose that applies to this weight (after the cap), ``None`` when the
    patient is outside the rule's population or the age needed to know it is missing
    (``withheld``; ``population.reason`` says why). When ``allowed`` is false it must not be
    given now; ``next_allowed_at`` is the earliest time the limits would allow another dose
    (``None`` when no further dose is allowed at all).
    """

    model_config = ConfigDict(frozen=True)

    drug: str
    dose_mg: float | None
    withheld: bool = Field(description="No amount is given: see withheld_reason")
    withheld_reason: str | None = Field(default=None, description="Why no amount is given")
    population: PopulationCheck = Field(description="Whom the rule's amounts are written for, and the gate")
    jurisdiction: str | None = Field(
        default=None, description="Whose product information applies (None: not set)"
    )
    label: LabelApplied | None = Field(default=None, description="The label used for label-dependent items")
    allowed: bool
    next_allowed_at: str | None
    reasons: list[str]
    at: str
    weight_kg: float
    mg_per_kg: float | None
    uncapped_mg: float | None
    cap_mg: float
    capped: bool
    route: str
    infusion_min: int | None
    doses_in_window: int
    window_h: float | None
    doses_in_last_24h: int
    total_doses: int = Field(description="Doses supplied as history (before this one)")
    last_dose_at: str | None
    hours_since_last: float | None
    following_dose_earliest_at: str | None = Field(
        description="If this dose is given at `at`: the earliest time of the next one (None: none allowed)"
    )
    rule_set: str
    rule_set_title: str
    scope: str
    limits: list[LimitCheck]
    sources: list[SourceRef]
    warnings: list[str]


def _effective_limits(
    rule: DoseRule, overrides: Mapping[str, float] | None, where: str
) -> dict[str, tuple[float, float | None, bool]]:
    """``{kind: (value, window_h, overridden)}`` after applying stricter local overrides."""
    out: dict[str, tuple[float, float | None, bool]] = {
        lim.kind: (lim.value, lim.window_h, False) for lim in rule.limit
    }
    names = {
        "max_mg": "max_per_dose_mg",
        "min_interval_h": "min_interval_h",
        "max_in_window": "max_in_window",
        "max_total": "max_total",
    }
    for key, value in (overrides or {}).items():
        kind = names.get(key)
        if kind is None:
            raise RuleSpecError(f"{where}: unknown dose-rule override {key!r}")
        base = out.get(kind)
        if base is None:
            raise RuleSpecError(f"{where}: dose rule {rule.id!r} has no {kind} limit to override")
        stricter = value >= base[0] if kind == "min_interval_h" else value <= base[0]
        if not stricter:
            raise RuleSpecError(
                f"{where}: local {key} = {value:g} is less strict than the documented {base[0]:g} "
                f"of dose rule {rule.id!r}; a local set may only tighten a documented limit"
            )
        out[kind] = (float(value), base[1], value != base[0])
    return out


def _limit_sources(rule: DoseRule, kind: str) -> tuple[list[str], str]:
    lim = rule.limit_of(kind)
    return (list(lim.sources), lim.verification) if lim else ([], "D")


def _blocks(
    times: Sequence[datetime], at: datetime, eff: Mapping[str, tuple[float, float | None, bool]]
) -> tuple[bool, datetime | None, bool]:
    """(allowed, next allowed time, exhausted) for a dose at ``at`` after ``times`` (sorted)."""
    candidates: list[datetime] = []
    exhausted = False
    if "max_total" in eff and len(times) >= eff["max_total"][0]:
        exhausted = True
    if "min_interval_h" in eff and times:
        earliest = times[-1] + timedelta(hours=eff["min_interval_h"][0])
        if at < earliest:
            candidates.append(earliest)
    if "max_in_window" in eff:
        count, window_h, _ = eff["max_in_window"]
        assert window_h is not None
        window = timedelta(hours=window_h)
        inside = [t for t in times if at - window < t <= at]
        if len(inside) >= count:
            # the window must lose len(inside) - count + 1 doses: the oldest ones leave it
            candidates.append(inside[len(inside) - int(count)] + window)
    if exhausted:
        return False, None, True
    if candidates:
        return False, max(candidates), False
    return True, at, False


def check_dose_rule(
    rule_id: str,
    weight_kg: Any,
    given: Iterable[Any] = (),
    at: Any = None,
    *,
    now: datetime | None = None,
    age_years: Any = None,
    licences: Sequence[Licence] | None = None,
    jurisdiction: str | None = None,
    overrides: Mapping[str, float] | None = None,
    override_source: str | None = None,
    lang: str = "en",
    field_prefix: str = "",
) -> DoseDecision:
    """Compute the dose of dose rule ``rule_id`` for ``weight_kg`` and check its limits.

    Parameters
    ----------
    rule_id
        A ``[dose_rule.*]`` id of ``data/drugs.toml`` (``"tocilizumab-crs"``).
    weight_kg
        Body weight: a number of kg or ``{"value": x, "unit": "<UCUM>"}``; 1–350 kg.
    given
        Times of the doses already given (ISO 8601 with timezone, or aware datetimes).
    at
        Time of the intended dose; default ``now``.
    now
        The current time (for tests); default the system clock. A dose "already given" after
        ``now`` is refused as an input error.
    age_years
        Age in years (0–120). The rule's amounts are printed only inside its population
        (``[dose_rule.<id>.population]``); without an age they are printed only when every
        product in ``licences`` is licensed solely inside it.
    licences
        Licensed populations of the products the patient may have received (``None``: unknown).
    jurisdiction
        ``EU`` or ``US``: whose product information applies. A band whose only source is the
        label (tocilizumab under 30 kg) gives no amount without one; the label used is named.
    overrides
        Stricter local limits from a guideline set (``max_total``, ``max_in_window``,
        ``min_interval_h``, ``max_mg``); a looser value is a :class:`RuleSpecError`.

    Raises
    ------
    FindingError
        Implausible weight, a time without timezone, a dose time in the future or after ``at``,
        two doses at the same time.
    """
    lang = check_lang(lang)
    rule = dose_rule(rule_id)
    now_ = (now or datetime.now(UTC)).astimezone(UTC)
    w = parse_weight(f"{field_prefix}weight_kg", weight_kg)
    at_ = now_ if at is None else parse_time(f"{field_prefix}at", at)
    times: list[datetime] = []
    for i, raw in enumerate(given):
        t = parse_time(f"{field_prefix}given[{i}]", raw)
        if t > now_:
            raise FindingError(
                f"{field_prefix}given[{i}]",
                raw if isinstance(raw, str) else format_time(t),
                f"a dose already given cannot be in the future (now is {format_time(now_)})",
            )
        if t > at_:
            raise FindingError(
                f"{field_prefix}given[{i}]",
                raw if isinstance(raw, str) else format_time(t),
                f"after the time of the intended dose ({format_time(at_)})",
                "the history lists doses given before the intended one",
            )
        if t in times:
            raise FindingError(
                f"{field_prefix}given[{i}]",
                raw if isinstance(raw, str) else format_time(t),
                "the same time is listed twice",
                "list each dose once",
            )
        times.append(t)
    times.sort()
    eff = _effective_limits(rule, overrides, f"dose rule {rule_id} (overrides from {override_source})")

    # -- the population gate, then the dose: band, rounding down, cap
    age = parse_age(f"{field_prefix}age_years", age_years) if age_years is not None else None
    gate = rule_gate(rule, age, w, licences, lang, field_prefix)
    band = rule.band_for(w)
    label_ref = rule.label.get(jurisdiction) if jurisdiction is not None else None
    label_block: str | None = None
    if band.label_only and label_ref is None:
        key = "label_needed" if jurisdiction is None else "label_missing"
        label_block = message(
            key, lang, weight=_g(w), drug=drug(rule.drug).label(lang), jurisdiction=jurisdiction or ""
        )
    covered = gate.covered and label_block is None
    withheld_reason = gate.reason if not gate.covered else label_block
    cap = eff["max_per_dose_mg"][0]
    uncapped: float | None = None
    dose_mg: float | None = None
    capped = False
    if covered:
        uncapped = _floor(band.mg_per_kg * w, _STEP["mg"])
        capped = uncapped > cap
        dose_mg = cap if capped else uncapped
        reasons = [
            message(
                "dose_band",
                lang,
                mg_per_kg=_g(band.mg_per_kg),
                weight=_g(w),
                raw=_g(uncapped),
                band=band.text.get(lang),
            ),
            message("dose_capped" if capped else "dose_below_cap", lang, cap=_g(cap), raw=_g(uncapped)),
        ]
    else:
        reasons = [withheld_reason or ""]
    applied: LabelApplied | None = None
    if label_ref is not None and jurisdiction is not None:
        j = jurisdictions()[jurisdiction]
        applied = LabelApplied(
            jurisdiction=jurisdiction,
            document=j.document(lang),
            source=label_ref.source,
            locator=label_ref.locator,
            verification=label_ref.verification,
        )
        reasons.append(
            message(
                "label_applied", lang, document=applied.document, code=jurisdiction, source=label_ref.source
            )
        )
    elif jurisdiction is None:
        reasons.append(message("label_not_configured", lang))

    allowed, next_at, exhausted = _blocks(times, at_, eff)
    limits: list[LimitCheck] = []
    refusals: list[str] = []

    # -- each limit, in a fixed order: total, interval, window
    if "max_total" in eff:
        value, _, local = eff["max_total"]
        ok = len(times) < value
        text = message("limit_total_ok" if ok else "limit_total_hit", lang, n=len(times), limit=_g(value))
        srcs, ver = _limit_sources(rule, "max_total")
        limits.append(
            LimitCheck(
                kind="max_total",
                limit=value,
                observed=len(times),
                ok=ok,
                text=text,
                sources=srcs,
                verification=ver,
                local_override=local,
            )
        )
        (reasons if ok else refusals).append(text)
    last = times[-1] if times else None
    hours_since = round((at_ - last).total_seconds() / 3600, 2) if last else None
    if "min_interval_h" in eff:
        value, _, local = eff["min_interval_h"]
        ok = hours_since is None or hours_since >= value
        if last is None:
            text = message("limit_interval_none", lang, limit=_g(value))
        else:
            key = "limit_interval_ok" if ok else "limit_interval_hit"
            text = message(key, lang, hours=_g(hours_since or 0.0), limit=_g(value), last=format_time(last))
        srcs, ver = _limit_sources(rule, "min_interval_h")
        limits.append(
            LimitCheck(
                kind="min_interval_h",
                limit=value,
                observed=hours_since,
                ok=ok,
                text=text,
                sources=srcs,
                verification=ver,
                local_override=local,
            )
        )
        (reasons if ok else refusals).append(text)
    in_window = 0
    window_h: float | None = None
    if "max_in_window" in eff:
        value, window_h, local = eff["max_in_window"]
        assert window_h is not None
        in_window = sum(1 for t in times if at_ - timedelta(hours=window_h) < t <= at_)
        ok = in_window < value
        key = "limit_window_ok" if ok else "limit_window_hit"
        text = message(key, lang, n=in_window, limit=_g(value), window=_g(window_h))
        srcs, ver = _limit_sources(rule, "max_in_window")
        limits.append(
            LimitCheck(
                kind="max_in_window",
                limit=value,
                window_h=window_h,
                observed=in_window,
                ok=ok,
                text=text,
                sources=srcs,
                verification=ver,
                local_override=local,
            )
        )
        (reasons if ok else refusals).append(text)
    in_24h = sum(1 for t in times if at_ - timedelta(hours=24) < t <= at_)

    following: datetime | None = None
    warnings: list[str] = []
    if allowed:
        ok2, nxt, _ = _blocks([*times, at_], at_, eff)
        following = None if ok2 else nxt
        if "max_total" in eff and len(times) + 1 >= eff["max_total"][0]:
            reasons.append(message("last_allowed", lang, n=len(times) + 1, limit=_g(eff["max_total"][0])))
    for kind, (value, _, local) in eff.items():
        if local:
            warnings.append(
                message("local_override", lang, kind=kind, value=_g(value), origin=override_source)
            )
    for a, b in itertools.pairwise(times):
        gap = (b - a).total_seconds() / 3600
        if "min_interval_h" in eff and gap < eff["min_interval_h"][0]:
            warnings.append(
                message(
                    "history_interval",
                    lang,
                    a=format_time(a),
                    b=format_time(b),
                    hours=_g(round(gap, 2)),
                    limit=_g(eff["min_interval_h"][0]),
                )
            )
    if withheld_reason:
        warnings.append(withheld_reason)
    if applied is not None and applied.verification == "M":
        warnings.append(message("label_unverified", lang, document=applied.document, source=applied.source))

    refs: list[SourceRef] = []
    for keys, loc, ver in [(band.sources, band.locator, band.verification)] + [
        (lim.sources, lim.locator, lim.verification) for lim in rule.limit if lim.kind in eff
    ]:
        for key in keys:
            refs.append(SourceRef(key=key, citation=source(key).citation(), locator=loc, verification=ver))
    return DoseDecision(
        drug=rule.drug,
        dose_mg=dose_mg,
        withheld=not covered,
        withheld_reason=withheld_reason,
        population=gate.out(),
        jurisdiction=jurisdiction,
        label=applied,
        allowed=allowed,
        next_allowed_at=format_time(next_at) if next_at is not None and not exhausted else None,
        reasons=refusals + reasons if refusals else reasons,
        at=format_time(at_),
        weight_kg=w,
        mg_per_kg=band.mg_per_kg if covered else None,
        uncapped_mg=uncapped,
        cap_mg=cap,
        capped=capped,
        route=rule.route,
        infusion_min=rule.infusion_min,
        doses_in_window=in_window,
        window_h=window_h,
        doses_in_last_24h=in_24h,
        total_doses=len(times),
        last_dose_at=format_time(last) if last else None,
        hours_since_last=hours_since,
        following_dose_earliest_at=format_time(following) if following else None,
        rule_set=rule.id,
        rule_set_title=rule.title.get(lang),
        scope=rule.scope.get(lang),
        limits=limits,
        sources=refs,
        warnings=warnings,
    )


def rule_gate(
    rule: DoseRule,
    age_years: float | None,
    weight_kg: float | None,
    licences: Sequence[Licence] | None,
    lang: str,
    field_prefix: str = "",
) -> Gate:
    """The population gate of dose rule ``rule`` for this patient (see ``_population``)."""
    return dose_gate(
        rule.population,
        age_years=age_years,
        weight_kg=weight_kg,
        licences=licences,
        what=rule.title.get(lang),
        lang=lang,
        age_field=f"{field_prefix}age_years",
        weight_field=f"{field_prefix}weight_kg",
    )


def tocilizumab_dose(
    weight_kg: Any,
    given: Iterable[Any] = (),
    at: Any = None,
    *,
    now: datetime | None = None,
    age_years: Any = None,
    licences: Sequence[Licence] | None = None,
    jurisdiction: str | None = None,
    lang: str = "en",
) -> DoseDecision:
    """Tocilizumab for CAR-T CRS: the dose for ``weight_kg`` and whether it may be given at ``at``.

    8 mg/kg for 30 kg and above, 12 mg/kg under 30 kg (US label), never more than 800 mg per
    dose; at least 8 h after the previous dose; at most 3 doses in any 24 h and 4 in total
    (ASCO 2021). A dose that would break a limit is refused with the reason.

    Parameters
    ----------
    weight_kg
        Body weight in kg (or ``{"value": x, "unit": "[lb_av]"}``), 1–350 kg.
    given
        ISO 8601 times (with timezone) of the tocilizumab doses already given: every dose of the
        current CAR-T course for the conservative reading of the caps (see Notes).
    at
        Time of the intended dose (default: now).

    Returns
    -------
    DoseDecision
        ``dose_mg``, ``allowed``, ``next_allowed_at``, ``reasons``, the limit checks and sources.

    Raises
    ------
    FindingError
        Weight outside 1–350 kg, a time without timezone, a dose time in the future or after
        ``at``, the same time twice.

    Notes
    -----
    Whether the ASCO caps count per CRS episode or per CAR-T course is not stated (ASCO 2021,
    doi:10.1200/JCO.21.01992); the caps apply to the history supplied. The 24-hour window is
    ``(at - 24 h, at]``. The dose is rounded down to 0.1 mg, then capped.

    References
    ----------
    Genentech. ACTEMRA (tocilizumab) prescribing information, dosage in cytokine release
    syndrome (US label, via drugs.com dosage monograph, 2019).
    Santomasso BD, Nastoupil LJ, Adkins S, et al. Management of immune-related adverse events in
    patients treated with CAR T-cell therapy: ASCO guideline. J Clin Oncol 2021;39(35):3978-3992.
    doi:10.1200/JCO.21.01992

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> now = datetime(2025, 3, 1, 9, tzinfo=UTC)
    >>> d = tocilizumab_dose(120, at="2025-03-01T08:00:00Z", now=now, age_years=45)
    >>> d.dose_mg, d.capped, d.allowed
    (800.0, True, True)
    >>> d = tocilizumab_dose(9, at="2025-03-01T08:00:00Z", now=now, age_years=1)  # under 2 years
    >>> d.dose_mg, d.withheld
    (None, True)
    >>> tocilizumab_dose(15, now=now, age_years=8).dose_mg is None  # < 30 kg: label only, no jurisdiction
    True
    >>> d = tocilizumab_dose(15, now=now, age_years=8, jurisdiction="US")
    >>> d.dose_mg, d.label.document
    (180.0, 'US prescribing information (USPI)')
    """
    return check_dose_rule(
        "tocilizumab-crs",
        weight_kg,
        given,
        at,
        now=now,
        age_years=age_years,
        licences=licences,
        jurisdiction=jurisdiction,
        lang=lang,
    )


# ------------------------------------------------------------------------------ dose expressions
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
    per_txt = "/day" if expr.per == "day" else ""
    lo, hi = expr.amount
    shown = _g(lo) if lo == hi else f"{_g(lo)}–{_g(hi)}"
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
                expression=f"{shown} {_UNIT_TEXT[unit]}/kg{per_txt} ({expr.weight_basis} body weight)",
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
    result = _g(out_lo) if out_lo == out_hi else f"{_g(out_lo)}–{_g(out_hi)}"
    if expr.per_kg:
        expression = f"{shown} {ut}/kg{per_txt} × {_g(weight or 0)} kg = {result} {ut}{per_txt}"
    else:
        expression = f"{result} {ut}{per_txt}"
    if capped:
        expression += " " + message("expression_capped", lang, cap=_g(cap or 0), unit=ut)
    if expr.interval_h:
        iv = expr.interval_h
        expression += f", q{_g(iv[0])}h" if iv[0] == iv[1] else f", q{_g(iv[0])}–{_g(iv[1])}h"
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
        f"{_g(decision.mg_per_kg)} mg/kg × {_g(decision.weight_kg)} kg = {_g(decision.uncapped_mg or 0)} mg"
    )
    if decision.capped:
        expression += " " + message("expression_capped", lang, cap=_g(decision.cap_mg), unit="mg")
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


# ------------------------------------------------------------------------------ steroids
class SteroidConversion(BaseModel):
    """A corticosteroid dose and its glucocorticoid equivalents."""

    model_config = ConfigDict(frozen=True)

    drug: str
    mg: float
    equivalents_mg: dict[str, float]
    basis: str
    table_mg: dict[str, float] = Field(description="The equivalence table used: equivalent doses in mg")
    sources: list[SourceRef]
    note: str


def _steroid_name(field: str, raw: Any) -> str:
    table = steroid_table().mg
    if not isinstance(raw, str) or raw.strip().lower() not in table:
        raise FindingError(
            field, raw, "not in the corticosteroid equivalence table", f"use one of {list(table)}"
        )
    return raw.strip().lower()


def convert_steroid(mg: Any, from_drug: Any, to_drug: Any) -> float:
    """The dose of ``to_drug`` equivalent to ``mg`` of ``from_drug`` (glucocorticoid effect).

    Uses the table in ``data/drugs.toml``: hydrocortisone 20 = prednisone 5 = prednisolone 5 =
    methylprednisolone 4 = dexamethasone 0.75 mg.

    References
    ----------
    Meikle AW, Tyler FH. Potency and duration of action of glucocorticoids. Am J Med
    1977;63(2):200-207 (table as reproduced by drug references).
    Schneider BJ, et al. ASCO guideline update. J Clin Oncol 2021;39(36):4073-4126.
    doi:10.1200/JCO.21.01440 (hydrocortisone 20 mg ≈ prednisone 5 mg).

    Examples
    --------
    >>> round(convert_steroid(10, "dexamethasone", "methylprednisolone"), 1)
    53.3
    """
    a, b = _steroid_name("from", from_drug), _steroid_name("to", to_drug)
    amount = _number("mg", mg, lo=1e-6, hi=100_000)
    table = steroid_table().mg
    return amount / table[a] * table[b]


def steroid_equivalents(mg: Any, from_drug: Any, *, lang: str = "en") -> SteroidConversion:
    """``mg`` of ``from_drug`` expressed in every corticosteroid of the equivalence table."""
    lang = check_lang(lang)
    a = _steroid_name("drug", from_drug)
    amount = _number("mg", mg, lo=1e-6, hi=100_000)
    t = steroid_table()
    return SteroidConversion(
        drug=a,
        mg=amount,
        equivalents_mg={k: round(convert_steroid(amount, a, k), 3) for k in t.mg},
        basis=t.basis.get(lang),
        table_mg=dict(t.mg),
        sources=[
            SourceRef(key=k, citation=source(k).citation(), locator=t.locator, verification=t.verification)
            for k in t.sources
        ],
        note=t.note,
    )
