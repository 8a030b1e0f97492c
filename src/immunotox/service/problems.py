"""Errors as RFC 7807 problem details (``application/problem+json``).

Every refusal names the field at fault: ``errors`` lists ``{field, pointer, message}`` where
``field`` is dotted (``observations.3.value``) and ``pointer`` is a JSON pointer into the
request body (``/observations/3/value``). A body that cannot be read at all (not UTF-8, not
JSON) is 400 naming ``body``; validation failures are 422, authentication 401,
authorization 403 (or 404 when revealing the record would leak that it exists), conflicts 409,
a login that must wait 429 with ``Retry-After``.
An unexpected exception is a bug: it is logged and answered with a bare 500 problem that
carries the request id, never a traceback.

This module imports no web framework: the use cases (``service/usecases/``) raise
:class:`ApiError`; the HTTP mapping (the exception handlers that answer a problem as
``application/problem+json``) is one layer up, in ``service/routes/_problems.py``.

A message names the field and the rule; it quotes the refused value only for a field that holds
no secret, and only a scalar, cut to ``QUOTE_LIMIT`` characters (:func:`quote_value`): secrets
(passwords, tokens, CSRF and session ids) never reach a response, a log line or the audit trail.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from ..errors import FindingError
from ..messages import Lang, Msg, error_message, render
from ..messages import error as E

PROBLEM_TYPE = "https://immunotox.readthedocs.io/service/problems#"
MEDIA_TYPE = "application/problem+json"
QUOTE_LIMIT = 60  # characters of a refused value quoted in a validation message
# a field whose name contains one of these holds a secret (see docs/security.md)
AUTH_REQUIRED = E("http.auth_required")  # the 401 of a request without credentials
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
        # the same error written in another language, when its texts are messages (see in_lang)
        self.relang: Callable[[Lang], ApiError] | None = None

    def in_lang(self, lang: Lang) -> ApiError:
        """This error with its detail and messages written in ``lang`` (the API's
        ``Accept-Language``, the web page's language); itself when its texts are English only."""
        if self.relang is None:
            return self
        out = self.relang(lang)
        out.headers, out.denied = self.headers, self.denied
        return out


#: a refusal written as data: a refused value (field, value, problem and hint), or a field and
#: the problem (a message id of data/messages.toml, with its French twin)
Refusal = FindingError | tuple[str, Msg]


def field_error(field: str, message: str | Msg, status: int = 422, lang: Lang = "en") -> ApiError:
    """A one-field validation error; a :class:`Msg` (``errors.<key>`` of data/messages.toml) is
    written in ``lang`` and again in the reader's language (:meth:`ApiError.in_lang`)."""
    if isinstance(message, str):  # English only (the account and authentication routes)
        item = ProblemItem(field=field, pointer=pointer(field), message=message)
        return ApiError(status, "Invalid input", f"{field}: {message}", [item], code="invalid-input")
    return refused([(field, message)], status=status, lang=lang)


def from_finding(exc: FindingError, prefix: str = "", lang: Lang = "en") -> ApiError:
    """A 422 from a grading-core :class:`FindingError` (its field, value and message, in ``lang``;
    the handler writes it again in the language the request accepts)."""
    if prefix:
        exc = FindingError(prefix + exc.field, exc.value, *exc.texts())
    return refused([exc], lang=lang)


def refused(
    refusals: Sequence[Refusal],
    *,
    status: int = 422,
    title: str = "Invalid input",
    code: str = "invalid-input",
    lang: Lang = "en",
) -> ApiError:
    """One error naming every refusal (the first in ``detail``, with how many more), written in
    ``lang`` and again in the reader's language (:meth:`ApiError.in_lang`)."""
    items = [_item(r, lang) for r in refusals]
    first = refusals[0]
    detail = items[0].message if isinstance(first, FindingError) else _field_text(first, lang)
    if len(items) > 1:
        more = len(items) - 1
        key = "service.and_more" if more > 1 else "service.and_one_more"
        detail = render(E(key, first=detail, n=more), lang)
    err = ApiError(status, title, detail, items, code=code)
    err.relang = lambda other: refused(refusals, status=status, title=title, code=code, lang=other)
    return err


def _item(r: Refusal, lang: Lang) -> ProblemItem:
    if isinstance(r, FindingError):
        field, text = r.field, error_message(r, lang)
    else:
        field, text = r[0], r[1].text(lang)
    # a query, path or header parameter is not in the body: no pointer into it
    at = pointer(field) if not field.startswith(("query.", "path.", "header.")) else ""
    return ProblemItem(field=field, pointer=at, message=text)


def _field_text(r: tuple[str, Msg], lang: Lang) -> str:
    return render(E("service.field", field=r[0], problem=r[1]), lang)


def problem(
    status: int,
    title: str,
    detail: Msg,
    *,
    code: str,
    headers: dict[str, str] | None = None,
    lang: Lang = "en",
) -> ApiError:
    """A problem whose detail is a message (``errors.<key>`` of data/messages.toml), written in
    ``lang`` and again in the reader's language (:meth:`ApiError.in_lang`); the title stays the
    RFC 7807 title, in English, like the ``code`` of its ``type``."""
    err = ApiError(status, title, detail.text(lang), code=code, headers=headers)
    err.relang = lambda other: problem(status, title, detail, code=code, headers=headers, lang=other)
    return err


def not_found(what: Msg, lang: Lang = "en") -> ApiError:
    """404 naming the record asked for (``errors.access.record_*``: its kind and id), « {what}
    introuvable » in French; also the answer for a record the caller may not read."""
    return problem(404, "Not found", E("access.not_found", what=what), code="not-found", lang=lang)


def forbidden(detail: Msg, lang: Lang = "en") -> ApiError:
    """403: who may not do what (``errors.access.<key>``), in the reader's language."""
    return problem(403, "Forbidden", detail, code="forbidden", lang=lang)


def unauthorized(detail: Msg = AUTH_REQUIRED, lang: Lang = "en") -> ApiError:
    """401 (``WWW-Authenticate: Bearer``), in the reader's language."""
    return problem(
        401, "Unauthorized", detail, code="unauthorized", headers={"WWW-Authenticate": "Bearer"}, lang=lang
    )


def too_many_requests(detail: str | Msg, retry_after: int, lang: Lang = "en") -> ApiError:
    """429 with ``Retry-After`` (seconds): the client must wait before trying again; a
    :class:`Msg` is written in ``lang`` and again in the reader's language."""
    text = detail if isinstance(detail, str) else detail.text(lang)
    err = ApiError(
        429, "Too many requests", text, code="too-many-requests", headers={"Retry-After": str(retry_after)}
    )
    if isinstance(detail, Msg):
        err.relang = lambda other: too_many_requests(detail, retry_after, other)
    return err


def conflict(detail: str | Msg, field: str | None = None, lang: Lang = "en") -> ApiError:
    """409; a :class:`Msg` is written in ``lang`` and again in the reader's language."""
    text = detail if isinstance(detail, str) else detail.text(lang)
    errors = [ProblemItem(field=field, pointer=pointer(field), message=text)] if field else []
    err = ApiError(409, "Conflict", text, errors, code="conflict")
    if isinstance(detail, Msg):
        err.relang = lambda other: conflict(detail, field, other)
    return err


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


def loc_to_field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        where = parts[0]
        rest = parts[1:]
        if where != "body":
            return f"{where}.{'.'.join(rest)}" if rest else where
        return ".".join(rest) or "body"
    return ".".join(parts)
