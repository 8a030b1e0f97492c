"""The ``immunotox`` command: the Typer app and the registration of every command module."""

from __future__ import annotations

import importlib
import sys

import typer

# Each module exposes register(app). Add a line to add a command group.
_COMMAND_MODULES: tuple[str, ...] = (
    "immunotox.cli.grading",
    "immunotox.cli.demo",
    "immunotox.cli.score",
    "immunotox.cli.pathway",
    "immunotox.cli.recommend",
    "immunotox.cli.dose",
    "immunotox.cli.simulate",
    "immunotox.cli.serve",
    "immunotox.cli.timeline",
    "immunotox.cli.report",
)

app = typer.Typer(
    name="immunotox",
    help="Grading, management and monitoring of immunotherapy toxicities. "
    "Decision support for professionals, not a diagnosis.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _mod in _COMMAND_MODULES:
    importlib.import_module(_mod).register(app)


def run() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        sys.exit(130)
