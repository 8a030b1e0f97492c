"""Errors as RFC 7807 problem details (``application/problem+json``).

Every refusal names the field at fault: ``errors`` lists ``{field, pointer, message}`` where
``field`` is dotted (``observations.3.value``) and ``pointer`` is a JSON pointer into the
request body (``/observations/3/value``). A body that cannot be read at all (not UTF-8, not
JSON) is 400 naming ``body``; validation failures are 422, authentication 401,
authorization 403 (or 404 when revealing the record would leak that it exists), conflicts 409,
a login that must wait 429 with ``Retry-After``.
An unexpected exception is a bug: it is logged and answered with a bare 500 problem that
carries the request id, never a traceback.

A message names the field and the rule; it quotes the refused value only for a field that holds
no secret, and only a scalar, cut to ``QUOTE_LIMIT`` characters (:func:`quote_value`): secrets
(passwords, tokens, CSRF and session ids) never reach a response, a log line or the audit trail.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import FindingError
from .methods import allow_header

log = logging.getLogger("immunotox.service")

PROBLEM_TYPE = "https://immunotox.readthedocs.io/service/problems#"
MEDIA_TYPE = "application/problem+json"
FASTAPI_UNREADABLE = "There was an error parsing the body"  # FastAPI's 400 when the body is not UTF-8
QUOTE_LIMIT = 60  # characters of a refused value quoted in a validation message
# a field whose name contains one of these holds a secret (see docs/security.md)
SECRET_WORDS = ("password", "passwd", "token", "secret", "csrf", "session", "authorization", "cookie", "key")


class ProblemItem(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. 'observations.3.value'")
    pointer: str = Field(description="JSON pointer into the request, e.g. '/observations/3/value'")
    message: str


class Problem(BaseModel):
    """RFC 7807 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[ProblemItem] = Field(default_factory=list)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the problem statuses a route can answer (``application/problem+json``)."""
    ref = {"schema": {"$ref": "#/components/schemas/Problem"}}
    return {c: {"model": Problem, "content": {MEDIA_TYPE: ref}} for c in codes}


ERRORS = responses(401, 403, 404, 409, 422)


class ApiError(Exception):
    """An error the API answers on purpose."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        errors: Sequence[ProblemItem] = (),
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = list(errors)
        self.code = code or title.lower().replace(" ", "-")
        self.headers = headers
        self.denied: dict[str, Any] | None = None  # audit entry of a refused write (see routes)


def field_error(field: str, message: str, status: int = 422) -> ApiError:
    """A one-field validation error."""
    item = ProblemItem(field=field, pointer=pointer(field), message=message)
    return ApiError(status, "Invalid input", f"{field}: {message}", [item], code="invalid-input")


def from_finding(exc: FindingError, prefix: str = "") -> ApiError:
    """A 422 from a grading-core :class:`FindingError` (its field, value and message)."""
    name = prefix + exc.field
    item = ProblemItem(field=name, pointer=pointer(name), message=str(exc))
    detail = str(exc) if not prefix else f"{prefix}{exc}"
    return ApiError(422, "Invalid input", detail, [item], code="invalid-input")


def not_found(what: str) -> ApiError:
    return ApiError(404, "Not found", f"{what} not found", code="not-found")


def forbidden(detail: str) -> ApiError:
    return ApiError(403, "Forbidden", detail, code="forbidden")


def unauthorized(detail: str = "authentication required") -> ApiError:
    return ApiError(401, "Unauthorized", detail, code="unauthorized", headers={"WWW-Authenticate": "Bearer"})


def too_many_requests(detail: str, retry_after: int) -> ApiError:
    """429 with ``Retry-After`` (seconds): the client must wait before trying again."""
    return ApiError(
        429, "Too many requests", detail, code="too-many-requests", headers={"Retry-After": str(retry_after)}
    )


def conflict(detail: str, field: str | None = None) -> ApiError:
    errors = [ProblemItem(field=field, pointer=pointer(field), message=detail)] if field else []
    return ApiError(409, "Conflict", detail, errors, code="conflict")


def pointer(field: str) -> str:
    if not field:
        return ""
    parts = field.replace("[", ".").replace("]", "").split(".")
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts if p != "")


def is_secret(field: str) -> bool:
    """True when the field holds a secret: a password, a token (bearer, session, CSRF), a key, a
    credential header or cookie. Its value is never quoted, logged or stored.

    >>> [is_secret(f) for f in ("password", "new_password", "header.x-csrf-token", "display_name")]
    [True, True, True, False]
    """
    name = field.lower()
    return any(word in name for word in SECRET_WORDS)


def quote_value(field: str, value: Any) -> str | None:
    """How an error message may quote the value of ``field``: ``repr`` of a scalar, cut to
    ``QUOTE_LIMIT`` characters (``…`` marks the cut); None for a secret field and for a whole object
    or list (it may hold another field's secret: the model-level errors of a login body did).

    >>> quote_value("unit_id", "unit-z"), quote_value("password", "hunter2"), quote_value("body", {})
    ("'unit-z'", None, None)
    """
    if is_secret(field) or (not isinstance(value, (str, int, float, bool)) and value is not None):
        return None
    shown = repr(value)
    return shown if len(shown) <= QUOTE_LIMIT else shown[: QUOTE_LIMIT - 1] + "…"


def _loc_to_field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        where = parts[0]
        rest = parts[1:]
        if where != "body":
            return f"{where}.{'.'.join(rest)}" if rest else where
        return ".".join(rest) or "body"
    return ".".join(parts)


def _render(
    request: Request, status: int, title: str, detail: str, errors: list[ProblemItem], code: str
) -> JSONResponse:
    problem = Problem(
        type=PROBLEM_TYPE + code,
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        request_id=getattr(request.state, "request_id", None),
        errors=errors,
    )
    return JSONResponse(jsonable_encoder(problem), status_code=status, media_type=MEDIA_TYPE)


def unreadable_body(request: Request, message: str) -> JSONResponse:
    """400: the body could not be read at all (not UTF-8, not JSON), so no field can be named
    but ``body`` itself (pointer ``""``, the whole document)."""
    item = ProblemItem(field="body", pointer="", message=message)
    return _render(request, 400, "Unreadable body", f"body: {message}", [item], "unreadable-body")


def install(app: FastAPI) -> None:
    """Register the problem-details handlers on ``app``."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        resp = _render(request, exc.status, exc.title, exc.detail, exc.errors, exc.code)
        for k, v in (exc.headers or {}).items():
            resp.headers[k] = v
        return resp

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        items: list[ProblemItem] = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":  # nothing was read: the body as a whole is refused
                why = str(err.get("ctx", {}).get("error", "JSON decode error"))
                return unreadable_body(request, f"the request body is not valid JSON: {why}")
            loc = err.get("loc", ())
            name = _loc_to_field(loc)
            msg = str(err.get("msg", "invalid"))
            # an unknown field is not quoted: nothing says its value is not a secret
            if "input" in err and err.get("type") not in ("missing", "json_invalid", "extra_forbidden"):
                shown = quote_value(name, err["input"])
                if shown is not None:
                    msg = f"{msg} (got {shown})"
            ptr = pointer(name) if not name.startswith(("query.", "path.", "header.", "cookie.")) else ""
            items.append(ProblemItem(field=name, pointer=ptr, message=msg))
        first = items[0] if items else None
        detail = f"{first.field}: {first.message}" if first else "invalid request"
        if len(items) > 1:
            detail += f" (and {len(items) - 1} more)"
        return _render(request, 422, "Invalid input", detail, items, "invalid-input")

    @app.exception_handler(FindingError)
    async def _finding(request: Request, exc: FindingError) -> JSONResponse:
        e = from_finding(exc)
        return _render(request, e.status, e.title, e.detail, e.errors, e.code)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == FASTAPI_UNREADABLE:  # e.g. not UTF-8
            return unreadable_body(request, "the request body is not readable as UTF-8 JSON")
        titles = {404: "Not found", 405: "Method not allowed", 401: "Unauthorized", 403: "Forbidden"}
        title = titles.get(exc.status_code, "Error")
        detail, headers = str(exc.detail), dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not only the first route's
            headers["Allow"] = allow_header(app.router.routes, request.url.path)
            detail = f"{request.method} is not supported here; allowed: {headers['Allow']}"
        resp = _render(request, exc.status_code, title, detail, [], title.lower().replace(" ", "-"))
        for k, v in headers.items():
            resp.headers[k] = v
        return resp

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        # last resort: a value the database cannot store that no check caught (logged: a gap)
        log.warning("database refused a value on %s %s: %s", request.method, request.url.path, exc.orig)
        return _render(
            request,
            422,
            "Invalid input",
            "a value cannot be stored by the database (invalid characters or out of range)",
            [],
            "invalid-input",
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _render(
            request,
            500,
            "Internal error",
            "an unexpected error occurred; it has been logged with the request id",
            [],
            "internal-error",
        )
