"""Rendering: the Jinja2 environment, the per-request page context and the HTML responses.

Every page response carries a strict Content-Security-Policy (scripts, styles and images from
this origin only: nothing is loaded from a CDN), ``no-store`` caching (patient data), and the
CSRF cookie when an anonymous browser has none yet.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import func, select

from .. import __version__
from ..service import auth
from ..service.models import Alert, Patient
from . import i18n, labels, security

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
# the page's own headers; X-Content-Type-Options, Referrer-Policy and HSTS are added to every
# response of the service by immunotox.service.security_headers
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("immunotox.web", "templates"),
        autoescape=select_autoescape(["html", "svg"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(gettext=i18n.gettext, ngettext=i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(
        dt=i18n.fmt_datetime,
        time=i18n.fmt_time,
        date=i18n.fmt_date,
        num=i18n.fmt_number,
        duration=i18n.fmt_duration,
        token=labels.token,
        input_dt=i18n.fmt_input_datetime,
        ago=i18n.fmt_ago,
    )
    env.globals.update(
        label=labels.label,
        L=labels,
        finding_text=labels.finding_text,
        code_text=labels.code_text,
        LANG_NAMES=i18n.LANG_NAMES,
        version=__version__,
        CSRF_FIELD=security.CSRF_FIELD,
    )
    return env


@dataclass
class Page:
    """The context of one request: who, in which language, with which CSRF token, when."""

    request: Request
    principal: auth.Principal | None
    lang: i18n.Lang
    csrf: security.CsrfState
    now: dt.datetime

    @classmethod
    def start(cls, request: Request) -> Page:
        """Resolve the session and the language, and make the language current for this thread."""
        principal = security.session_principal(request)
        lang = security.request_lang(request, principal)
        i18n.activate(lang)  # sync routes run in a copied context: nothing leaks between requests
        return cls(
            request=request,
            principal=principal,
            lang=lang,
            csrf=security.csrf_for_render(request, principal),
            now=security.app_clock(request).now(),
        )

    @property
    def is_staff(self) -> bool:
        return self.principal is not None and self.principal.role in (*auth.STAFF, "admin")

    def csrf_ok(self, supplied: str | None) -> bool:
        return security.check_csrf(self.request, self.principal, supplied)

    def home(self) -> str:
        if self.principal is None:
            return "/login"
        return "/portal" if self.principal.role == "patient" else "/ward"


def open_alerts(page: Page) -> int | None:
    """Unacknowledged alerts of the units the user sees (None for patients)."""
    p = page.principal
    if p is None or not auth.can_read_alerts(p):
        return None
    q = select(func.count()).select_from(Alert).join(Patient, Patient.id == Alert.patient_id)
    q = q.where(Alert.status == "open")
    units = auth.visible_units(p)
    if units is not None:
        q = q.where(Patient.unit_id.in_(units))
    with security.app_db(page.request).session() as s:
        return int(s.scalar(q) or 0)


def finish(page: Page, response: Response) -> Response:
    for k, v in SECURITY_HEADERS.items():
        response.headers[k] = v
    if page.csrf.set_cookie:
        security.set_cookie(
            response,
            security.app_settings(page.request),
            security.CSRF_COOKIE,
            page.csrf.token,
            max_age=None,
            samesite="strict",
        )
    return response


def render_text(page: Page, template: str, context: dict[str, Any]) -> str:
    base = {
        "page": page,
        "principal": page.principal,
        "lang": page.lang,
        "csrf_token": page.csrf.token,
        "now": page.now,
        "path": page.request.url.path,
        "full_path": page.request.url.path + (f"?{page.request.url.query}" if page.request.url.query else ""),
        # where a language switch returns: this page, or home after a form was posted
        "back": (
            page.request.url.path + (f"?{page.request.url.query}" if page.request.url.query else "")
            if page.request.method == "GET"
            else page.home()
        ),
    }
    with i18n.use(page.lang):
        return environment().get_template(template).render({**base, **context})


def render(page: Page, template: str, context: dict[str, Any] | None = None, status: int = 200) -> Response:
    ctx = dict(context or {})
    ctx.setdefault("open_alerts", open_alerts(page))
    return finish(page, HTMLResponse(render_text(page, template, ctx), status_code=status))


def error(page: Page, status: int, message: str) -> Response:
    titles = {
        400: i18n.gettext("Request refused"),
        403: i18n.gettext("Access refused"),
        404: i18n.gettext("Not found"),
        409: i18n.gettext("Conflict"),
        422: i18n.gettext("Invalid input"),
    }
    return render(
        page, "error.html", {"status": status, "title": titles.get(status, ""), "message": message}, status
    )


def see_other(page: Page, url: str) -> Response:
    return finish(page, RedirectResponse(url, status_code=303))


def to_login(page: Page) -> Response:
    from urllib.parse import quote

    target = page.request.url.path + (f"?{page.request.url.query}" if page.request.url.query else "")
    return see_other(page, f"/login?next={quote(target, safe='')}")


def json(page: Page, content: Any, status: int = 200) -> Response:
    return finish(page, JSONResponse(content, status_code=status))
