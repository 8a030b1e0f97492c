"""The ward dashboard and its JSON refresh (``/ward``, ``/ward/poll``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import queries, security
from ..pages import Page, open_alerts, render, render_text
from ..pages import json as json_response
from ._guards import staff_page, unit_param

router = APIRouter(include_in_schema=False)


@router.get("/ward")
def ward_page(request: Request, unit: str | None = None) -> Response:
    page, refused = staff_page(request)
    if refused is not None:
        return refused
    assert page.principal is not None
    settings = security.app_settings(request)
    with security.app_db(request).session() as s:
        ward = queries.ward(
            s, page.principal, now=page.now, settings=settings, lang=page.lang, unit=unit_param(unit)
        )
        ward.stamp = queries.ward_stamp(s, page.principal, page.now, ward.unit)
    return render(page, "ward.html", {"ward": ward})


@router.get("/ward/poll")
def ward_poll(request: Request, unit: str | None = None, stamp: str | None = None) -> Response:
    """``{"stamp", "changed"}`` and, when something changed, the new rows (``html``)."""
    page = Page.start(request)
    if page.principal is None:
        return json_response(page, {"error": "login", "login": "/login"}, 401)
    if not page.is_staff:
        return json_response(page, {"error": "forbidden"}, 403)
    settings = security.app_settings(request)
    with security.app_db(request).session() as s:
        units = dict(queries.visible_unit_list(s, page.principal))
        chosen = unit if unit in units else None
        current = queries.ward_stamp(s, page.principal, page.now, chosen)
        if stamp == current:
            return json_response(page, {"stamp": current, "changed": False})
        ward = queries.ward(s, page.principal, now=page.now, settings=settings, lang=page.lang, unit=chosen)
    return json_response(
        page,
        {
            "stamp": current,
            "changed": True,
            "html": render_text(page, "_ward_rows.html", {"ward": ward}),
            "status": render_text(page, "_ward_status.html", {"ward": ward}),
            "counts": ward.counts,
            "open_alerts": open_alerts(page),
        },
    )
