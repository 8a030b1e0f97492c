"""The timeline run: stream an observation file in patient partitions, grade, write the outputs.

Memory stays bounded as the cohort grows: the input is read in batches of row groups
(:mod:`._source`); the rows of the last patient of a batch are carried over to the next batch so
that every partition holds whole patients; a few partitions are in flight at a time (two worker
threads: numpy, Arrow and Polars release the GIL). A file that is not sorted by patient (checked
on the fly) is re-read and spilled to hash buckets of patients first (:mod:`._spill`), then
graded bucket by bucket. The options are checked by :mod:`._options`; the crosstab and the run
summary are :mod:`._summary`'s.

Outputs (Parquet, or CSV with ``fmt="csv"``): ``grades``, ``daily_max``, ``episodes``,
``patients``, ``crosstab``, ``rejects`` and ``summary.json``.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..catalogue import all_scales
from ._engine import DEFAULT_RESOLUTION_H, SCHEMAS, Params, PartitionOutput, grade_partition
from ._options import (
    DEFAULT_PARTITION_ROWS,
    TimelineArgumentError,
    memory_bytes,
    partition_rows,
    select_scales,
)
from ._read import Normalized, Obs, ObservationFileError, normalize, prepend
from ._snapshot import Grader, codes_read, plan
from ._source import Loader, _Source, _source, batch_loaders, count_rows, raw_batches
from ._spill import _Buckets
from ._summary import (
    CROSSTAB_SCHEMA,
    NOT_DETERMINABLE,
    RunSummary,
    count_rejects,
    crosstab,
    finish,
    grade_label,
    label_order,
    split_patient_ids,
)
from .output import open_writers

# the names below were defined here before the split; they stay importable from this module
__all__ = [
    "CROSSTAB_SCHEMA",
    "DEFAULT_PARTITION_ROWS",
    "NOT_DETERMINABLE",
    "OUTPUTS",
    "Loader",
    "Progress",
    "RunSummary",
    "TimelineArgumentError",
    "_source",
    "batch_loaders",
    "count_rows",
    "crosstab",
    "grade_label",
    "label_order",
    "memory_bytes",
    "partition_rows",
    "raw_batches",
    "run_timeline",
    "select_scales",
    "split_patient_ids",
]

OUTPUTS = ("grades", "daily_max", "episodes", "patients", "crosstab", "rejects")
_IN_FLIGHT = 1  # batches queued per stage (more measured no faster on 2 cores)

Progress = Callable[[int, int | None], None]


# ------------------------------------------------------------------------------------ the run
class _Unsorted(Exception):
    pass


def run_timeline(
    obs: str | Path | pa.Table,
    scales: str | Sequence[str],
    out_dir: str | Path,
    *,
    engine: str = "embedded",
    resolution_hours: float = DEFAULT_RESOLUTION_H,
    memory_limit: int | str | None = None,
    fmt: str = "parquet",
    threads: int | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Grade an observation file (or Arrow table) and write the outputs to ``out_dir``.

    Parameters
    ----------
    obs
        CSV or Parquet file in the observation contract, or an Arrow table.
    scales
        ``"astct2019:crs,astct2019:icans"``, ``"all-crs"``, ``"all"`` or a list of scale ids.
    out_dir
        Output folder (created); existing output files are replaced.
    engine
        ``embedded`` (vectorised, default), ``scalar`` (the reference, slow) or ``spark``.
    resolution_hours
        N of the episode rule: an episode resolves after N hours at grade 0.
    memory_limit
        Bytes (or ``"1GB"``) the run should stay under; sets the partition size.
    fmt
        ``parquet`` or ``csv``.
    """
    t0 = time.perf_counter()
    if engine not in ("embedded", "scalar", "spark"):
        raise TimelineArgumentError("--engine", engine, "expected embedded, spark or scalar")
    if fmt not in ("parquet", "csv"):
        raise TimelineArgumentError("--format", fmt, "expected parquet or csv")
    if not (
        isinstance(resolution_hours, (int, float))
        and math.isfinite(resolution_hours)
        and resolution_hours > 0
    ):
        raise TimelineArgumentError(
            "--resolution-hours", resolution_hours, "must be a positive number of hours"
        )
    limit = memory_bytes(memory_limit) if isinstance(memory_limit, str) else memory_limit
    ids = select_scales(scales)
    src = _source(obs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = Params(resolution_hours=float(resolution_hours))
    summary = RunSummary(input=src.label, engine=engine, scales=ids, resolution_hours=float(resolution_hours))
    if engine == "spark":
        from ._spark import run_spark, spark_unavailable

        why = spark_unavailable()
        if why is not None:
            raise TimelineArgumentError("--engine", "spark", f"not available here: {why}")
        patients = run_spark(src, ids, params, out, fmt, summary, limit)
    else:
        try:
            patients = _run_local(
                src, ids, params, out, fmt, summary, limit, engine, threads, progress, spill=False
            )
        except _Unsorted:
            summary = RunSummary(
                input=src.label, engine=engine, scales=ids, resolution_hours=float(resolution_hours)
            )
            summary.unsorted_input = True
            patients = _run_local(
                src, ids, params, out, fmt, summary, limit, engine, threads, progress, spill=True
            )
    finish(patients, ids, out, fmt, summary)
    summary.seconds = round(time.perf_counter() - t0, 3)
    (out / "summary.json").write_text(summary.to_json() + "\n", "utf-8")
    return summary


def _run_local(
    src: _Source,
    ids: list[str],
    params: Params,
    out: Path,
    fmt: str,
    summary: RunSummary,
    limit: int | None,
    engine: str,
    threads: int | None,
    progress: Progress | None,
    spill: bool,
) -> pa.Table:
    plans = [plan(all_scales()[s]) for s in ids]
    keep = codes_read(plans)
    target = partition_rows(limit)
    total = count_rows(src)
    grader = Grader()
    writers = open_writers(out, fmt)
    workers = threads if threads is not None else min(2, os.cpu_count() or 1)
    if engine == "scalar":
        workers = min(workers, 1)
    patients: list[pa.Table] = []
    done_rows = 0

    def grade(o: Obs) -> PartitionOutput:
        return grade_partition(o, plans, params, engine, grader)

    def write_output(po: PartitionOutput) -> None:
        for name in SCHEMAS:
            for tb in po.tables[name]:
                writers[name].write(tb)
        patients.extend(po.tables["patients"])
        for s, n in po.n_assessments.items():
            summary.assessments[s] = summary.assessments.get(s, 0) + n
        summary.partitions += 1

    try:
        with cf.ThreadPoolExecutor(max_workers=workers) if workers > 0 else _InlineExecutor() as pool:
            norm_q: deque[tuple[cf.Future[Normalized], int]] = deque()
            grade_q: deque[cf.Future[PartitionOutput]] = deque()
            carry: Obs | None = None
            last_id: str | None = None
            spill_dir: Path | None = None
            buckets: _Buckets | None = None
            if spill:
                spill_dir = Path(tempfile.mkdtemp(prefix=".spill-", dir=out))
                n_buckets = max(1, math.ceil((total or target) / target))
                buckets = _Buckets(spill_dir, n_buckets)

            def consume_norm(nf: cf.Future[Normalized], n_rows: int) -> None:
                nonlocal carry, last_id, done_rows
                n = nf.result()
                count_rejects(summary, n)
                writers["rejects"].write(n.rejects)
                done_rows += n_rows
                if progress is not None:
                    progress(done_rows, total)
                o = n.obs
                if buckets is not None:
                    buckets.add(o)
                    return
                if o.n_patients == 0:
                    return
                # whole patients only: hold back the last patient of the batch
                if last_id is not None and o.patient_ids[0] < last_id:
                    raise _Unsorted
                if carry is not None:
                    if o.patient_ids[0] < carry.patient_ids[-1]:
                        raise _Unsorted
                    o = prepend(carry, o)
                last_id = o.patient_ids[-1]
                head, carry = (
                    o.select_patients(0, o.n_patients - 1),
                    o.select_patients(o.n_patients - 1, o.n_patients),
                )
                if head.n_patients:
                    grade_q.append(pool.submit(grade, head))

            def load_and_normalize(load: Loader, before: int) -> Normalized:
                return normalize(load(), file=src.label, row0=before, keep=keep)

            for load, before, n_rows in batch_loaders(src, target):
                norm_q.append((pool.submit(load_and_normalize, load, before), n_rows))
                while len(norm_q) > _IN_FLIGHT:
                    consume_norm(*norm_q.popleft())
                while len(grade_q) > _IN_FLIGHT:
                    write_output(grade_q.popleft().result())
            while norm_q:
                consume_norm(*norm_q.popleft())
            if carry is not None and carry.n_patients:
                grade_q.append(pool.submit(grade, carry))
            while grade_q:
                write_output(grade_q.popleft().result())
            if buckets is not None:
                assert spill_dir is not None
                buckets.close()
                for i in range(buckets.n):
                    o = buckets.read(i)
                    if o.n_patients:
                        write_output(pool.submit(grade, o).result())
                shutil.rmtree(spill_dir, ignore_errors=True)
    except _Unsorted:
        for w in writers.values():
            w.close()
        raise
    finally:
        for w in writers.values():
            w.close()
    summary.snapshots_refused = dict(grader.refused)
    summary.first_refusal = dict(grader.first_refusal)
    for name, w in writers.items():
        summary.outputs[name] = str(w.path)
    if summary.input_rows == 0:
        raise ObservationFileError(src.label, "no observation rows")
    return pa.concat_tables(patients) if patients else pa.Table.from_batches([], schema=SCHEMAS["patients"])


class _InlineExecutor(cf.Executor):
    """Runs submitted work at once, in the calling thread (``threads=0``)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        fut: cf.Future[Any] = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # delivered to the caller through the future
            fut.set_exception(exc)
        return fut
