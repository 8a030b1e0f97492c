"""The HTTP mapping of problem details: the exception handlers of the service's app.

:class:`~immunotox.service.problems.ApiError` (raised by the use cases, which import no web
framework), request validation errors, grading-core :class:`~immunotox.errors.FindingError`,
HTTP errors, database refusals and unexpected exceptions are answered as RFC 7807 problem details
(``application/problem+json``, :class:`~immunotox.service.problems.Problem`).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ...errors import FindingError
from ...messages import Lang, Msg, render
from ...messages import error as E
from .. import validation
from ..methods import allow_header
from ..problems import (
    AUTH_REQUIRED,
    MEDIA_TYPE,
    PROBLEM_TYPE,
    ApiError,
    Problem,
    ProblemItem,
    from_finding,
    loc_to_field,
    pointer,
    quote_value,
)

log = logging.getLogger("immunotox.service")
FASTAPI_UNREADABLE = "There was an error parsing the body"  # FastAPI's 400 when the body is not UTF-8


def accept_lang(request: Request) -> Lang:
    """The language the request prefers among en and fr (``Accept-Language``, RFC 9110 quality
    values; English when it names neither)."""
    best: tuple[float, Lang] = (0.0, "en")
    for part in request.headers.get("accept-language", "").split(","):
        tag, _, q = part.strip().partition(";q=")
        lang = tag.strip().lower().split("-")[0]
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        if lang in ("en", "fr") and weight > best[0]:
            best = (weight, "fr" if lang == "fr" else "en")
    return best[1]


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


def unreadable_body(request: Request, message: str, lang: Lang = "en") -> JSONResponse:
    """400: the body could not be read at all (not UTF-8, not JSON), so no field can be named
    but ``body`` itself (pointer ``""``, the whole document)."""
    item = ProblemItem(field="body", pointer="", message=message)
    detail = render(E("service.field", field="body", problem=message), lang)
    return _render(request, 400, "Unreadable body", detail, [item], "unreadable-body")


def install(app: FastAPI) -> None:
    """Register the problem-details handlers on ``app``."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        exc = exc.in_lang(accept_lang(request))  # refusals written as data follow Accept-Language
        resp = _render(request, exc.status, exc.title, exc.detail, exc.errors, exc.code)
        for k, v in (exc.headers or {}).items():
            resp.headers[k] = v
        return resp

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # pydantic's own words in English, the data's in French (service/validation.py)
        lang = accept_lang(request)
        items: list[ProblemItem] = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":  # nothing was read: the body as a whole is refused
                why = str(err.get("ctx", {}).get("error", "JSON decode error"))
                return unreadable_body(request, render(E("validation.body_not_json", error=why), lang), lang)
            loc = err.get("loc", ())
            name = loc_to_field(loc)
            msg = validation.error_text(err, name, lang)
            # an unknown field is not quoted: nothing says its value is not a secret
            if "input" in err and err.get("type") not in ("missing", "json_invalid", "extra_forbidden"):
                msg = validation.with_value(msg, quote_value(name, err["input"]), lang)
            ptr = pointer(name) if not name.startswith(("query.", "path.", "header.", "cookie.")) else ""
            items.append(ProblemItem(field=name, pointer=ptr, message=msg))
        first = items[0] if items else None
        detail = (
            render(E("service.field", field=first.field, problem=first.message), lang)
            if first
            else render(E("validation.invalid_request"), lang)
        )
        if len(items) > 1:
            more = len(items) - 1
            detail = render(
                E("service.and_more" if more > 1 else "service.and_one_more", first=detail, n=more), lang
            )
        return _render(request, 422, "Invalid input", detail, items, "invalid-input")

    @app.exception_handler(FindingError)
    async def _finding(request: Request, exc: FindingError) -> JSONResponse:
        e = from_finding(exc, lang=accept_lang(request))
        return _render(request, e.status, e.title, e.detail, e.errors, e.code)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == FASTAPI_UNREADABLE:  # e.g. not UTF-8
            lang = accept_lang(request)
            return unreadable_body(request, render(E("validation.body_not_utf8"), lang), lang)
        titles = {404: "Not found", 405: "Method not allowed", 401: "Unauthorized", 403: "Forbidden"}
        title = titles.get(exc.status_code, "Error")
        headers = dict(exc.headers or {})
        detail = _http_detail(request, exc.status_code, headers, app)
        code = title.lower().replace(" ", "-")
        resp = _render(request, exc.status_code, title, detail.text(accept_lang(request)), [], code)
        for k, v in headers.items():
            resp.headers[k] = v
        return resp

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        # last resort: a value the database cannot store that no check caught (logged: a gap)
        log.warning("database refused a value on %s %s: %s", request.method, request.url.path, exc.orig)
        detail = render(E("http.database_value"), accept_lang(request))
        return _render(request, 422, "Invalid input", detail, [], "invalid-input")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        detail = render(E("http.internal"), accept_lang(request))
        return _render(request, 500, "Internal error", detail, [], "internal-error")


def _http_detail(request: Request, status: int, headers: dict[str, str], app: FastAPI) -> Msg:
    """The detail of a problem the framework raised (no route, a method the path does not serve,
    a bare status), as a message: the framework's own words are English only."""
    if status == 405:  # every method of the path, not only the first route's (``headers`` gets Allow)
        headers["Allow"] = allow_header(app.router.routes, request.url.path)
        return E("http.method_not_allowed", method=request.method, allowed=headers["Allow"])
    if status == 404:
        return E("http.no_route", path=request.url.path)
    if status == 401:
        return AUTH_REQUIRED
    return E("http.status", status=str(status))
