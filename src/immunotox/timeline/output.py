"""The output files of a timeline run: one writer per file, Parquet or CSV.

Used by the embedded run (:mod:`._run`), the Spark run (:mod:`._spark`) and the benchmarks.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ._engine import SCHEMAS, writer_schema
from ._read import REJECTS_SCHEMA


class OutputWriter:
    """Append tables to one output file (Parquet or CSV)."""

    def __init__(self, path: Path, schema: pa.Schema, fmt: str) -> None:
        self.path = path
        self.schema = schema
        self.fmt = fmt
        self.rows = 0
        self._pq: pq.ParquetWriter | None = None
        self._csv: pacsv.CSVWriter | None = None
        if fmt == "parquet":
            dict_cols = [f.name for f in schema if pa.types.is_dictionary(f.type)]
            self._pq = pq.ParquetWriter(
                path, schema, compression="snappy", store_schema=False, use_dictionary=dict_cols or False
            )
        else:
            self._csv = pacsv.CSVWriter(path, schema)

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if table.schema != self.schema:
            table = table.cast(self.schema)
        if self._pq is not None:
            self._pq.write_table(table)
        else:
            assert self._csv is not None
            self._csv.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        if self._pq is not None:
            self._pq.close()
        if self._csv is not None:
            self._csv.close()


def open_writers(out: Path, fmt: str) -> dict[str, OutputWriter]:
    """The writers of the per-row outputs of a run in ``out`` (``crosstab`` is written at the end)."""
    ext = "parquet" if fmt == "parquet" else "csv"
    w = {name: OutputWriter(out / f"{name}.{ext}", writer_schema(SCHEMAS[name]), fmt) for name in SCHEMAS}
    w["rejects"] = OutputWriter(out / f"rejects.{ext}", writer_schema(REJECTS_SCHEMA), fmt)
    return w
