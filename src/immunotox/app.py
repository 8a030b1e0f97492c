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

__all__ = ["create_app"]


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
