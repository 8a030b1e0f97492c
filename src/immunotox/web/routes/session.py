"""The session: home redirect, login and logout (CSRF-checked forms, throttled logins), and the
language switch."""

from __future__ import annotations

import math

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from ...service.schemas import LoginIn
from .. import i18n, security
from ..i18n import gettext as _
from ..i18n import ngettext
from ..pages import Page, render, see_other
from ._guards import csrf_refused
from ._submit import FormDep

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(request: Request) -> Response:
    page = Page.start(request)
    return see_other(page, page.home())


def login_refusal(username: str, password: str) -> str | None:
    """Why the login form cannot be checked at all (the API's ``LoginIn`` rules: nothing is cut
    to fit), in the user's language; None when it can."""
    try:
        LoginIn(username=username, password=password)
    except ValidationError as exc:
        if exc.errors()[0]["loc"][:1] == ("password",):
            return _("Password refused: 1 to 256 characters, without a NUL character.")
        return _("User name refused: 1 to 64 characters, without a NUL character.")
    return None


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    page = Page.start(request)
    if page.principal is not None:
        return see_other(page, security.safe_next(next, page.home()))
    return render(page, "login.html", {"next": security.safe_next(next, ""), "error": None, "username": ""})


@router.post("/login")
def login_submit(request: Request, form: FormDep) -> Response:
    page = Page.start(request)
    username, password = form.get("username"), form.values.get("password", "")
    shown = username.replace("\x00", "")[:64]  # re-filled into the form; the password never is
    ctx = {"next": security.safe_next(form.get("next"), ""), "username": shown}
    if not page.csrf_ok(form.get(security.CSRF_FIELD)):
        return render(
            page, "login.html", {**ctx, "error": _("The form had expired: please log in again.")}, 403
        )
    refused = login_refusal(username, password)
    if refused is not None:
        return render(page, "login.html", {**ctx, "error": refused}, 422)
    session = security.login(request, username, password)
    if session is None:
        return render(page, "login.html", {**ctx, "error": _("Wrong user name or password.")}, 401)
    if isinstance(session, security.Throttled):
        minutes = math.ceil(session.retry_after / 60)
        wait = ngettext(
            "Too many failed login attempts: try again in %(num)d minute, or from another workstation. "
            "Your account is not locked.",
            "Too many failed login attempts: try again in %(num)d minutes, or from another workstation. "
            "Your account is not locked.",
            minutes,
        ) % {"num": minutes}
        resp = render(page, "login.html", {**ctx, "error": wait}, 429)
        resp.headers["Retry-After"] = str(session.retry_after)
        return resp
    target = security.safe_next(form.get("next"), "/portal" if session.role == "patient" else "/ward")
    resp = RedirectResponse(target, status_code=303)
    security.start_session(resp, security.app_settings(request), session, page.now)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@router.post("/logout")
def logout(request: Request, form: FormDep) -> Response:
    page = Page.start(request)
    if page.principal is not None:
        if not page.csrf_ok(form.get(security.CSRF_FIELD)):
            return csrf_refused(page)
        security.logout(request, page.principal)
    resp = RedirectResponse("/login", status_code=303)
    security.clear_session_cookies(resp, security.app_settings(request))
    return resp


@router.post("/lang")
def switch_language(request: Request, form: FormDep) -> Response:
    page = Page.start(request)
    if not page.csrf_ok(form.get(security.CSRF_FIELD)):
        return csrf_refused(page)
    lang = i18n.check_lang(form.get("lang")) or i18n.DEFAULT_LANG
    resp = see_other(page, security.safe_next(form.get("next"), page.home()))
    security.set_cookie(
        resp, security.app_settings(request), security.LANG_COOKIE, lang, max_age=security.LANG_MAX_AGE_S
    )
    return resp
