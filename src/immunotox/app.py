"""The application factory: the monitoring service's JSON API and the web UI on one FastAPI app.

It sits above both :mod:`immunotox.service` (the API, its middleware and background tasks,
:func:`immunotox.service.app.create_service_app`) and :mod:`immunotox.web` (the pages and
``/static``, :func:`immunotox.web.mount_web`): the service never imports the web UI, and the web
UI builds on the service's modules, not on its app. ``immunotox serve``, the demo ward, the tests
and the benchmarks build their app here. The layers: ``docs/architecture.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from .service.app import create_service_app
from .service.config import Settings
from .service.db import Clock
from .web import mount_web

__all__ = ["create_app", "served_app"]


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    on_startup: list[Callable[[FastAPI], Any]] | None = None,
    regrader_wakeup: Callable[[set[str]], None] | None = None,
) -> FastAPI:
    """The service with its web UI for ``settings`` (default: from the environment).

    The database must exist and be migrated (``immunotox serve`` runs ``db.migrate`` first).
    ``regrader_wakeup``: the regrader runs in another process (:func:`create_service_app`).
    """
    app = create_service_app(settings, clock=clock, on_startup=on_startup, regrader_wakeup=regrader_wakeup)
    mount_web(app)  # the pages and /static; replaces the service's placeholder "/"
    return app


def served_app() -> FastAPI:
    """The app of one of the server processes of ``immunotox serve --workers N`` (N > 1): uvicorn's
    factory, called in each worker process. The settings come from the environment, where
    ``serve`` put its own (:func:`.service.config.settings_environment`; the database is migrated
    and the regrader process started by ``serve`` before any worker); single writes wake the
    regrader by ``NOTIFY`` (:func:`.service.background.wakeup_hook`); the process ends with its
    parent (:func:`.service.background.end_with_parent`)."""
    from .service.app import freeze_startup_heap
    from .service.background import end_with_parent, wakeup_hook

    settings = Settings.from_env()
    app = create_app(settings, regrader_wakeup=wakeup_hook(settings, None))
    freeze_startup_heap()
    end_with_parent()
    return app
