"""``python -m immunotox`` runs the command-line interface."""

from .cli.main import run

run()
