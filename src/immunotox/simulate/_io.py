"""Writing observation and truth tables: Parquet or CSV, chosen by the file extension.

CSV times are ISO 8601 in UTC with a ``Z`` (``2024-03-05T14:20:00Z``); a null ``time`` (only
produced by the bad-row injector) is written ``not-a-time``; other nulls are empty cells.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from . import _vocab as V
from ._errors import SimulationError

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv",)


def file_format(path: str | Path, option: str = "path") -> str:
    """``"parquet"`` or ``"csv"`` from the extension of ``path``; anything else is refused."""
    suffix = Path(path).suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in CSV_SUFFIXES:
        return "csv"
    raise SimulationError(option, str(path), "must end in .parquet, .pq or .csv")


@functools.cache
def _time_of_day() -> Any:
    return pa.array([f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z" for s in range(86400)])


def iso_strings(column: Any, null_text: str | None = None) -> Any:
    """ISO 8601 UTC strings (``...Z``) of a timestamp[us, UTC] column; nulls stay null unless
    ``null_text`` is given."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    us = arr.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    if np.all(us % 1_000_000 == 0):
        secs = us // 1_000_000
        days = secs // 86400
        uniq, inv = np.unique(days, return_inverse=True)
        dates = pa.array(np.datetime_as_string(uniq.astype("datetime64[D]"), unit="D"))
        date_str = dates.take(pa.array(inv.reshape(-1)))
        tod_str = _time_of_day().take(pa.array(secs - days * 86400))
        out = pc.binary_join_element_wise(date_str, tod_str, "T")
    else:
        text = np.char.add(np.datetime_as_string(us.astype("datetime64[us]"), unit="us"), "Z")
        out = pa.array(text)
    fill = pa.array(np.where(valid, 0, 1).astype(bool))
    if null_text is None:
        return pc.if_else(fill, pa.scalar(None, pa.string()), out)
    return pc.if_else(fill, pa.scalar(null_text), out)


def csv_ready(table: Any, time_null_text: str | None = None) -> Any:
    """``table`` with every timestamp column turned into ISO 8601 strings."""
    cols = []
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            col = iso_strings(col, time_null_text if name == "time" else None)
        cols.append(col)
    return pa.Table.from_arrays(cols, names=table.column_names)


def _csv_options() -> Any:
    return pacsv.WriteOptions(include_header=True, quoting_style="needed")


class TableWriter:
    """Streams tables of one schema to a Parquet or CSV file (one row group per write)."""

    def __init__(self, path: str | Path, schema: Any, *, metadata: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.format = file_format(path)
        self.schema = schema
        self._writer: Any = None
        self._meta = (
            {b"immunotox.simulate": json.dumps(metadata, sort_keys=True).encode()} if metadata else None
        )
        self.rows = 0

    def write(self, table: Any) -> None:
        table = table.cast(self.schema)  # same types and nullability in every chunk
        if self.format == "parquet":
            if self._writer is None:
                schema = self.schema.with_metadata(self._meta) if self._meta else self.schema
                self._writer = pq.ParquetWriter(self.path, schema)
            self._writer.write_table(table.replace_schema_metadata(self._writer.schema.metadata))
        else:
            ready = csv_ready(table, V.BAD_TIME_TEXT if "time" in table.column_names else None)
            if self._writer is None:
                self._writer = pacsv.CSVWriter(self.path, ready.schema, write_options=_csv_options())
            self._writer.write_table(ready)
        self.rows += table.num_rows

    def close(self) -> None:
        if self._writer is None:  # nothing written: still produce a valid, empty file
            self.write(self.schema.empty_table())
        self._writer.close()


def write_table(table: Any, path: str | Path, *, option: str = "path") -> None:
    """Write ``table`` to ``path`` as Parquet or CSV (by extension)."""
    fmt = file_format(path, option)
    if fmt == "parquet":
        pq.write_table(table, path, row_group_size=1_000_000)
    else:
        ready = csv_ready(table, V.BAD_TIME_TEXT if "time" in table.column_names else None)
        pacsv.write_csv(ready, path, write_options=_csv_options())
