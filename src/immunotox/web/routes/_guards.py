"""Who may open a page or submit a form: the care team's pages, a writer's form (CSRF-checked),
a patient of the user's units; the refusals as pages."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from ...service.models import Patient
from ...service.problems import ApiError
from ...service.usecases import base
from .. import forms, security
from ..i18n import gettext as _
from ..pages import Page, error, to_login


def staff_page(request: Request) -> tuple[Page, Response | None]:
    """The page, or the login (no session) or a 403 page (not the care team) instead."""
    page = Page.start(request)
    if page.principal is None:
        return page, to_login(page)
    if not page.is_staff:
        return page, error(page, 403, _("This page is for the care team."))
    return page, None


def writer_page(request: Request, patient_id: str, form: forms.Submitted) -> tuple[Page, Response | None]:
    """A staff page whose form carries a valid CSRF token (the use case checks the patient)."""
    page, refused = staff_page(request)
    if refused is not None:
        return page, refused
    if not page.csrf_ok(form.get(security.CSRF_FIELD)):
        return page, csrf_refused(page)
    return page, None


def load_patient(s: Session, page: Page, patient_id: str, need: base.Need = "read") -> Patient | Response:
    assert page.principal is not None
    try:
        return base.get_patient(s, page.principal, patient_id, need)
    except ApiError as exc:
        status = 404 if exc.status == 404 else 403
        msg = (
            _("No such patient in your units.")
            if status == 404
            else _("You may not do this for this patient.")
        )
        return error(page, status, msg)


def csrf_refused(page: Page) -> Response:
    return error(
        page, 403, _("The form has expired or did not come from this site: reload the page and try again.")
    )


def unit_param(value: str | None) -> str | None:
    """A unit chosen in a query or form (empty: every unit)."""
    return value or None
