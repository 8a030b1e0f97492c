"""The bedside page and its entry forms: vital signs, assessments, administrations and stops,
each written through the events use cases and shown back with the new grades and alerts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from ...service import auth
from ...service.models import ClinicalEvent, Patient
from ...service.schemas import (
    AlertPublic,
    AssessmentOut,
    BatchObservationIn,
    GradePublic,
    IngestOut,
    ObservationBatchIn,
    StopIn,
)
from ...service.usecases import base, events
from .. import forms, i18n, labels, queries, security, views
from ..i18n import gettext as _
from ..pages import Page, render
from ._guards import load_patient, staff_page, writer_page
from ._submit import FormDep, call_service, explain_error, new_key

router = APIRouter(include_in_schema=False)


@dataclass
class Saved:
    """What a bedside write stored and changed, to show after saving."""

    what: str
    lines: list[str] = field(default_factory=list)
    grades: list[queries.Badge] = field(default_factory=list)
    alerts: list[AlertPublic] = field(default_factory=list)
    replayed: bool = False


def _badges(grades: list[GradePublic]) -> list[queries.Badge]:
    return [queries.badge_of(g.scale, g.grade, g.grade_range, g.status, None) for g in grades]


def bedside(
    page: Page,
    s: Session,
    p: Patient,
    *,
    saved: Saved | None = None,
    errors: dict[str, str] | None = None,
    form: forms.Submitted | None = None,
    status: int = 200,
) -> Response:
    assert page.principal is not None
    now = page.now
    recs = views.recommendations(
        s, page.principal, p, now, page.lang, security.app_settings(page.request).jurisdiction
    )
    age = queries.age_years(s, p, now)
    ctx = {
        "patient": p,
        "unit": queries.unit_of(s, p),
        "day": queries.day_label(queries.day_of(p, now)),
        "grades": views.grade_views(s, p, now, page.lang),
        "vitals": views.vital_fields(s, p, now),
        "ice_items": views.ice_item_max(),
        "consciousness": views.token_values("consciousness"),
        "seizure": views.token_values("seizure"),
        "motor": views.token_values("motor"),
        "cerebral_edema": views.token_values("cerebral_edema"),
        "devices": [d for d in views.token_values("oxygen") if d != "none"],
        "pressors": views.token_values("vasopressor"),
        "antipyretics": views.token_values("antipyretic"),
        "steroids": views.token_values("corticosteroid"),
        "running": queries.running_now(s, p.id, now),
        "toci": recs.tocilizumab,
        "rec_notes": recs.notes,
        "age": age,
        "pediatric": age is not None and age < views.pediatric_age_limit(),
        "pediatric_limit": views.pediatric_age_limit(),
        "assessments": views.recent_assessments(s, p.id),
        "can_write": auth.can_write_clinical(page.principal, p),
        "saved": saved,
        "errors": errors or {},
        "form": form,
        "key": new_key,
        "event_value": views.event_value,
        "dose_text": views.dose_text,
        "alert_title": views.alert_title,
    }
    return render(page, "bedside.html", ctx, status)


@router.get("/patients/{patient_id}/bedside")
def bedside_page(request: Request, patient_id: str) -> Response:
    page, refused = staff_page(request)
    if refused is not None:
        return refused
    with security.app_db(request).session() as s:
        p = load_patient(s, page, patient_id)
        if isinstance(p, Response):
            return p
        return bedside(page, s, p)


def _rerender(page: Page, patient_id: str, **kwargs: Any) -> Response:
    with security.app_db(page.request).session() as s:
        p = load_patient(s, page, patient_id)
        if isinstance(p, Response):
            return p
        return bedside(page, s, p, **kwargs)


@router.post("/patients/{patient_id}/vitals")
def save_vitals(request: Request, patient_id: str, form: FormDep) -> Response:
    """Vital signs: empty fields are not saved; a value equal to the one carried forward is saved
    with a note naming the reading it repeats."""
    page, refused = writer_page(request, patient_id, form)
    if refused is not None:
        return refused
    from ...service import codes

    vocab = codes.vocabulary()
    rows: list[BatchObservationIn] = []
    shown: list[str] = []
    try:
        t = forms.when(form, "time", page.now)
        with security.app_db(request).session() as s:
            p = load_patient(s, page, patient_id, "clinical")
            if isinstance(p, Response):
                return p
            for code, unit_label, _step in views.VITALS:
                x = forms.number(form, code)
                if x is None:
                    continue
                note = None
                prev_id = form.get(f"prev_{code}")
                prev = s.get(ClinicalEvent, int(prev_id)) if prev_id.isdigit() else None
                carried = (
                    prev is not None
                    and prev.patient_id == p.id
                    and prev.code == code
                    and prev.value_num is not None
                    and abs(prev.value_num - x) < 1e-9
                )
                if carried and prev is not None:
                    note = f"carried forward: unchanged since {prev.time.isoformat()} (event {prev.id})"
                rows.append(
                    BatchObservationIn(
                        patient_id=p.id, code=code, time=t, value=x, unit=vocab[code].unit, note=note
                    )
                )
                line = f"{labels.code_text(code)}: {i18n.fmt_number(x)} {unit_label}"
                if carried:
                    line += " (" + _("carried forward") + ")"
                shown.append(line)
    except forms.FormError as exc:
        return _rerender(page, patient_id, errors={exc.field: exc.message}, form=form, status=422)
    if not rows:
        return _rerender(page, patient_id, errors={"vitals": _("Nothing entered.")}, form=form, status=422)
    out = call_service(
        page,
        events.record_batch,
        form.get("form_key"),
        ObservationBatchIn(observations=rows),
        "now",  # regraded at once: the nurse sees the new grades (and the team the alerts)
    )
    if not out.ok:
        assert out.error is not None
        errs = {"vitals": explain_error(out.error)}
        for e in out.error.errors:  # observations.<i>.value -> the field of that code
            m = re.match(r"observations\.(\d+)\.", e.field)
            if m and int(m.group(1)) < len(rows):
                errs[rows[int(m.group(1))].code] = e.message
        return _rerender(page, patient_id, errors=errs, form=form, status=out.error.status)
    with security.app_db(request).session() as s:
        patient = s.get(Patient, patient_id)
        assert patient is not None  # the write above succeeded for this patient
        grades = _badges(base.current_grades(s, patient, page.now))
    saved = Saved(_("Vital signs saved"), shown, grades, [], out.replayed)
    return _rerender(page, patient_id, saved=saved)


@router.post("/patients/{patient_id}/assessments")
def save_assessment(request: Request, patient_id: str, form: FormDep) -> Response:
    page, refused = writer_page(request, patient_id, form)
    if refused is not None:
        return refused
    try:
        body = forms.assessment(form, page.now, views.ice_item_max())
    except forms.FormError as exc:
        return _rerender(page, patient_id, errors={exc.field: exc.message}, form=form, status=422)
    out = call_service(
        page,
        events.record_assessment,
        form.get("form_key"),
        patient_id,
        body,
    )
    if not out.ok:
        assert out.error is not None
        return _rerender(
            page,
            patient_id,
            errors={"assessment": explain_error(out.error)},
            form=form,
            status=out.error.status,
        )
    res = AssessmentOut.model_validate(out.body)
    a = res.assessment
    lines = []
    if a.ice_score is not None:
        lines.append(_("ICE score %(score)d/10") % {"score": a.ice_score})
    elif a.items:
        lines.append(
            _("Partial ICE: %(n)d of %(total)d items entered")
            % {"n": len(a.items), "total": len(views.ice_item_max())}
        )
    if a.capd_score is not None:
        lines.append(_("CAPD score %(score)d") % {"score": a.capd_score})
    for name in ("consciousness", "seizure", "motor", "cerebral_edema"):
        value = getattr(a, name)
        if value is not None:
            lines.append(f"{labels.finding_text(name)}: {labels.token(value)}")
    saved = Saved(_("Assessment saved"), lines, _badges(res.grades), res.alerts, out.replayed)
    return _rerender(page, patient_id, saved=saved)


@router.post("/patients/{patient_id}/administrations")
def save_administration(request: Request, patient_id: str, form: FormDep) -> Response:
    page, refused = writer_page(request, patient_id, form)
    if refused is not None:
        return refused
    try:
        body = forms.administration(form, page.now)
    except forms.FormError as exc:
        return _rerender(page, patient_id, errors={"admin": exc.message}, form=form, status=422)
    out = call_service(
        page,
        events.record_administration,
        form.get("form_key"),
        patient_id,
        body,
    )
    if not out.ok:
        assert out.error is not None
        return _rerender(
            page, patient_id, errors={"admin": explain_error(out.error)}, form=form, status=out.error.status
        )
    res = IngestOut.model_validate(out.body)
    e = res.stored[0]
    line = f"{labels.code_text(e.code)}: {labels.token(e.value)}"
    if e.dose is not None:
        line += f" {i18n.fmt_number(e.dose, 2)} {(e.dose_unit or '').replace('ug', 'µg')}"
    if body.o2_flow_l_min is not None:
        line += f", {i18n.fmt_number(body.o2_flow_l_min)} L/min"
    saved = Saved(_("Administration saved"), [line], _badges(res.grades), res.alerts, out.replayed)
    return _rerender(page, patient_id, saved=saved)


@router.post("/patients/{patient_id}/administrations/{event_id}/stop")
def stop_administration(request: Request, patient_id: str, event_id: int, form: FormDep) -> Response:
    page, refused = writer_page(request, patient_id, form)
    if refused is not None:
        return refused
    try:
        end = forms.when(form, "time", page.now)
    except forms.FormError as exc:
        return _rerender(page, patient_id, errors={"stop": exc.message}, status=422)
    out = call_service(
        page,
        events.stop_administration,
        form.get("form_key"),
        patient_id,
        event_id,
        StopIn(end_time=end),
    )
    if not out.ok:
        assert out.error is not None
        return _rerender(page, patient_id, errors={"stop": explain_error(out.error)}, status=out.error.status)
    res = IngestOut.model_validate(out.body)
    e = res.stored[0]
    stopped = _("stopped at %(time)s") % {"time": i18n.fmt_datetime(end)}
    line = f"{labels.code_text(e.code)}: {labels.token(e.value)} — {stopped}"
    saved = Saved(_("Stopped"), [line], _badges(res.grades), res.alerts, out.replayed)
    return _rerender(page, patient_id, saved=saved)
