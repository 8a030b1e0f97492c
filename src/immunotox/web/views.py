"""What the patient, bedside, inbox and portal pages show, assembled from the service's data.

The recommendation panel is the service's use case
:func:`immunotox.service.usecases.recommend.recommendations` (the API's too; it asks
:mod:`immunotox.management`), the pathway panel :func:`immunotox.pathway.status`, the
grades the service's stored current grades with their explanation, and the triage vocabulary
the service's self-report rules: this module only gathers them for one request.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import handouts, messages, pathway
from ..findings import vocabulary as finding_vocabulary
from ..jurisdiction import Jurisdiction
from ..messages import Msg
from ..pathway import PathwayError, PathwayStatus
from ..scales import astct2019_spec
from ..service import auth, codes, recommend, selfreport
from ..service.event_rows import is_current_event
from ..service.models import Alert, CareUnit, ClinicalEvent, Episode, GradeRecord, Patient, User
from ..service.schemas import GradePublic, RecommendationsOut
from ..service.usecases import alerts
from ..service.usecases import recommend as recommend_case
from ..service.usecases import ungraded as ungraded_case
from ..service.usecases.base import current_grades
from . import chart, labels, queries
from .i18n import Lang, fmt_datetime, fmt_number, gettext, local

CHART_CODES = ("temperature", "sbp", "dbp", "spo2", "o2_flow", "tocilizumab", "corticosteroid", "antipyretic")
WINDOWS_H = (24, 72, 168)
MARKER_CODES = ("tocilizumab", "corticosteroid", "antipyretic")


def dose_text(e: ClinicalEvent) -> str:
    if e.dose is None:
        return ""
    unit = (e.dose_unit or "").replace("ug", "µg")
    return f"{fmt_number(e.dose, 2)} {unit}"


def event_value(e: ClinicalEvent) -> str:
    """A stored value as shown: number in the locale's format with its unit, or the token's name."""
    if e.value_num is not None and e.unit:
        unit = {"Cel": "°C", "mm[Hg]": "mmHg", "/min": "/min", "%": "%", "L/min": "L/min"}.get(e.unit, e.unit)
        return f"{fmt_number(e.value_num)} {unit}"
    if e.value_num is not None:
        return fmt_number(e.value_num)
    if e.value in ("true", "false"):
        return gettext("yes") if e.value == "true" else gettext("no")
    return labels.token(e.value)


# ----------------------------------------------------------------------------- the chart
def chart_data(s: Session, p: Patient, t0: dt.datetime, t1: dt.datetime) -> chart.ChartData:
    """Everything the timeline draws between ``t0`` and ``t1``."""
    data = chart.ChartData(
        t0=t0,
        t1=t1,
        infusion_at=p.infusion_at,
        scale_names={k: labels.scale_short(k) for k in labels.named_scales()},
    )
    flows: list[ClinicalEvent] = []
    for e in queries.current_events(s, p.id, CHART_CODES, since=t0, until=t1):
        if e.code in ("temperature", "sbp", "dbp", "spo2") and e.value_num is not None:
            getattr(data, "temperature" if e.code == "temperature" else e.code).append(
                chart.Point(e.time, e.value_num)
            )
        elif e.code == "o2_flow":
            flows.append(e)
        elif e.code in MARKER_CODES:
            name = labels.token(e.value)
            text = f"{name} {dose_text(e)} — {fmt_datetime(e.time)}".replace("  ", " ")
            data.markers.append(chart.Marker(e.code, e.time, text))
    for run in queries.interval_rows(queries.current_events(s, p.id, queries.INTERVAL_CODES, until=t1)):
        if run.end is not None and run.end < t0:
            continue
        e = run.event
        if e.code == "oxygen":
            flow = next(
                (f for f in reversed(flows) if f.time <= (run.end or t1) and f.time >= run.start), None
            )
            detail = (
                f"{fmt_number(flow.value_num)} L/min"
                if flow is not None and flow.value_num is not None
                else ""
            )
            data.oxygen.append(chart.Span(labels.token(e.value), max(run.start, t0), run.end, detail))
        else:
            data.vasopressors.append(
                chart.Span(labels.token(e.value), max(run.start, t0), run.end, dose_text(e))
            )
    records = list(
        s.scalars(
            select(GradeRecord)
            .where(GradeRecord.patient_id == p.id, GradeRecord.time <= t1)
            .order_by(GradeRecord.time, GradeRecord.id)
        )
    )
    last_before: dict[str, GradeRecord] = {}
    for r in records:
        if r.time < t0:
            last_before[r.scale] = r
        else:
            data.grades.append(chart.GradeStep(r.scale, r.time, r.grade, r.grade_hi, r.complete))
    for scale, r in last_before.items():
        data.grades.append(chart.GradeStep(scale, t0, r.grade, r.grade_hi, r.complete))
    for ep in s.scalars(
        select(Episode).where(
            Episode.patient_id == p.id,
            Episode.onset_at <= t1,
            (Episode.resolved_at.is_(None)) | (Episode.resolved_at >= t0),
        )
    ):
        data.episodes.append(chart.EpisodeSpan(ep.scale, max(ep.onset_at, t0), ep.resolved_at, ep.peak_grade))
    return data


# ----------------------------------------------------------------------------- patient page
@dataclass
class GradeView:
    grade: GradePublic
    badge: queries.Badge
    lang: Lang = "en"

    def _texts(self, msgs: list[Msg], plain: list[str]) -> list[tuple[Markup, str]]:
        """(HTML, language of the text) in the page language, from the grade's texts as data; a
        text the rules do not yet give in French (or a grade without texts) stays English."""
        if self.grade.texts is None:
            return [(Markup(escape(t)), "en") for t in plain]
        return [(Markup(messages.html(m, self.lang)), _lang_of(m, self.lang)) for m in msgs]

    @property
    def title(self) -> str:
        t = self.grade.texts
        return messages.render(t.title, self.lang) if t is not None else self.grade.title

    @property
    def title_lang(self) -> str:
        t = self.grade.texts
        return _lang_of(t.title, self.lang) if t is not None else "en"

    @property
    def reasons(self) -> list[tuple[Markup, str]]:
        return self._texts(self.grade.texts.reasons if self.grade.texts else [], self.grade.reasons)

    @property
    def notes(self) -> list[tuple[Markup, str]]:
        return self._texts(self.grade.texts.notes if self.grade.texts else [], self.grade.notes)

    @property
    def fired(self) -> list[tuple[str, Markup, str, int | None]]:
        """(rule id, HTML, language, grade) of each rule that fired."""
        out = []
        for h, hit in zip(self.grade.fired, self._hits(), strict=True):
            out.append((h.rule, *hit, h.grade))
        return out

    def _hits(self) -> list[tuple[Markup, str]]:
        t = self.grade.texts
        if t is None or len(t.fired) != len(self.grade.fired):
            return [(Markup(escape(h.text)), "en") for h in self.grade.fired]
        return self._texts(t.fired, [])

    @property
    def missing(self) -> list[tuple[str, str]]:
        return [(m, labels.finding_text(m)) for m in self.grade.missing]

    @property
    def deciding(self) -> list[str]:
        return [labels.domain(self.grade.scale, d) for d in self.grade.deciding_domains]

    @property
    def set_aside(self) -> tuple[str, str] | None:
        """(text, language) of the recorded data the grade left out because it contradicted the
        rest of the record (the scale's refusal, kept by the service in English and French), or
        None: a grade computed without part of the record must say so."""
        error = self.grade.inputs.get("error")
        if not isinstance(error, str):
            return None
        error_fr = self.grade.inputs.get("error_fr")
        if self.lang == "fr" and isinstance(error_fr, str):
            return error_fr, "fr"
        return error, "en"

    @property
    def inputs(self) -> list[tuple[str, str, str, str]]:
        """(finding, value, how it was obtained, language of that text) for each input the grade
        used; in French when the input says it in French (``rule_fr``: the CTCAE laboratory
        terms say which reference interval and baseline they used)."""
        out = []
        for name, spec in sorted(self.grade.inputs.items()):
            if not isinstance(spec, dict):
                continue
            fr = self.lang == "fr" and isinstance(spec.get("rule_fr"), str)
            rule = str(spec["rule_fr"] if fr else spec.get("rule", ""))
            out.append(
                (labels.finding_text(name), _input_value(spec.get("value")), rule, "fr" if fr else "en")
            )
        return out


def _input_value(v: Any) -> str:
    if isinstance(v, bool):
        return gettext("yes") if v else gettext("no")
    if isinstance(v, (int, float)):
        return fmt_number(v)
    if isinstance(v, list):
        return ", ".join(labels.token(str(x)) for x in v) or gettext("none")
    if isinstance(v, dict):
        return ", ".join(f"{labels.finding_text('ice_items.' + k)}: {x}" for k, x in v.items())
    return labels.token(str(v)) if v is not None else "—"


def _lang_of(m: Msg, lang: Lang) -> str:
    """The language ``m`` is shown in: English while any part of it is not yet translated."""
    return "en" if any(x.id == "verbatim" for x in messages.walk(m)) else lang


def grade_views(s: Session, p: Patient, now: dt.datetime, lang: Lang = "en") -> list[GradeView]:
    trends = queries.grade_trends(s, [p.id], now)
    out = []
    for g in current_grades(s, p, now):
        badge = queries.badge_of(g.scale, g.grade, g.grade_range, g.status, trends.get((p.id, g.scale)))
        out.append(GradeView(g, badge, lang))
    return out


def pathway_view(
    p: Patient,
    now: dt.datetime,
    lang: Lang,
    grades: list[GradeView],
    audience: str,
    jurisdiction: Jurisdiction | None,
) -> tuple[PathwayStatus | None, str | None]:
    """The pathway status of a CAR-T patient with a day 0 (None and a note otherwise).

    The label periods are those of the service's jurisdiction (``IMMUNOTOX_JURISDICTION``) and the
    patient's product; without either the status says so and gives no period.
    """
    if p.therapy_class not in queries.PATHWAY_THERAPIES:
        return None, gettext("The CAR-T pathway does not apply to this therapy.")
    if p.infusion_at is None:
        return None, gettext("No day 0 recorded: the pathway cannot be dated.")
    crs = next((v.badge.grade or 0 for v in grades if v.grade.scale == "astct2019:crs"), 0)
    icans = next((v.badge.grade or 0 for v in grades if v.grade.scale == "astct2019:icans"), 0)
    d0, today = local(p.infusion_at).date(), local(now).date()
    try:
        return (
            pathway.status(
                d0,
                today=today,
                phase=p.pathway_phase,
                jurisdiction=jurisdiction,
                product=p.product,
                crs_grade=min(crs, 4),
                icans_grade=min(icans, 4),
                lang=lang,
                info_audience=audience,
            ),
            None,
        )
    except PathwayError as exc:  # the pathway's refusal in the page's language
        return None, messages.error_message(exc, lang)


def active_alerts(s: Session, patient_id: str) -> list[Alert]:
    return list(
        s.scalars(
            select(Alert)
            .where(Alert.patient_id == patient_id, Alert.status.in_(("open", "acknowledged")))
            .order_by(Alert.priority_rank.desc(), Alert.created_at.desc())
        )
    )


def recommendations(
    s: Session,
    principal: auth.Principal,
    p: Patient,
    now: dt.datetime,
    lang: Lang,
    jurisdiction: Jurisdiction | None = None,
) -> RecommendationsOut:
    """The recommendation panel: the same use case as the API's."""
    return recommend_case.recommendations(s, principal, p.id, now=now, lang=lang, jurisdiction=jurisdiction)


def recent_events(s: Session, patient_id: str, limit: int = 25) -> list[ClinicalEvent]:
    q = (
        select(ClinicalEvent)
        .where(ClinicalEvent.patient_id == patient_id, is_current_event())
        .order_by(ClinicalEvent.time.desc(), ClinicalEvent.id.desc())
        .limit(limit)
    )
    return list(s.scalars(q))


# ----------------------------------------------------------------------------- bedside
@dataclass(frozen=True)
class VitalField:
    code: str
    label: str
    unit: str
    unit_label: str
    step: str
    lo: float | None
    hi: float | None
    last: ClinicalEvent | None


VITALS: tuple[tuple[str, str, str], ...] = (
    ("temperature", "°C", "0.1"),
    ("sbp", "mmHg", "1"),
    ("dbp", "mmHg", "1"),
    ("heart_rate", "/min", "1"),
    ("resp_rate", "/min", "1"),
    ("spo2", "%", "1"),
)
CARRY_FORWARD_H = 24


def vital_fields(s: Session, p: Patient, now: dt.datetime) -> list[VitalField]:
    """The vitals entry fields with the last value of each (carried forward when recent)."""
    vocab = codes.vocabulary()
    last = queries.latest_by_code(
        s, p.id, [c for c, _, _ in VITALS], since=now - dt.timedelta(hours=CARRY_FORWARD_H), until=now
    )
    out = []
    for code, unit_label, step in VITALS:
        spec = vocab[code]
        lo, hi = spec.range if spec.range else (None, None)
        out.append(
            VitalField(code, labels.code_text(code), spec.unit, unit_label, step, lo, hi, last.get(code))
        )
    return out


def ice_item_max() -> dict[str, int]:
    """Points of each ICE item, from the findings vocabulary (``ice_items.fields``)."""
    spec = finding_vocabulary()["ice_items"]
    return {k: int(hi) for k, (_lo, hi) in spec.fields.items()}


def token_values(code: str) -> tuple[str, ...]:
    """The tokens the service accepts for ``code`` (from ``data/observations.toml``)."""
    return codes.vocabulary()[code].tokens


def pediatric_age_limit() -> float:
    """Below this age ICANS is graded with CAPD instead of ICE (ASTCT rule table)."""
    return astct2019_spec.table().icans.pediatric_below_age_years


NEURO_CODES = (
    "ice_score",
    "ice_orientation",
    "ice_naming",
    "ice_commands",
    "ice_writing",
    "ice_attention",
    "capd_score",
    "consciousness",
    "seizure",
    "motor",
    "cerebral_edema",
    "raised_icp_signs",
)


def recent_assessments(
    s: Session, patient_id: str, limit: int = 5
) -> list[tuple[dt.datetime, list[ClinicalEvent]]]:
    """The latest neurological assessments: entries grouped by assessment (or, for rows that came
    without one, e.g. from a device or an import, by time), newest first."""
    rows = list(
        s.scalars(
            select(ClinicalEvent)
            .where(
                ClinicalEvent.patient_id == patient_id,
                ClinicalEvent.code.in_(NEURO_CODES),
                is_current_event(),
            )
            .order_by(ClinicalEvent.time.desc(), ClinicalEvent.id.desc())
            .limit(limit * len(NEURO_CODES))
        )
    )
    groups: dict[tuple[Any, ...], tuple[dt.datetime, list[ClinicalEvent]]] = {}
    for e in rows:
        key = ("a", e.assessment_id) if e.assessment_id is not None else ("t", e.time)
        if key not in groups:
            if len(groups) == limit:
                break
            groups[key] = (e.time, [])
        groups[key][1].append(e)
    order = {c: i for i, c in enumerate(NEURO_CODES)}
    return [(t, sorted(evs, key=lambda e: order[e.code])) for t, evs in groups.values()]


# ----------------------------------------------------------------------------- alerts
@dataclass
class AlertRow:
    alert: Alert
    patient_name: str
    unit_id: str
    acknowledged_by: str | None
    can_act: bool


def alert_rows(
    s: Session,
    principal: auth.Principal,
    *,
    status: str,
    unit: str | None,
    patient_id: str | None,
    limit: int = 200,
) -> list[AlertRow]:
    """Alerts of the units ``principal`` may see, highest priority first, then newest."""
    pairs = alerts.visible_alerts(
        s, principal, status=status, unit_id=unit, patient_id=patient_id, limit=limit
    )
    ack_ids = {a.acknowledged_by for a, _ in pairs if a.acknowledged_by is not None}
    names: dict[int, str] = {}
    if ack_ids:
        names = {
            uid: name
            for uid, name in s.execute(select(User.id, User.display_name).where(User.id.in_(ack_ids)))
        }
    return [
        AlertRow(
            alert=a,
            patient_name=p.display_name or p.id,
            unit_id=p.unit_id,
            acknowledged_by=names.get(a.acknowledged_by) if a.acknowledged_by is not None else None,
            can_act=auth.can_act_on_alerts(principal, p),
        )
        for a, p in pairs
    ]


def alert_title(a: Alert, lang: Lang) -> str:
    return a.title_fr if lang == "fr" else a.title


def alert_message(a: Alert, lang: Lang) -> str:
    """The alert's message in ``lang``; for a grade alert in French, the deciding domains and the
    missing inputs (kept in ``params``) are named with the UI's labels, since the grading core
    explains itself in English."""
    if lang != "fr":
        return a.message
    text = a.message_fr
    params = a.params or {}
    deciding = [labels.domain(a.scale, d) for d in params.get("deciding") or []]
    if deciding:
        text += " " + gettext("Decided by: %(what)s.") % {"what": ", ".join(deciding)}
    missing = [labels.finding_text(m) for m in params.get("missing") or []]
    if missing:
        text += " " + gettext("Missing: %(what)s.") % {"what": ", ".join(missing)}
    return text


def alert_recommendation(a: Alert, lang: Lang) -> dict[str, Any]:
    """The recommendation stored with alert ``a`` (computed for the site's jurisdiction when it was
    raised), with its texts in ``lang``; {} when none is stored."""
    return recommend.in_lang(a.recommendation, lang) if a.recommendation else {}


# ----------------------------------------------------------------------------- portal
def symptom_choices(lang: Lang, therapy_class: str) -> list[tuple[str, str]]:
    """(token, label) of the symptoms a patient of ``therapy_class`` may report, in the order and
    language of the class's handout file (``immunotox.handouts``)."""
    return [(k, v[lang]) for k, v in selfreport.symptom_labels(therapy_class).items()]


def patient_handout(therapy_class: str) -> handouts.Handout:
    """The when-to-call handout of the patient's therapy class (the file the triage reads)."""
    return handouts.handout(therapy_class)


def own_reports(s: Session, patient_id: str, limit: int = 20) -> list[ClinicalEvent]:
    q = (
        select(ClinicalEvent)
        .where(
            ClinicalEvent.patient_id == patient_id,
            ClinicalEvent.source == "patient",
            is_current_event(),
        )
        .order_by(ClinicalEvent.time.desc(), ClinicalEvent.id.desc())
        .limit(limit)
    )
    return list(s.scalars(q))


def unit_phone(s: Session, p: Patient) -> str | None:
    unit = s.get(CareUnit, p.unit_id)
    return unit.phone if unit is not None else None


def fever_threshold_c() -> float:
    """The fever threshold the triage uses (the ASTCT rule table, via the service)."""
    return selfreport.fever_threshold_c()


def ungraded_view(s: Session, p: Patient, lang: Lang) -> dict[str, Any] | None:
    """The patient page's « recorded but not graded » section: for each scale of another therapy
    class that would read findings stored for ``p``, why they are not graded (texts from
    ``data/messages.toml`` ``[ungraded]``, in the page's language); None when there is none."""
    found = ungraded_case.ungraded(s, p)
    if not found:
        return None
    items = [
        {"scale": u.scale, "text": u.text(lang, {st.code: fmt_datetime(st.latest) for st in u.stored})}
        for u in found
    ]
    return {
        "title": messages.render(ungraded_case.T("ungraded.title"), lang),
        "entries": items,
    }
