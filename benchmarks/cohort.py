"""Cohort regrading benchmark: ~10 M observation rows graded by ASTCT CRS + ICANS.

Usage::

    .venv/bin/python benchmarks/cohort.py                  # ~10 M rows (about 5,700 patients x 30 days)
    .venv/bin/python benchmarks/cohort.py --rows 30000000  # memory growth check

The cohort comes from the synthetic generator (``immunotox.simulate.write_cohort``, seed 0) and is
cached as Parquet under ``--cache`` (default: ``$XDG_CACHE_HOME/immunotox-bench`` or
``~/.cache/immunotox-bench``). Every measurement runs in a FRESH subprocess (this script with
``--child``) that reports its own work time (timed inside the process, after interpreter start,
imports and the loading of the rule catalogue) and its peak RSS (``VmHWM`` from ``/proc/self/status``).
The modes run round-robin (one of each per round, ``--repeat`` rounds), so that a change in the
machine's load hits every mode alike:

* ``floor``     the bare-scan floor, for context: a DuckDB scan + per-patient aggregate of the same
                Parquet file (``SELECT patient_id, count(*), max(time) ... GROUP BY patient_id``);
* ``io_floor``  the I/O floor: DuckDB reads the 8 contract columns of the same file and writes a
                Parquet file with one row per assessment (per scale of the headline and distinct
                time of a row of a code it reads: the headline's largest output, ``grades``, with
                its columns filled by per-assessment aggregates of every contract column, so that
                every column is read); no validation, no grading;
* ``headline``  ``immunotox.timeline.run_timeline(file, "astct2019:crs,astct2019:icans", out)``:
                validation of every row, grades, daily maxima, episodes, patients, crosstab and
                rejects written as Parquet (the embedded engine, default settings);
* ``sql``       the DuckDB SQL peer (``benchmarks/duckdb_peer.py``): ASTCT CRS + ICANS as one SQL
                pipeline (window functions for the look-back windows, range joins for running
                devices, the rule table as CASE expressions), writing the grades only;
                ``tests/test_bench_duckdb_peer.py`` proves its grades equal to the engine's;
* ``all``       the headline with every CRS scale of the catalogue plus ICANS (``all-crs,astct2019:icans``);
* ``io``        (``--engine-io``) the headline's reads and writes alone through the engine's own
                reader and writers;
* ``labs``      (``--labs``) the ten CTCAE v5.0 laboratory terms of the laboratory codes
                (``LABS``: ALT, AST, bilirubin, creatinine, neutrophils, platelets, anaemia,
                lymphocytes, white cells, fibrinogen) graded at every result;
* ``naive``     a plain per-row Python loop (at every assessment, rescan all of the patient's rows,
                then call the grading core; no index, no memoisation) over the first patients,
                checked against the embedded engine, extrapolated to all rows.

DuckDB runs with 2 threads, like the engine. The last line printed is exactly::

    rows=N rows_per_s=X ratio_vs_io_floor=Y speedup_vs_duckdb_sql=Z all_scales_ratio=W \
    ratio_vs_bare_floor=V speedup_vs_naive=U peak_mb=M

(one line; broken here at the backslash)
headline figures; medians over ``--repeat`` fresh runs; ratios of medians). Targets (issue 19) at
10 M rows on 2 cores: headline <= 2.5x the I/O floor, >= 1.5x faster than the SQL peer, all
scales <= 3x the headline, >= 10 M rows/s, peak <= 1.5 GB and flat to 30 M rows.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

HEADLINE = "astct2019:crs,astct2019:icans"
ALL = "all-crs,astct2019:icans"
#: the CTCAE v5.0 laboratory terms graded from the laboratory codes (data/reference_intervals.toml)
LABS = ",".join(
    [
        "ctcae5:alanine-aminotransferase-increased",
        "ctcae5:aspartate-aminotransferase-increased",
        "ctcae5:blood-bilirubin-increased",
        "ctcae5:creatinine-increased",
        "ctcae5:neutrophil-count-decreased",
        "ctcae5:platelet-count-decreased",
        "ctcae5:anemia",
        "ctcae5:lymphocyte-count-decreased",
        "ctcae5:white-blood-cell-decreased",
        "ctcae5:fibrinogen-decreased",
    ]
)


def _peak_mb() -> float:
    """Peak RSS of this process: VmHWM (per address space, so not inherited through fork/exec
    from the parent the way ``ru_maxrss`` is on Linux), else ``getrusage``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _measured(r0: Any, t0: float) -> dict[str, float]:
    """Work time, user and system CPU and page faults since (``getrusage``, ``perf_counter``) =
    (r0, t0); peak RSS. Minor faults are mostly first touches of new memory (the kernel zeroes
    the page, or the 2 MB huge page, in the process's system time)."""
    work = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "work_s": work,
        "user_s": r1.ru_utime - r0.ru_utime,
        "sys_s": r1.ru_stime - r0.ru_stime,
        "minflt": r1.ru_minflt - r0.ru_minflt,
        "majflt": r1.ru_majflt - r0.ru_majflt,
        "peak_mb": _peak_mb(),
    }


# ------------------------------------------------------------------------------------ children
def child(mode: str, path: str, out: str, sample_patients: int) -> dict[str, Any]:
    if mode == "io_floor":
        return io_floor(path, out)
    if mode == "sql":
        return sql_peer(path, out)
    if mode == "floor":
        import duckdb

        con = duckdb.connect()
        con.execute("SET threads=2")
        t0 = time.perf_counter()
        rows = con.execute(
            "SELECT patient_id, count(*) AS n, max(time) AS last FROM read_parquet(?) GROUP BY patient_id",
            [path],
        ).fetchall()
        work = time.perf_counter() - t0
        return {"work_s": work, "peak_mb": _peak_mb(), "patients": len(rows)}
    import immunotox
    from immunotox.timeline import run_timeline
    from immunotox.vocabulary import vocabulary

    immunotox.all_scales()  # the rule catalogue: loaded like an import, before the clock starts
    vocabulary()
    if mode in ("headline", "all", "labs"):
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        s = run_timeline(path, {"headline": HEADLINE, "all": ALL, "labs": LABS}[mode], out)
        return {
            **_measured(r0, t0),
            "rows": s.input_rows,
            "rejected": s.rejected_rows,
            "assessments": s.assessments,
            "episodes": s.episodes,
            "partitions": s.partitions,
        }
    if mode == "stages":
        return stages(path, out)
    if mode == "naive":
        return naive(path, sample_patients)
    if mode == "io":
        return io_part(path, out)
    raise SystemExit(f"unknown mode {mode}")


def _headline_codes() -> dict[str, list[str]]:
    """Per scale of the headline: every spelling (code, LOINC) of the codes whose rows are its
    assessment times."""
    import immunotox
    from immunotox.timeline._snapshot import plan
    from immunotox.vocabulary import vocabulary

    aliases = vocabulary().aliases
    out = {}
    for s in HEADLINE.split(","):
        codes = plan(immunotox.get_scale(s)).grid_codes
        out[s] = sorted(k for k, v in aliases.items() if v in codes)
    return out


def io_floor(path: str, out: str) -> dict[str, Any]:
    """DuckDB: read the contract columns, write one row per assessment (the grades' shape)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads=2")
    con.execute("SET preserve_insertion_order=false")
    pairs = [(s, c) for s, codes in _headline_codes().items() for c in codes]
    con.execute("CREATE TEMP TABLE scale_code(scale VARCHAR, code VARCHAR)")
    con.executemany("INSERT INTO scale_code VALUES (?, ?)", pairs)
    target = str(Path(out) / "grades.parquet")
    t0 = time.perf_counter()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    con.execute(
        f"""
        COPY (
          SELECT r.patient_id, s.scale, r.time,
                 count(*)::INTEGER AS day,
                 max(length(r.value))::TINYINT AS grade,
                 max(length(r.unit))::TINYINT AS grade_lo,
                 count(r.end_time)::TINYINT AS grade_hi,
                 bool_or(r.dose IS NOT NULL OR r.dose_unit IS NOT NULL) AS complete
          FROM read_parquet('{path}') r JOIN scale_code s ON s.code = lower(trim(r.code))
          GROUP BY r.patient_id, s.scale, r.time
        ) TO '{target}' (FORMAT parquet)
        """
    )
    m = _measured(r0, t0)
    n = con.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchone()
    return {**m, "written": n[0] if n else 0}


def sql_peer(path: str, out: str) -> dict[str, Any]:
    """The DuckDB SQL peer (``benchmarks/duckdb_peer.py``): ASTCT CRS + ICANS, grades written."""
    import duckdb
    import duckdb_peer

    con = duckdb.connect()
    t0 = time.perf_counter()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    duckdb_peer.run(path, str(Path(out) / "grades.parquet"), con)
    m = _measured(r0, t0)
    n = con.execute(f"SELECT count(*) FROM read_parquet('{Path(out) / 'grades.parquet'}')").fetchone()
    return {**m, "written": n[0] if n else 0}


def stages(path: str, out: str) -> dict[str, Any]:
    """The headline with every stage timed per call (wall and thread CPU, and which thread): where
    the run leaves a core idle. The engine's own functions, wrapped in this process only (the read
    of a batch, ``normalize``, ``grade_partition``, each output write, ``finish``); the wrappers
    cost a few microseconds per call (~100 calls)."""
    import threading

    import immunotox
    import immunotox.timeline._run as run_mod
    from immunotox.timeline.output import OutputWriter
    from immunotox.vocabulary import vocabulary

    immunotox.all_scales()
    vocabulary()
    # stage, thread, start, end, thread CPU, process CPU at the end
    events: list[tuple[str, int, float, float, float, float]] = []

    def timed(stage: str, fn: Any) -> Any:
        def inner(*a: Any, **k: Any) -> Any:
            w0, c0 = time.perf_counter(), time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                events.append(
                    (
                        stage,
                        threading.get_ident(),
                        w0,
                        time.perf_counter(),
                        time.thread_time() - c0,
                        time.process_time(),
                    )
                )

        return inner

    loaders = run_mod.batch_loaders
    run_mod.batch_loaders = lambda src, target: (  # type: ignore[assignment]
        (timed("read", load), before, n) for load, before, n in loaders(src, target)
    )
    run_mod.normalize = timed("normalize", run_mod.normalize)  # type: ignore[assignment]
    run_mod.grade_partition = timed("grade", run_mod.grade_partition)  # type: ignore[assignment]
    run_mod.finish = timed("finish", run_mod.finish)  # type: ignore[assignment]
    OutputWriter.write = timed("write", OutputWriter.write)  # type: ignore[method-assign]
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    run_mod.run_timeline(path, HEADLINE, out)
    m = _measured(r0, t0)
    end, cpu_end = time.perf_counter(), time.process_time()
    threads = sorted({e[1] for e in events})
    per_stage = {
        st: {
            "calls": sum(1 for e in events if e[0] == st),
            "wall_s": round(sum(e[3] - e[2] for e in events if e[0] == st), 3),
            "cpu_s": round(sum(e[4] for e in events if e[0] == st), 3),
        }
        for st in ("read", "normalize", "grade", "write", "finish")
    }
    busy = {
        f"thread{i}": round(sum(e[3] - e[2] for e in events if e[1] == t), 3) for i, t in enumerate(threads)
    }
    grades = [e for e in events if e[0] == "grade"]
    last_grade = max(grades, key=lambda e: e[3])
    return {
        **m,
        "stages": per_stage,
        "busy_wall_s_per_thread": busy,
        "first_grade_start_s": round(min(e[2] for e in grades) - t0, 3),
        "last_grade_end_s": round(max(e[3] for e in grades) - t0, 3),
        "last_read_end_s": round(max(e[3] for e in events if e[0] == "read") - t0, 3),
        "after_last_grade_s": round(end - max(e[3] for e in grades), 3),
        # the serial tail: process CPU after the last grading (one core idle while it runs)
        "cpu_after_last_grade_s": round(cpu_end - last_grade[5], 3),
        "first_read_start_s": round(min(e[2] for e in events if e[0] == "read") - t0, 3),
        # thread CPU per call in call order: the first partitions pay the first touches of memory
        "cpu_per_call_ms": {
            st: [round(1000 * e[4]) for e in sorted(events, key=lambda e: e[2]) if e[0] == st]
            for st in ("read", "normalize", "grade")
        },
    }


def io_part(path: str, out: str) -> dict[str, Any]:
    """The headline's input and output work alone: the engine's reader (every row group, the 8
    contract columns, 2 worker threads) and the engine's writers writing the headline's own
    outputs (produced by a headline run in another process before the clock starts, split over
    the batches as the engine writes them) - no validation, no grading. What a faster engine
    could not remove."""
    import concurrent.futures as cf

    import pyarrow.parquet as pq

    from immunotox.timeline._run import _source, batch_loaders, partition_rows
    from immunotox.timeline.output import open_writers

    # the headline's outputs, from a headline run in its own process (this one stays fresh)
    ref = Path(out) / "ref"
    subprocess.run(
        [sys.executable, __file__, "--child", "headline", "--input", path, "--out", str(ref)],
        check=True,
        capture_output=True,
    )
    (Path(out) / "io").mkdir()
    writers = open_writers(Path(out) / "io", "parquet")
    loaders = list(batch_loaders(_source(path), partition_rows(None)))
    k = len(loaders)
    parts: list[dict[str, Any]] = [{} for _ in range(k)]
    for name, w in writers.items():
        tb = pq.read_table(ref / f"{name}.parquet").cast(w.schema)
        for i in range(k):
            lo, hi = tb.num_rows * i // k, tb.num_rows * (i + 1) // k
            parts[i][name] = tb.slice(lo, hi - lo)
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    rows = 0
    with cf.ThreadPoolExecutor(max_workers=2) as pool:
        pending = deque(pool.submit(load) for load, _before, _n in loaders[:2])
        for i in range(k):
            batch = pending.popleft().result()  # dropped after this step, as in the engine
            if i + 2 < k:
                pending.append(pool.submit(loaders[i + 2][0]))
            rows += batch.num_rows
            for name, w in writers.items():
                w.write(parts[i][name])
            parts[i] = {}
            del batch
    for w in writers.values():
        w.close()
    return {**_measured(r0, t0), "rows": rows}


def naive(path: str, sample_patients: int) -> dict[str, Any]:
    """A plain per-row Python loop: at every assessment, rescan all of the patient's rows.

    Same rules as the engines (it reuses the reference's findings and grading calls) but no
    index, no bisect, no memoisation: each window, interval and attribute is found by looping
    over the patient's rows. Run on the first patients of the file, checked against the embedded
    engine on the same patients, and extrapolated by rows.
    """
    import pyarrow.parquet as pq

    import immunotox
    from immunotox.timeline._engine import Params, grade_partition
    from immunotox.timeline._read import normalize
    from immunotox.timeline._reference import (
        INF,
        PatientRecord,
        PatientState,
        episodes_py,
        grid_times,
        records,
    )
    from immunotox.timeline._snapshot import Grader, findings_from_raw, plan

    class NaiveState(PatientState):
        def _rows(self, code: str) -> list[tuple[int, float, int | None]]:
            c = self.voc.code(code).index
            return [(t, v, e) for t, cc, v, e in self.rec.rows if cc == c]

        def _worst(self, code: str, vals: list[float]) -> float:
            spec = self.voc.code(code)
            return max(vals) if spec.ties == "max" or spec.kind in ("token", "bool") else min(vals)

        def window(self, code: str, w: int, t: int, how: Any) -> float | None:
            vals = [v for tt, v, _e in self._rows(code) if t - w < tt <= t]
            return how(vals) if vals else None

        def last(self, code: str, w: int, t: int) -> tuple[float, int] | None:
            rows = [(tt, v) for tt, v, _e in self._rows(code) if t - w < tt <= t]
            if not rows:
                return None
            tmax = max(tt for tt, _v in rows)
            return self._worst(code, [v for tt, v in rows if tt == tmax]), tmax

        def patient_last(self, code: str) -> float | None:
            rows = self._rows(code)
            if not rows:
                return None
            tmax = max(tt for tt, _v, _e in rows)
            return self._worst(code, [v for tt, v, _e in rows if tt == tmax])

        def event_since(self, code: str, token: str, t: int) -> bool:
            tok = self.voc.code(code).tokens.index(token)
            return any(tt <= t and int(v) == tok for tt, v, _e in self._rows(code))

    class NaiveRecord(PatientRecord):
        def intervals(self, code: str, per_token: bool) -> list[tuple[int, int, int]]:
            c = self.voc.code(code).index
            rows = [(t, v, e) for t, cc, v, e in self.rows if cc == c]
            out = []
            for t, v, e in rows:
                if e is None:
                    later = [tt for tt, vv, _ in rows if tt > t and (not per_token or int(vv) == int(v))]
                    e = min(later) if later else INF
                out.append((t, e, int(v)))
            return out

    f = pq.ParquetFile(path)
    first = f.read_row_group(0)
    ids = first.column("patient_id").to_pylist()
    keep_ids = set(sorted(set(ids))[:sample_patients])
    last = max(i for i, p in enumerate(ids) if p in keep_ids)
    sample = first.slice(0, last + 1)
    plans = [plan(immunotox.get_scale(s)) for s in HEADLINE.split(",")]
    res = Params().resolution_us
    t0 = time.perf_counter()
    n = normalize(sample, file="sample")
    grader = Grader(memo=False)
    got: dict[tuple[str, str], list[tuple[int, Any, int, int, bool]]] = {}
    for pid, indexed in records(n.obs):
        rec = NaiveRecord(indexed.rows, indexed.voc)
        for p in plans:
            st = NaiveState(rec, res)
            times = grid_times(rec, p)
            if "fever_masked" in p.findings:
                st.compute_masking(times, grader)
            rows = [
                grader.grade(p.scale, findings_from_raw(p, st.raw_state(p.findings, t), rec.voc))
                for t in times
            ]
            episodes_py(times, [r.grade is not None and r.grade >= 1 for r in rows], res)
            got[(pid, p.scale_id)] = [
                (t, r.grade, r.lo, r.hi, r.complete) for t, r in zip(times, rows, strict=True)
            ]
    work = time.perf_counter() - t0
    # the naive loop must agree with the embedded engine
    emb = grade_partition(n.obs, plans, Params(), "embedded").table("grades").to_pylist()
    want: dict[tuple[str, str], list[tuple[int, Any, int, int, bool]]] = {}
    for r in emb:
        t_us = int(r["time"].timestamp() * 1_000_000)
        want.setdefault((r["patient_id"], r["scale"]), []).append(
            (t_us, r["grade"], r["grade_lo"], r["grade_hi"], r["complete"])
        )
    agree = all(got.get(k, []) == v for k, v in want.items()) and len(got) >= len(want)
    return {"work_s": work, "peak_mb": _peak_mb(), "rows": sample.num_rows, "agrees": agree}


def run_child(mode: str, path: Path, sample_patients: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="immunotox-bench-") as tmp:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [
                *(sys.executable, __file__, "--child", mode, "--input", str(path), "--out", tmp),
                *("--sample-patients", str(sample_patients)),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        outer = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"child {mode} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["outer_s"] = outer
    return result


# ------------------------------------------------------------------------------------- cohort
def cohort(rows: int, cache: Path) -> tuple[Path, int]:
    from immunotox.simulate import simulate_cohort, write_cohort

    pilot = simulate_cohort(100, seed=0)
    per_patient = pilot.observations.num_rows / 100
    n_patients = max(1, round(rows / per_patient))
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"cohort_{n_patients}p_seed0.parquet"
    if not path.exists():
        print(f"generating {n_patients:,} patients (~{rows:,} rows) -> {path}", flush=True)
        tmp = path.with_suffix(".tmp.parquet")
        write_cohort(tmp, n_patients, seed=0, loinc_fraction=0.01)
        os.replace(tmp, path)
    return path, n_patients


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000, help="approximate number of observation rows")
    ap.add_argument("--repeat", type=int, default=5, help="rounds (one fresh run of every mode per round)")
    ap.add_argument("--cache", type=Path, default=None, help="where the generated cohort is kept")
    ap.add_argument("--sample-patients", type=int, default=40, help="patients in the naive sample")
    ap.add_argument("--skip-all", action="store_true", help="skip the all-scales run")
    ap.add_argument(
        "--engine-io", action="store_true", help="also time the engine's own reads and writes (io)"
    )
    ap.add_argument("--labs", action="store_true", help="also time the CTCAE laboratory terms (labs)")
    ap.add_argument(
        "--stages", action="store_true", help="also run the headline with every stage timed (stages)"
    )
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--input", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.input, a.out, a.sample_patients)))
        return
    cache = a.cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "immunotox-bench"
    path, n_patients = cohort(a.rows, cache)
    print(f"cohort: {path} ({n_patients:,} patients, {path.stat().st_size / 1e6:.1f} MB)")
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores: measurements are noisy above ~0.5)")

    modes = ["floor", "io_floor", "headline", "sql"] + ([] if a.skip_all else ["all"])
    modes += ["io"] if a.engine_io else []
    modes += ["labs"] if a.labs else []
    modes += ["stages"] if a.stages else []
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    for r in range(a.repeat):
        for m in modes:
            res = run_child(m, path, a.sample_patients)
            res["load"] = os.getloadavg()[0]
            runs[m].append(res)
            print(f"round {r + 1} {m:<9} work {res['work_s']:8.3f} s  load {res['load']:.2f}", flush=True)
    naive = run_child("naive", path, a.sample_patients)

    heads = runs["headline"]
    rows = heads[0]["rows"]

    def med(m: str) -> float:
        return statistics.median(r["work_s"] for r in runs[m])

    head_s = med("headline")
    head_peak = max(h["peak_mb"] for h in heads)
    naive_total = naive["work_s"] * rows / naive["rows"]

    def line(name: str, rs: list[dict[str, Any]]) -> str:
        w = [r["work_s"] for r in rs]
        return (
            f"{name:<10} work {statistics.median(w):8.3f} s [{min(w):.3f}-{max(w):.3f}]  "
            f"= {statistics.median(w) / head_s:5.2f}x the headline  "
            f"outer {statistics.median(r['outer_s'] for r in rs):7.3f} s  "
            f"peak {max(r['peak_mb'] for r in rs):7.0f} MB"
        )

    for m in modes:
        print(line(m, runs[m]))
    user = statistics.median(h["user_s"] for h in heads)
    system = statistics.median(h["sys_s"] for h in heads)
    minflt = statistics.median(h["minflt"] for h in heads)
    print(
        f"           headline CPU during the work: user {user:.3f} s, system {system:.3f} s, "
        f"{minflt:.0f} minor page faults (medians)"
    )
    print(f"           {rows:,} rows, {heads[0]['partitions']} partitions")
    print(f"           assessments {heads[0]['assessments']}, episodes {heads[0]['episodes']}")
    if "labs" in runs:
        lab0 = runs["labs"][0]
        print(
            f"           labs: {sum(lab0['assessments'].values()):,} assessments, "
            f"{rows / med('labs'):,.0f} rows/s, {med('labs') / head_s:.2f}x the headline"
        )
    print(
        f"           rows written: io_floor {runs['io_floor'][0]['written']:,}, "
        f"sql {runs['sql'][0]['written']:,} (one per assessment)"
    )
    for m in modes:
        rs = runs[m]
        print(f"every run  {m:<9} work s: {' '.join(format(r['work_s'], '.3f') for r in rs)}")
        if "user_s" in rs[0]:  # CPU of all threads: less sensitive than wall time to a loaded machine
            cpu = " ".join(format(r["user_s"] + r["sys_s"], ".3f") for r in rs)
            print(f"every run  {m:<9} cpu s (user+system): {cpu}")
            faults = " ".join(f"{r['minflt']}/{r['majflt']}" for r in rs)
            print(f"every run  {m:<9} page faults (minor/major): {faults}")
        print(f"every run  {m:<9} load average after: {' '.join(format(r['load'], '.2f') for r in rs)}")
    for r in runs.get("stages", []):
        keys = (
            "first_read_start_s",
            "first_grade_start_s",
            "last_read_end_s",
            "last_grade_end_s",
            "after_last_grade_s",
            "cpu_after_last_grade_s",
        )
        print(f"stages     work {r['work_s']:.3f} s, " + ", ".join(f"{k} {r[k]}" for k in keys))
        print(f"stages     busy wall per thread (s): {r['busy_wall_s_per_thread']}")
        print(f"stages     per stage: {r['stages']}")
        print(f"stages     thread CPU per call (ms): {r['cpu_per_call_ms']}")
    print(
        f"naive      work {naive['work_s']:8.3f} s on {naive['rows']:,} rows -> {naive_total:,.0f} s "
        f"extrapolated to {rows:,} rows (agrees with the engine on the sample: {naive['agrees']})"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    all_ratio = f"{med('all') / head_s:.2f}" if "all" in runs else "nan"
    print(
        f"rows={rows} rows_per_s={rows / head_s:.0f} ratio_vs_io_floor={head_s / med('io_floor'):.2f} "
        f"speedup_vs_duckdb_sql={med('sql') / head_s:.2f} all_scales_ratio={all_ratio} "
        f"ratio_vs_bare_floor={head_s / med('floor'):.2f} speedup_vs_naive={naive_total / head_s:.0f} "
        f"peak_mb={math.ceil(head_peak)}"
    )


if __name__ == "__main__":
    main()
