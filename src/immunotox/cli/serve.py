"""``immunotox serve`` (the monitoring service), ``create-unit`` and ``create-user``.

``serve`` creates and migrates the database on first start (SQLite file by default), then runs
the API with uvicorn, and the regrader and the periodic sweeps in a process of their own
(``IMMUNOTOX_REGRADER=process``, the default; ``inline``: tasks of the server): the hidden
``regrader`` command, started and stopped by ``serve`` (``service/background.py``). ``--workers N``
(``IMMUNOTOX_WORKERS``, PostgreSQL only) runs N server processes (uvicorn's workers, each building
its app with :func:`immunotox.app.served_app` from the environment) beside the one regrader
process, which they wake by PostgreSQL ``NOTIFY``. ``--demo`` runs the
service on a fresh temporary SQLite database with a simulated ward whose observations keep
arriving, and prints the URL and the demo logins.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._common import fail

if TYPE_CHECKING:
    from ..service.config import Settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("regrader", hidden=True)(regrader)
    app.command("create-unit")(create_unit)
    app.command("create-user")(create_user)


def _settings(db: str | None, grading: bool | None = None, workers: int | None = None) -> Settings:
    from ..service.config import Settings, SettingsError

    try:
        return Settings.from_env(database_url=db, grading=grading, workers=workers)
    except SettingsError as exc:
        fail(str(exc))


def serve(
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="Database URL (default: IMMUNOTOX_DATABASE_URL or sqlite:///./immunotox.db)"
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(help="TCP port", min=1, max=65535)] = DEFAULT_PORT,
    demo: Annotated[
        bool, typer.Option("--demo", help="Run a simulated ward on a temporary SQLite database")
    ] = False,
    speed: Annotated[
        float, typer.Option(help="Demo: simulated seconds per real second", min=1, max=3600)
    ] = 120.0,
    patients: Annotated[int, typer.Option(help="Demo: number of simulated patients", min=2, max=60)] = 12,
    grading: Annotated[
        bool,
        typer.Option(
            "--grading/--no-grading",
            help="Regrade and alert on ingest (off: storage only, the benchmark floor)",
        ),
    ] = True,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log every request")
    ] = True,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Server processes (default: IMMUNOTOX_WORKERS or 1); more than 1 on PostgreSQL only",
        ),
    ] = None,
) -> None:
    """Run the monitoring service (API under /api/v1, OpenAPI docs at /docs)."""
    import uvicorn

    from ..app import create_app
    from ..service.app import freeze_startup_heap
    from ..service.config import settings_environment, shown_url
    from ..service.db import migrate

    if demo:
        if db is not None:
            fail("--demo runs on its own temporary SQLite database; do not give --db")
        if workers is not None and workers > 1:
            fail(f"--workers = {workers}: expected 1 with --demo (its database is SQLite)")
        from ..service.demo import ACCOUNTS, prepare_demo

        typer.echo("Preparing the demo ward (synthetic data, not patients)…")
        d = prepare_demo(speed=speed, n_patients=patients)
        app = create_app(d.settings, clock=d.clock, on_startup=[d.startup_hook])
        url = f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}"
        typer.echo("")
        typer.echo(
            f"immunotox demo ward — {d.ward.source}; {len(d.ward.patients)} patients; clock x{speed:g}"
        )
        typer.echo(f"  URL:        {url}/")
        typer.echo(f"  API docs:   {url}/docs")
        typer.echo(f"  database:   {d.settings.database_url} (temporary)")
        typer.echo("  Demo logins (demo passwords, valid in this demo only):")
        for a in ACCOUNTS:
            where = ", ".join(a.units) if a.units else ("own record" if a.patient else "all units")
            typer.echo(f"    {a.username:<12} / {a.password:<16} {a.role:<10} {where}")
        typer.echo("  A patient's CRS starts about 30 simulated minutes after the start; Ctrl-C to stop.")
        typer.echo("")
        sys.stdout.flush()
        # uvicorn re-raises SIGTERM after its graceful shutdown: exit normally so the finally runs
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        freeze_startup_heap()
        try:
            uvicorn.run(
                app, host=host, port=port, log_level="warning", access_log=access_log, proxy_headers=False
            )
        finally:  # the demo database is temporary: removed on Ctrl-C / SIGTERM
            shutil.rmtree(d.folder, ignore_errors=True)
        return
    settings = _settings(db, grading, workers)
    shown = shown_url(settings.database_url)
    try:
        migrate(settings.database_url)
    except Exception as exc:  # a database that cannot be reached or migrated: one line, exit 2
        first_line = (str(exc).splitlines() or [""])[0].replace(settings.database_url, shown)
        fail(f"database {shown!r}: cannot migrate ({type(exc).__name__}: {first_line})")
    from ..service.background import SERVER_PID_ENV, RegraderProcess, wakeup_hook

    background = RegraderProcess(settings) if settings.regrader_process else None
    target: Any
    options: dict[str, Any] = {}
    if settings.workers == 1:
        target = create_app(settings, regrader_wakeup=wakeup_hook(settings, background))
    else:  # each worker builds its app from the environment: the settings read here go there
        os.environ.update(settings_environment(settings))
        os.environ[SERVER_PID_ENV] = str(os.getpid())  # the workers' parent (end_with_parent)
        target, options = "immunotox.app:served_app", {"factory": True, "workers": settings.workers}
    processes = f", {settings.workers} server processes" if settings.workers > 1 else ""
    typer.echo(f"immunotox service on http://{host}:{port}/ (docs: /docs), database {shown}{processes}")
    if not _has_users(settings):
        typer.echo("No user yet: create the first admin with `immunotox create-user admin --role admin`.")
    sys.stdout.flush()
    if settings.workers == 1:
        freeze_startup_heap()
    previous = signal.getsignal(signal.SIGTERM)
    if background is not None:
        # uvicorn re-raises SIGTERM after its graceful shutdown: exit normally so the finally runs
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        background.start()
    try:
        # proxy_headers off: IMMUNOTOX_TRUSTED_PROXIES alone decides whose X-Forwarded-For is believed
        uvicorn.run(
            target,
            host=host,
            port=port,
            log_level="info",
            access_log=access_log,
            proxy_headers=False,
            **options,
        )
    finally:  # the regrader ends after its current pass (a pass cut short loses nothing)
        if background is not None:
            background.stop()
            signal.signal(signal.SIGTERM, previous)


def regrader(
    db: Annotated[
        str | None, typer.Option("--db", help="Database URL (default: IMMUNOTOX_DATABASE_URL)")
    ] = None,
) -> None:
    """The regrader process of `serve` (started by it; reads wake-ups on its standard input)."""
    from ..service.app import freeze_startup_heap
    from ..service.background import regrader_main

    settings = _settings(db)
    freeze_startup_heap()
    raise typer.Exit(regrader_main(settings))


def _has_users(settings: Settings) -> bool:
    from sqlalchemy import select

    from ..service.db import Database
    from ..service.models import User

    db = Database(settings)
    try:
        with db.session() as s:
            return s.scalars(select(User.id).limit(1)).first() is not None
    finally:
        db.dispose()


def create_unit(
    unit_id: Annotated[str, typer.Argument(help="Unit identifier, e.g. hemato-a")],
    name: Annotated[str, typer.Option(help="Unit name shown to people")],
    phone: Annotated[str | None, typer.Option(help="Phone number given to patients")] = None,
    db: Annotated[str | None, typer.Option("--db", help="Database URL")] = None,
) -> None:
    """Create a care unit (migrates the database first)."""
    from ..service import bootstrap
    from ..service.db import Database, migrate

    settings = _settings(db)
    migrate(settings.database_url)
    database = Database(settings)
    try:
        with database.writing() as s:
            bootstrap.ensure_unit(s, unit_id, name, now=dt.datetime.now(dt.UTC), phone=phone)
    finally:
        database.dispose()
    typer.echo(f"unit {unit_id!r} ready")


def create_user(
    username: Annotated[str, typer.Argument(help="Login name")],
    role: Annotated[str, typer.Option(help="admin, physician, nurse or patient")],
    unit: Annotated[list[str] | None, typer.Option("--unit", help="Unit of a staff member (repeat)")] = None,
    patient: Annotated[str | None, typer.Option(help="Patient record of a patient account")] = None,
    display_name: Annotated[str, typer.Option(help="Name shown to people")] = "",
    password_env: Annotated[
        str | None, typer.Option(help="Read the password from this environment variable instead of prompting")
    ] = None,
    db: Annotated[str | None, typer.Option("--db", help="Database URL")] = None,
) -> None:
    """Create a user (the first admin, typically). The password is prompted, never an argument."""
    from ..service import auth, bootstrap
    from ..service.db import Database, migrate

    if role not in auth.ROLES:
        fail(f"--role = {role!r}: expected one of {list(auth.ROLES)}")
    if password_env is not None:
        password = os.environ.get(password_env)
        if not password:
            fail(f"--password-env = {password_env!r}: the variable is empty or not set")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    problem = auth.password_problem(password, role, username)
    if problem is not None:
        fail(f"password: {problem.text('en')}")  # the command has no --lang: English
    settings = _settings(db)
    migrate(settings.database_url)
    database = Database(settings)
    try:
        with database.writing() as s:
            from ..service.models import CareUnit, Patient

            for u in unit or []:
                if s.get(CareUnit, u) is None:
                    fail(
                        f"--unit = {u!r}: no such unit "
                        f"(create it with `immunotox create-unit {u} --name ...`)"
                    )
            if patient is not None and s.get(Patient, patient) is None:
                fail(f"--patient = {patient!r}: no such patient")
            try:
                bootstrap.create_user(
                    s,
                    username,
                    password,
                    role,
                    now=dt.datetime.now(dt.UTC),
                    unit_ids=unit or [],
                    patient_id=patient,
                    display_name=display_name,
                )
            except ValueError as exc:
                fail(str(exc))
    finally:
        database.dispose()
    typer.echo(f"user {username!r} ({role}) created")
