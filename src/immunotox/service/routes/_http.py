"""The HTTP side of the use cases: a :class:`~immunotox.service.usecases.base.Call` from a
request (its method, path and ``Idempotency-Key``), a JSON response from a write."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from .. import auth
from ..audit import RequestContext
from ..db import Database
from ..deps import CurrentUser, get_clock, get_ctx, get_db, get_settings
from ..usecases import base
from ..usecases.base import IDEMPOTENCY_HEADER, Call, Written


def call(
    request: Request, principal: auth.Principal, db: Database, ctx: RequestContext, now: dt.datetime
) -> Call:
    """The use-case call for this request (its ``Idempotency-Key`` checked: 422 when malformed)."""
    return Call(
        db=db,
        principal=principal,
        ctx=ctx,
        now=now,
        settings=get_settings(request),
        target=f"{request.method} {request.url.path}",
        key=base.check_key(request.headers.get(IDEMPOTENCY_HEADER)),
    )


async def get_call(request: Request, principal: CurrentUser) -> Call:
    """The request's use-case call, as a FastAPI dependency (a coroutine: no thread-pool hop; the
    database, clock and context read from the request, not as sub-dependencies: each costs)."""
    return call(request, principal, get_db(request), get_ctx(request), get_clock(request).now())


CallDep = Annotated[Call, Depends(get_call)]


def respond(written: Written) -> JSONResponse:
    """The write's answer; a replay says so in ``Idempotent-Replayed: true``."""
    headers = {"Idempotent-Replayed": "true"} if written.replayed else None
    return JSONResponse(written.content, status_code=written.status, headers=headers)


def write(
    request: Request,
    db: Database,
    principal: auth.Principal,
    ctx: RequestContext,
    now: dt.datetime,
    body: BaseModel | None,
    work: Callable[[Session, bytes], tuple[int, Any]],
) -> JSONResponse:
    """:func:`~immunotox.service.usecases.base.write` for a route's own ``work``."""
    return respond(base.write(call(request, principal, db, ctx, now), body, work))
