"""``immunotox scales`` and ``immunotox grade``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..catalogue import all_scales, get_scale
from ..errors import FindingError
from ..messages import error
from ._common import LANG_HELP, clean_errors, lang_option, print_json, read_json_option

OUTPUT_KEYS = ("scale", "version", "grade", "complete", "missing", "reasons", "sources")


def register(app: typer.Typer) -> None:
    app.command("scales")(scales)
    app.command("grade")(grade)


def scales(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """List every scale in the catalogue with its version and source."""
    rows: list[dict[str, Any]] = []
    for s in all_scales().values():
        src = s.sources[0]
        rows.append(
            {
                "id": s.id,
                "title": s.title,
                "version": s.version,
                "grades": [min(s.grades), max(s.grades)],
                "source": f"{src.authors.split(',')[0]} {src.year}",
                "doi": src.doi,
                "verification": src.verification,
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    table = Table(title=f"immunotox scales ({len(rows)})", show_lines=False)
    for col in ("id", "version", "title", "source", "doi", "checked"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["id"], r["version"], r["title"], r["source"], r["doi"] or "", r["verification"])
    Console(width=200).print(table)


def grade(
    scale: Annotated[str, typer.Argument(help="Scale id, e.g. astct2019:crs (see `immunotox scales`)")],
    findings: Annotated[
        str,
        typer.Option("--findings", "-f", help="Findings as JSON, @file.json, or - for stdin"),
    ],
    explain: Annotated[bool, typer.Option("--explain", help="Print a readable explanation")] = False,
    ignore_unused: Annotated[
        bool,
        typer.Option(
            "--ignore-unused",
            help="Regrading mode: findings this scale does not read are checked and reported, not refused",
        ),
    ] = False,
    lang: Annotated[str, typer.Option("--lang", help=LANG_HELP)] = "en",
) -> None:
    """Grade FINDINGS with SCALE; prints one JSON object (or an explanation with --explain)."""
    language = lang_option(lang)
    raw = read_json_option(findings, "--findings", language)
    with clean_errors(language):
        if not isinstance(raw, dict):
            raise FindingError("--findings", raw, error("findings_object"))
        result = get_scale(scale).grade(raw, ignore_unused=ignore_unused).in_lang(language)
    if explain:
        typer.echo(result.explain())
        return
    data = result.model_dump(mode="json", exclude={"texts"})
    print_json({k: data[k] for k in OUTPUT_KEYS} | {k: v for k, v in data.items() if k not in OUTPUT_KEYS})
