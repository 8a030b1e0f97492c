"""``immunotox report``: the cohort report (HTML, PDF, ARD) from timeline results and a clinical table."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ..errors import ImmunotoxError
from ..messages import Lang, error, exc_message
from ._common import fail, refuse, refuse_value


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(
    results: Annotated[
        str | None, typer.Argument(help="Folder written by `immunotox timeline` (patients, episodes, ...)")
    ] = None,
    clinical: Annotated[
        str | None, typer.Option("--clinical", help="Clinical table: .parquet or .csv (one row per patient)")
    ] = None,
    out: Annotated[str | None, typer.Option("--out", "-o", help="Output folder (created)")] = None,
    observations: Annotated[
        str | None,
        typer.Option(
            "--observations", help="The observation file the timeline graded (adds the management table)"
        ),
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="Report language: fr or en")] = "fr",
    min_cell: Annotated[
        str | None, typer.Option("--min-cell", help="Mask counts below N (and what derives from them)")
    ] = None,
    engine: Annotated[
        str, typer.Option("--engine", help="embedded (default) or spark: who reads the timeline outputs")
    ] = "embedded",
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="Also render report.pdf (WeasyPrint)")] = True,
) -> None:
    """Write report.html (self-contained), report.pdf and ard.parquet (every number of the report,
    each with its ARD id) for the timeline RESULTS and the --clinical table."""
    from ..analysis import analyze, write_report
    from ..analysis._report import LANGS

    if lang not in LANGS:
        refuse_value("en", "--lang", lang, error("cli_care.lang_fr_en"))
    lg: Lang = "fr" if lang == "fr" else "en"
    if results is None:
        refuse(lg, error("cli_care.results_missing"))
    if clinical is None:
        refuse(lg, error("cli_care.clinical_missing"))
    if out is None:
        refuse(lg, error("cli_care.out_missing"))
    if engine not in ("embedded", "spark"):
        refuse_value(lg, "--engine", engine, error("cli_care.engine"))
    cells: int | None = None
    if min_cell is not None:
        try:
            cells = int(min_cell)
        except ValueError:
            refuse_value(lg, "--min-cell", min_cell, error("cli_care.min_cell"))
        if cells < 1:
            refuse_value(lg, "--min-cell", min_cell, error("cli_care.min_cell"))
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console, transient=True
    )
    try:
        with progress:
            task = progress.add_task("analyses", total=3)
            analysis = analyze(results, clinical, min_cell=cells, observations=observations, engine=engine)
            progress.update(task, advance=1, description="report")
            files = write_report(analysis, out, lang, pdf=pdf)
            progress.update(task, advance=2)
    except ImmunotoxError as exc:
        fail(exc_message(exc, lg))
    except OSError as exc:
        refuse_value(lg, "--out", out, error("cli_care.cannot_write", error=str(exc.strerror or exc)))
    meta = analysis.meta
    typer.echo(
        f"{meta['patients']} patients, {len(meta['scales'])} scales, {analysis.ard.height} ARD rows; "
        f"clinical rows rejected: {meta['clinical_rejects']}; min-cell: {meta['min_cell'] or 'not applied'}"
    )
    for kind, path in files.items():
        typer.echo(f"{kind}: {path}")
