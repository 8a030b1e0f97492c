"""Which HTTP methods a path supports: the ``Allow`` header of a 405 and the answer to ``OPTIONS``.

Starlette answers a method a path does not support with the ``Allow`` of the *first* route whose
path matched, so a resource served by two routes (``GET`` and ``POST /api/v1/patients``) used to
advertise half of its methods. Here every route of the application whose path matches is asked
(the JSON API and the web pages alike), so that ``Allow`` lists exactly the methods the resource
supports (RFC 9110 §10.2.1 and §9.3.7): a 405 carries it, and ``OPTIONS`` answers ``204`` with it
(``HEAD`` with every ``GET``, and ``OPTIONS`` itself). ``OPTIONS`` needs no credentials: it says
what the resource supports, never whether a record exists; a path that no route serves is still
a 404.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import routing as fastapi_routing
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

IMPLICIT = ("HEAD", "OPTIONS")
ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def flat_routes(routes: Sequence[BaseRoute]) -> Iterator[Any]:
    """Every route of ``routes`` with its effective path, routers included (FastAPI >= 0.16x keeps
    an included router as one entry; its ``iter_route_contexts`` walks them)."""
    walk = getattr(fastapi_routing, "iter_route_contexts", None)
    return iter(walk(routes)) if walk is not None else iter(routes)


def allowed(routes: Sequence[BaseRoute], path: str) -> list[str]:
    """The methods of every route serving ``path`` (empty when none does), in a stable order,
    with ``HEAD`` beside ``GET`` and ``OPTIONS``."""
    found: set[str] = set()
    for route in flat_routes(routes):
        methods, regex = getattr(route, "methods", None), getattr(route, "path_regex", None)
        if methods and regex is not None and regex.match(path):
            found |= set(methods)
    if not found:
        return []
    if "GET" in found:
        found.add("HEAD")
    found.add("OPTIONS")
    return sorted(found, key=lambda m: (ORDER.index(m) if m in ORDER else len(ORDER), m))


def allow_header(routes: Sequence[BaseRoute], path: str) -> str:
    """``Allow`` for ``path``: ``"GET, HEAD, POST, OPTIONS"``."""
    return ", ".join(allowed(routes, path))


class OptionsMiddleware:
    """Answer ``OPTIONS`` on a served path with ``204`` and its ``Allow`` header (an ASGI
    middleware placed inside the security-headers and request-id ones)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "OPTIONS":
            await self.app(scope, receive, send)
            return
        methods = allowed(scope["app"].router.routes, scope["path"])
        if not methods:
            await self.app(scope, receive, send)
            return
        headers = [(b"allow", ", ".join(methods).encode()), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
