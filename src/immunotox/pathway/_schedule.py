"""Dates: the patient's steps, visits and label restrictions computed from the infusion date.

Day 0 is the infusion date. A period of N days runs up to and including day N: with infusion on
2026-12-01, day 14 is 2026-12-15 and a 14-day proximity period ends on 2026-12-15. Calendar
months and years keep the day of month, clamped to the month's last day (31 Jan + 1 month =
28/29 Feb).

Dates not given by the caller are *estimated* from the planning offsets of
``data/pathway/phases.toml`` (institutional defaults) and shown as such.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from ..messages import error
from ._data import Lang, data
from ._errors import PathwayError
from ._label import LabelChoice, resolve_label


def add_months(d: date, months: int) -> date:
    """``d`` plus ``months`` calendar months, the day clamped to the month's end.

    >>> add_months(date(2027, 1, 31), 1)
    datetime.date(2027, 2, 28)
    """
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def add_years(d: date, years: int) -> date:
    """``d`` plus ``years`` calendar years (29 February becomes 28 February)."""
    return add_months(d, 12 * years)


@dataclass(frozen=True)
class Step:
    """A phase of the plan with its dates (``end`` None = open-ended)."""

    phase: str
    start: date
    end: date | None
    estimated: bool

    def contains(self, d: date) -> bool:
        return self.start <= d and (self.end is None or d <= self.end)


@dataclass(frozen=True)
class ScheduledVisit:
    id: str
    on: date
    day: int
    title: str
    checks: str
    basis: str


@dataclass(frozen=True)
class Restriction:
    """A label period: active from day 0 up to and including ``until``.

    ``days`` and ``until`` are None when no verified period applies (no jurisdiction or product
    configured, or a period not verified from the product information); ``text`` then says
    that the team sets it.
    """

    id: str
    title: str
    text: str
    days: int | None
    until: date | None
    verification: str
    source: str
    note: str


@dataclass(frozen=True)
class Plan:
    """A patient's planned pathway from a given infusion date."""

    infusion_date: date
    label: LabelChoice
    indication: str
    steps: tuple[Step, ...]
    skipped: tuple[str, ...]

    def step(self, phase: str) -> Step | None:
        return next((s for s in self.steps if s.phase == phase), None)

    def phase_on(self, d: date) -> str | None:
        """The planned phase on ``d`` (the first in journey order whose dates hold ``d``), or None
        before the planned start."""
        return next((s.phase for s in self.steps if s.contains(d)), None)

    def day(self, d: date) -> int:
        """Days from infusion (day 0); negative before it."""
        return (d - self.infusion_date).days

    def visits(self, lang: Lang = "en") -> list[ScheduledVisit]:
        out: list[ScheduledVisit] = []
        d0 = self.infusion_date
        for v in data().visits:
            whens: list[tuple[date, str]] = []
            if v.day is not None:
                whens.append((d0 + timedelta(days=v.day), ""))
            if v.months is not None:
                whens.append((add_months(d0, v.months), ""))
            whens += [(add_years(d0, n), str(n)) for n in v.years]
            for on, n in whens:
                out.append(
                    ScheduledVisit(
                        id=f"{v.id}-{n}" if n else v.id,
                        on=on,
                        day=self.day(on),
                        title=v.title.get(lang).replace("{n}", n),
                        checks=v.checks.get(lang),
                        basis=v.basis,
                    )
                )
        return sorted(out, key=lambda x: x.on)

    def restrictions(self, lang: Lang = "en") -> list[Restriction]:
        titles = data().period_titles
        return [
            Restriction(
                id=name,
                title=titles[name].get(lang),
                text=self.label.phrase(name, lang),
                days=p.days,
                until=None if p.days is None else self.infusion_date + timedelta(days=p.days),
                verification=p.verification,
                source=p.source,
                note=p.note,
            )
            for name, p in self.label.periods().items()
        ]


def check_indication(indication: object) -> str:
    known = data().indications
    if not isinstance(indication, str) or indication not in known:
        raise PathwayError(
            "indication",
            indication,
            error("pathway.unknown_indication"),
            error("pathway.one_of", values=", ".join(known)),
        )
    return indication


def _date(field: str, value: object) -> date:
    if not isinstance(value, date):
        raise PathwayError(field, value, error("pathway.expected_date"))
    return value


def plan(
    infusion_date: date,
    *,
    jurisdiction: object = None,
    product: str | None = None,
    label: str | None = None,
    indication: str = "oncology",
    screening_date: date | None = None,
    leukapheresis_date: date | None = None,
    lymphodepletion_date: date | None = None,
    discharge_date: date | None = None,
) -> Plan:
    """Plan the pathway around ``infusion_date`` (day 0).

    Parameters
    ----------
    infusion_date
        Day 0.
    jurisdiction
        Whose product information applies (``EU``, ``US``, an ISO country such as ``FR``, or a
        :class:`~immunotox.jurisdiction.Jurisdiction`); None = not configured: no label period.
    product
        The CAR-T product (id, INN or brand); None: no label period (they differ by product).
    label
        A label version id of that jurisdiction (``data/pathway/labels.toml``); default: the
        jurisdiction's current version.
    indication
        ``oncology`` or ``autoimmune`` (``data/pathway/indications.toml``).
    screening_date, leukapheresis_date, lymphodepletion_date, discharge_date
        Actual dates when known; the others are estimated from the planning offsets.

    Raises
    ------
    PathwayError
        Unknown jurisdiction, product, label or indication; dates out of order (screening after leukapheresis,
        lymphodepletion on or after the infusion, discharge before it).

    Examples
    --------
    >>> p = plan(date(2026, 12, 1), jurisdiction="US", product="axi-cel")
    >>> p.step("near_centre").end, [v.on for v in p.visits() if v.id in ("d14", "d28")]
    (datetime.date(2026, 12, 15), [datetime.date(2026, 12, 15), datetime.date(2026, 12, 29)])
    >>> [(r.id, r.until) for r in plan(date(2026, 12, 1)).restrictions()][2]   # no jurisdiction
    ('proximity', None)
    """
    d = data()
    d0 = _date("infusion_date", infusion_date)
    lab = resolve_label(jurisdiction, product, label)
    check_indication(indication)
    given = {
        "screening_date": screening_date,
        "leukapheresis_date": leukapheresis_date,
        "lymphodepletion_date": lymphodepletion_date,
        "discharge_date": discharge_date,
    }
    for k, v in given.items():
        if v is not None:
            _date(k, v)
    _check_order(d0, given)
    p = d.phases

    def offset(phase: str) -> date:
        start = p[phase].plan_start
        assert start is not None
        return d0 + timedelta(days=start)

    scr = screening_date or offset("screening")
    leuk = leukapheresis_date or max(offset("leukapheresis"), scr + timedelta(days=1))
    ld = lymphodepletion_date or max(offset("lymphodepletion"), leuk + timedelta(days=2))
    if ld >= d0:
        field = next(k for k in ("leukapheresis_date", "screening_date") if given[k] is not None)
        raise PathwayError(
            field,
            str(given[field]),
            error("pathway.too_close", d0=d0.isoformat()),
            error("pathway.too_close_hint"),
        )
    inpatient_end = p["inpatient_observation"].plan_end
    assert inpatient_end is not None
    periods = lab.periods()
    daily = periods["daily_monitoring"].days
    planned_discharge = d0 + timedelta(days=max(inpatient_end, daily or 0))
    discharge = discharge_date or planned_discharge
    near_end = p["near_centre"].plan_end
    assert near_end is not None
    proximity_days = periods["proximity"].days
    proximity_estimated = proximity_days is None
    proximity_end = d0 + timedelta(days=near_end if proximity_days is None else proximity_days)
    fu_end_months = p["follow_up"].plan_end_months
    ltfu_start_months = p["long_term_follow_up"].plan_start_months
    ltfu_end_years = p["long_term_follow_up"].plan_end_years
    assert fu_end_months is not None and ltfu_start_months is not None and ltfu_end_years is not None
    ltfu_start = add_months(d0, ltfu_start_months)
    ltfu_end = add_years(d0, ltfu_end_years)
    one = timedelta(days=1)
    steps = [
        Step("screening", scr, leuk - one if leuk > scr else scr, screening_date is None),
        Step("leukapheresis", leuk, leuk, leukapheresis_date is None),
        Step(
            "manufacturing", leuk + one, ld - one, leukapheresis_date is None or lymphodepletion_date is None
        ),
        Step("lymphodepletion", ld, d0 - one, lymphodepletion_date is None),
        Step("infusion", d0, d0, False),
        Step("inpatient_observation", d0, discharge, discharge_date is None),
    ]
    skipped: list[str] = []
    if discharge < proximity_end:
        steps.append(
            Step("near_centre", discharge + one, proximity_end, discharge_date is None or proximity_estimated)
        )
    else:
        skipped.append("near_centre")
    fu_start = max(discharge, proximity_end) + one
    steps.append(Step("follow_up", fu_start, add_months(d0, fu_end_months) - one, proximity_estimated))
    steps.append(Step("long_term_follow_up", ltfu_start, ltfu_end, False))
    steps.append(Step("completed", ltfu_end + one, None, False))
    return Plan(d0, lab, indication, tuple(steps), tuple(skipped))


def _check_order(d0: date, given: dict[str, date | None]) -> None:
    scr, leuk = given["screening_date"], given["leukapheresis_date"]
    ld, dis = given["lymphodepletion_date"], given["discharge_date"]
    if scr is not None and scr >= d0:
        raise PathwayError(
            "screening_date", scr.isoformat(), error("pathway.not_before_infusion", d0=d0.isoformat())
        )
    if leuk is not None and leuk >= d0:
        raise PathwayError(
            "leukapheresis_date", leuk.isoformat(), error("pathway.not_before_infusion", d0=d0.isoformat())
        )
    if scr is not None and leuk is not None and leuk < scr:
        raise PathwayError(
            "leukapheresis_date", leuk.isoformat(), error("pathway.before_screening", date=scr.isoformat())
        )
    if ld is not None:
        if ld >= d0:
            raise PathwayError(
                "lymphodepletion_date",
                ld.isoformat(),
                error("pathway.not_before_infusion", d0=d0.isoformat()),
            )
        for name, prev in (("leukapheresis", leuk), ("screening", scr)):
            if prev is not None and ld <= prev:
                raise PathwayError(
                    "lymphodepletion_date",
                    ld.isoformat(),
                    error("pathway.not_after", name=name, date=prev.isoformat()),
                )
    if dis is not None and dis < d0:
        raise PathwayError(
            "discharge_date", dis.isoformat(), error("pathway.before_infusion", d0=d0.isoformat())
        )
