"""The ICANS grade of the bedside assessment being filled in (JSON, nothing stored)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ... import grade as grade_findings
from .. import forms, labels, queries, security, views
from ..i18n import gettext as _
from ..pages import Page
from ..pages import json as json_response
from ._guards import load_patient
from ._submit import FormDep

router = APIRouter(include_in_schema=False)


@router.post("/patients/{patient_id}/icans-preview")
def icans_preview(request: Request, patient_id: str, form: FormDep) -> Response:
    """The ICANS grade of the assessment being entered, by the grading core (nothing stored).

    The browser sends the form as it is filled; the answer is the grade the rule tables give for
    these entries alone (the saved grade also weighs the patient's other recent findings).
    """
    page = Page.start(request)
    if page.principal is None:
        return json_response(page, {"error": "login"}, 401)
    if not page.is_staff:
        return json_response(page, {"error": "forbidden"}, 403)
    supplied = request.headers.get(security.CSRF_HEADER) or form.get(security.CSRF_FIELD)
    if not page.csrf_ok(supplied):
        return json_response(page, {"error": "csrf"}, 403)
    with security.app_db(request).session() as s:
        p = load_patient(s, page, patient_id)
        if isinstance(p, Response):
            return json_response(page, {"error": "not found"}, 404)
        age = queries.age_years(s, p, page.now)
    item_max = views.ice_item_max()
    try:
        body = forms.assessment(form, page.now, item_max)
    except forms.NothingEntered:
        return json_response(page, {"entered": False, "summary": _("Nothing entered yet.")})
    except forms.FormError as exc:
        return json_response(page, {"entered": True, "error": exc.message, "field": exc.field}, 422)
    findings: dict[str, Any] = {}
    items = body.items.model_dump(exclude_none=True) if body.items else {}
    if items:
        findings["ice_items"] = items
    for name in ("capd_score", "consciousness", "seizure", "motor", "cerebral_edema", "raised_icp_signs"):
        value = getattr(body, name)
        if value is not None:
            findings[name] = value
    if age is not None:
        findings["age_years"] = age
    result = grade_findings("astct2019:icans", findings)
    badge = queries.badge_of("astct2019:icans", result.grade, result.grade_range, result.status, None)
    points = sum(items.values())
    ice_text = (
        _("ICE %(score)d/10") % {"score": points}
        if len(items) == len(item_max)
        else _("ICE partial: %(points)d points on %(n)d of %(total)d items")
        % {
            "points": points,
            "n": len(items),
            "total": len(item_max),
        }
        if items
        else ""
    )
    return json_response(
        page,
        {
            "entered": True,
            "ice_score": points if len(items) == len(item_max) else None,
            "ice_text": ice_text,
            "grade": result.grade,
            "range": list(result.grade_range) if result.grade_range is not None else None,
            "status": result.status,
            "badge": badge.text,
            "css": badge.css,
            "summary": badge.description,
            "status_text": labels.label(labels.STATUS, result.status),
            "missing": [labels.finding_text(m) for m in result.missing],
            "detail": (
                _("Not entered: %(list)s")
                % {"list": ", ".join(labels.finding_text(m) for m in result.missing)}
                if result.missing
                else _("All inputs entered.")
            ),
            "deciding": [labels.domain(result.scale, d) for d in result.deciding_domains],
            "rules": [h.text for h in result.fired],
        },
    )
