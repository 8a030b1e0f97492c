"""Weight-banded dose rules (``data/drugs.toml`` ``[dose_rule.*]``) and their administration
limits: :func:`check_dose_rule` gives the dose for a weight and whether a history of doses allows
it now; :func:`tocilizumab_dose` is the ``tocilizumab-crs`` case. The one dose-limit engine: the
recommendation, the CLI, the recorded-dose check of the alerts and the cohort analyses call it.

Semantics
---------
* **Windows**: "at most N doses in W hours" counts the doses in ``(at - W, at]``; a dose given
  exactly W hours before ``at`` is outside. "At least H hours between doses" allows a dose at
  exactly H hours after the last one.
* The dose is rounded down to 0.1 mg, then capped (see ``_inputs``).

References
----------
Genentech. ACTEMRA (tocilizumab) US prescribing information, CRS dosage (via drugs.com, 2019).
Santomasso BD, et al. Management of immune-related adverse events in patients treated with CAR
T-cell therapy: ASCO guideline. J Clin Oncol 2021;39(35):3978-3992. doi:10.1200/JCO.21.01992
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import FindingError, RuleSpecError
from ..jurisdiction import jurisdictions
from ..messages import error
from ..sources import source
from ._drugs import Band, DoseRule, dose_rule, drug
from ._inputs import _STEP, _floor, _n, format_time, parse_age, parse_time, parse_weight
from ._population import Gate, Licence, PopulationCheck, dose_gate
from ._vocab import check_lang, message

Limits = Mapping[str, tuple[float, float | None, bool]]


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
    times = _history(given, now_, at_, field_prefix)
    eff = _effective_limits(rule, overrides, f"dose rule {rule_id} (overrides from {override_source})")
    age = parse_age(f"{field_prefix}age_years", age_years) if age_years is not None else None
    gate = rule_gate(rule, age, w, licences, lang, field_prefix)
    amount = _amount(rule, w, gate, jurisdiction, eff, lang)
    allowed, next_at, exhausted = _blocks(times, at_, eff)
    checked = _check_limits(rule, eff, times, at_, lang)
    reasons = amount.reasons + checked.ok_texts
    following: datetime | None = None
    if allowed:
        ok2, nxt, _ = _blocks([*times, at_], at_, eff)
        following = None if ok2 else nxt
        if "max_total" in eff and len(times) + 1 >= eff["max_total"][0]:
            reasons.append(
                message("last_allowed", lang, n=len(times) + 1, limit=_n(lang, eff["max_total"][0]))
            )
    last = times[-1] if times else None
    return DoseDecision(
        drug=rule.drug,
        dose_mg=amount.dose_mg,
        withheld=not amount.covered,
        withheld_reason=amount.withheld_reason,
        population=gate.out(),
        jurisdiction=jurisdiction,
        label=amount.label,
        allowed=allowed,
        next_allowed_at=format_time(next_at) if next_at is not None and not exhausted else None,
        reasons=checked.refusals + reasons if checked.refusals else reasons,
        at=format_time(at_),
        weight_kg=w,
        mg_per_kg=amount.band.mg_per_kg if amount.covered else None,
        uncapped_mg=amount.uncapped,
        cap_mg=amount.cap,
        capped=amount.capped,
        route=rule.route,
        infusion_min=rule.infusion_min,
        doses_in_window=checked.in_window,
        window_h=checked.window_h,
        doses_in_last_24h=sum(1 for t in times if at_ - timedelta(hours=24) < t <= at_),
        total_doses=len(times),
        last_dose_at=format_time(last) if last else None,
        hours_since_last=checked.hours_since,
        following_dose_earliest_at=format_time(following) if following else None,
        rule_set=rule.id,
        rule_set_title=rule.title.get(lang),
        scope=rule.scope.get(lang),
        limits=checked.limits,
        sources=_sources(rule, amount.band, eff),
        warnings=_warnings(times, eff, override_source, amount, lang),
    )


def _history(given: Iterable[Any], now: datetime, at: datetime, field_prefix: str) -> list[datetime]:
    """The times of the doses already given, checked (not in the future, not after ``at``, each
    once) and sorted."""
    times: list[datetime] = []
    for i, raw in enumerate(given):
        t = parse_time(f"{field_prefix}given[{i}]", raw)
        if t > now:
            raise FindingError(
                f"{field_prefix}given[{i}]",
                raw if isinstance(raw, str) else format_time(t),
                error("mg_dose_future", now=format_time(now)),
            )
        if t > at:
            raise FindingError(
                f"{field_prefix}given[{i}]",
                raw if isinstance(raw, str) else format_time(t),
                error("mg_given_after", at=format_time(at)),
                error("mg_given_after_hint"),
            )
        if t in times:
            raise FindingError(
                f"{field_prefix}given[{i}]",
                raw if isinstance(raw, str) else format_time(t),
                error("mg_same_time"),
                error("mg_list_once"),
            )
        times.append(t)
    return sorted(times)


@dataclass
class _Amount:
    """The dose of a rule for one weight: the population gate, the band, rounding down, the cap and
    the label it was taken from (or why no amount is given)."""

    band: Band
    covered: bool
    withheld_reason: str | None
    cap: float
    uncapped: float | None
    dose_mg: float | None
    capped: bool
    label: LabelApplied | None
    reasons: list[str]


def _amount(
    rule: DoseRule, w: float, gate: Gate, jurisdiction: str | None, eff: Limits, lang: str
) -> _Amount:
    band = rule.band_for(w)
    label_ref = rule.label.get(jurisdiction) if jurisdiction is not None else None
    label_block: str | None = None
    if band.label_only and label_ref is None:
        key = "label_needed" if jurisdiction is None else "label_missing"
        label_block = message(
            key, lang, weight=_n(lang, w), drug=drug(rule.drug).label(lang), jurisdiction=jurisdiction or ""
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
                mg_per_kg=_n(lang, band.mg_per_kg),
                weight=_n(lang, w),
                raw=_n(lang, uncapped),
                band=band.text.get(lang),
            ),
            message(
                "dose_capped" if capped else "dose_below_cap", lang, cap=_n(lang, cap), raw=_n(lang, uncapped)
            ),
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
    return _Amount(band, covered, withheld_reason, cap, uncapped, dose_mg, capped, applied, reasons)


@dataclass
class _Checked:
    """Each limit checked for a dose at ``at``, in a fixed order: total, interval, window."""

    limits: list[LimitCheck]
    ok_texts: list[str]
    refusals: list[str]
    hours_since: float | None
    in_window: int
    window_h: float | None


def _check_limits(
    rule: DoseRule, eff: Limits, times: Sequence[datetime], at: datetime, lang: str
) -> _Checked:
    out = _Checked([], [], [], None, 0, None)

    def record(kind: str, observed: float | None, ok: bool, text: str, window_h: float | None = None) -> None:
        value, _, local = eff[kind]
        srcs, ver = _limit_sources(rule, kind)
        out.limits.append(
            LimitCheck(
                kind=kind,
                limit=value,
                window_h=window_h,
                observed=observed,
                ok=ok,
                text=text,
                sources=srcs,
                verification=ver,
                local_override=local,
            )
        )
        (out.ok_texts if ok else out.refusals).append(text)

    if "max_total" in eff:
        value = eff["max_total"][0]
        ok = len(times) < value
        text = message(
            "limit_total_ok" if ok else "limit_total_hit", lang, n=len(times), limit=_n(lang, value)
        )
        record("max_total", len(times), ok, text)
    last = times[-1] if times else None
    out.hours_since = round((at - last).total_seconds() / 3600, 2) if last else None
    if "min_interval_h" in eff:
        value = eff["min_interval_h"][0]
        ok = out.hours_since is None or out.hours_since >= value
        if last is None:
            text = message("limit_interval_none", lang, limit=_n(lang, value))
        else:
            key = "limit_interval_ok" if ok else "limit_interval_hit"
            hours = _n(lang, out.hours_since or 0.0)
            text = message(key, lang, hours=hours, limit=_n(lang, value), last=format_time(last))
        record("min_interval_h", out.hours_since, ok, text)
    if "max_in_window" in eff:
        value, window_h, _ = eff["max_in_window"]
        assert window_h is not None
        out.window_h = window_h
        out.in_window = sum(1 for t in times if at - timedelta(hours=window_h) < t <= at)
        ok = out.in_window < value
        key = "limit_window_ok" if ok else "limit_window_hit"
        text = message(key, lang, n=out.in_window, limit=_n(lang, value), window=_n(lang, window_h))
        record("max_in_window", out.in_window, ok, text, window_h)
    return out


def _warnings(
    times: Sequence[datetime], eff: Limits, override_source: str | None, amount: _Amount, lang: str
) -> list[str]:
    """Local overrides in force, intervals already broken in the history, why no amount is given,
    an unverified label."""
    warnings: list[str] = []
    for kind, (value, _, local) in eff.items():
        if local:
            warnings.append(
                message("local_override", lang, kind=kind, value=_n(lang, value), origin=override_source)
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
                    hours=_n(lang, round(gap, 2)),
                    limit=_n(lang, eff["min_interval_h"][0]),
                )
            )
    if amount.withheld_reason:
        warnings.append(amount.withheld_reason)
    applied = amount.label
    if applied is not None and applied.verification == "M":
        warnings.append(message("label_unverified", lang, document=applied.document, source=applied.source))
    return warnings


def _sources(rule: DoseRule, band: Band, eff: Limits) -> list[SourceRef]:
    """The sources of the band and of every limit in force, with their locators."""
    refs: list[SourceRef] = []
    for keys, loc, ver in [(band.sources, band.locator, band.verification)] + [
        (lim.sources, lim.locator, lim.verification) for lim in rule.limit if lim.kind in eff
    ]:
        for key in keys:
            refs.append(SourceRef(key=key, citation=source(key).citation(), locator=loc, verification=ver))
    return refs


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
