"""Browser sessions of the web UI: log in and out, the session and CSRF cookies, the language.

Built on the service's session use cases (:mod:`immunotox.service.usecases.sessions`, the API's
too) and :mod:`immunotox.service.auth`: passwords are verified by ``auth.authenticate``
(argon2id), a login issues a ``kind="session"`` token with its CSRF token
(``auth.issue_token``), a request is resolved with ``auth.resolve_token(..., via="cookie")``
and a form is accepted only if ``auth.check_csrf`` accepts its token. Every login, failed login
and logout is written to the audit trail, as the API does.

Cookies (all ``HttpOnly``, ``Path=/``, ``Secure`` when ``IMMUNOTOX_SECURE_COOKIES`` is on):

======================  ================  ===================================================
cookie                  SameSite          holds
======================  ================  ===================================================
``immunotox_session``   Lax               the session token (only its SHA-256 is stored)
``immunotox_csrf``      Strict            the CSRF token rendered into forms: the session's
                                          (checked against its stored hash), or before login
                                          a random token checked by double submit
``immunotox_lang``      Lax               ``fr`` or ``en`` (French when absent)
======================  ================  ===================================================
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from ..service import auth, deps
from ..service.config import Settings
from ..service.usecases import sessions
from .i18n import DEFAULT_LANG, Lang, check_lang

SESSION_COOKIE = auth.SESSION_COOKIE
CSRF_COOKIE = "immunotox_csrf"
LANG_COOKIE = "immunotox_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = auth.CSRF_HEADER
LANG_MAX_AGE_S = 365 * 24 * 3600


# The request's database, settings, clock, context and session user: the service's own
# dependencies (one set for the API and the web UI).
app_db = deps.get_db
app_settings = deps.get_settings
app_clock = deps.get_clock
request_context = deps.get_ctx
session_principal = deps.session_principal


def request_lang(request: Request, principal: auth.Principal | None) -> Lang:
    """The language cookie, else the user's stored preference, else French."""
    chosen = check_lang(request.cookies.get(LANG_COOKIE))
    if chosen is not None:
        return chosen
    if principal is not None:
        stored = check_lang(principal.locale)
        if stored is not None:
            return stored
    return DEFAULT_LANG


@dataclass(frozen=True)
class CsrfState:
    """The token to render into forms, and whether the response must (re)set the cookie."""

    token: str
    set_cookie: bool


def csrf_for_render(request: Request, principal: auth.Principal | None) -> CsrfState:
    """The CSRF token of this browser: the session's when logged in, else an anonymous one."""
    cookie = request.cookies.get(CSRF_COOKIE) or ""
    if principal is not None:
        # a cookie that no longer matches the session renders an empty token: forms are refused
        # and the user is asked to log in again (never a token the server would not accept)
        return CsrfState(cookie if auth.check_csrf(principal, cookie) else "", False)
    if len(cookie) >= 32:
        return CsrfState(cookie, False)
    return CsrfState(secrets.token_urlsafe(32), True)


def check_csrf(request: Request, principal: auth.Principal | None, supplied: str | None) -> bool:
    """True when ``supplied`` is this browser's CSRF token (session hash, or double submit)."""
    if principal is not None:
        return auth.check_csrf(principal, supplied)
    cookie = request.cookies.get(CSRF_COOKIE)
    return bool(cookie and supplied and len(cookie) >= 32 and hmac.compare_digest(cookie, supplied))


def set_cookie(
    response: Response,
    settings: Settings,
    name: str,
    value: str,
    *,
    max_age: int | None,
    samesite: str = "lax",
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        secure=settings.secure_cookies,
        samesite=samesite,  # type: ignore[arg-type]
    )


def clear_session_cookies(response: Response, settings: Settings) -> None:
    for name, samesite in ((SESSION_COOKIE, "lax"), (CSRF_COOKIE, "strict")):
        response.delete_cookie(
            name,
            path="/",
            httponly=True,
            secure=settings.secure_cookies,
            samesite=samesite,  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class LoggedIn:
    username: str
    role: str
    locale: str
    token: str
    csrf_token: str
    expires_at: dt.datetime


Throttled = sessions.Throttled


def login(request: Request, username: str, password: str) -> LoggedIn | Throttled | None:
    """Check the credentials (throttled, :mod:`immunotox.service.throttle`); on success open a
    browser session. Audited either way (:func:`immunotox.service.usecases.sessions.log_in`)."""
    out = sessions.log_in(
        app_db(request),
        app_settings(request),
        request_context(request),
        app_clock(request).now(),
        username,
        password,
        kind="session",
        via="web",
    )
    if not isinstance(out, sessions.LoggedIn):
        return out
    assert out.issued.csrf_token is not None
    return LoggedIn(
        username=out.user.username,
        role=out.user.role,
        locale=out.user.locale,
        token=out.issued.token,
        csrf_token=out.issued.csrf_token,
        expires_at=out.issued.expires_at,
    )


def start_session(response: Response, settings: Settings, session: LoggedIn, now: dt.datetime) -> None:
    """Set the session and CSRF cookies of a fresh login on ``response``."""
    max_age = max(int((session.expires_at - now).total_seconds()), 60)
    set_cookie(response, settings, SESSION_COOKIE, session.token, max_age=max_age, samesite="lax")
    set_cookie(response, settings, CSRF_COOKIE, session.csrf_token, max_age=max_age, samesite="strict")


def logout(request: Request, principal: auth.Principal) -> None:
    """Revoke the session token (audited)."""
    sessions.log_out(
        app_db(request), principal, request_context(request), app_clock(request).now(), via="web"
    )


def safe_next(target: str | None, default: str) -> str:
    """A local path to go to after login or a language switch (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
