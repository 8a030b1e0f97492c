"""Cohort analytics benchmark (issue 20): the analyses and the whole report on 50,000 patients.

Usage::

    .venv/bin/python benchmarks/analysis.py                    # 50,000 patients, 3 rounds
    .venv/bin/python benchmarks/analysis.py --patients 5000 --repeat 1

The cohort: ``--base`` patients (default 1,000, seed 0) are simulated (``immunotox.simulate``),
given their clinical table (``clinical_table``) and graded by ``immunotox.timeline.run_timeline``
under every CRS scale and ICANS (``all-crs,astct2019:icans``); the timeline outputs
(``patients``, ``episodes``, ``daily_max``, ``grades``) and the clinical table are then tiled
(copies with the suffix ``-k`` on every patient id) up to ``--patients``. Simulating 50,000
patients directly would write ~89 M observation rows; the analyses only read the timeline
outputs and the clinical table, whose sizes and distributions the tiling reproduces.
With ``--real`` every patient is simulated instead: chunks of ``--base`` patients, chunk k with
seed k (independent patients, ids ``S<k>-<n>``), each graded by ``run_timeline`` and the outputs
concatenated (memory: one chunk at a time; every chunk's time printed).
Cached under ``--cache`` (default ``$XDG_CACHE_HOME/immunotox-bench`` or ``~/.cache/...``).

Every round runs in a FRESH subprocess (this script with ``--child``) that times its own work
(after imports), its CPU time (user + system: what the work costs whatever the machine's load)
and its peak RSS (``VmHWM``), with the 1-minute load average:

* ``analyses``  ``immunotox.analysis.analyze(results, clinical)`` (embedded, Polars);
* ``report``    the same plus ``write_report`` (HTML, ``ard.parquet``, PDF with WeasyPrint).

Every round is printed; the last line is::

    patients=N analyses_s=X report_s=Y peak_mb=M

(medians over the rounds; peak = the largest of all rounds). Targets (issue 20): analyses
<= 10 s, report <= 60 s, peak <= 1.5 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SCALES = "all-crs,astct2019:icans"
TABLES = ("patients", "episodes", "daily_max", "grades")


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cache(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "immunotox-bench"


def build(cache: Path, base: int, patients: int) -> Path:
    """The tiled results folder and clinical table for ``patients`` (cached)."""
    import polars as pl

    from immunotox.simulate import clinical_table, simulate_cohort
    from immunotox.timeline import run_timeline

    src = cache / f"analysis-base-{base}"
    if not (src / "clinical.parquet").is_file():
        t0 = time.perf_counter()
        cohort = simulate_cohort(base, days=30, seed=0)
        run_timeline(cohort.observations, SCALES, src / "results")
        pl.from_arrow(clinical_table(cohort.truth, cohort.observations, seed=0)).write_parquet(  # type: ignore[union-attr]
            src / "clinical.parquet"
        )
        print(f"built the {base}-patient base in {time.perf_counter() - t0:.1f} s", flush=True)
    out = cache / f"analysis-{patients}-from-{base}"
    if (out / "clinical.parquet").is_file():
        return out
    copies = -(-patients // base)
    (out / "results").mkdir(parents=True, exist_ok=True)

    def tile(frame: pl.DataFrame, keep: int | None = None) -> pl.DataFrame:
        parts = [
            frame.with_columns((pl.col("patient_id") + f"-{k}").alias("patient_id")) for k in range(copies)
        ]
        tiled = pl.concat(parts)
        if keep is not None:
            ids = tiled["patient_id"].unique(maintain_order=True).head(keep)
            tiled = tiled.filter(pl.col("patient_id").is_in(ids.implode()))
        return tiled

    clinical = tile(pl.read_parquet(src / "clinical.parquet"), patients)
    clinical.write_parquet(out / "clinical.parquet")
    ids = clinical.select("patient_id")
    for name in TABLES:
        tile(pl.read_parquet(src / "results" / f"{name}.parquet")).join(ids, on="patient_id").write_parquet(
            out / "results" / f"{name}.parquet"
        )
    (out / "results" / "summary.json").write_text((src / "results" / "summary.json").read_text())
    return out


def build_real(cache: Path, chunk: int, patients: int) -> Path:
    """A REALLY simulated cohort of ``patients`` (cached): chunks of ``chunk`` patients, chunk k
    simulated with seed k and ids ``S<k>-<n>`` (independent patients, no copies), each graded by
    ``run_timeline``; the chunks' timeline outputs and clinical tables concatenated. Memory stays
    that of one chunk; every chunk's time is printed."""
    import polars as pl

    from immunotox.simulate import clinical_table, simulate_cohort
    from immunotox.timeline import run_timeline

    out = cache / f"analysis-real-{patients}-by-{chunk}"
    if (out / "clinical.parquet").is_file():
        return out
    parts = out / "chunks"
    n_chunks = -(-patients // chunk)
    for k in range(n_chunks):
        folder = parts / f"{k:04d}"
        if (folder / "clinical.parquet").is_file():
            continue
        t0 = time.perf_counter()
        n = min(chunk, patients - k * chunk)
        cohort = simulate_cohort(n, days=30, seed=k, id_format=f"S{k:04d}-{{:05d}}")
        run_timeline(cohort.observations, SCALES, folder / "results")
        clinical = pl.from_arrow(clinical_table(cohort.truth, cohort.observations, seed=k))
        assert isinstance(clinical, pl.DataFrame)
        clinical.write_parquet(folder / "clinical.parquet")
        rows = cohort.observations.num_rows
        took = time.perf_counter() - t0
        print(f"chunk {k + 1}/{n_chunks}: {n} patients, {rows} rows, {took:.1f} s", flush=True)
    (out / "results").mkdir(parents=True, exist_ok=True)
    chunks = sorted(parts.iterdir())
    clinical_all = pl.concat([pl.read_parquet(c / "clinical.parquet") for c in chunks])
    clinical_all.write_parquet(out / "clinical.parquet")
    for name in TABLES:
        pl.concat([pl.read_parquet(c / "results" / f"{name}.parquet") for c in chunks]).write_parquet(
            out / "results" / f"{name}.parquet"
        )
    (out / "results" / "summary.json").write_text((chunks[0] / "results" / "summary.json").read_text())
    return out


def _cpu_s() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def child(kind: str, folder: Path) -> dict[str, Any]:
    from immunotox.analysis import analyze, write_report

    t0, c0 = time.perf_counter(), _cpu_s()
    analysis = analyze(folder / "results", folder / "clinical.parquet")
    t1, c1 = time.perf_counter(), _cpu_s()
    out: dict[str, Any] = {
        "analyses_s": round(t1 - t0, 3),
        "analyses_cpu_s": round(c1 - c0, 3),
        "ard_rows": analysis.ard.height,
    }
    if kind == "report":
        write_report(analysis, folder / "report", "fr")
        out["report_s"] = round(time.perf_counter() - t0, 3)
        out["report_cpu_s"] = round(_cpu_s() - c0, 3)
    out["load_1min"] = os.getloadavg()[0]
    out["peak_mb"] = round(_peak_mb(), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=50_000)
    ap.add_argument("--base", type=int, default=1_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cache")
    ap.add_argument(
        "--real",
        action="store_true",
        help="simulate every patient (chunks of --base patients, one seed each) instead of tiling one base",
    )
    ap.add_argument("--child", choices=("analyses", "report"))
    ap.add_argument("--folder")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.folder))))
        return
    if args.real:
        folder = build_real(_cache(args.cache), args.base, args.patients)
    else:
        folder = build(_cache(args.cache), args.base, args.patients)
    rounds: dict[str, list[dict[str, Any]]] = {"analyses": [], "report": []}
    for r in range(args.repeat):
        for kind in ("analyses", "report"):
            res = subprocess.run(
                [sys.executable, __file__, "--child", kind, "--folder", str(folder)],
                check=True,
                capture_output=True,
                text=True,
            )
            got = json.loads(res.stdout.strip().splitlines()[-1])
            rounds[kind].append(got)
            print(f"round {r + 1} {kind}: {got}", flush=True)
    analyses = statistics.median(g["analyses_s"] for g in rounds["analyses"])
    report = statistics.median(g["report_s"] for g in rounds["report"])
    peak = max(g["peak_mb"] for k in rounds for g in rounds[k])
    print(f"patients={args.patients} analyses_s={analyses} report_s={report} peak_mb={peak}")


if __name__ == "__main__":
    main()
