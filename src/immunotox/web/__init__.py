"""The web UI of the monitoring service: the ward, the patient, the bedside, the patient at home.

Server-rendered pages (Jinja2) served by the service's own FastAPI app, French first with an
English switch (gettext catalogues, Babel formats), working with no network: every script,
style and font ships in this package (``static/``), charts are inline SVG drawn on the server.
It adds no business logic: reads go to the service's tables, writes through the service's
use cases (same checks, grading, alerts, audit and idempotency as the JSON API).

Map of the package:

=====================  =========================================================================
``routes``             one module a concern: pages, forms, ward refresh, ICANS preview
``pages``              Jinja2 environment, page context, responses and security headers
``security``           session and CSRF cookies, login and logout (on ``service.auth``)
``queries``            the ward's rows and shared reads (one query per kind, whatever the size)
``views``              patient, bedside, inbox and portal read models
``chart``              the patient timeline as inline SVG
``forms``              form fields -> the service's API models
``labels``             names of tokens and states (gettext); code and finding texts from data
``i18n``               languages, catalogues, local date and number formats
``templates/``         Jinja2 templates; ``static/`` CSS and JS; ``locale/`` catalogues
=====================  =========================================================================

Mount on an app with :func:`mount_web` (the application factory, :func:`immunotox.app.create_app`,
does it).
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from .routes import router

__all__ = ["mount_web", "router"]


def static_dir() -> str:
    """Filesystem path of the packaged static assets."""
    return str(resources.files("immunotox.web").joinpath("static"))


def mount_web(app: FastAPI) -> None:
    """Add the web UI to ``app``: its pages (replacing a placeholder ``/`` route) and ``/static``.

    Idempotent: a second call on the same app does nothing.
    """
    if getattr(app.state, "web_mounted", False):
        return
    app.state.web_mounted = True
    app.router.routes[:] = [
        r for r in app.router.routes if not (isinstance(r, APIRoute) and r.path == "/" and r.name == "_root")
    ]
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")
