"""The timeline run: stream an observation file in patient partitions, grade, write the outputs.

Memory stays bounded as the cohort grows: the input is read in batches of row groups; the rows of
the last patient of a batch are carried over to the next batch so that every partition holds
whole patients; a few partitions are in flight at a time (two worker threads: numpy, Arrow and
Polars release the GIL). A file that is not sorted by patient (checked on the fly) is re-read and
spilled to hash buckets of patients first (``_spill``), then graded bucket by bucket.

Outputs (Parquet, or CSV with ``fmt="csv"``): ``grades``, ``daily_max``, ``episodes``,
``patients``, ``crosstab``, ``rejects`` and ``summary.json``.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import json
import math
import os
import shutil
import tempfile
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from ..catalogue import all_scales, get_scale
from ..errors import ImmunotoxError
from ._engine import SCHEMAS, Params, PartitionOutput, grade_partition
from ._read import (
    CONTRACT_COLUMNS,
    REASONS,
    REQUIRED_COLUMNS,
    Normalized,
    Obs,
    ObservationFileError,
    missing_columns,
    normalize,
    prepend,
)
from ._snapshot import Grader, codes_read, plan
from .output import OutputWriter, open_writers

OUTPUTS = ("grades", "daily_max", "episodes", "patients", "crosstab", "rejects")
NOT_DETERMINABLE = "not determinable"
CROSSTAB_SCHEMA = pa.schema(
    [
        ("scale_a", pa.string()),
        ("scale_b", pa.string()),
        ("grade_a", pa.string()),
        ("grade_b", pa.string()),
        ("n_patients", pa.int64()),
    ]
)
DEFAULT_PARTITION_ROWS = 1_000_000
_BYTES_PER_ROW_IN_FLIGHT = 400  # measured order of magnitude, all partitions in flight together
_BASELINE_BYTES = 250 * 2**20
_IN_FLIGHT = 1  # batches queued per stage (more measured no faster on 2 cores)
_STRING_COLUMNS = ("patient_id", "code", "value", "unit", "dose_unit")


class TimelineArgumentError(ImmunotoxError, ValueError):
    """A bad argument to a timeline run (unknown scale group, engine, format, memory size)."""

    def __init__(self, option: str, value: Any, problem: str) -> None:
        super().__init__(option, value, problem)
        self.option = option
        self.value = value
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.option} = {self.value!r}: {self.problem}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.option, self.value, self.problem))


# ------------------------------------------------------------------------------------ scales
def _is_crs(scale_id: str) -> bool:
    s = all_scales()[scale_id]
    term = scale_id.split(":", 1)[1]
    return s.family == "crs" or term in ("crs", "cytokine-release-syndrome")


def select_scales(spec: str | Sequence[str]) -> list[str]:
    """Scale ids from ``astct2019:crs,astct2019:icans``, ``all-crs`` or ``all``.

    ``all-crs`` is every CRS scale of the catalogue (whichever exist at run time); ``all`` every
    scale that reads at least one finding a timeline can reconstruct.
    """
    items = [x.strip() for x in (spec.split(",") if isinstance(spec, str) else spec) if x.strip()]
    if not items:
        raise TimelineArgumentError("--scales", spec, "no scale given")
    out: list[str] = []
    for item in items:
        if item == "all-crs":
            got = [s for s in all_scales() if _is_crs(s) and plan(all_scales()[s]).findings]
        elif item == "all":
            got = [s for s in all_scales() if plan(all_scales()[s]).findings]
        else:
            get_scale(item)
            got = [item]
        out += [g for g in got if g not in out]
    return out


def memory_bytes(text: str | None) -> int | None:
    """Parse ``1GB``, ``512MB``, ``2GiB``, ``800000000`` into bytes (None stays None)."""
    if text is None:
        return None
    raw = text.strip().upper().replace(" ", "")
    factors = {"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "B": 1}
    for suffix in sorted(factors, key=len, reverse=True):
        if raw.endswith(suffix):
            number = raw[: -len(suffix)]
            break
    else:
        number, suffix = raw, "B"
    try:
        value = float(number) * factors[suffix]
    except ValueError:
        raise TimelineArgumentError("--memory-limit", text, "expected a size such as 1GB or 512MB") from None
    if not math.isfinite(value) or value < 64e6:
        raise TimelineArgumentError("--memory-limit", text, "must be at least 64MB")
    return int(value)


def partition_rows(memory_limit: int | None) -> int:
    """Input rows per partition: a fixed default, or what fits ``memory_limit``."""
    if memory_limit is None:
        return DEFAULT_PARTITION_ROWS
    return max(50_000, int((memory_limit - _BASELINE_BYTES) / _BYTES_PER_ROW_IN_FLIGHT))


# ------------------------------------------------------------------------------------- input
@dataclass
class _Source:
    path: Path | None
    table: pa.Table | None
    label: str
    kind: str  # parquet | csv | table


def _source(obs: str | Path | pa.Table) -> _Source:
    if isinstance(obs, pa.Table):
        return _Source(None, obs, "<table>", "table")
    path = Path(obs)
    if not path.exists():
        raise ObservationFileError(str(path), "no such file")
    suffix = "".join(path.suffixes[-2:]).lower()
    if suffix.endswith(".parquet") or suffix.endswith(".pq"):
        return _Source(path, None, path.name, "parquet")
    if suffix.endswith(".csv") or suffix.endswith(".csv.gz") or suffix.endswith(".tsv"):
        return _Source(path, None, path.name, "csv")
    raise ObservationFileError(str(path), "unknown format; expected a .parquet or .csv file")


def _parquet_file(src: _Source) -> pq.ParquetFile:
    """The input Parquet file (memory-mapped); a one-line error when it is not one."""
    assert src.path is not None
    try:
        return pq.ParquetFile(src.path, memory_map=True)
    except (OSError, pa.ArrowException) as exc:
        raise ObservationFileError(src.label, f"not a readable Parquet file ({exc})") from None


def count_rows(src: _Source) -> int | None:
    """Rows of the input when cheaply known (Parquet metadata, in-memory table)."""
    if src.kind == "parquet":
        assert src.path is not None
        return int(_parquet_file(src).metadata.num_rows)
    if src.kind == "table":
        assert src.table is not None
        return int(src.table.num_rows)
    return None


def raw_batches(src: _Source, target_rows: int) -> Iterator[tuple[pa.Table, int]]:
    """(raw contract rows, number of rows before them) in input order, about ``target_rows`` each."""
    for load, before, _n in batch_loaders(src, target_rows):
        yield load(), before


Loader = Callable[[], pa.Table]


def batch_loaders(src: _Source, target_rows: int) -> Iterator[tuple[Loader, int, int]]:
    """(function reading one batch, rows before it, its rows) in input order.

    Parquet batches are whole row groups (a few small ones combined), read by the function itself
    so that worker threads decode them in parallel; CSV is parsed as a stream, in order.
    """
    if src.kind == "table":
        assert src.table is not None
        t = src.table
        for start in range(0, max(t.num_rows, 1), target_rows):
            part = t.slice(start, target_rows)
            yield functools.partial(_identity, part), start, part.num_rows
        return
    if src.kind == "parquet":
        assert src.path is not None
        path = src.path
        f = _parquet_file(src)
        names = f.schema_arrow.names
        # string columns are read as dictionaries (decoded once per distinct value); optional
        # columns may be absent, and a column of another type is read as it is
        as_dict = [
            c
            for c in _STRING_COLUMNS
            if c in names
            and (
                pa.types.is_string(f.schema_arrow.field(c).type)
                or pa.types.is_large_string(f.schema_arrow.field(c).type)
            )
        ]
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            raise ObservationFileError(src.label, missing_columns(missing, names))
        cols = [c for c in CONTRACT_COLUMNS if c in names]

        def read_groups(groups: list[int]) -> pa.Table:
            pf = pq.ParquetFile(path, read_dictionary=as_dict, memory_map=True)
            parts = [pf.read_row_group(g, columns=cols, use_threads=False) for g in groups]
            return parts[0] if len(parts) == 1 else pa.concat_tables(parts)

        def read_slice(group: int, offset: int, length: int) -> pa.Table:
            pf = pq.ParquetFile(path, read_dictionary=as_dict, memory_map=True)
            return pf.read_row_group(group, columns=cols, use_threads=False).slice(offset, length)

        done = 0
        pending: list[int] = []
        n_pending = 0
        for i in range(f.num_row_groups):
            rg_rows = f.metadata.row_group(i).num_rows
            if rg_rows > 4 * target_rows:  # a huge row group: read in slices (bounded memory)
                for off in range(0, rg_rows, target_rows):
                    length = min(target_rows, rg_rows - off)
                    yield functools.partial(read_slice, i, off, length), done, length
                    done += length
                continue
            pending.append(i)
            n_pending += rg_rows
            # row groups are the partitions; only small ones are combined (combining costs a copy)
            if n_pending >= target_rows // 4:
                yield functools.partial(read_groups, list(pending)), done, n_pending
                done += n_pending
                pending, n_pending = [], 0
        if pending:
            yield functools.partial(read_groups, list(pending)), done, n_pending
        return
    for table, before in _csv_batches(src, target_rows):
        yield functools.partial(_identity, table), before, table.num_rows


def _first_line(path: Path) -> str:
    """The file's first line (its header), decoded leniently; empty when unreadable."""
    try:
        with path.open("rb") as f:
            head = f.read(65536)
    except OSError:
        return ""
    return head.split(b"\n", 1)[0].decode("utf-8", "replace").lstrip("\ufeff").strip()


def _identity(table: pa.Table) -> pa.Table:
    return table


def _csv_batches(src: _Source, target_rows: int) -> Iterator[tuple[pa.Table, int]]:
    assert src.path is not None
    try:
        reader = pacsv.open_csv(
            src.path,
            read_options=pacsv.ReadOptions(block_size=max(1 << 20, min(target_rows * 60, 1 << 28))),
            parse_options=pacsv.ParseOptions(delimiter="\t" if src.path.suffix.lower() == ".tsv" else ","),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in CONTRACT_COLUMNS}, strings_can_be_null=False
            ),
        )
    except (OSError, pa.ArrowException) as exc:
        header = _first_line(src.path)
        if ";" in header and "," not in header:  # a spreadsheet's ';'-separated "CSV"
            raise ObservationFileError(src.label, missing_columns(REQUIRED_COLUMNS, [header])) from None
        raise ObservationFileError(src.label, f"not a readable CSV file ({exc})") from None
    names = reader.schema.names
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise ObservationFileError(src.label, missing_columns(missing, names))
    cols = [c for c in CONTRACT_COLUMNS if c in names]
    done = 0
    while True:
        try:
            b = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowException as exc:
            raise ObservationFileError(src.label, f"CSV parse error after row {done} ({exc})") from None
        t = pa.Table.from_batches([b]).select(cols)
        yield t, done
        done += t.num_rows


# ------------------------------------------------------------------------------------ summary
@dataclass
class RunSummary:
    """What a run read, rejected, graded and wrote."""

    input: str
    engine: str
    scales: list[str]
    resolution_hours: float
    input_rows: int = 0
    accepted_rows: int = 0
    rejected_rows: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    patients: int = 0
    partitions: int = 0
    assessments: dict[str, int] = field(default_factory=dict)
    episodes: dict[str, int] = field(default_factory=dict)
    max_grade_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    incomplete_max_grades: dict[str, int] = field(default_factory=dict)
    snapshots_refused: dict[str, int] = field(default_factory=dict)
    first_refusal: dict[str, str] = field(default_factory=dict)
    unsorted_input: bool = False
    split_patient_ids: list[list[str]] = field(default_factory=list)
    seconds: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, ensure_ascii=False)


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
    resolution_hours: float = 24.0,
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
    _finish(patients, ids, out, fmt, summary)
    summary.seconds = round(time.perf_counter() - t0, 3)
    (out / "summary.json").write_text(summary.to_json() + "\n", "utf-8")
    return summary


def _count_rejects(summary: RunSummary, n: Normalized) -> None:
    summary.input_rows += n.n_input
    summary.rejected_rows += n.n_rejected
    summary.accepted_rows += n.n_input - n.n_rejected
    if n.n_rejected:
        reasons = n.rejects.column("reason").to_pylist()
        for r in reasons:
            summary.rejected_by_reason[r] = summary.rejected_by_reason.get(r, 0) + 1


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
                _count_rejects(summary, n)
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


class _Buckets:
    """Patients spilled to ``n`` hash buckets (Arrow IPC files), for inputs not sorted by patient."""

    SCHEMA = pa.schema(
        [
            ("patient_id", pa.string()),
            ("t", pa.int64()),
            ("code", pa.int16()),
            ("num", pa.float64()),
            ("end", pa.int64()),
        ]
    )
    FIRST = pa.schema([("patient_id", pa.string()), ("first_t", pa.int64())])

    def __init__(self, folder: Path, n: int) -> None:
        self.n = n
        self.folder = folder
        self._rows = [ipc.new_file(folder / f"b{i}.arrow", self.SCHEMA) for i in range(n)]
        self._first = [ipc.new_file(folder / f"f{i}.arrow", self.FIRST) for i in range(n)]

    def add(self, o: Obs) -> None:
        if o.n_patients == 0:
            return
        bucket = np.array([zlib.crc32(p.encode()) % self.n for p in o.patient_ids], np.int64)
        ids = pa.array(o.patient_ids, pa.string())
        row_bucket = bucket[o.pid]
        for b in np.unique(bucket).tolist():
            rows = np.flatnonzero(row_bucket == b)
            pats = np.flatnonzero(bucket == b)
            self._rows[b].write_table(
                pa.table(
                    [ids.take(pa.array(o.pid[rows])), o.t[rows], o.code[rows], o.num[rows], o.end[rows]],
                    schema=self.SCHEMA,
                )
            )
            self._first[b].write_table(
                pa.table([ids.take(pa.array(pats)), o.first_t[pats]], schema=self.FIRST)
            )

    def close(self) -> None:
        for w in (*self._rows, *self._first):
            w.close()

    def read(self, i: int) -> Obs:
        rows = ipc.open_file(self.folder / f"b{i}.arrow").read_all()
        first = ipc.open_file(self.folder / f"f{i}.arrow").read_all()
        if first.num_rows == 0:
            return Obs.empty()
        ids = sorted(set(first.column("patient_id").to_pylist()))
        rank = {p: k for k, p in enumerate(ids)}
        ft = np.full(len(ids), np.iinfo(np.int64).max, np.int64)
        np.minimum.at(
            ft,
            np.array([rank[p] for p in first.column("patient_id").to_pylist()], np.int64),
            first.column("first_t").to_numpy(),
        )
        pid = np.array([rank[p] for p in rows.column("patient_id").to_pylist()], np.int32)
        t = rows.column("t").to_numpy()
        perm = np.lexsort((t, pid))
        return Obs(
            ids,
            pid[perm],
            t[perm],
            rows.column("code").to_numpy()[perm].astype(np.int16),
            rows.column("num").to_numpy()[perm],
            rows.column("end").to_numpy()[perm],
            ft,
        )


# --------------------------------------------------------------------------- crosstab, summary
def grade_label(max_grade: int | None, complete: bool | None = True) -> str:
    """The crosstab label of a per-patient max grade: ``"2"``; ``"≥2"`` when the maximum is a
    lower bound (an input the scale needs was missing: the grade could be higher); ``not
    determinable`` when no grade could be established."""
    if max_grade is None:
        return NOT_DETERMINABLE
    return str(max_grade) if complete else f"≥{max_grade}"


def crosstab(patients: pa.Table, ids: Sequence[str]) -> pa.Table:
    """Per-patient max grade of the first scale of each family against every other scale of it.

    A patient whose grade under a scale could never be established (no assessment, or inputs
    absent) is counted under ``not determinable``; a maximum that is only a lower bound is
    labelled ``≥N`` (missing data is never read as normal).
    """
    by_scale: dict[str, dict[str, str]] = {s: {} for s in ids}
    for pid, scale, mg, comp in zip(
        patients.column("patient_id").to_pylist(),
        patients.column("scale").to_pylist(),
        patients.column("max_grade").to_pylist(),
        patients.column("complete").to_pylist(),
        strict=True,
    ):
        by_scale[scale][pid] = grade_label(mg, comp)
    rows: dict[tuple[str, str, str, str], int] = {}
    families: dict[str, list[str]] = {}
    for s in ids:
        fam = "crs" if _is_crs(s) else all_scales()[s].family
        families.setdefault(fam, []).append(s)
    for group in families.values():
        if len(group) < 2:
            continue
        a = group[0]
        for b in group[1:]:
            for pid, ga in by_scale[a].items():
                gb = by_scale[b].get(pid, NOT_DETERMINABLE)
                rows[(a, b, ga, gb)] = rows.get((a, b, ga, gb), 0) + 1
    keys = sorted(rows, key=lambda k: (k[0], k[1], label_order(k[2]), label_order(k[3])))
    frame = pl.DataFrame(
        {
            "scale_a": [k[0] for k in keys],
            "scale_b": [k[1] for k in keys],
            "grade_a": [k[2] for k in keys],
            "grade_b": [k[3] for k in keys],
            "n_patients": [rows[k] for k in keys],
        },
        schema={
            "scale_a": pl.String,
            "scale_b": pl.String,
            "grade_a": pl.String,
            "grade_b": pl.String,
            "n_patients": pl.Int64,
        },
    )
    return frame.to_arrow().cast(CROSSTAB_SCHEMA)


def split_patient_ids(ids: Iterable[str]) -> list[list[str]]:
    """Groups of patient ids that differ only by surrounding spaces (``"P2"``, ``" P2 "``).

    Ids are taken exactly as written, so such rows are graded as different patients; the usual
    cause is a padded export, which splits one patient's record in two. The run reports them.

    >>> split_patient_ids(["P1", " P2 ", "P2", "P3", "P3 "])
    [[' P2 ', 'P2'], ['P3', 'P3 ']]
    """
    groups: dict[str, list[str]] = {}
    for pid in ids:
        groups.setdefault(pid.strip(), []).append(pid)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def label_order(label: str) -> int:
    """Sort key of crosstab labels: 0, ≥0, 1, ≥1, … , not determinable."""
    if label == NOT_DETERMINABLE:
        return 999
    if label.startswith("≥"):
        return 2 * int(label[1:]) + 1
    return 2 * int(label)


def _finish(patients: pa.Table, ids: Sequence[str], out: Path, fmt: str, summary: RunSummary) -> None:
    if patients.num_rows:
        patients = patients.cast(SCHEMAS["patients"])
    ct = crosstab(patients, ids)
    ext = "parquet" if fmt == "parquet" else "csv"
    w = OutputWriter(out / f"crosstab.{ext}", CROSSTAB_SCHEMA, fmt)
    w.write(ct)
    w.close()
    summary.outputs["crosstab"] = str(w.path)
    patient_ids = set(patients.column("patient_id").to_pylist()) if patients.num_rows else set()
    summary.patients = len(patient_ids)
    summary.split_patient_ids = split_patient_ids(patient_ids)
    for s in ids:
        summary.max_grade_counts[s] = {}
        summary.episodes.setdefault(s, 0)
    for scale, mg, comp, n_ep in zip(
        patients.column("scale").to_pylist(),
        patients.column("max_grade").to_pylist(),
        patients.column("complete").to_pylist(),
        patients.column("n_episodes").to_pylist(),
        strict=True,
    ):
        label = grade_label(mg)
        counts = summary.max_grade_counts[scale]
        counts[label] = counts.get(label, 0) + 1
        summary.episodes[scale] += int(n_ep)
        if mg is not None and not comp:
            summary.incomplete_max_grades[scale] = summary.incomplete_max_grades.get(scale, 0) + 1
    for s in ids:
        summary.max_grade_counts[s] = dict(
            sorted(summary.max_grade_counts[s].items(), key=lambda kv: label_order(kv[0]))
        )
    summary.rejected_by_reason = {
        r: summary.rejected_by_reason[r] for r in REASONS if r in summary.rejected_by_reason
    }
