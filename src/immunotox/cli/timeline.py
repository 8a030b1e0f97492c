"""``immunotox timeline``: grade an observation file under one or many scales, hour by hour."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..errors import ImmunotoxError
from ..vocabulary import vocabulary
from ._common import fail

# progress bar from this many input rows (or when the size is unknown: CSV)
PROGRESS_FROM_ROWS = 2_000_000


def register(app: typer.Typer) -> None:
    app.command("timeline")(timeline)


def timeline(
    obs: Annotated[
        str | None,
        typer.Argument(
            help="Observations: .parquet or .csv (the observation contract),"
            " or a folder of OMOP CDM tables or SDTM domains, or the database URL of OMOP tables"
            " (sqlite:///cdm.db, postgresql+psycopg://user@host/db?schema=cdm)"
        ),
    ] = None,
    scales: Annotated[
        str,
        typer.Option(
            "--scales",
            "-s",
            help="Comma-separated scale ids, or all-crs (every CRS scale side by side), or all",
        ),
    ] = "astct2019:crs,astct2019:icans",
    out: Annotated[str | None, typer.Option("--out", "-o", help="Output folder (created)")] = None,
    engine: Annotated[
        str,
        typer.Option("--engine", help="embedded (vectorised, default), spark, or scalar (reference, slow)"),
    ] = "embedded",
    resolution_hours: Annotated[
        str,
        typer.Option(
            "--resolution-hours",
            help="Episode resolves after this many hours at grade 0 (default: data/observations.toml)",
        ),
    ] = f"{vocabulary().episode_resolution_h:g}",
    memory_limit: Annotated[
        str | None,
        typer.Option("--memory-limit", help="Stay under this memory, e.g. 1GB (sets partition size)"),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet (default) or csv")] = "parquet",
    threads: Annotated[str | None, typer.Option("--threads", help="Worker threads (default: 2)")] = None,
    adtte: Annotated[
        bool, typer.Option("--adtte", help="Also write adtte.csv (ADaM time-to-event, docs/standards.md)")
    ] = False,
) -> None:
    """Grade OBS at every assessment time and write grades, daily maxima, episodes, per-patient
    summaries, the cross-tabulation between scales and the rejected rows to --out."""
    from ..standards import run_timeline_folder
    from ..standards._tables import is_database_url
    from ..timeline import RunSummary, run_timeline, select_scales
    from ..timeline._run import _source, count_rows, memory_bytes

    if obs is None:
        fail("OBS is missing: give an observation file (.parquet or .csv)")
    if out is None:
        fail("--out is missing: give an output folder")
    try:
        res = float(resolution_hours)
    except ValueError:
        fail(f"--resolution-hours = {resolution_hours!r}: not a number")
    if not math.isfinite(res) or res <= 0:
        fail(f"--resolution-hours = {resolution_hours!r}: must be a positive number of hours")
    n_threads: int | None = None
    if threads is not None:
        try:
            n_threads = int(threads)
        except ValueError:
            fail(f"--threads = {threads!r}: not an integer")
        if n_threads < 0:
            fail(f"--threads = {threads!r}: must be >= 0")
    console = Console(width=120, stderr=False)
    try:
        ids = select_scales(scales)
        limit = memory_bytes(memory_limit)
        omop = Path(obs).is_dir() or is_database_url(obs)
        runner: Callable[..., RunSummary] = run_timeline_folder if omop else run_timeline
        total = None if omop else count_rows(_source(obs))
        show = console.is_terminal and (total is None or total >= PROGRESS_FROM_ROWS)
        with Progress(
            TextColumn("grading"),
            BarColumn(),
            TextColumn("{task.completed:,} / {task.total:,} rows" if total else "{task.completed:,} rows"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
            disable=not show,
        ) as bar:
            task = bar.add_task("grading", total=total)
            summary = runner(
                obs,
                ids,
                out,
                engine=engine,
                resolution_hours=res,
                memory_limit=limit,
                fmt=fmt,
                threads=n_threads,
                progress=lambda done, _total: bar.update(task, completed=done),
            )
    except ImmunotoxError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{exc.filename or out}: {exc.strerror}")
    if adtte:
        _write_adtte(obs, out, fmt)
    _print_summary(console, summary)


def _write_adtte(obs: str, out: str, fmt: str) -> None:
    from ..standards import StandardsError, adtte, contract_rows, load_outputs, write_adtte

    if fmt != "parquet":
        fail("--adtte needs --format parquet (it reads the Parquet outputs back)")
    try:
        write_adtte(adtte(load_outputs(out), contract_rows(obs)), Path(out) / "adtte.csv")
    except StandardsError as exc:
        fail(str(exc))


def _print_summary(console: Console, s: object) -> None:
    from ..timeline import RunSummary

    assert isinstance(s, RunSummary)
    head = Table(title=f"immunotox timeline — {s.input}", show_header=False)
    head.add_column("what")
    head.add_column("value", justify="right")
    head.add_row("input rows", f"{s.input_rows:,}")
    head.add_row("accepted", f"{s.accepted_rows:,}")
    head.add_row("rejected", f"{s.rejected_rows:,}")
    for reason, n in s.rejected_by_reason.items():
        head.add_row(f"  {reason}", f"{n:,}")
    head.add_row("patients", f"{s.patients:,}")
    head.add_row("engine", f"{s.engine} ({s.partitions} partitions, {s.seconds:.2f} s)")
    head.add_row("episode rule", f"resolved after {s.resolution_hours:g} h at grade 0")
    console.print(head)
    grades = Table(title="per-patient maximum grade (lower bound when inputs are missing)")
    labels = ["0", "1", "2", "3", "4", "5", "not determinable"]
    for col in ("scale", "assessments", "episodes", *labels, "lower bounds"):
        grades.add_column(col, justify="left" if col == "scale" else "right")
    for scale in s.scales:
        counts = s.max_grade_counts.get(scale, {})
        grades.add_row(
            scale,
            f"{s.assessments.get(scale, 0):,}",
            f"{s.episodes.get(scale, 0):,}",
            *(f"{counts.get(lab, 0):,}" for lab in labels),
            f"{s.incomplete_max_grades.get(scale, 0):,}",
        )
    console.print(grades)
    if s.split_patient_ids:
        shown = "; ".join(" / ".join(repr(x) for x in g) for g in s.split_patient_ids[:3])
        more = f" and {len(s.split_patient_ids) - 3} more" if len(s.split_patient_ids) > 3 else ""
        console.print(
            "[yellow]patient ids that differ only by surrounding spaces were graded as different "
            f"patients: {shown}{more} (summary.json: split_patient_ids); check the export[/]"
        )
    for scale, n in s.snapshots_refused.items():
        console.print(
            f"[yellow]{scale}: {n:,} snapshots refused by the scale, e.g. {s.first_refusal[scale]}[/]"
        )
    _print_crosstabs(console, s)
    console.print(f"outputs: {', '.join(sorted(s.outputs.values()))}")
    sys.stdout.flush()


def _print_crosstabs(console: Console, s: object) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from ..timeline import NOT_DETERMINABLE, RunSummary, label_order

    assert isinstance(s, RunSummary)
    path = s.outputs.get("crosstab")
    if path is None:
        return
    ct = pq.read_table(path) if path.endswith(".parquet") else pacsv.read_csv(path)
    if ct.num_rows == 0:
        return
    rows = ct.to_pylist()
    pairs = sorted({(r["scale_a"], r["scale_b"]) for r in rows})
    labels = sorted({str(r["grade_a"]) for r in rows} | {str(r["grade_b"]) for r in rows}, key=label_order)
    for a, b in pairs:
        cells = {
            (str(r["grade_a"]), str(r["grade_b"])): r["n_patients"]
            for r in rows
            if (r["scale_a"], r["scale_b"]) == (a, b)
        }
        used_a = [x for x in labels if any(k[0] == x for k in cells)]
        used_b = [x for x in labels if any(k[1] == x for k in cells)]
        console.print(f"Max grade per patient: {a} (rows) vs {b} (columns), number of patients")
        t = Table()
        t.add_column(a)
        for lb in used_b:
            t.add_column("n/d" if lb == NOT_DETERMINABLE else lb, justify="right")
        for la in used_a:
            t.add_row(
                "n/d" if la == NOT_DETERMINABLE else la, *(str(cells.get((la, lb), "")) for lb in used_b)
            )
        console.print(t)
    console.print(
        "≥N: lower bound (an input the scale needs was missing; the grade could be higher); "
        "n/d: not determinable"
    )
