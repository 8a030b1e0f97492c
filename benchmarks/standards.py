"""OMOP and SDTM readers benchmark (issue 21): how long ``read_omop`` / ``read_sdtm`` take.

Usage::

    .venv/bin/python benchmarks/standards.py                  # 200 patients x 30 days, 3 rounds
    .venv/bin/python benchmarks/standards.py --patients 100 --repeat 1

The cohort: ``--patients`` patients simulated over 30 days (seed 0), written once as an OMOP
folder (``write_omop``) and as SDTM domains (``write_sdtm``), cached under ``--cache`` (default
``$XDG_CACHE_HOME/immunotox-bench`` or ``~/.cache/...``). Every round runs in a FRESH subprocess
(this script with ``--child``) that times the read alone (after imports), its CPU time (user +
system) and its peak RSS (``VmHWM``), with the 1-minute load average. Every round is printed;
the last line is::

    patients=N source_rows=R omop_s=X sdtm_s=Y peak_mb=M

(medians over the rounds; peak = the largest of all rounds).
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


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def _cache(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "immunotox-bench"


def build(cache: Path, patients: int) -> Path:
    """The OMOP and SDTM folders of ``patients`` simulated patients (cached)."""
    from immunotox.simulate import simulate_cohort
    from immunotox.standards import write_omop, write_sdtm

    out = cache / f"standards-{patients}"
    if not (out / "sdtm" / "dm.csv").is_file():
        t0 = time.perf_counter()
        cohort = simulate_cohort(patients, days=30, seed=0)
        write_omop(cohort.observations, out / "omop")
        write_sdtm(cohort.observations, out / "sdtm")
        rows = cohort.observations.num_rows
        print(f"built {patients} patients ({rows} contract rows) in {time.perf_counter() - t0:.1f} s")
    return out


def child(folder: Path, kind: str) -> None:
    from immunotox.standards import read_omop, read_sdtm

    read = read_omop if kind == "omop" else read_sdtm
    c0, t0 = os.times(), time.perf_counter()
    r = read(folder)
    wall = time.perf_counter() - t0
    c1 = os.times()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    doc = {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_mb": _peak_mb(),
        "source_rows": r.source_rows,
        "rows": r.observations.num_rows,
        "rejects": r.rejected_rows,
        "load": os.getloadavg()[0],
    }
    print(json.dumps(doc))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cache")
    ap.add_argument("--child", nargs=2, metavar=("FOLDER", "KIND"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(Path(a.child[0]), a.child[1])
        return
    root = build(_cache(a.cache), a.patients)
    res: dict[str, list[dict[str, float]]] = {"omop": [], "sdtm": []}
    for n in range(1, a.repeat + 1):
        for kind in ("omop", "sdtm"):
            p = subprocess.run(
                [sys.executable, __file__, "--child", str(root / kind), kind],
                check=True,
                capture_output=True,
                text=True,
            )
            doc = json.loads(p.stdout.strip().splitlines()[-1])
            res[kind].append(doc)
            print(
                f"round {n} {kind}: wall {doc['wall_s']:.2f} s, CPU {doc['cpu_s']:.2f} s, "
                f"peak {doc['peak_mb']:.0f} MB, {int(doc['source_rows'])} source rows -> "
                f"{int(doc['rows'])} contract rows, {int(doc['rejects'])} rejects, load {doc['load']:.1f}",
                flush=True,
            )
    med = {k: statistics.median(d["wall_s"] for d in v) for k, v in res.items()}
    peak = max(d["peak_mb"] for v in res.values() for d in v)
    rows = int(res["omop"][0]["source_rows"])
    print(
        f"patients={a.patients} source_rows={rows} omop_s={med['omop']:.2f} "
        f"sdtm_s={med['sdtm']:.2f} peak_mb={peak:.0f}"
    )


if __name__ == "__main__":
    main()
