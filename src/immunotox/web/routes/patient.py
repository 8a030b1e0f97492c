"""The patient page: timeline chart, grades with their reasons, alerts, advice and pathway."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...service import auth
from .. import chart, queries, security, views
from ..i18n import gettext as _
from ..pages import Page, error, render, see_other, to_login
from ._guards import load_patient

router = APIRouter(include_in_schema=False)


@router.get("/patients/{patient_id}")
def patient_page(request: Request, patient_id: str, hours: str = "72") -> Response:
    page = Page.start(request)
    if page.principal is None:
        return to_login(page)
    if page.principal.role == "patient":
        if page.principal.patient_id == patient_id:
            return see_other(page, "/portal")
        return error(page, 404, _("No such patient in your units."))
    if not page.is_staff:
        return error(page, 403, _("This page is for the care team."))
    window = int(hours) if hours.isdigit() and int(hours) in views.WINDOWS_H else 72
    with security.app_db(request).session() as s:
        p = load_patient(s, page, patient_id)
        if isinstance(p, Response):
            return p
        now = page.now
        t0 = now - dt.timedelta(hours=window)
        grades = views.grade_views(s, p, now, page.lang)
        data = views.chart_data(s, p, t0, now)
        status, pathway_note = views.pathway_view(
            p, now, page.lang, grades, "clinician", security.app_settings(request).jurisdiction
        )
        ctx = {
            "patient": p,
            "unit": queries.unit_of(s, p),
            "day": queries.day_label(queries.day_of(p, now)),
            "phase_title": queries.phase_title(
                queries.patient_phase(p, now, security.app_settings(request).jurisdiction), page.lang
            ),
            "grades": grades,
            "ungraded": views.ungraded_view(s, p, page.lang),
            "chart": chart.render(data),
            "chart_data": data,
            "chart_rows": chart.table_rows(data),
            "hours": window,
            "windows": views.WINDOWS_H,
            "alerts": views.active_alerts(s, p.id),
            "recs": views.recommendations(
                s, page.principal, p, now, page.lang, security.app_settings(request).jurisdiction
            ),
            "pathway": status,
            "pathway_note": pathway_note,
            "recent": views.recent_events(s, p.id),
            "event_value": views.event_value,
            "dose_text": views.dose_text,
            "alert_title": views.alert_title,
            "can_write": auth.can_write_clinical(page.principal, p),
        }
        return render(page, "patient.html", ctx)
