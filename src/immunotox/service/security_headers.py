"""Security headers on every response of the service: the JSON API, the web pages, static files.

==============================  =================================================================
header                          when
==============================  =================================================================
``X-Content-Type-Options``      always ``nosniff``: a browser never guesses a type (a JSON error
                                quoting input is never run as HTML)
``Referrer-Policy``             always ``same-origin``: no path (patient ids) leaks to another site
``Cache-Control: no-store``     every ``/api/`` response (tokens, patient data, errors) and every
                                response to a request that carries credentials (bearer token or
                                session cookie), except the public ``/static/`` assets
``Strict-Transport-Security``   ``max-age=31536000`` when ``IMMUNOTOX_SECURE_COOKIES`` is on (the
                                service is then served over HTTPS only; RFC 6797)
==============================  =================================================================

A header the route set itself is kept (the web pages add their Content-Security-Policy and
``X-Frame-Options``, :mod:`immunotox.web.pages`); ``no-store`` always wins over a weaker
``Cache-Control``. Sources: OWASP HTTP Headers Cheat Sheet; RFC 6797 (HSTS); RFC 9111 §5.2.2.5
(``no-store``). The threat model is in ``docs/security.md``.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import SESSION_COOKIE

ALWAYS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
NO_STORE = "no-store"
HSTS = "max-age=31536000"  # one year; no includeSubDomains: other hosts of the hospital's domain are not ours
PUBLIC_PREFIXES = ("/static/",)


def carries_credentials(scope: Scope) -> bool:
    """True when the request sends a bearer token or the session cookie."""
    for key, value in scope.get("headers", []):
        if key == b"authorization" or (key == b"cookie" and SESSION_COOKIE.encode() in value):
            return True
    return False


class SecurityHeadersMiddleware:
    """Add the headers of the table above to every HTTP response (an ASGI middleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        no_store = path.startswith("/api/") or (
            carries_credentials(scope) and not path.startswith(PUBLIC_PREFIXES)
        )
        app = scope.get("app")
        settings = getattr(getattr(app, "state", None), "settings", None)
        hsts = bool(getattr(settings, "secure_cookies", False))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS.items():
                    headers.setdefault(name, value)
                if no_store:
                    headers["Cache-Control"] = NO_STORE
                if hsts:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)
