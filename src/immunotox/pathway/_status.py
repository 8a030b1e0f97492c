"""Where a patient stands: current phase, steps with dates, upcoming visits, restrictions and the
monitoring in force — the view rendered by ``immunotox pathway`` and, later, the web UI."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel

from ..messages import error
from ..sources import source
from ._data import data
from ._errors import PathwayError
from ._info import check_audience, check_lang, info_for_label
from ._machine import check_phase, check_transition
from ._monitoring import check_grade, monitoring
from ._schedule import plan


class StepView(BaseModel):
    phase: str
    title: str
    start: date
    end: date | None
    start_day: int
    end_day: int | None
    estimated: bool
    status: Literal["done", "current", "upcoming"]
    note: str


class VisitView(BaseModel):
    id: str
    date: date
    day: int
    title: str
    checks: str
    status: Literal["past", "today", "upcoming"]
    basis: str


class RestrictionView(BaseModel):
    """A label period; ``days``/``until``/``active`` are None when no verified period applies."""

    id: str
    title: str
    text: str
    days: int | None
    until: date | None
    active: bool | None
    verification: str
    source: str
    note: str


class MonitoringItemView(BaseModel):
    text: str
    basis: str
    source: str | None


class MonitoringView(BaseModel):
    phase: str
    crs_grade: int
    icans_grade: int
    level: int
    setting: str
    setting_title: str
    vitals_every_h: int | float | None
    ice_every_h: int | float | None
    items: list[MonitoringItemView]
    drivers: list[str]


class InfoView(BaseModel):
    audience: str
    lang: str
    title: str
    text: str
    items: list[str]
    call_title: str
    call: list[str]
    before_calling: str
    emergency: str


class PathwayStatus(BaseModel):
    """A patient's position on the pathway on ``today``, in one language."""

    pathway: str
    version: str
    lang: str
    infusion_date: date
    today: date
    day: int
    label: dict[str, Any]
    indication: dict[str, str]
    current_phase: str
    current_title: str
    transition: dict[str, str] | None
    steps: list[StepView]
    visits: list[VisitView]
    restrictions: list[RestrictionView]
    monitoring: MonitoringView
    info: InfoView | None
    notes: list[str]
    sources: list[str]

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


_NOTES: dict[str, dict[str, str]] = {
    "en": {
        "before_start": "{today} is before the estimated start of screening; shown as screening",
        "planned": "Current phase {phase!r} taken from the planned dates (no phase given)",
        "estimated": "Dates marked estimated come from the planning offsets of data/pathway/phases.toml",
        "skipped": "Phase {phase!r} skipped: discharge falls after the label's proximity period",
        "unverified": "UNVERIFIED [M]: {text} — no number shown: the team sets it from the label",
        "near_estimated": "End of the near-centre phase: a planning estimate (day {day}), not a label period",
    },
    "fr": {
        "before_start": "{today} précède le début estimé du bilan ; affiché comme bilan d'éligibilité",
        "planned": "Phase actuelle {phase!r} déduite des dates prévues (aucune phase indiquée)",
        "estimated": "Les dates estimées viennent des délais de planification de data/pathway/phases.toml",
        "skipped": "Phase {phase!r} sautée : la sortie a lieu après la période de proximité du RCP",
        "unverified": "NON VÉRIFIÉ [M] : {text} — aucune durée affichée : l'équipe la fixe selon le RCP",
        "near_estimated": "Fin du séjour près du centre : estimation (J{day}), pas une durée du RCP",
    },
}


def _check_today(phase: str, today: date, d0: date, field: str, *, leaving: bool = False) -> None:
    """Refuse a phase that cannot be current on ``today`` (e.g. follow-up before the infusion).

    A phase being left today (``leaving``) only needs to have started.
    """
    p = data().phases[phase]
    day = (today - d0).days
    if p.earliest_day is not None and day < p.earliest_day:
        raise PathwayError(
            field,
            phase,
            error(
                "pathway.not_current_early",
                today=today.isoformat(),
                day=day,
                earliest=p.earliest_day,
                d0=d0.isoformat(),
            ),
            error("pathway.not_current_early_hint"),
        )
    if not leaving and p.latest_day is not None and day > p.latest_day:
        raise PathwayError(
            field,
            phase,
            error(
                "pathway.not_current_late",
                today=today.isoformat(),
                day=day,
                latest=p.latest_day,
                d0=d0.isoformat(),
            ),
            error("pathway.not_current_late_hint"),
        )


def status(
    infusion_date: date,
    *,
    today: date,
    phase: str | None = None,
    to: str | None = None,
    crs_grade: int = 0,
    icans_grade: int = 0,
    jurisdiction: object = None,
    product: str | None = None,
    label: str | None = None,
    indication: str = "oncology",
    lang: str = "en",
    info_audience: str | None = None,
    screening_date: date | None = None,
    leukapheresis_date: date | None = None,
    lymphodepletion_date: date | None = None,
    discharge_date: date | None = None,
) -> PathwayStatus:
    """The patient's steps, upcoming visits and monitoring on ``today``.

    Parameters
    ----------
    infusion_date
        Day 0 (planned or actual).
    today
        The date of the view (no hidden clock: the caller passes it).
    phase
        The current phase when known; otherwise the planned phase on ``today``.
    to
        A phase to move to now: the transition is checked (illegal transitions are refused).
    crs_grade, icans_grade
        Current ASTCT grades (0-4), which escalate the monitoring.
    jurisdiction, product
        Whose product information applies (a setting: ``EU``, ``US`` or an ISO country; never
        inferred from ``lang``) and the CAR-T product; without both, no label period is given
        and the status says which is missing.
    label, indication, lang, info_audience
        Label version of that jurisdiction (default: its current one), ``oncology`` |
        ``autoimmune``, ``fr`` | ``en``, and ``patient`` | ``clinician`` to include the phase
        information text.
    screening_date, leukapheresis_date, lymphodepletion_date, discharge_date
        Actual dates when known (others are estimated and flagged).

    Raises
    ------
    PathwayError
        Unknown phase, jurisdiction, product, label, indication, language or audience;
        impossible dates (today before the screening date, a post-infusion phase before day 0,
        a pre-infusion phase after it, dates out of order); a grade outside 0-4 or given before infusion.
    IllegalTransitionError
        ``to`` may not follow the current phase.

    Examples
    --------
    >>> s = status(date(2026, 12, 1), today=date(2026, 12, 10), jurisdiction="US", product="axi-cel")
    >>> s.current_phase, s.day, [str(r.until) for r in s.restrictions if r.id == "proximity"]
    ('near_centre', 9, ['2026-12-15'])
    >>> s = status(date(2026, 12, 1), today=date(2026, 12, 10), lang="fr")   # no jurisdiction
    >>> [r.until for r in s.restrictions], s.label["status"]
    ([None, None, None, None], 'no_jurisdiction')
    """
    lg = check_lang(lang)
    if info_audience is not None:
        check_audience(info_audience)
    if not isinstance(today, date):
        raise PathwayError("today", today, error("pathway.expected_date"))
    p = plan(
        infusion_date,
        jurisdiction=jurisdiction,
        product=product,
        label=label,
        indication=indication,
        screening_date=screening_date,
        leukapheresis_date=leukapheresis_date,
        lymphodepletion_date=lymphodepletion_date,
        discharge_date=discharge_date,
    )
    d = data()
    d0 = p.infusion_date
    notes: list[str] = []
    if screening_date is not None and today < screening_date:
        raise PathwayError(
            "today", today.isoformat(), error("pathway.before_screening", date=screening_date.isoformat())
        )
    if phase is not None:
        current = check_phase(phase)
        _check_today(current, today, d0, "phase", leaving=to is not None)
    else:
        planned = p.phase_on(today)
        if planned is None:
            current = d.start
            notes.append(_NOTES[lg]["before_start"].format(today=today.isoformat()))
        else:
            current = planned
            notes.append(_NOTES[lg]["planned"].format(phase=current))
    transition: dict[str, str] | None = None
    if to is not None:
        check_transition(current, to)
        _check_today(to, today, d0, "to")
        transition = {"from": current, "to": to, "on": today.isoformat()}
        current = to
    mon = monitoring(current, crs_grade=check_grade("crs_grade", crs_grade), icans_grade=icans_grade)

    order = d.order
    cur_idx = order.index(current)
    steps: list[StepView] = []
    for s in p.steps:
        idx = order.index(s.phase)
        st: Literal["done", "current", "upcoming"]
        st = "current" if s.phase == current else "done" if idx < cur_idx else "upcoming"
        if current == "off_pathway":
            st = "done" if s.start <= today else "upcoming"
        steps.append(
            StepView(
                phase=s.phase,
                title=d.phases[s.phase].title.get(lg),
                start=s.start,
                end=s.end,
                start_day=p.day(s.start),
                end_day=p.day(s.end) if s.end is not None else None,
                estimated=s.estimated,
                status=st,
                note=d.phases[s.phase].note.get(lg),
            )
        )
    if current == "off_pathway":
        steps.append(
            StepView(
                phase="off_pathway",
                title=d.phases["off_pathway"].title.get(lg),
                start=today,
                end=None,
                start_day=p.day(today),
                end_day=None,
                estimated=False,
                status="current",
                note=d.phases["off_pathway"].note.get(lg),
            )
        )
    if any(s.estimated for s in p.steps):
        notes.append(_NOTES[lg]["estimated"])
    for name in p.skipped:
        notes.append(_NOTES[lg]["skipped"].format(phase=name))
    visits = [
        VisitView(
            id=v.id,
            date=v.on,
            day=v.day,
            title=v.title,
            checks=v.checks,
            status="past" if v.on < today else "today" if v.on == today else "upcoming",
            basis=v.basis,
        )
        for v in p.visits(lg)
    ]
    restrictions = [
        RestrictionView(
            id=r.id,
            title=r.title,
            text=r.text,
            days=r.days,
            until=r.until,
            active=None if r.until is None else d0 <= today <= r.until,
            verification=r.verification,
            source=r.source,
            note=r.note,
        )
        for r in p.restrictions(lg)
    ]
    notes.append(p.label.message(lg))
    for r in restrictions:
        if r.verification == "M":
            notes.append(_NOTES[lg]["unverified"].format(text=f"{r.title} ({r.note})"))
    near = p.step("near_centre")
    if near is not None and near.end is not None and p.label.periods()["proximity"].days is None:
        notes.append(_NOTES[lg]["near_estimated"].format(day=p.day(near.end)))
    for i in mon.items:
        if i.basis == "M":
            notes.append(_NOTES[lg]["unverified"].format(text=i.text.get(lg)))
    info = None
    if info_audience is not None:
        it = info_for_label(current, check_audience(info_audience), lg, p.label)
        info = InfoView(
            audience=it.audience,
            lang=it.lang,
            title=it.title,
            text=it.text,
            items=list(it.items),
            call_title=it.call_title,
            call=list(it.call),
            before_calling=it.before_calling,
            emergency=it.emergency,
        )
    ind = d.indications[p.indication]
    keys = [*mon.source_keys(), *(r.source for r in restrictions if r.source)]
    return PathwayStatus(
        pathway=d.id,
        version=d.version,
        lang=lg,
        infusion_date=d0,
        today=today,
        day=p.day(today),
        label={
            "status": p.label.status,
            "jurisdiction": p.label.jurisdiction.code if p.label.jurisdiction else None,
            "jurisdiction_name": p.label.jurisdiction.name(lg) if p.label.jurisdiction else None,
            "product": p.label.product.id if p.label.product else None,
            "product_name": p.label.product.display() if p.label.product else None,
            "id": p.label.version.id if p.label.version else None,
            "title": p.label.version.title.get(lg) if p.label.version else None,
            "in_force": p.label.version.in_force if p.label.version else None,
            "message": p.label.message(lg),
        },
        indication={
            "id": ind.id,
            "title": ind.title.get(lg),
            "bridging": ind.bridging.get(lg),
            "response": ind.response.get(lg),
            "note": ind.note.get(lg),
        },
        current_phase=current,
        current_title=d.phases[current].title.get(lg),
        transition=transition,
        steps=steps,
        visits=visits,
        restrictions=restrictions,
        monitoring=MonitoringView(
            phase=mon.phase,
            crs_grade=mon.crs_grade,
            icans_grade=mon.icans_grade,
            level=mon.level,
            setting=mon.setting,
            setting_title=mon.setting_title(lg),
            vitals_every_h=mon.vitals_every_h,
            ice_every_h=mon.ice_every_h,
            items=[
                MonitoringItemView(text=i.text.get(lg), basis=i.basis, source=i.source) for i in mon.items
            ],
            drivers=list(mon.drivers),
        ),
        info=info,
        notes=notes,
        sources=[source(k).citation() for k in dict.fromkeys(keys)],
    )
