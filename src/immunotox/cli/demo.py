"""``immunotox demo``: grade the bundled example cases and print them as a table."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from ..catalogue import grade
from ._common import clean_errors


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def load_examples() -> list[dict[str, Any]]:
    """The example cases shipped in ``data/examples.toml``."""
    text = resources.files("immunotox").joinpath("data/examples.toml").read_text("utf-8")
    cases: list[dict[str, Any]] = tomllib.loads(text)["case"]
    return cases


def demo() -> None:
    """Grade the bundled example cases and print them as a table."""
    console = Console(width=160)
    table = Table(title="immunotox — example cases graded", show_lines=True)
    for col in ("case", "scale", "grade", "complete", "decided by", "missing"):
        table.add_column(col, overflow="fold")
    with clean_errors():
        for case in load_examples():
            r = grade(case["scale"], case["findings"])
            shown = "n/a" if r.grade is None else str(r.grade)
            if r.status == "not_applicable":
                shown = "not applicable"
            elif not r.complete and r.grade_range is not None:
                shown += f" (≥, up to {r.grade_range[1]})"
            table.add_row(
                case["title"],
                r.scale,
                shown,
                "yes" if r.complete else "NO",
                ", ".join(r.deciding_domains) or "-",
                ", ".join(r.missing) or "-",
            )
    console.print(table)
    console.print(
        "Explain any case: immunotox grade astct2019:crs --findings '{...}' --explain\n"
        "List the scales:  immunotox scales"
    )
