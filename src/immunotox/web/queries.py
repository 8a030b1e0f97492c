"""Read models of the pages: what the ward, patient, bedside, inbox and portal pages show.

Reads only, against the service's tables (:mod:`immunotox.service.models`), with a fixed number
of queries per page whatever the number of patients (the ward of 200 patients is a benchmark).
Access is decided by :mod:`immunotox.service.auth` (``visible_units``, ``can_read_patient``…)
and grades, episodes and alerts are the service's own derived rows: nothing here grades,
alerts or decides a dose — it selects and arranges.

The monitoring intervals that make a check *overdue* are the pathway's
(:func:`immunotox.pathway.monitoring`: the phase baseline escalated by the current CRS and ICANS
grades); for patients outside the CAR-T pathway the service's own ICE rule applies
(``IMMUNOTOX_ICE_OVERDUE_HOURS`` during ``IMMUNOTOX_ICE_MONITORING_DAYS`` after a CAR-T or
bispecific infusion, :mod:`immunotox.service.alerts`).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import pathway
from ..jurisdiction import Jurisdiction
from ..pathway import PathwayError
from ..service import alerts as service_alerts
from ..service import auth
from ..service.config import Settings
from ..service.event_rows import is_current_event
from ..service.grades import scales_of
from ..service.models import Alert, CareUnit, ClinicalEvent, CurrentGrade, GradeRecord, Patient
from ..timeline import live
from . import labels
from .i18n import Lang, gettext, local

VITAL_CODES: tuple[str, ...] = ("temperature", "sbp", "dbp", "heart_rate", "resp_rate", "spo2")
ICE_CODES: tuple[str, ...] = service_alerts.ICE_CODES
PATHWAY_THERAPIES: tuple[str, ...] = ("car_t",)
TREND_WINDOW = dt.timedelta(hours=24)
MAX_GRADE = 4


# ----------------------------------------------------------------------------- badges
@dataclass(frozen=True)
class Badge:
    """A grade as shown: number and words (never colour alone), range when incomplete."""

    scale: str
    short: str
    grade: int | None
    lo: int
    hi: int
    status: str
    trend: str | None = None  # "up" | "down" | "flat" | None (no history)

    @property
    def css(self) -> str:
        """``g0``…``g4`` or ``g-na``; ``partial`` (dashed border) when only a lower bound is known."""
        if self.grade is None:  # not assessable or not applicable
            return "g-na"
        partial = " partial" if self.status == "incomplete" and self.hi > self.grade else ""
        return f"g{min(self.grade, MAX_GRADE)}{partial}"

    @property
    def value(self) -> str:
        """``2``, ``≥1`` (lower bound, inputs missing), ``?`` (not assessable) or ``–`` (not applicable)."""
        if self.status == "not_applicable":
            return "–"
        if self.grade is None:
            return "?"
        if self.status == "incomplete" and self.hi > self.grade:
            return f"≥{self.grade}"
        return str(self.grade)

    @property
    def text(self) -> str:
        return f"{self.short} {self.value}"

    @property
    def description(self) -> str:
        """A full sentence for screen readers and tooltips."""
        if self.status == "not_applicable":
            return gettext("%(scale)s: not applicable (no grade, not grade 0)") % {"scale": self.short}
        if self.grade is None:
            return gettext("%(scale)s: not assessable") % {"scale": self.short}
        if self.status == "incomplete" and self.hi > self.grade:
            return gettext("%(scale)s grade %(grade)d at least (could be up to %(hi)d: inputs missing)") % {
                "scale": self.short,
                "grade": self.grade,
                "hi": self.hi,
            }
        return gettext("%(scale)s grade %(grade)d") % {"scale": self.short, "grade": self.grade}

    @property
    def trend_label(self) -> str:
        return {
            "up": gettext("rising in the last 24 h"),
            "down": gettext("falling in the last 24 h"),
            "flat": gettext("stable over the last 24 h"),
        }.get(self.trend or "", gettext("no earlier grade"))

    @property
    def trend_arrow(self) -> str:
        return {"up": "↑", "down": "↓", "flat": "→"}.get(self.trend or "", "·")


def scale_short(scale: str) -> str:
    return labels.scale_short(scale)


def badge_from(scale: str, grade: int | None, lo: int, hi: int, status: str, trend: str | None) -> Badge:
    return Badge(scale, scale_short(scale), grade, lo, hi, status, trend)


def badge_of(
    scale: str, grade: int | None, rng: tuple[int, int] | None, status: str, trend: str | None
) -> Badge:
    """A badge from a grade range that is ``None`` when the scale does not apply."""
    lo, hi = rng if rng is not None else (0, 0)  # not shown: the status decides the badge
    return badge_from(scale, grade, lo, hi, status, trend)


# ----------------------------------------------------------------------------- pathway helpers
@functools.lru_cache(maxsize=4096)
def planned_phase(
    infusion_date: dt.date,
    today: dt.date,
    jurisdiction: Jurisdiction | None = None,
    product: str | None = None,
) -> str | None:
    """The CAR-T pathway phase planned for ``today`` from the infusion date, with the label
    periods of ``jurisdiction`` and ``product`` (as on the patient page); without them, or for an
    unknown product, the planning estimates of ``phases.toml``. None if it cannot be dated."""
    try:
        return pathway.plan(infusion_date, jurisdiction=jurisdiction, product=product).phase_on(today)
    except PathwayError:
        try:
            return pathway.plan(infusion_date).phase_on(today)
        except PathwayError:
            return None


@functools.lru_cache(maxsize=1024)
def _monitoring(phase: str, crs: int, icans: int) -> tuple[float | None, float | None]:
    try:
        m = pathway.monitoring(phase, crs_grade=crs, icans_grade=icans)
    except PathwayError:
        m = pathway.monitoring(phase)
    return m.vitals_every_h, m.ice_every_h


def patient_phase(p: Patient, now: dt.datetime, jurisdiction: Jurisdiction | None = None) -> str | None:
    """The recorded pathway phase, else the planned one (CAR-T with a day 0 only), dated with the
    label periods of the service's jurisdiction and the patient's product."""
    if p.pathway_phase:
        return p.pathway_phase
    if p.therapy_class not in PATHWAY_THERAPIES or p.infusion_at is None:
        return None
    return planned_phase(local(p.infusion_at).date(), local(now).date(), jurisdiction, p.product)


def phase_title(phase: str | None, lang: Lang) -> str:
    if phase is None:
        return "—"
    ph = pathway.phases().get(phase)
    return ph.title.get(lang) if ph is not None else phase


def intervals(
    p: Patient, phase: str | None, crs: int, icans: int, now: dt.datetime, settings: Settings
) -> tuple[float | None, float | None]:
    """Hours between vital signs and between ICE assessments expected now (None: not expected)."""
    vitals: float | None = None
    ice: float | None = None
    if phase is not None and phase in pathway.phases():
        vitals, ice = _monitoring(phase, min(max(crs, 0), MAX_GRADE), min(max(icans, 0), MAX_GRADE))
    if (
        ice is None
        and p.therapy_class in service_alerts.ICE_MONITORED_THERAPIES
        and p.infusion_at is not None
        and dt.timedelta(0) <= now - p.infusion_at < dt.timedelta(days=settings.ice_monitoring_days)
    ):
        ice = settings.ice_overdue_hours
    return vitals, ice


def day_label(day: int | None) -> str:
    """``J3`` / ``D3`` (days since infusion, day 0 = infusion)."""
    if day is None:
        return "—"
    return gettext("D%(day)d") % {"day": day}


def day_of(p: Patient, now: dt.datetime) -> int | None:
    if p.infusion_at is None:
        return None
    return (now - p.infusion_at).days


# ----------------------------------------------------------------------------- the ward
@dataclass
class WardRow:
    patient_id: str
    display_name: str
    unit_id: str
    unit_name: str
    therapy: str
    product: str | None
    day: int | None
    phase: str | None
    phase_title: str
    badges: list[Badge]
    alerts_active: int = 0
    alerts_open: int = 0
    alert_priority: str | None = None
    last_vitals: dt.datetime | None = None
    vitals_every_h: float | None = None
    vitals_overdue: bool = False
    last_ice: dt.datetime | None = None
    ice_every_h: float | None = None
    ice_overdue: bool = False
    max_grade: int = 0
    priority_rank: int = 0

    @property
    def day_label(self) -> str:
        return day_label(self.day)


@dataclass
class Ward:
    rows: list[WardRow]
    units: list[tuple[str, str]]
    unit: str | None
    stamp: str = ""
    counts: dict[str, int] = field(default_factory=dict)


def visible_unit_list(s: Session, principal: auth.Principal) -> list[tuple[str, str]]:
    """(id, name) of the units whose patients ``principal`` may see."""
    q = select(CareUnit.id, CareUnit.name).order_by(CareUnit.id)
    units = auth.visible_units(principal)
    if units is not None:
        q = q.where(CareUnit.id.in_(units))
    return [(uid, name) for uid, name in s.execute(q)]


def grade_trends(s: Session, ids: Sequence[str], now: dt.datetime) -> dict[tuple[str, str], str]:
    """Direction of the latest grade change in the last 24 h, per (patient, scale)."""
    rn = (
        func.row_number()
        .over(partition_by=(GradeRecord.patient_id, GradeRecord.scale), order_by=GradeRecord.id.desc())
        .label("rn")
    )
    sub = (
        select(GradeRecord.patient_id, GradeRecord.scale, GradeRecord.grade, GradeRecord.time, rn)
        .where(GradeRecord.patient_id.in_(ids))
        .subquery()
    )
    hist: dict[tuple[str, str], list[tuple[int | None, dt.datetime]]] = {}
    for pid, scale, grade, time, _rn in s.execute(
        select(sub.c.patient_id, sub.c.scale, sub.c.grade, sub.c.time, sub.c.rn)
        .where(sub.c.rn <= 6)
        .order_by(sub.c.patient_id, sub.c.scale, sub.c.rn)
    ):
        hist.setdefault((pid, scale), []).append((grade, time))
    out: dict[tuple[str, str], str] = {}
    for key, rows in hist.items():
        graded = [(g, t) for g, t in rows if g is not None]
        if not graded:
            continue
        latest = graded[0][0]
        assert latest is not None
        trend = "flat"
        for i in range(1, len(graded)):
            prev = graded[i][0]
            if prev is not None and prev != latest:
                # newest first: the change happened at the record just before (newer than) this one
                if now - graded[i - 1][1] <= TREND_WINDOW:
                    trend = "up" if latest > prev else "down"
                break
        out[key] = trend
    return out


def _last_times(
    s: Session, ids: Sequence[str], codes: Iterable[str], now: dt.datetime, *, ward_checks_only: bool = False
) -> dict[str, dt.datetime]:
    """Time of the latest row of ``codes`` per patient; ``ward_checks_only`` leaves out what a
    patient reported at home (a self-reported temperature is not a ward check of vital signs)."""
    q = select(ClinicalEvent.patient_id, func.max(ClinicalEvent.time)).where(
        ClinicalEvent.patient_id.in_(ids),
        ClinicalEvent.code.in_(tuple(codes)),
        ClinicalEvent.time <= now,
    )
    if ward_checks_only:
        q = q.where(ClinicalEvent.source != "patient")
    return {pid: t for pid, t in s.execute(q.group_by(ClinicalEvent.patient_id)) if t is not None}


def ward(
    s: Session,
    principal: auth.Principal,
    *,
    now: dt.datetime,
    settings: Settings,
    lang: Lang,
    unit: str | None = None,
) -> Ward:
    """One row per active patient of the units ``principal`` may see (optionally one unit)."""
    units = visible_unit_list(s, principal)
    unit_names = dict(units)
    if unit is not None and unit not in unit_names:
        unit = None
    q = select(Patient).where(Patient.active.is_(True))
    allowed = auth.visible_units(principal)
    if allowed is not None:
        q = q.where(Patient.unit_id.in_(allowed))
    if unit is not None:
        q = q.where(Patient.unit_id == unit)
    patients = list(s.scalars(q.order_by(Patient.id)))
    ids = [p.id for p in patients]
    if not ids:
        return Ward([], units, unit)
    grades: dict[str, dict[str, tuple[int | None, int, int, str]]] = {}
    for pid, scale, g, lo, hi, status in s.execute(
        select(
            CurrentGrade.patient_id,
            CurrentGrade.scale,
            CurrentGrade.grade,
            CurrentGrade.grade_lo,
            CurrentGrade.grade_hi,
            CurrentGrade.status,
        ).where(CurrentGrade.patient_id.in_(ids))
    ):
        grades.setdefault(pid, {})[scale] = (g, lo, hi, status)
    trends = grade_trends(s, ids, now)
    alert_rows = s.execute(
        select(Alert.patient_id, Alert.status, func.count(), func.max(Alert.priority_rank))
        .where(Alert.patient_id.in_(ids), Alert.status.in_(("open", "acknowledged")))
        .group_by(Alert.patient_id, Alert.status)
    )
    active: dict[str, tuple[int, int, int]] = {}
    for pid, status, n, rank in alert_rows:
        total, n_open, top = active.get(pid, (0, 0, 0))
        active[pid] = (total + n, n_open + (n if status == "open" else 0), max(top, rank or 0))
    last_vitals = _last_times(s, ids, VITAL_CODES, now, ward_checks_only=True)
    last_ice = _last_times(s, ids, ICE_CODES, now)  # patients cannot report ICE items
    rank_name = {v: k for k, v in service_alerts.PRIORITY_RANK.items()}
    rows: list[WardRow] = []
    for p in patients:
        pg = grades.get(p.id, {})
        own = scales_of(p)  # then the lab terms, once each
        scales = [*own, *sorted(k for k in pg if k not in own)]
        badges = []
        for scale in scales:
            if scale in pg:
                g, lo, hi, status = pg[scale]
                badges.append(badge_from(scale, g, lo, hi, status, trends.get((p.id, scale))))
            else:  # nothing graded yet: not assessable, never "0"
                badges.append(badge_from(scale, None, 0, MAX_GRADE, "not_assessable", None))
        crs = next((b.grade or 0 for b in badges if b.scale == "astct2019:crs"), 0)
        icans = next((b.grade or 0 for b in badges if b.scale == "astct2019:icans"), 0)
        phase = patient_phase(p, now, settings.jurisdiction)
        vit_h, ice_h = intervals(p, phase, crs, icans, now, settings)
        total, n_open, top = active.get(p.id, (0, 0, 0))
        lv, li = last_vitals.get(p.id), last_ice.get(p.id)
        since_d0 = p.infusion_at if p.infusion_at is not None and p.infusion_at <= now else None
        rows.append(
            WardRow(
                patient_id=p.id,
                display_name=p.display_name or p.id,
                unit_id=p.unit_id,
                unit_name=unit_names.get(p.unit_id, p.unit_id),
                therapy=labels.label(labels.THERAPIES, p.therapy_class),
                product=p.product,
                day=day_of(p, now),
                phase=phase,
                phase_title=phase_title(phase, lang),
                badges=badges,
                alerts_active=total,
                alerts_open=n_open,
                alert_priority=rank_name.get(top) if total else None,
                last_vitals=lv,
                vitals_every_h=vit_h,
                vitals_overdue=_overdue(lv or since_d0, vit_h, now),
                last_ice=li,
                ice_every_h=ice_h,
                ice_overdue=_overdue(li or since_d0, ice_h, now),
                max_grade=max((b.grade or 0 for b in badges), default=0),
                priority_rank=top if total else 0,
            )
        )
    rows.sort(key=lambda r: (-r.priority_rank, -r.max_grade, r.patient_id))
    counts = {
        "patients": len(rows),
        "alerts_open": sum(r.alerts_open for r in rows),
        "overdue": sum(1 for r in rows if r.vitals_overdue or r.ice_overdue),
    }
    return Ward(rows, units, unit, counts=counts)


def _overdue(last: dt.datetime | None, every_h: float | None, now: dt.datetime) -> bool:
    if every_h is None or last is None:
        return False
    return now - last > dt.timedelta(hours=every_h)


def ward_stamp(s: Session, principal: auth.Principal, now: dt.datetime, unit: str | None) -> str:
    """Changes when anything the ward shows may have changed (new data, grades, alerts, minute)."""
    allowed = auth.visible_units(principal)
    pq = select(Patient.id)
    if allowed is not None:
        pq = pq.where(Patient.unit_id.in_(allowed))
    if unit is not None:
        pq = pq.where(Patient.unit_id == unit)
    ids = pq.scalar_subquery()
    ev = s.scalar(select(func.max(ClinicalEvent.id)).where(ClinicalEvent.patient_id.in_(ids)))
    al = s.execute(
        select(
            func.max(Alert.id),
            func.max(Alert.acknowledged_at),
            func.max(Alert.escalated_at),
            func.max(Alert.resolved_at),
            func.count(),
        ).where(Alert.patient_id.in_(ids))
    ).one()
    gr = s.scalar(select(func.max(CurrentGrade.computed_at)).where(CurrentGrade.patient_id.in_(ids)))
    minute = now.replace(second=0, microsecond=0)
    parts = [ev, *al, gr, minute, unit]
    text = "|".join(
        "" if x is None else (x.isoformat() if isinstance(x, dt.datetime) else str(x)) for x in parts
    )
    return hashlib.sha256(text.encode()).hexdigest()[:20]


# ----------------------------------------------------------------------------- intervals
INTERVAL_CODES: tuple[str, ...] = ("oxygen", "vasopressor")


@dataclass(frozen=True)
class Running:
    """An oxygen support or vasopressor row and the interval it covers."""

    event: ClinicalEvent
    start: dt.datetime
    end: dt.datetime | None  # None: still running

    @property
    def open(self) -> bool:
        return self.end is None


def interval_rows(rows: Sequence[ClinicalEvent]) -> list[Running]:
    """The interval each row covers, by the vocabulary's rule as the grading reads it
    (:func:`immunotox.timeline.live.spans`): ``[time, end_time)``, or without ``end_time`` until
    the next row of the same code (oxygen) or of the same drug (vasopressor); an oxygen row with
    device ``none`` covers nothing."""
    return [
        Running(cast(ClinicalEvent, r), start, end)
        for r, start, end in live.spans(rows)
        if not (r.code == "oxygen" and r.value == "none")
    ]


def current_events(
    s: Session,
    patient_id: str,
    codes: Iterable[str],
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> list[ClinicalEvent]:
    """Current (final, not superseded) events of ``codes``, oldest first."""
    q = select(ClinicalEvent).where(
        ClinicalEvent.patient_id == patient_id, ClinicalEvent.code.in_(tuple(codes)), is_current_event()
    )
    if since is not None:
        q = q.where(ClinicalEvent.time >= since)
    if until is not None:
        q = q.where(ClinicalEvent.time <= until)
    return list(s.scalars(q.order_by(ClinicalEvent.time, ClinicalEvent.id)))


def running_now(s: Session, patient_id: str, now: dt.datetime) -> list[Running]:
    """Oxygen supports and vasopressor infusions running at ``now``."""
    rows = current_events(s, patient_id, INTERVAL_CODES, until=now)
    return [r for r in interval_rows(rows) if r.end is None or r.end > now]


def latest_by_code(
    s: Session, patient_id: str, codes: Iterable[str], *, since: dt.datetime, until: dt.datetime
) -> dict[str, ClinicalEvent]:
    """The latest current event of each code in ``[since, until]``."""
    out: dict[str, ClinicalEvent] = {}
    for e in current_events(s, patient_id, codes, since=since, until=until):
        out[e.code] = e  # oldest first: the last one wins
    return out


def age_years(s: Session, p: Patient, now: dt.datetime) -> float | None:
    """Age from the birth date, else the latest ``age`` row (as the service grades)."""
    if p.birth_date is not None:
        bd, d = p.birth_date, now.date()
        return float(d.year - bd.year - ((d.month, d.day) < (bd.month, bd.day)))
    row = latest_by_code(s, p.id, ("age",), since=dt.datetime(1900, 1, 1, tzinfo=dt.UTC), until=now)
    e = row.get("age")
    return e.value_num if e is not None else None


def unit_of(s: Session, p: Patient) -> CareUnit | None:
    return s.get(CareUnit, p.unit_id)
