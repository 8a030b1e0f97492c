"""Forms in, use cases called: the submitted form, an idempotency key for each rendered form, a
use case run as the session's user (CSRF already checked), and a refusal explained to people."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from ...service.problems import ApiError
from ...service.usecases.base import Call, Written
from .. import forms, i18n, security
from ..i18n import gettext as _
from ..pages import Page

_FORM_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


async def form_data(request: Request) -> forms.Submitted:
    """The submitted form (read once, before the sync route runs in its worker thread)."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    lists = {k: [v for v in form.getlist(k) if isinstance(v, str)] for k in form}
    return forms.Submitted(values, lists)


FormDep = Annotated[forms.Submitted, Depends(form_data)]


def new_key() -> str:
    """An idempotency key for one rendered form."""
    return secrets.token_urlsafe(18)


@dataclass
class Outcome:
    """The answer of a service route called on behalf of the session."""

    body: Any = None
    replayed: bool = False
    error: ApiError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def call_service(page: Page, use_case: Callable[..., Written], key: str | None, *args: Any) -> Outcome:
    """Run a use case as the session's user (CSRF already checked by the caller), under the
    form's idempotency key (``web-<key>``): a form submitted twice is stored once."""
    request = page.request
    assert page.principal is not None
    call = Call(
        db=security.app_db(request),
        principal=page.principal,
        ctx=security.request_context(request),
        now=security.app_clock(request).now(),
        settings=security.app_settings(request),
        target=f"{request.method} {request.url.path}",
        key=f"web-{key}" if key and _FORM_KEY.match(key) else None,
    )
    try:
        written = use_case(call, *args)
    except ApiError as exc:  # its texts (detail, each field's message) in the page's language
        return Outcome(error=exc.in_lang(i18n.current()))
    return Outcome(body=written.content, replayed=written.replayed)


def explain_error(exc: ApiError) -> str:
    """A message for people: the service's own words for input errors, ours for access."""
    if exc.status == 403:
        return _("You may not do this for this patient.")
    if exc.status == 404:
        return _("Not found, or not in your units.")
    if any(e.field.startswith("header.") for e in exc.errors):
        return _("This form was already submitted with other values: reload the page to enter new ones.")
    detail = exc.in_lang(i18n.current()).detail  # the service's words in the page's language
    if exc.status == 409:
        return _("Already done, or changed meanwhile: %(detail)s") % {"detail": detail}
    return _("Refused: %(detail)s") % {"detail": detail}
