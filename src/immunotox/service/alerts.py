"""Alert rules, deduplication, acknowledgement and escalation.

Alerts are *derived*: they come from grade transitions, from the clock and from a few writes.
Each alert has a **deduplication key**; a condition that is already alerted never fires again
(the key is unique in the database, so this holds across processes and restarts).

==========================  ====================================================  =========================
kind                        fires when                                            dedup key
==========================  ====================================================  =========================
``new_toxicity``            a grade >= 1 opens a new episode                      patient, scale, episode
``grade_increase``          the grade exceeds the episode's previous peak         patient, scale, episode,
                                                                                  grade
``missing_assessment``      no ICE (or CAPD) for ``ice_overdue_hours`` while      patient, time of the last
                            within ``ice_monitoring_days`` of a CAR-T or          ICE (or 'none')
                            bispecific infusion (background sweep)
``dose_limit``              a recorded tocilizumab dose reaches or exceeds a      patient, limit, count or
                            limit of ``data/drugs.toml`` (dose_rule               dose event
                            tocilizumab-crs, checked by the management engine),
                            or is given outside the rule's population
``patient_report``          a self-report whose triage is "call now"              the report event
==========================  ====================================================  =========================

Priority: grade >= 3 or a limit exceeded -> ``critical``; grade 2, a limit reached, an urgent
self-report -> ``high``; grade 1, a missing assessment -> ``normal``.

Escalation: an alert still ``open`` (not acknowledged) ``escalation_minutes`` after it was
raised goes to escalation level 1, then level 2 after twice the delay (level 0 = the unit's
nurses and physicians, 1 = the physician in charge, 2 = the senior on call; the levels are a
display and audit convention — the service does not page anyone). Acknowledgement (with an
optional comment) and every escalation are written to the audit trail.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from ..catalogue import get_scale
from ..jurisdiction import Jurisdiction
from ..management import RecordedDose, review_recorded_doses
from ..messages import Catalogue, Msg, render
from . import audit
from .config import Settings
from .episodes import Transition
from .models import Alert, ClinicalEvent, Patient
from .recommend import age_at, product_licences

PRIORITY_RANK = {"critical": 4, "high": 3, "normal": 2, "low": 1}
MAX_ESCALATION = 2
ICE_CODES = (
    "ice_score",
    "capd_score",
    "ice_orientation",
    "ice_naming",
    "ice_commands",
    "ice_writing",
    "ice_attention",
)
# Therapies after which ICANS is monitored with ICE: immune effector cell therapies and T-cell
# engagers (ASTCT 2019 grading applies to both); not checkpoint inhibitors.
ICE_MONITORED_THERAPIES = ("car_t", "bispecific")


@dataclass(frozen=True)
class AlertSpec:
    patient_id: str
    kind: str
    priority: str
    dedup_key: str
    title: str
    title_fr: str
    message: str
    message_fr: str
    target_role: str
    triggered_at: dt.datetime
    scale: str | None = None
    grade: int | None = None
    episode_id: int | None = None
    params: dict[str, Any] | None = None
    recommendation: dict[str, Any] | None = None


def _short(scale_id: str) -> tuple[str, str]:
    """The scale's name in an alert title, in English and French: CRS/ICANS, else the scale's
    short name from its data (an ASCO 2021 organ: « Colite »), else its title."""
    scale = get_scale(scale_id)
    if scale.family in ("crs", "icans"):
        return scale.family.upper(), scale.family.upper()
    short = getattr(scale, "short", None)
    msg = short if isinstance(short, Msg) else scale.title_msg()
    return render(msg, "en"), render(msg, "fr")


def _grade_priority(grade: int) -> str:
    return "critical" if grade >= 3 else "high" if grade == 2 else "normal"


def raise_alert(
    session: Session, spec: AlertSpec, *, now: dt.datetime, ctx: audit.RequestContext
) -> Alert | None:
    """Insert the alert unless its dedup key exists; return it (None when deduplicated)."""
    if session.scalar(select(Alert.id).where(Alert.dedup_key == spec.dedup_key)) is not None:
        return None
    patient_id = spec.patient_id
    alert = Alert(
        patient_id=patient_id,
        kind=spec.kind,
        priority=spec.priority,
        priority_rank=PRIORITY_RANK[spec.priority],
        dedup_key=spec.dedup_key,
        scale=spec.scale,
        grade=spec.grade,
        episode_id=spec.episode_id,
        title=spec.title,
        title_fr=spec.title_fr,
        message=spec.message,
        message_fr=spec.message_fr,
        params=spec.params or {},
        recommendation=spec.recommendation,
        target_role=spec.target_role,
        status="open",
        triggered_at=spec.triggered_at,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(alert)
            session.flush()
    except IntegrityError:  # raised concurrently by another writer: same condition, not a new alert
        return None
    audit.record(
        session,
        actor=None,
        action="alert.create",
        ctx=ctx,
        now=now,
        entity_type="alert",
        entity_id=alert.id,
        patient_id=patient_id,
        details={"kind": spec.kind, "priority": spec.priority, "dedup_key": spec.dedup_key},
    )
    return alert


# ----------------------------------------------------------------------------- grade alerts
_M = Catalogue("messages")


def _texts(key: str, en: dict[str, Any] | None = None, fr: dict[str, Any] | None = None) -> tuple[str, str]:
    """The alert text ``[alert] <key>`` of ``data/messages.toml`` in English and in French, with
    the parameters of each language (``fr``: the same as ``en`` when not given)."""
    en = en or {}
    return render(_M(f"alert.{key}", **en), "en"), render(_M(f"alert.{key}", **(fr or en)), "fr")


def _grade_alert(tr: Transition, kind: str, dedup_key: str, title_key: str, **extra: Any) -> AlertSpec:
    """The alert of a grade transition ``tr`` (a new toxicity or a grade increase): its title
    (``alert.<title_key>``), the scale, version and grade as its message, in both languages; the
    English message adds the grading core's last reason (its texts are English), the French one
    leaves the deciding domains and missing inputs to the reader's page (``params``)."""
    g = tr.grade
    assert g.grade is not None and tr.episode is not None
    value = g.grade
    lower, lower_fr = _texts("lower") if not g.result.complete else ("", "")
    tail, tail_fr = _texts("grade_tail") if not g.result.complete else ("", "")
    name, name_fr = _short(g.scale)
    title, title_fr = _texts(
        title_key,
        {"name": name, "grade": value, "lower": lower, **extra},
        {"name": name_fr, "grade": value, "lower": lower_fr, **extra},
    )
    said = {"scale": g.scale, "version": g.result.version, "grade": value}
    message, message_fr = _texts(
        "grade_message", {"name": name, "tail": tail, **said}, {"name": name_fr, "tail": tail_fr, **said}
    )
    reasons = "; ".join(g.result.reasons[-1:])
    return AlertSpec(
        patient_id=g.patient_id,
        kind=kind,
        priority=_grade_priority(value),
        dedup_key=dedup_key,
        title=title,
        title_fr=title_fr,
        message=f"{message} {reasons}".rstrip(),
        message_fr=message_fr,
        target_role="physician",
        triggered_at=g.time,
        scale=g.scale,
        grade=value,
        episode_id=tr.episode.id,
        params={
            "patient_id": g.patient_id,
            "scale": g.scale,
            "grade": value,
            "previous": tr.previous,
            "complete": g.result.complete,
            "missing": g.result.missing,
            "deciding": g.result.deciding_domains,
        },
    )


def specs_for_transitions(transitions: list[Transition]) -> list[AlertSpec]:
    """Alert specifications for the grade transitions of one regrade."""
    out: list[AlertSpec] = []
    for tr in transitions:
        g, ep, value = tr.grade, tr.episode, tr.grade.grade
        if ep is None or value is None or value < 1:
            continue
        if tr.opened:
            family = get_scale(g.scale).family in ("crs", "icans")
            key = f"new_toxicity:{g.patient_id}:{g.scale}:{ep.id}"
            out.append(_grade_alert(tr, "new_toxicity", key, "new_family" if family else "new_organ"))
        elif tr.peak_raised:
            was = tr.previous if tr.previous is not None else "?"
            key = f"grade_increase:{g.patient_id}:{g.scale}:{ep.id}:{value}"
            out.append(_grade_alert(tr, "grade_increase", key, "increase", was=was))
    return out


# ----------------------------------------------------------------------------- dose limits
DOSE_RULE = "tocilizumab-crs"
"""The dose rule of ``data/drugs.toml`` whose limits recorded tocilizumab doses are checked against
(by :func:`immunotox.management.review_recorded_doses`, the engine the recommendation uses too)."""


def _dose_mg(row: Any, weight_kg: float | None) -> float | None:
    if row.dose is None or row.dose_unit is None:
        return None
    dose = float(row.dose)
    if row.dose_unit == "mg":
        return dose
    if row.dose_unit == "g":
        return dose * 1000
    if row.dose_unit == "mg/kg" and weight_kg is not None:
        return dose * weight_kg
    return None


def dose_limit_specs(
    session: Session,
    patient: Patient,
    new_doses: Sequence[Any],
    weight_kg: float | None,
    jurisdiction: Jurisdiction | None = None,
) -> list[AlertSpec]:
    """Check each newly recorded tocilizumab dose with the management dose-limit engine.

    Doses are counted over the patient's course (since day 0, or all recorded doses without a
    day 0), the conservative reading of the caps noted in ``data/drugs.toml``.
    """
    if not new_doses:
        return []
    sup = aliased(ClinicalEvent)
    q = select(ClinicalEvent).where(
        ClinicalEvent.patient_id == patient.id,
        ClinicalEvent.code == "tocilizumab",
        ClinicalEvent.status == "final",
        ~exists().where(sup.supersedes_id == ClinicalEvent.id),
    )
    if patient.infusion_at is not None:
        q = q.where(ClinicalEvent.time >= patient.infusion_at)
    rows = {str(r.id): r for r in session.scalars(q)}
    history = [RecordedDose(key, r.time, _dose_mg(r, weight_kg)) for key, r in rows.items()]
    new_keys = [str(d.id) for d in new_doses]
    at = max((d.time for d in new_doses), default=None)
    findings = review_recorded_doses(
        DOSE_RULE,
        history,
        new_keys,
        weight_kg=weight_kg,
        age_years=age_at(patient, at) if at is not None else None,
        licences=product_licences(patient.product, jurisdiction.code if jurisdiction else None),
    )
    out: list[AlertSpec] = []
    for f in findings:
        new = rows[f.dose_key]
        exceeded = f.state == "exceeded"
        srcs = ", ".join(f.sources)
        title, title_fr = _texts(f"dose_{f.state}", {"limit": f.limit_text.en}, {"limit": f.limit_text.fr})
        message, message_fr = _texts(
            "dose_message",
            {"detail": f.detail.en, "limit": f.limit_text.en, "sources": srcs},
            {"detail": f.detail.fr, "limit": f.limit_text.fr, "sources": srcs},
        )
        out.append(
            AlertSpec(
                patient_id=patient.id,
                kind="dose_limit",
                priority="critical" if exceeded else "high",
                dedup_key=f"dose_limit:{patient.id}:tocilizumab:{f.dedup}",
                title=title,
                title_fr=title_fr,
                message=message,
                message_fr=message_fr,
                target_role="physician",
                triggered_at=new.time,
                params={
                    "patient_id": patient.id,
                    "limit": f.kind,
                    "value": f.value,
                    "state": f.state,
                    "dose_event_id": new.id,
                    "detail": f.detail.en,
                    "detail_fr": f.detail.fr,
                },
            )
        )
    return out


# ----------------------------------------------------------------------------- sweeps
def sweep_missing_assessments(
    session: Session, *, now: dt.datetime, settings: Settings, ctx: audit.RequestContext
) -> list[Alert]:
    """Raise ``missing_assessment`` alerts for patients whose ICE is overdue."""
    overdue = dt.timedelta(hours=settings.ice_overdue_hours)
    window = dt.timedelta(days=settings.ice_monitoring_days)
    patients = list(
        session.scalars(
            select(Patient).where(
                Patient.active.is_(True),
                Patient.therapy_class.in_(ICE_MONITORED_THERAPIES),
                Patient.infusion_at.is_not(None),
                Patient.infusion_at <= now,
                Patient.infusion_at > now - window,
            )
        )
    )
    if not patients:
        return []
    last = dict(
        session.execute(
            select(ClinicalEvent.patient_id, func.max(ClinicalEvent.time))
            .where(
                ClinicalEvent.patient_id.in_([p.id for p in patients]),
                ClinicalEvent.code.in_(ICE_CODES),
                ClinicalEvent.time <= now,
            )
            .group_by(ClinicalEvent.patient_id)
        ).all()
    )
    raised: list[Alert] = []
    for p in patients:
        assert p.infusion_at is not None
        last_ice = last.get(p.id)
        since = last_ice or p.infusion_at
        if now - since < overdue:
            continue
        day = (now - p.infusion_at).days
        hours = (now - since).total_seconds() / 3600
        what, what_fr = _texts("ice_since_last" if last_ice else "ice_since_day0", {"hours": f"{hours:.0f}"})
        period = {"days": f"{settings.ice_monitoring_days:g}", "every": f"{settings.ice_overdue_hours:g}"}
        title, title_fr = _texts("ice_title", {"what": what, "day": day}, {"what": what_fr, "day": day})
        message, message_fr = _texts("ice_message", {"what": what, **period}, {"what": what_fr, **period})
        spec = AlertSpec(
            patient_id=p.id,
            kind="missing_assessment",
            priority="normal",
            dedup_key=f"missing_assessment:ice:{p.id}:{last_ice.isoformat() if last_ice else 'none'}",
            title=title,
            title_fr=title_fr,
            message=message,
            message_fr=message_fr,
            target_role="nurse",
            triggered_at=now,
            params={"patient_id": p.id, "last_ice": last_ice.isoformat() if last_ice else None, "day": day},
        )
        alert = raise_alert(session, spec, now=now, ctx=ctx)
        if alert is not None:
            raised.append(alert)
    return raised


def resolve_missing_assessments(
    session: Session, patient_ids: list[str], *, now: dt.datetime, ctx: audit.RequestContext
) -> int:
    """Close open ``missing_assessment`` alerts once an ICE has been recorded for the patient."""
    n = 0
    for alert in session.scalars(_open_missing_statement(), {"ids": list(patient_ids)}):
        alert.status = "resolved"
        alert.resolved_at = now
        alert.resolved_reason = "assessment recorded"
        audit.record(
            session,
            actor=None,
            action="alert.resolve",
            ctx=ctx,
            now=now,
            entity_type="alert",
            entity_id=alert.id,
            patient_id=alert.patient_id,
            details={"reason": "assessment recorded"},
        )
        n += 1
    return n


@functools.cache
def _open_missing_statement() -> Any:
    ids: Any = bindparam("ids", expanding=True)
    return select(Alert).where(
        Alert.patient_id.in_(ids), Alert.kind == "missing_assessment", Alert.status == "open"
    )


def sweep_escalations(
    session: Session, *, now: dt.datetime, settings: Settings, ctx: audit.RequestContext
) -> list[Alert]:
    """Escalate open alerts left unacknowledged past the delay (one level per delay, max 2)."""
    delay = dt.timedelta(minutes=settings.escalation_minutes)
    out: list[Alert] = []
    candidates = session.scalars(
        select(Alert).where(
            and_(
                Alert.status == "open",
                Alert.escalation_level < MAX_ESCALATION,
                Alert.created_at <= now - delay,
            )
        )
    )
    for alert in candidates:
        due = alert.created_at + delay * (alert.escalation_level + 1)
        if now < due:
            continue
        alert.escalation_level += 1
        alert.escalated_at = now
        audit.record(
            session,
            actor=None,
            action="alert.escalate",
            ctx=ctx,
            now=now,
            entity_type="alert",
            entity_id=alert.id,
            patient_id=alert.patient_id,
            details={"level": alert.escalation_level},
        )
        out.append(alert)
    return out
