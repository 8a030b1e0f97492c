"""FastAPI dependencies: the database, the clock, the caller, the request context.

``CurrentUser`` accepts an API token (``Authorization: Bearer <token>``) or a browser session
(cookie ``immunotox_session``); a cookie-authenticated unsafe request (POST, PUT, PATCH, DELETE)
must carry the session's CSRF token in ``X-CSRF-Token`` — the web UI's forms check the same
token with :func:`immunotox.service.auth.check_csrf`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends, Path, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..messages import error as E
from . import auth
from .audit import RequestContext
from .config import IPNetwork, Settings
from .db import Clock, Database
from .problems import field_error, forbidden, unauthorized

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RequestIdMiddleware:
    """Give every request an id (``X-Request-ID``, taken from the client when well-formed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        for k, v in scope.get("headers", []):
            if k == b"x-request-id":
                cand = v.decode("latin-1")
                if 0 < len(cand) <= 64 and cand.replace("-", "").isalnum():
                    rid = cand
                break
        rid = rid or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)


async def check_url(request: Request) -> None:
    """Refuse NUL characters in the path or the query (no database can store them). A coroutine,
    like the other dependencies that do no I/O (:data:`DbDep` ...): FastAPI runs a plain function
    dependency in its thread pool, a hop to a worker thread and back for each one of every
    request."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and "\x00" in value:
            raise field_error(f"path.{name}", E("service.nul"))
    for name, value in request.query_params.multi_items():
        if "\x00" in value or "\x00" in name:
            raise field_error(f"query.{name}", E("service.nul"))


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_settings(request: Request) -> Settings:
    s: Settings = request.app.state.settings
    return s


def get_clock(request: Request) -> Clock:
    c: Clock = request.app.state.clock
    return c


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[IPNetwork]) -> str | None:
    """The client's address: the peer, or when the peer is a trusted proxy the right-most
    address of ``X-Forwarded-For`` that is not itself a trusted proxy (each proxy appends the
    address it received from; what lies further left was written by the client and is not
    believed). An unreadable entry stops the walk at the last trusted hop.

    >>> nets = [ipaddress.ip_network("10.0.0.0/8")]
    >>> client_address("10.0.0.2", "203.0.113.9, 10.0.0.7", nets)
    '203.0.113.9'
    >>> client_address("192.0.2.1", "203.0.113.9", nets)  # the peer is no proxy of ours
    '192.0.2.1'
    >>> client_address("10.0.0.2", "198.51.100.1, 203.0.113.9", nets)  # left-most is forgeable
    '203.0.113.9'
    """
    if peer is None or not forwarded_for or not _trusted(peer, trusted):
        return peer
    current = peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return current
        if not _trusted(hop, trusted):
            return hop
        current = hop
    return current


def _trusted(address: str, trusted: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def get_ctx(request: Request) -> RequestContext:
    settings: Settings = request.app.state.settings
    peer = request.client.host if request.client else None
    return RequestContext(
        request_id=getattr(request.state, "request_id", None),
        client_ip=client_address(peer, request.headers.get("x-forwarded-for"), settings.trusted_networks),
        user_agent=request.headers.get("user-agent"),
    )


async def _db(request: Request) -> Database:
    return get_db(request)


async def _settings(request: Request) -> Settings:
    return get_settings(request)


async def _clock(request: Request) -> Clock:
    return get_clock(request)


async def _ctx(request: Request) -> RequestContext:
    return get_ctx(request)


def now(clock: Annotated[Clock, Depends(get_clock)]) -> dt.datetime:
    return clock.now()


def session_principal(request: Request) -> auth.Principal | None:
    """The user of the session cookie, or None (no cookie, expired, revoked, unknown): the API's
    cookie authentication and the web UI's pages alike."""
    cookie = request.cookies.get(auth.SESSION_COOKIE)
    if not cookie:
        return None
    with get_db(request).session() as s:
        return auth.resolve_token(s, cookie, now=get_clock(request).now(), via="cookie")


def get_principal(request: Request) -> auth.Principal:
    """The caller of the request (401 without valid credentials, 403 when a cookie-authenticated
    unsafe request lacks its CSRF token). The database and clock are read from the app here, not
    as sub-dependencies: every request resolves this, and each dependency has a cost of its own."""
    header = request.headers.get("authorization")
    principal: auth.Principal | None = None
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized(E("auth.bearer_format"))
        with get_db(request).session() as s:
            principal = auth.resolve_token(s, token.strip(), now=get_clock(request).now(), via="bearer")
    else:
        principal = session_principal(request)
    if principal is None:
        raise unauthorized(E("auth.credentials"))
    if request.method in UNSAFE and not auth.check_csrf(principal, request.headers.get(auth.CSRF_HEADER)):
        raise forbidden(E("access.csrf_header", header=auth.CSRF_HEADER))
    return principal


# the request's database, settings, clock and context as dependencies: coroutines on the event
# loop (no thread-pool hop; see check_url) returning what get_db ... get_ctx return
DbDep = Annotated[Database, Depends(_db)]
SettingsDep = Annotated[Settings, Depends(_settings)]
ClockDep = Annotated[Clock, Depends(_clock)]
CtxDep = Annotated[RequestContext, Depends(_ctx)]
CurrentUser = Annotated[auth.Principal, Depends(get_principal)]
DbId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A database id (64-bit)")]
