"""The patient portal: the pathway, the handout, past reports, and the self-report with its triage
answer."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...service.models import Patient
from ...service.schemas import SelfReportOut
from ...service.usecases import events
from .. import forms, queries, security, views
from ..i18n import gettext as _
from ..pages import Page, error, render, see_other, to_login
from ._guards import csrf_refused
from ._submit import FormDep, call_service, explain_error, new_key

router = APIRouter(include_in_schema=False)


def _portal(
    page: Page,
    *,
    triage: SelfReportOut | None = None,
    errors: dict[str, str] | None = None,
    form: forms.Submitted | None = None,
    status: int = 200,
) -> Response:
    assert page.principal is not None and page.principal.patient_id is not None
    with security.app_db(page.request).session() as s:
        p = s.get(Patient, page.principal.patient_id)
        if p is None:
            return error(page, 404, _("Your record was not found: call the unit."))
        grades: list[views.GradeView] = []
        status_view, note = views.pathway_view(
            p, page.now, page.lang, grades, "patient", security.app_settings(page.request).jurisdiction
        )
        ctx = {
            "patient": p,
            "phone": views.unit_phone(s, p),
            "symptoms": views.symptom_choices(page.lang, p.therapy_class),
            "symptom_names": dict(views.symptom_choices(page.lang, p.therapy_class)),
            "handout": views.patient_handout(p.therapy_class),
            "pathway": status_view,
            "pathway_note": note,
            "reports": views.own_reports(s, p.id),
            "event_value": views.event_value,
            "fever_c": views.fever_threshold_c(),
            "triage": triage,
            "errors": errors or {},
            "form": form,
            "key": new_key(),
            "day": queries.day_label(queries.day_of(p, page.now)),
        }
    return render(page, "portal.html", ctx, status)


@router.get("/portal")
def portal_page(request: Request) -> Response:
    page = Page.start(request)
    if page.principal is None:
        return to_login(page)
    if page.principal.role != "patient" or page.principal.patient_id is None:
        return see_other(page, "/ward")
    return _portal(page)


#: where the form shows a refusal of each field of the report (any other field, such as the
#: report's time, above the send button: a refusal is never left unsaid)
_SHOWN_AT = {
    "temperature": "temperature",
    "temperature_unit": "temperature",
    "value": "temperature",
    "unit": "temperature",
    "symptoms": "symptoms",
    "note": "note",
}


def _shown_at(field_name: str) -> str:
    """The place on the form where a refusal of ``field_name`` (``body.note``, ``note``) is shown."""
    return _SHOWN_AT.get(field_name.rsplit(".", 1)[-1], "form")


@router.post("/portal/report")
def portal_report(request: Request, form: FormDep) -> Response:
    page = Page.start(request)
    if page.principal is None:
        return to_login(page)
    if page.principal.role != "patient" or page.principal.patient_id is None:
        return error(page, 403, _("The self-report is for patients."))
    if not page.csrf_ok(form.get(security.CSRF_FIELD)):
        return csrf_refused(page)
    with security.app_db(request).session() as s:
        me = s.get(Patient, page.principal.patient_id)
        if me is None:
            return error(page, 404, _("Your record was not found: call the unit."))
        allowed = {k for k, _v in views.symptom_choices(page.lang, me.therapy_class)}
    try:
        body = forms.self_report(form, page.now, allowed)
    except forms.FormError as exc:
        return _portal(page, errors={_shown_at(exc.field): exc.message}, form=form, status=422)
    out = call_service(
        page,
        events.self_report,
        form.get("form_key"),
        page.principal.patient_id,
        body,
    )
    if not out.ok:
        assert out.error is not None
        field_name = out.error.errors[0].field if out.error.errors else "form"
        return _portal(
            page, errors={_shown_at(field_name): explain_error(out.error)}, form=form, status=out.error.status
        )
    return _portal(page, triage=SelfReportOut.model_validate(out.body))
