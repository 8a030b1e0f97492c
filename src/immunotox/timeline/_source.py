"""The input of a timeline run: a Parquet or CSV file in the observation contract, or an Arrow
table, read in batches of about a partition's rows (Parquet: whole row groups, decoded by the
worker threads; CSV: parsed as a stream, in order)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ._read import READ_COLUMNS, REQUIRED_COLUMNS, ObservationFileError, missing_columns

_STRING_COLUMNS = ("patient_id", "code", "value", "unit", "dose_unit")


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
        cols = [c for c in READ_COLUMNS if c in names]

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
                column_types={c: pa.string() for c in READ_COLUMNS}, strings_can_be_null=False
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
    cols = [c for c in READ_COLUMNS if c in names]
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
