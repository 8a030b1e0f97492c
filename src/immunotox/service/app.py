"""The service's FastAPI application: the JSON API, its middleware and its background tasks.

``create_service_app(settings)`` builds the app on an existing, migrated database (``db.migrate``
runs first in ``immunotox serve``; the factory never creates tables). The JSON API lives under
``/api/v1``; OpenAPI docs at ``/docs``; ``/health`` for probes. The web UI (server-rendered
pages, session cookies, CSRF) is added on the same app by the application factory above both,
:func:`immunotox.app.create_app` — its routes reuse ``deps.CurrentUser`` (which already accepts
the session cookie), ``auth.issue_token`` with ``kind="session"`` and ``auth.check_csrf``.

Background tasks run the regrader of batch ingest every ``regrade_seconds`` (:mod:`.queue`,
also at start-up for anything left by a crash), the periodic sweeps every ``sweep_seconds``
(overdue ICE assessments, escalation of unacknowledged alerts, :mod:`.alerts`) and, on SQLite,
the WAL checkpoint every second. The regrader and the sweeps (:mod:`.background`) run as tasks
of the app unless the factory is given ``regrader_wakeup``: then they run elsewhere (the
regrader process of ``immunotox serve``) and a single write calls it to wake them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from .. import __version__, labs
from . import openapi, queue
from .background import regrade_loop, sweep_loop
from .config import Settings
from .db import Clock, Database
from .deps import RequestIdMiddleware, check_url
from .methods import OptionsMiddleware
from .routes import alerts as alert_routes
from .routes import auth as auth_routes
from .routes import events, fhir, meta, patients, users
from .routes._problems import install as install_problems
from .security_headers import SecurityHeadersMiddleware

log = logging.getLogger("immunotox.service")

DESCRIPTION = """Monitoring service of **immunotox**: observations arrive (bedside, lab, patient at home),
grades are recomputed at once, alerts reach the care team, every write is audited.

Decision support for professionals, not a diagnosis: every grade names its source, what it
could not see, and how each input was obtained. Errors are RFC 7807 problem details naming the
field. Writes accept an `Idempotency-Key` header. Authenticate with `POST /api/v1/auth/token`
then `Authorization: Bearer <token>`."""


async def _checkpointer(app: FastAPI, period: float = 1.0) -> None:
    while True:
        await asyncio.sleep(period)
        try:
            await run_in_threadpool(app.state.db.checkpoint)
        except Exception:  # a busy database is checkpointed next time
            log.debug("checkpoint skipped", exc_info=True)


YOUNG_THRESHOLD = 10_000  # container allocations between two young collections (CPython: 700)


def freeze_startup_heap() -> None:
    """Exclude the objects that live for the whole process (modules, rule tables, unit registries,
    schemas: ~200,000 once the app is built) from the collector's full passes, and collect the
    young generation every :data:`YOUNG_THRESHOLD` allocations instead of CPython's 700.

    A full collection (generation 2) stops every thread while it traverses every tracked object:
    with these ~200k it took 150-175 ms in the service benchmark's mixed phase (issue 19, every
    request in flight waited for it: the slowest single writes of the phase), several times the
    single-write target. Called once by ``immunotox serve`` after the app is built and before the
    first request: the garbage of start-up is collected first, and the survivors are frozen
    (``gc.freeze``, CPython's permanent generation), so a full pass traverses only what requests
    and caches created since. Not called by the app factory: tests build many apps in one process.

    The young threshold: CPython runs a full collection once the objects promoted to the oldest
    generation since the last one reach a quarter of it, and a young collection promotes every
    object alive at that moment. At 700 allocations a young collection ran every few
    milliseconds under load and promoted the objects of the requests in flight (a batch of 100
    observations is thousands of containers), so the served graded process made a full
    collection every 1-1.5 s, each traversing grading's memoised results (20-60 ms of CPU
    measured on the benchmark's 2-vCPU machine). At 10,000 the promotions, hence the full
    collections, are rarer (none in a 10-s mixed phase, against two, and two young collections
    in place of ~200: docs/benchmarks.md, issue 19, lane svcq); a young pass traverses at most
    10,000 objects (about a millisecond), and cyclic garbage waits for at most that many
    allocations.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def create_service_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    on_startup: list[Callable[[FastAPI], Any]] | None = None,
    root_redirect: bool = True,
    regrader_wakeup: Callable[[set[str]], None] | None = None,
) -> FastAPI:
    """The service app for ``settings`` (default: from the environment), without the web UI.

    ``regrader_wakeup``: the regrader and the sweeps run in another process
    (:class:`.background.RegraderProcess`); the app starts neither, and a committed single
    write calls this with the patients it queued. Default: both run as tasks of the app.
    """
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[None]] = []
        db: Database = app.state.db
        if settings.is_sqlite:
            tasks.append(asyncio.create_task(_checkpointer(app)))
        if regrader_wakeup is not None:  # the regrader and the sweeps run in another process
            db.on_regrade_queued = regrader_wakeup
        else:
            if settings.sweep_seconds > 0:
                tasks.append(asyncio.create_task(sweep_loop(db, app.state.clock)))
            if settings.grading and settings.regrade_seconds > 0:
                # set before the first request: a single write from now on wakes the regrader
                wakeup = queue.Wakeup(asyncio.get_running_loop())
                app.state.regrade_wakeup = db.on_regrade_queued = wakeup
                tasks.append(asyncio.create_task(regrade_loop(db, app.state.clock, wakeup, yield_gil=True)))
        for hook in on_startup or []:
            result = hook(app)
            if isinstance(result, asyncio.Task):
                tasks.append(result)
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            app.state.db.dispose()

    app = FastAPI(
        title="immunotox monitoring service",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        dependencies=[Depends(check_url)],
    )
    app.state.settings = settings
    labs.use_site_intervals(settings.reference_intervals or None)  # one site per process
    app.state.db = Database(settings)
    app.state.clock = clock or Clock()
    app.add_middleware(OptionsMiddleware)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    install_problems(app)
    openapi.install(app)
    api = "/api/v1"
    app.include_router(meta.router)
    app.include_router(auth_routes.router, prefix=api)
    app.include_router(users.router, prefix=api)
    app.include_router(patients.router, prefix=api)
    app.include_router(events.router, prefix=api)
    app.include_router(alert_routes.router, prefix=api)
    app.include_router(fhir.router, prefix=api)
    if root_redirect:

        @app.get("/", include_in_schema=False)
        def _root() -> RedirectResponse:  # the web UI replaces this with its dashboard
            return RedirectResponse("/docs")

    return app
