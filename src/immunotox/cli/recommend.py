"""``immunotox recommend`` and ``immunotox guidelines``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..catalogue import grade as grade_findings
from ..jurisdiction import optional_jurisdiction
from ..management import list_guidelines
from ..management import recommend as recommend_api
from ..messages import error
from ._common import clean_errors, lang_option, print_json, read_json_option, refuse, refuse_value


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend)
    app.command("guidelines")(guidelines)


def recommend(
    toxicity: Annotated[
        str | None,
        typer.Option(
            "--toxicity", "-t", help="Toxicity id (crs, icans, iec-hs, colitis, hepatitis…) or scale id"
        ),
    ] = None,
    grade: Annotated[int | None, typer.Option("--grade", "-g", help="Grade of the toxicity (0–4)")] = None,
    context: Annotated[
        str | None,
        typer.Option("--context", "-c", help="Context as JSON, @file.json, or - for stdin"),
    ] = None,
    from_grade: Annotated[
        str | None,
        typer.Option("--from-grade", help="Grade FINDINGS with this scale first (e.g. astct2019:crs)"),
    ] = None,
    findings: Annotated[
        str | None, typer.Option("--findings", "-f", help="Findings for --from-grade: JSON, @file or -")
    ] = None,
    guideline: Annotated[
        str | None, typer.Option("--guideline", help="Guideline set id (default: the set for the toxicity)")
    ] = None,
    guideline_dir: Annotated[
        list[str] | None,
        typer.Option("--guideline-dir", help="Extra folder of guideline-set files (repeatable)"),
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="Language of the texts: en or fr")] = "en",
    jurisdiction: Annotated[
        str | None,
        typer.Option(
            "--jurisdiction",
            help="Whose product labels apply: EU, US or an ISO country (FR -> EU); never inferred. "
            "Without it, label-only items give no amount",
        ),
    ] = None,
    verified_only: Annotated[
        bool, typer.Option("--verified-only", help="Leave out unverified [M] and interpretation [D] actions")
    ] = False,
    explain: Annotated[bool, typer.Option("--explain", help="Print a readable text instead of JSON")] = False,
) -> None:
    """Ordered, cited management actions for a toxicity grade; prints one JSON object.

    Either --toxicity with --grade, or --from-grade SCALE with --findings (grade, then recommend).
    """
    language = lang_option(lang)
    if from_grade is not None:
        if findings is None:
            refuse(language, error("cli_care.from_grade_needs_findings"))
        if toxicity is not None or grade is not None:
            refuse(language, error("cli_care.either_or"))
    else:
        if findings is not None:
            refuse(language, error("cli_care.findings_needs_from_grade"))
        if toxicity is None:
            refuse(language, error("cli_care.toxicity_required"))
        if grade is None:
            refuse(language, error("cli_care.grade_required"))
    ctx: Any = read_json_option(context, "--context", language) if context is not None else None
    if ctx is not None and not isinstance(ctx, dict):
        refuse_value(language, "--context", ctx, error("cli_care.context_object"))
    with clean_errors(language):
        optional_jurisdiction(jurisdiction, "--jurisdiction")
        if from_grade is not None:
            assert findings is not None
            raw = read_json_option(findings, "--findings", language)
            if not isinstance(raw, dict):
                refuse_value(language, "--findings", raw, error("findings_object"))
            result = grade_findings(from_grade, raw)
            rec = recommend_api(
                result,
                context=ctx,
                guideline=guideline,
                lang=language,
                verified_only=verified_only,
                guideline_dirs=guideline_dir or (),
                jurisdiction=jurisdiction,
            )
        else:
            assert toxicity is not None
            rec = recommend_api(
                toxicity,
                grade,
                ctx,
                guideline=guideline,
                lang=language,
                verified_only=verified_only,
                guideline_dirs=guideline_dir or (),
                jurisdiction=jurisdiction,
            )
    if explain:
        typer.echo(rec.explain())
        return
    print_json(rec.model_dump(mode="json"))


def guidelines(
    guideline_dir: Annotated[
        list[str] | None,
        typer.Option("--guideline-dir", help="Extra folder of guideline-set files (repeatable)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
    lang: Annotated[str, typer.Option("--lang", help="Language of the titles: en or fr")] = "en",
) -> None:
    """List the guideline sets: id, version, lifecycle, derivation, toxicities covered."""
    language = lang_option(lang)
    with clean_errors(language):
        sets = list_guidelines(guideline_dir or ())
    rows: list[dict[str, Any]] = [
        {
            "id": g.id,
            "version": g.version,
            "lifecycle": g.lifecycle,
            "title": g.title.get(language),
            "derives_from": g.derives_from,
            "default_for": list(g.default_for),
            "toxicities": list(g.toxicities),
            "rules": len(g.rules),
            "packaged": g.packaged,
            "path": g.path,
            "sha256": g.sha256,
        }
        for g in sets
    ]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    table = Table(title=f"immunotox guideline sets ({len(rows)})")
    for col in ("id", "version", "lifecycle", "derives from", "default for", "title"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r["id"],
            r["version"],
            r["lifecycle"],
            r["derives_from"] or "-",
            ", ".join(r["default_for"]) or "-",
            r["title"],
        )
    Console(width=200).print(table)
