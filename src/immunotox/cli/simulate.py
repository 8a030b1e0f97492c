"""``immunotox simulate``: generate a synthetic CAR-T / checkpoint-inhibitor cohort."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ._common import fail

# SimulationError option names -> command-line flags
_FLAGS = {
    "n_patients": "--patients",
    "days": "--days",
    "seed": "--seed",
    "products": "--products",
    "start": "--start",
    "id_format": "--id-format",
    "loinc_fraction": "--loinc-fraction",
    "bad_rows_fraction": "--bad-rows-fraction",
    "bad_row_kinds": "--bad-rows-fraction",
    "chunk_patients": "--chunk-patients",
    "path": "--out",
    "truth_path": "--truth",
    "bad_rows_path": "--bad-rows",
    "clinical_path": "--clinical-out",
}

PROGRESS_FROM_PATIENTS = 1000


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)


def _int(raw: str, flag: str, low: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        fail(f"{flag} = {raw!r}: not an integer")
    if value < low:
        fail(f"{flag} = {raw!r}: must be >= {low}")
    return value


def _float(raw: str, flag: str) -> float:
    try:
        return float(raw)
    except ValueError:
        fail(f"{flag} = {raw!r}: not a number")


def _date(raw: str) -> dt.datetime:
    try:
        d = dt.date.fromisoformat(raw)
    except ValueError:
        fail(f"--start = {raw!r}: expected a date YYYY-MM-DD")
    return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)


def simulate(
    patients: Annotated[
        str | None, typer.Option("--patients", "-n", help="Number of patients (>= 1)")
    ] = None,
    days: Annotated[str, typer.Option("--days", help="Follow-up after infusion, days (1-366)")] = "30",
    seed: Annotated[str, typer.Option("--seed", help="Random seed (>= 0); same seed, same files")] = "0",
    products: Annotated[
        str | None,
        typer.Option("--products", help="Comma-separated profile keys (default: every default profile)"),
    ] = None,
    out: Annotated[
        str | None, typer.Option("--out", "-o", help="Observations file: .parquet, .pq or .csv")
    ] = None,
    truth: Annotated[
        str | None, typer.Option("--truth", help="Ground-truth file (one row per patient)")
    ] = None,
    bad_rows: Annotated[
        str | None, typer.Option("--bad-rows", help="Ground truth of the injected bad rows")
    ] = None,
    clinical_out: Annotated[
        str | None,
        typer.Option("--clinical-out", help="Clinical table (one row per patient: product, response, death)"),
    ] = None,
    bad_rows_fraction: Annotated[
        str, typer.Option("--bad-rows-fraction", help="Fraction of corrupted rows to inject (0-0.5)")
    ] = "0",
    loinc_fraction: Annotated[
        str, typer.Option("--loinc-fraction", help="Fraction of vitals/labs written with LOINC codes (0-0.5)")
    ] = "0",
    start: Annotated[
        str, typer.Option("--start", help="First possible infusion day, YYYY-MM-DD")
    ] = "2024-01-01",
    id_format: Annotated[str, typer.Option("--id-format", help="Patient id pattern")] = "P{:06d}",
    chunk_patients: Annotated[
        str, typer.Option("--chunk-patients", help="Patients per chunk (memory)")
    ] = "500",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Generate a seeded synthetic cohort in the observation contract (and its ground truth).

    Synthetic data for demos, tests and benchmarks - not clinical data. Prints a summary per
    product: simulated CRS/ICANS rates beside the published profile numbers.
    """
    from ..simulate import SimulationError, iter_cohort_batches, load_profiles, write_cohort

    kwargs: dict[str, Any] = {
        "days": _int(days, "--days", 1),
        "seed": _int(seed, "--seed", 0),
        "products": [p.strip() for p in products.split(",") if p.strip()] if products is not None else None,
        "start": _date(start),
        "id_format": id_format,
        "loinc_fraction": _float(loinc_fraction, "--loinc-fraction"),
        "bad_rows_fraction": _float(bad_rows_fraction, "--bad-rows-fraction"),
        "chunk_patients": _int(chunk_patients, "--chunk-patients", 1),
    }
    if patients is None:
        fail("--patients is required: the number of patients (>= 1)")
    n = _int(patients, "--patients", 1)
    if out is None and (truth is not None or bad_rows is not None or clinical_out is not None):
        fail("--out = None: --truth, --bad-rows and --clinical-out need --out")
    if clinical_out is not None and not clinical_out.lower().endswith((".parquet", ".pq", ".csv")):
        fail(f"--clinical-out = {clinical_out!r}: expected a .parquet, .pq or .csv file")
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=n < PROGRESS_FROM_PATIENTS,
    )
    t0 = time.perf_counter()
    try:
        with progress:
            task = progress.add_task("patients", total=n)

            def tick(done: int, total: int) -> None:
                progress.update(task, completed=done)

            if out is not None:
                summary = write_cohort(
                    out, n, truth_path=truth, bad_rows_path=bad_rows, progress=tick, **kwargs
                )
                rows, n_bad, truth_table = summary.rows, summary.bad_rows, summary.truth
            else:
                rows, n_bad, tables = 0, 0, []
                for b in iter_cohort_batches(n, **kwargs):
                    rows += b.observations.num_rows
                    n_bad += b.bad_rows.num_rows
                    tables.append(b.truth)
                    tick(sum(t.num_rows for t in tables), n)
                import pyarrow as pa

                truth_table = pa.concat_tables(tables)
    except SimulationError as exc:
        fail(f"{_FLAGS.get(exc.option, exc.option)} = {exc.value!r}: {exc.problem}")
    except OSError as exc:
        fail(f"--out = {out!r}: cannot write ({exc.strerror or exc})")
    if clinical_out is not None and out is not None:
        from ..simulate import clinical_table
        from ..simulate._io import write_table

        try:
            write_table(clinical_table(truth_table, out, seed=kwargs["seed"]), clinical_out)
        except OSError as exc:
            fail(f"--clinical-out = {clinical_out!r}: cannot write ({exc.strerror or exc})")
    seconds = time.perf_counter() - t0
    from ..simulate import summarize_truth

    per_product = summarize_truth(truth_table)
    keys = [r["product"] for r in per_product]
    unverified = load_profiles().unverified(keys)
    result = {
        "patients": n,
        "rows": rows,
        "bad_rows": n_bad,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds) if seconds > 0 else None,
        "files": {
            k: v
            for k, v in (
                ("observations", out),
                ("truth", truth),
                ("bad_rows", bad_rows),
                ("clinical", clinical_out),
            )
            if v
        },
        "products": per_product,
        "unverified_profile_numbers": unverified,
    }
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    _print_table(result)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _print_table(result: dict[str, Any]) -> None:
    console = Console(width=160)
    table = Table(
        title=f"Synthetic cohort: {result['patients']} patients, {result['rows']:,} rows "
        f"({result['rows_per_s'] or 0:,} rows/s) - synthetic data, not clinical",
    )
    for col in (
        "product",
        "n",
        "CRS %",
        "(profile)",
        "CRS >=3 %",
        "(profile)",
        "ICANS %",
        "(profile)",
        "ICANS >=3 %",
        "(profile)",
        "deaths",
    ):
        table.add_column(col, justify="left" if col == "product" else "right")
    for r in result["products"]:
        table.add_row(
            r["product"],
            str(r["patients"]),
            _pct(r["crs_any"]),
            _pct(r["profile_crs_any"]),
            _pct(r["crs_grade3plus"]),
            _pct(r["profile_crs_grade3plus"]),
            _pct(r["icans_any"]),
            _pct(r["profile_icans_any"]),
            _pct(r["icans_grade3plus"]),
            _pct(r["profile_icans_grade3plus"]),
            str(r["deaths"]),
        )
    console.print(table)
    for kind, path in result["files"].items():
        console.print(f"{kind}: {path}")
    if result["bad_rows"]:
        console.print(f"injected bad rows: {result['bad_rows']}")
    unv = result["unverified_profile_numbers"]
    if unv:
        console.print(
            f"[M] {len(unv)} profile numbers are from memory, unverified against the trial papers: "
            + ", ".join(unv)
            + " (see docs/simulator.md)",
            soft_wrap=True,
        )
