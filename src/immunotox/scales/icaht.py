"""ICAHT — immune effector cell-associated hematotoxicity (EHA/EBMT 2023), neutropenia grading.

Tables live in ``data/scales/icaht.toml``; this module holds the algorithm, which follows the
author group's implementation (Liang, ``automatedicahtgrading``) step by step:

* **Timeline.** Every ANC point gets a day after infusion (day 0 = infusion day); dates are
  converted with ``infusion_date``. Several values on one day: the lowest counts.
* **Early ICAHT (day 0 to +30)**, cut earlier by ``last_follow_up_day`` or ``censor_day``.
  Missing days in a gap of at most 7 days are interpolated linearly between the measured days;
  up to 7 days before the first or after the last value of the window take that value. Longer
  gaps are *unknown*: the grade is computed twice — unknown days recovered (lower bound) and
  unknown days at ANC 0 (upper bound) — which is exact because a lower ANC never lowers the grade.
  For each threshold (ANC <= 500 and <= 100/uL) the longest episode at or below it counts;
  episodes separated by at most 2 days above the threshold (non-stable recovery) are joined and
  the days between count. Grade = the worse of the two duration bands, and grade 4 when a
  <= 500 episode starting on day 0-3 lasts to the end of the window (never recovered).
* **Late ICAHT (day +31 to the earliest of +100, censoring, last follow-up)**: *not applicable*
  (no grade, not grade 0) when the window never opens: death or end of follow-up
  (``last_follow_up_day``/``_date``), progression or next therapy (``censor_day``/``_date``) on or
  before day +30; the combined grade then comes from the early window alone. Otherwise the measured
  values only; graded by the nadir when the two lowest values are both <= 1500/uL (non-transient
  neutropenia). A single late value cannot show non-transient neutropenia: the grade is then a
  lower bound.

References
----------
Rejeski K, Subklewe M, Aljurf M, et al. Immune effector cell-associated hematotoxicity: EHA/EBMT
consensus grading and best practice recommendations. Blood 2023;142(10):865-877.
doi:10.1182/blood.2023020578

Liang EC. Automated approach to grade early and late ICAHT by EHA/EBMT criteria. R Markdown,
github.com/emilyliangmd/automatedicahtgrading (commit c3e0109, 2024).
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import FindingError
from ..findings import pick
from ..messages import Catalogue, Msg, error
from ..messages import name as as_given
from ..result import RuleHit
from ._base import Domain, Scale, known, not_applicable, unknown
from .icaht_spec import ClosedBy, IcahtTable, table

_T: IcahtTable = table()
T = Catalogue("scales/icaht")
_RECOVERED = float("inf")  # an unknown day assumed recovered (above every threshold)
_WORST = 0.0  # an unknown day assumed at ANC 0

_INPUTS = (
    "anc_series",
    "infusion_date",
    "last_follow_up_day",
    "last_follow_up_date",
    "censor_day",
    "censor_date",
)
_CLOSED_BY = tuple(
    ClosedBy.model_fields
)  # the inputs that end follow-up ([closed_by] says what they stand for)


# ------------------------------------------------------------------------------ timeline
@dataclass
class Timeline:
    """ANC points as (day, cells/uL), with the follow-up end and the censoring day."""

    points: list[tuple[int, float]]
    last_follow_up: int | None
    censor: int | None
    reasons: list[str | Msg] = field(default_factory=list)
    given: dict[str, str] = field(default_factory=dict)  # "last_follow_up"/"censor" -> input field used
    has_series: bool = True

    def end(self, nominal_last_day: int) -> int:
        """The last day of a window that nominally ends on ``nominal_last_day``."""
        return min(d for d in (nominal_last_day, self.last_follow_up, self.censor) if d is not None)

    def daily_minimum(self, first: int, last: int) -> dict[int, float]:
        """The lowest value of each day in [first, last]."""
        out: dict[int, float] = {}
        for day, value in self.points:
            if first <= day <= last:
                out[day] = min(value, out.get(day, value))
        return dict(sorted(out.items()))


def _to_day(f: Mapping[str, Any], when: datetime.date, field_name: str) -> int:
    infusion = f.get("infusion_date")
    if infusion is None:
        raise FindingError(
            field_name, when.isoformat(), error("date_needs_infusion"), error("date_needs_infusion_hint")
        )
    day: int = (when - infusion).days
    lo, hi = pick("anc_series")["anc_series"].fields["day"]
    if not lo <= day <= hi:
        raise FindingError(field_name, when.isoformat(), error("day_outside", day=day, lo=lo, hi=hi))
    return day


def _day_or_date(f: Mapping[str, Any], key: str) -> int | None:
    day = f.get(f"{key}_day")
    date = f.get(f"{key}_date")
    if date is None:
        return int(day) if day is not None else None
    from_date = _to_day(f, date, f"{key}_date")
    if day is not None and day != from_date:
        problem = error("day_contradicts", key=f"{key}_date", date=date.isoformat(), day=from_date)
        raise FindingError(f"{key}_day", day, problem)
    return from_date


def timeline(f: Mapping[str, Any]) -> Timeline | None:
    """The checked timeline of findings ``f``.

    ``None`` when neither an ANC series nor an end of follow-up is given; with an end of follow-up
    but no series, ``points`` is empty and ``has_series`` false.

    Raises
    ------
    FindingError
        A date without ``infusion_date``, contradictory day and date, or a value after the last
        day of follow-up.
    """
    lfu = _day_or_date(f, "last_follow_up")
    censor = _day_or_date(f, "censor")
    series = f.get("anc_series")
    if series is None and lfu is None and censor is None:
        return None
    points: list[tuple[int, float]] = []
    for i, p in enumerate(series or ()):
        day = p["day"] if "day" in p else _to_day(f, p["date"], f"anc_series[{i}].date")
        if lfu is not None and day > lfu:
            raise FindingError(
                f"anc_series[{i}]",
                {"day": day, "value": p["value"]},
                error("after_follow_up", day=lfu),
                error("after_follow_up_hint"),
            )
        points.append((day, p["value"]))
    given = {k: f"{k}_date" if f.get(f"{k}_date") is not None else f"{k}_day" for k in _CLOSED_BY}
    tl = Timeline(points, lfu, censor, given=given, has_series=series is not None)
    before = sum(1 for d, _ in points if d < _T.early.first_day)
    if before:
        tl.reasons.append(T.m("before_day_0", count=before))
    if censor is not None:
        after = sum(1 for d, _ in points if d > censor)
        if after:
            tl.reasons.append(T.m("after_censoring", count=after, day=censor))
    return tl


# ------------------------------------------------------------------------------ early ICAHT
def _span(days: Sequence[int]) -> Msg:
    """« day 3 » or « days 3–9 » (jour 3, jours 3–9)."""
    return T.m("day", day=days[0]) if days[0] == days[-1] else T.m("window", first=days[0], last=days[-1])


def fill_gaps(
    daily: Mapping[int, float], first: int, last: int, max_gap: int
) -> tuple[list[float | None], list[Msg]]:
    """One value per day of [first, last]: measured, filled, or ``None`` (unknown).

    A gap of at most ``max_gap`` missing days between two measured days is interpolated linearly;
    at most ``max_gap`` days before the first or after the last measured day take that value
    (Liang: ``zoo::na.approx(maxgap = 7, rule = 2)``). Longer gaps stay unknown. The notes say
    what was done to each gap.
    """
    values: list[float | None] = [daily.get(d) for d in range(first, last + 1)]
    notes: list[Msg] = []
    measured = [d for d in range(first, last + 1) if d in daily]
    if not measured:
        return values, notes
    bounds = [first - 1, *measured, last + 1]
    for a, b in itertools.pairwise(bounds):
        gap = list(range(a + 1, b))
        if not gap:
            continue
        if len(gap) > max_gap:
            notes.append(T.m("gap_unknown", span=_span(gap), days=len(gap), max=max_gap))
            continue
        if a < first:  # before the first measured day
            for d in gap:
                values[d - first] = daily[b]
            notes.append(T.m("carried_back", span=_span(gap), day=b, max=max_gap))
        elif b > last:  # after the last measured day
            for d in gap:
                values[d - first] = daily[a]
            notes.append(T.m("carried_forward", span=_span(gap), day=a, max=max_gap))
        else:
            va, vb = daily[a], daily[b]
            for d in gap:
                values[d - first] = va + (vb - va) * (d - a) / (b - a)
            notes.append(T.m("interpolated", span=_span(gap), a=a, b=b))
    return values, notes


@dataclass(frozen=True)
class Episode:
    """Days ``start``..``end`` (inclusive) at or below a threshold, non-stable recoveries joined."""

    start: int
    end: int

    @property
    def days(self) -> int:
        return self.end - self.start + 1


def episodes(values: Sequence[float], first_day: int, max_per_ul: float, max_join: int) -> list[Episode]:
    """Episodes with ANC <= ``max_per_ul``; runs separated by <= ``max_join`` days are joined."""
    out: list[Episode] = []
    for i, v in enumerate(values):
        if v > max_per_ul:
            continue
        day = first_day + i
        if out and day - out[-1].end - 1 <= max_join:
            out[-1] = Episode(out[-1].start, day)  # consecutive, or after a non-stable recovery
        else:
            out.append(Episode(day, day))
    return out


@dataclass
class EarlyAssessment:
    """The early grade for one complete daily series, with the criteria that fired."""

    grade: int
    hits: list[RuleHit]
    reasons: list[Msg]


def _hit(rule: str, grade: int, msg: Msg) -> RuleHit:
    return RuleHit.of(rule, "early", grade, msg)


def assess_early(values: Sequence[float], first_day: int) -> EarlyAssessment:
    """Grade early ICAHT from one value per day starting on ``first_day`` (no unknown days)."""
    t = _T.early
    grade = 0
    hits: list[RuleHit] = []
    reasons: list[Msg] = []
    for i, thr in enumerate(t.thresholds):
        label = T(f"early.thresholds.{i}")
        eps = episodes(values, first_day, thr.max_per_ul, t.max_joined_recovery_days)
        if thr.key == t.never_recovered_threshold_key:
            last_day = first_day + len(values) - 1
            last = eps[-1] if eps else None
            if last is not None and last.end == last_day and last.start <= t.never_recovered_max_start_day:
                g = t.never_recovered_grade
                msg = T.m(
                    "never_recovered",
                    threshold=label,
                    start=t.never_recovered_max_start_day,
                    span=_span([last.start, last.end]),
                )
                hits.append(_hit("ehaebmt2023:icaht/early/never_recovered", g, msg))
                grade = max(grade, g)
        if not eps:
            reasons.append(T.m("early_none", threshold=label))
            continue
        top = max(eps, key=lambda e: (e.days, -e.start))
        b = thr.band(top.days)
        detail = T.m("episode", threshold=label, days=top.days, span=_span([top.start, top.end]))
        if b.grade > 0:
            rule = f"ehaebmt2023:icaht/early/{thr.key}/{b.min_days}-{b.max_days}d"
            hits.append(_hit(rule, b.grade, detail))
            grade = max(grade, b.grade)
        else:
            reasons.append(T.m("early_note", note=detail))
    return EarlyAssessment(grade, hits, reasons)


def early_domain(tl: Timeline | None) -> Domain:
    """The early-ICAHT domain (values 0-4)."""
    t = _T.early
    name = "early"
    if tl is None or not tl.has_series:
        return unknown(name, range(5), "anc_series")
    first, last = t.first_day, tl.end(t.last_day)
    daily = tl.daily_minimum(first, last)
    window = T.m("window", first=first, last=last)
    if last < t.last_day:
        cause = "ends_last_follow_up" if last == tl.last_follow_up else "ends_censoring"
        window = T.m("window_ends", window=window, cause=T.m(cause))
    if not daily:
        return unknown(name, range(5), "anc_series", reason=T.m("early_no_value", window=window))
    values, notes = fill_gaps(daily, first, last, t.max_filled_gap_days)
    best = assess_early([_RECOVERED if v is None else v for v in values], first)
    worst = assess_early([_WORST if v is None else v for v in values], first)
    reasons: list[str | Msg] = [
        T.m("early_window", window=window, count=len(daily)),
        *[T.m("early_note", note=n) for n in notes],
        *best.reasons,
    ]
    dom = Domain(name, tuple(range(best.grade, worst.grade + 1)), best.hits, [], reasons)
    if best.grade != worst.grade:
        dom.missing = ["anc_series"]
        dom.reasons.append(T.m("early_bounds", lo=best.grade, hi=worst.grade))
    elif any(v is None for v in values):
        dom.reasons.append(T.m("early_unknown_moot"))
    return dom


# ------------------------------------------------------------------------------ late ICAHT
def _joined(items: Sequence[Msg], key: str) -> Msg:
    """``a; b`` (« a ; b ») from one or more messages (``key`` names the joining text)."""
    out = items[0]
    for item in items[1:]:
        out = T.m(key, a=out, b=item)
    return out


def _late_closed(tl: Timeline, first: int) -> Msg:
    """Why the late window never opened: each input that ends follow-up before ``first``."""
    causes = [
        T.m("closed_cause", key=as_given(tl.given[k]), day=day, cause=T(f"closed_by.{k}"))
        for k, day in (("last_follow_up", tl.last_follow_up), ("censor", tl.censor))
        if day is not None and day < first
    ]
    return T.m("late_not_applicable", first=first, causes=_joined(causes, "causes"), last=first - 1)


def late_domain(tl: Timeline | None) -> Domain:
    """The late-ICAHT domain (values 0-4)."""
    t = _T.late
    name = "late"
    if tl is None:
        return unknown(name, range(5), "anc_series")
    first, last = t.first_day, tl.end(t.last_day)
    if last < first:
        return not_applicable(name, _late_closed(tl, first))
    if not tl.has_series:
        return unknown(name, range(5), "anc_series")
    daily = tl.daily_minimum(first, last)
    window = T.m("window", first=first, last=last)
    if not daily:
        return unknown(name, range(5), "anc_series", reason=T.m("late_no_value", window=window))
    lowest = sorted(daily.items(), key=lambda kv: (kv[1], kv[0]))
    (d1, v1) = lowest[0]
    cap = t.neutropenia_max_per_ul
    band = t.band(v1)
    nadir = T.m("nadir", value=v1, day=d1)
    if band is None:
        return known(name, 0, reason=T.m("late_none", window=window, nadir=nadir, cap=cap))
    band_text = T(f"late.bands.{t.bands.index(band)}")
    if len(lowest) < t.min_values:
        return unknown(
            name,
            (0, *range(band.grade, 5)),
            "anc_series",
            reason=T.m(
                "late_single",
                window=window,
                nadir=nadir,
                band=band_text,
                grade=band.grade,
                min_values=t.min_values,
            ),
        )
    d2, v2 = lowest[1]
    if v2 > cap:
        return known(
            name,
            0,
            reason=T.m("late_transient", window=window, nadir=nadir, value=v2, day=d2, cap=cap),
        )
    msg = T.m("late_hit", band=band_text, nadir=nadir, value=v2, day=d2, window=window)
    hit = RuleHit.of(f"ehaebmt2023:icaht/late/anc_le_{band.max_per_ul:g}", "late", band.grade, msg)
    return known(name, band.grade, hit)


# ------------------------------------------------------------------------------ scales
def _notes(*groups: str) -> tuple[Msg, ...]:
    """The interpretation notes of ``groups`` ([[notes.<group>]] of data/scales/icaht.toml)."""
    return tuple(T(f"notes.{g}.{i}") for g in groups for i in range(len(getattr(_T.notes, g))))


class _IcahtBase(Scale):
    version = "2023"
    family = "hematotoxicity"
    source_keys = ("rejeski2023", "liang2024icaht")
    grades = (0, 1, 2, 3, 4)
    findings = pick(*_INPUTS)
    texts = T

    def check(self, f: Mapping[str, Any]) -> None:
        timeline(f)

    def title_msg(self) -> Msg:
        """The title, in French and English ([titles] of data/scales/icaht.toml)."""
        return T(f"titles.{self.id.split(':')[-1]}")

    def domain_msg(self, name: str) -> Msg:
        return T(f"domains.{name}")

    def summary(self, v: Mapping[str, Any], grade: int) -> Msg:
        parts = [T.m("part", window=T.m(k), grade=v[k]) for k in ("early", "late") if k in v]
        if self.id == Icaht.id and "late" not in v:
            parts.append(T.m("late_not_applicable_part"))
        if grade == 0:
            return T.m("grade0", parts=_joined(parts, "parts"))
        return T.m("grade", grade=grade, parts=_joined(parts, "parts"))

    def deciding(self, v: Mapping[str, Any], grade: int) -> list[str]:
        return [k for k in ("early", "late") if k in v and v[k] == grade and grade > 0]

    def combine(self, v: Mapping[str, Any]) -> int:
        return int(max(v.values()))


class IcahtEarly(_IcahtBase):
    id = "ehaebmt2023:icaht-early"
    title = _T.titles["icaht-early"].text
    notes = _notes("common", "early")

    def domains(self, f: Mapping[str, Any]) -> list[Domain]:
        tl = timeline(f)
        d = early_domain(tl)
        if tl is not None:
            d.reasons[:0] = tl.reasons
        return [d]


class IcahtLate(_IcahtBase):
    id = "ehaebmt2023:icaht-late"
    title = _T.titles["icaht-late"].text
    notes = _notes("common", "late")

    def domains(self, f: Mapping[str, Any]) -> list[Domain]:
        tl = timeline(f)
        d = late_domain(tl)
        if tl is not None:
            d.reasons[:0] = tl.reasons
        return [d]


class Icaht(_IcahtBase):
    id = "ehaebmt2023:icaht"
    title = _T.titles["icaht"].text
    notes = _notes("common", "combined", "early", "late")

    def domains(self, f: Mapping[str, Any]) -> list[Domain]:
        tl = timeline(f)
        early, late = early_domain(tl), late_domain(tl)
        if tl is not None:
            early.reasons[:0] = tl.reasons
        return [early, late]


def scales() -> list[Scale]:
    """The scales this module provides (read by the catalogue)."""
    return [Icaht(), IcahtEarly(), IcahtLate()]
