"""The alert inbox of the care team and the acknowledgement form."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...service.schemas import AckIn
from ...service.usecases import alerts
from .. import queries, security, views
from ..pages import Page, render, see_other
from ._guards import csrf_refused, staff_page, unit_param
from ._submit import FormDep, call_service, explain_error, new_key

router = APIRouter(include_in_schema=False)


ALERT_STATUSES = ("active", "open", "acknowledged", "resolved", "all")


@router.get("/alerts")
def alerts_page(
    request: Request,
    status: str = "active",
    unit: str | None = None,
    patient: str | None = None,
    done: str | None = None,
) -> Response:
    page, refused = staff_page(request)
    if refused is not None:
        return refused
    acked = int(done) if done is not None and done.isdigit() else None
    return _alerts(page, status, unit_param(unit), patient or None, done=acked)


def _alerts(
    page: Page,
    status: str,
    unit: str | None,
    patient: str | None,
    *,
    done: int | None = None,
    problem: str | None = None,
    http_status: int = 200,
) -> Response:
    assert page.principal is not None
    status = status if status in ALERT_STATUSES else "active"
    with security.app_db(page.request).session() as s:
        units = queries.visible_unit_list(s, page.principal)
        unit = unit if unit in dict(units) else None
        rows = views.alert_rows(s, page.principal, status=status, unit=unit, patient_id=patient)
    ctx = {
        "rows": rows,
        "status": status,
        "statuses": ALERT_STATUSES,
        "units": units,
        "unit": unit,
        "patient": patient,
        "done": done,
        "problem": problem,
        "alert_title": views.alert_title,
        "alert_message": views.alert_message,
        "alert_recommendation": views.alert_recommendation,
        "key": new_key,
    }
    return render(page, "alerts.html", ctx, http_status)


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge_alert(request: Request, alert_id: int, form: FormDep) -> Response:
    """Acknowledge with an optional comment (the service audits who, when and the comment)."""
    page, refused = staff_page(request)
    if refused is not None:
        return refused
    if not page.csrf_ok(form.get(security.CSRF_FIELD)):
        return csrf_refused(page)
    back_status = form.get("status") or "active"
    out = call_service(
        page,
        alerts.acknowledge,
        form.get("form_key"),
        alert_id,
        AckIn(comment=form.get("comment")[:2000] or None),
    )
    if not out.ok:
        assert out.error is not None
        return _alerts(
            page,
            back_status,
            unit_param(form.get("unit")),
            form.get("patient") or None,
            problem=explain_error(out.error),
            http_status=out.error.status,
        )
    query = f"?status={back_status}&done={alert_id}"
    if form.get("unit"):
        query += f"&unit={form.get('unit')}"
    return see_other(page, "/alerts" + query)
