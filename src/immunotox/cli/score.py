"""``immunotox score`` and ``immunotox scores``: risk scores from laboratory values."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from .. import risk
from ..sources import source
from ._common import LANG_HELP, clean_errors, lang_option, print_json, read_json_option


def register(app: typer.Typer) -> None:
    app.command("score")(score)
    app.command("scores")(scores)


def score(
    score_id: Annotated[
        str, typer.Argument(metavar="ID", help="Score id: easix, m-easix, s-easix, car-hematotox, hscore")
    ],
    findings: Annotated[
        str,
        typer.Option(
            "--findings",
            "-f",
            help='Findings as JSON ({"value": x, "unit": "<UCUM>"}, or a bare number in the canonical unit '
            "where every laboratory uses it), @file.json, or - for stdin",
        ),
    ],
    explain: Annotated[bool, typer.Option("--explain", help="Print a readable explanation")] = False,
    lang: Annotated[str, typer.Option("--lang", help=LANG_HELP)] = "en",
) -> None:
    """Compute risk score ID from FINDINGS; prints one JSON object (or an explanation with --explain).

    Keys: ldh (U/L), creatinine, platelets (10*9/L), crp, ferritin (ng/mL), anc (10*9/L),
    hemoglobin (g/dL), and for the HScore temperature_c, wbc, triglycerides, fibrinogen, ast,
    hepatomegaly, splenomegaly, marrow_hemophagocytosis, known_immunosuppression. CRP, creatinine,
    triglycerides and fibrinogen need their unit ({"value": 5, "unit": "mg/L"}): their
    laboratory unit differs between countries, so a bare number is refused.
    """
    language = lang_option(lang)
    raw = read_json_option(findings, "--findings", language)
    with clean_errors(language):
        result = risk.score(score_id, raw).in_lang(language)
    if explain:
        typer.echo(result.explain())
        return
    print_json(result.as_json())


def scores(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """List the risk scores with their inputs, cut-off and sources."""
    rows: list[dict[str, Any]] = []
    for spec in risk.all_scores().values():
        src = source(spec.source_keys[0])
        rows.append(
            {
                "id": spec.id,
                "title": spec.title,
                "kind": spec.kind,
                "inputs": list(spec.inputs),
                "cutoff": None if spec.risk is None else f"{spec.id} {spec.risk.rule_text()}",
                "source": f"{src.authors.split(',')[0]} {src.year}",
                "doi": src.doi,
                "verification": spec.verification,
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    table = Table(title=f"immunotox risk scores ({len(rows)})")
    for col in ("id", "title", "inputs", "published cut-off", "source", "checked"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r["id"],
            r["title"],
            ", ".join(r["inputs"]),
            r["cutoff"] or "none retrieved",
            f"{r['source']} {r['doi'] or ''}",
            r["verification"],
        )
    Console(width=200).print(table)
