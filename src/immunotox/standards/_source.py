"""What the standard readers share: the mapped observations, their provenance, the rejects, and
grading them through the timeline engine with every reject pointing at the source table and row.

A reader turns a folder of standard tables into contract rows (``patient_id, time, code, value,
unit, end_time, dose, dose_unit``) - each remembering the table and the 1-based row it came from -
plus the rows it could not map (rejects). The timeline engine then checks the contract rows as it
checks any observation file; its rejects are pointed back at the source row. So for the whole
folder: **accepted + rejected + ignored = source rows**.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import ImmunotoxError
from ..timeline import REJECTS_SCHEMA, RunSummary, TimelineResult, grade_observations, run_timeline
from ..timeline._read import CONTRACT_COLUMNS


class StandardsError(ImmunotoxError, ValueError):
    """A folder or table that cannot be read (or a row a writer cannot express), naming it."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.where, self.problem))


@dataclass
class StandardRead:
    """Contract rows read from a standard folder, where each came from, and what was refused."""

    observations: pa.Table
    provenance: list[tuple[str, int]]
    rejects: pa.Table
    source_rows: int
    ignored: dict[str, int]

    @property
    def rejected_rows(self) -> int:
        return int(self.rejects.num_rows)


_REJECT_TYPES_PL = (pl.Utf8, pl.Int64, pl.Utf8, pl.Utf8, pl.Utf8, pl.Utf8)


class Frames:
    """The vectorised collector: contract rows and rejects gathered table by table as Polars
    frames; exact duplicates (same contract row) are rejected when the read is finished, each
    naming the first record it repeats. Rows keep the order of the tables and of their rows."""

    CANDIDATE = (*CONTRACT_COLUMNS, "file", "row")

    def __init__(self) -> None:
        self.parts: list[pl.DataFrame] = []
        self.rejected: list[pl.DataFrame] = []
        self.files: dict[str, int] = {}
        self.source_rows = 0
        self.ignored: dict[str, int] = {}

    def table(self, file: str, rows: int) -> None:
        """Register table ``file`` (its order in the rejects) and count its ``rows``."""
        self.files.setdefault(file, len(self.files))
        self.source_rows += rows

    def ignore(self, table: str, n: int) -> None:
        if n:
            self.ignored[table] = self.ignored.get(table, 0) + n

    def add(self, df: pl.DataFrame) -> None:
        """Contract rows: every column of :attr:`CANDIDATE` (strings; ``row`` an integer)."""
        if df.height:
            self.parts.append(
                df.select(
                    *(
                        pl.col(c).cast(pl.Utf8) if c in df.columns else pl.lit(None, pl.Utf8).alias(c)
                        for c in CONTRACT_COLUMNS
                    ),
                    pl.col("file").cast(pl.Utf8),
                    pl.col("row").cast(pl.Int64),
                )
            )

    def reject(
        self,
        df: pl.DataFrame,
        file: str,
        column: str | pl.Expr,
        value: pl.Expr | None,
        reason: str | pl.Expr,
        detail: str | pl.Expr,
    ) -> None:
        """Reject every row of ``df`` (which has a ``row`` column) with one reason."""
        if not df.height:
            return
        self.rejected.append(
            df.select(
                pl.lit(file).alias("file"),
                pl.col("row").cast(pl.Int64),
                (pl.lit(column) if isinstance(column, str) else column).cast(pl.Utf8).alias("column"),
                (pl.lit(None, pl.Utf8) if value is None else value.cast(pl.Utf8)).alias("value"),
                (pl.lit(reason) if isinstance(reason, str) else reason).cast(pl.Utf8).alias("reason"),
                (pl.lit(detail) if isinstance(detail, str) else detail).cast(pl.Utf8).alias("detail"),
            )
        )

    def reject_one(self, file: str, row: int, column: str, value: Any, reason: str, detail: str) -> None:
        """Reject one row."""
        self.rejected.append(
            pl.DataFrame(
                {
                    "file": [file],
                    "row": [row],
                    "column": [column],
                    "value": [None if value is None else str(value)],
                    "reason": [reason],
                    "detail": [detail],
                },
                schema=dict(zip(REJECTS_SCHEMA.names, _REJECT_TYPES_PL, strict=True)),
            )
        )

    def after_birth(self, df: pl.DataFrame, file: str, column: str, who: str) -> pl.DataFrame:
        """``df`` (with ``time``, ``_pid``, ``_birth``) with its parsed ``_when``, the records
        before the birth rejected (``before_birth``, "before the birth of <who><id>")."""
        df = df.with_columns(parse_times(df["time"]).alias("_when"))
        early = (
            pl.col("_when").is_not_null()
            & pl.col("_birth").is_not_null()
            & (pl.col("_when") < pl.col("_birth"))
        )
        detail = pl.format(f"before the birth of {who}{{}}", "_pid")
        self.reject(df.filter(early), file, column, pl.col("time"), "before_birth", detail)
        return df.filter(~early)

    @staticmethod
    def day0(infusions: list[pl.DataFrame]) -> dict[str, tuple[Any, str]]:
        """Per subject, the first infusion (``_pid``, ``_when``, ``time`` rows): (instant, text);
        of equal instants the first read."""
        if not infusions:
            return {}
        first = (
            pl.concat(infusions)
            .with_row_index("_o")
            .sort(["_pid", "_when", "_o"])
            .group_by("_pid", maintain_order=True)
            .first()
        )
        return {p: (w, t) for p, w, t in first.select("_pid", "_when", "time").iter_rows()}

    def result(self) -> StandardRead:
        schema = {c: pl.Utf8 for c in CONTRACT_COLUMNS} | {"file": pl.Utf8, "row": pl.Int64}
        rows = pl.concat(self.parts) if self.parts else pl.DataFrame(schema=schema)
        blank = [pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c) for c in CONTRACT_COLUMNS]
        keys = list(CONTRACT_COLUMNS)
        rows = rows.with_columns(blank).with_columns(pl.struct(keys).is_first_distinct().alias("_first"))
        kept = rows.filter(pl.col("_first"))
        dup = rows.filter(~pl.col("_first"))
        if dup.height:  # the first record each duplicate repeats (nulls joined as a sentinel)
            filled = [pl.col(c).fill_null("\x00").alias(f"_k{i}") for i, c in enumerate(keys)]
            on = [f"_k{i}" for i in range(len(keys))]
            firsts = kept.select(*filled, pl.col("file").alias("_ffile"), pl.col("row").alias("_frow"))
            dup = dup.with_row_index("_o").with_columns(filled).join(firsts, on=on, how="left").sort("_o")
        rej_schema = dict(zip(REJECTS_SCHEMA.names, _REJECT_TYPES_PL, strict=True))
        parts = list(self.rejected)
        if dup.height:
            parts.append(
                dup.select(
                    "file",
                    "row",
                    pl.lit("").alias("column"),
                    pl.lit(None, pl.Utf8).alias("value"),
                    pl.lit("duplicate").alias("reason"),
                    pl.format("same record as {} row {}; kept once", "_ffile", "_frow").alias("detail"),
                )
            )
        rejects = pl.concat(parts) if parts else pl.DataFrame(schema=rej_schema)
        order = pl.DataFrame(
            {"file": list(self.files), "_t": list(range(len(self.files)))},
            schema={"file": pl.Utf8, "_t": pl.Int64},
        )
        rejects = (
            rejects.join(order, on="file", how="left")
            .sort(["_t", "row"], nulls_last=True, maintain_order=True)
            .drop("_t")
        )
        obs = kept.select(CONTRACT_COLUMNS).to_arrow()
        obs = pa.table(
            {c: obs.column(c).cast(pa.string()) for c in CONTRACT_COLUMNS},
            schema=pa.schema([(c, pa.string()) for c in CONTRACT_COLUMNS]),
        )
        return StandardRead(
            observations=obs,
            provenance=list(zip(kept["file"].to_list(), kept["row"].to_list(), strict=True)),
            rejects=pa.Table.from_pylist(rejects.to_dicts(), schema=REJECTS_SCHEMA),
            source_rows=self.source_rows,
            ignored=dict(self.ignored),
        )


_FORMATS = ("%Y-%m-%dT%H:%M:%S%.fZ", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M")


def parse_times(values: pl.Series) -> pl.Series:
    """ISO 8601 date-times (no offset = UTC) as UTC datetimes; null when not ISO 8601. The usual
    forms (``...Z``, no offset, to the minute) are parsed by Polars; any other text (an offset,
    a space for the ``T``) once per distinct value by :func:`parse_when`."""
    frame = pl.DataFrame({"t": values})
    fast = frame.select(
        pl.coalesce(
            [
                pl.col("t").str.to_datetime(f, strict=False, time_unit="us").dt.replace_time_zone("UTC")
                for f in _FORMATS
            ]
        )
    ).to_series()
    rest = values.filter(fast.is_null() & values.is_not_null() & (values != "")).unique()
    if rest.len():
        parsed = pl.DataFrame(
            {"t": rest, "_p": [parse_when(v) for v in rest.to_list()]},
            schema={"t": pl.Utf8, "_p": pl.Datetime("us", "UTC")},
        )
        slow = frame.with_row_index("_o").join(parsed, on="t", how="left").sort("_o")["_p"]
        fast = fast.fill_null(slow)
    return fast.alias(values.name)


# ------------------------------------------------------------------------------------- times
def parse_when(text: str) -> dt.datetime | None:
    """An ISO 8601 date-time (no offset = UTC, as in the contract), or None."""
    try:
        w = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return w if w.tzinfo is not None else w.replace(tzinfo=dt.UTC)


def iso_utc(t: Any, suffix: str = "Z") -> str:
    """A contract time written as ISO 8601 in UTC (``suffix`` after it; "" for SDTM ``--DTC``)."""
    if t is None:
        return ""
    if isinstance(t, dt.datetime):
        w = (t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
        return w.strftime("%Y-%m-%dT%H:%M:%S") + (f".{w.microsecond:06d}" if w.microsecond else "") + suffix
    return str(t)


# ------------------------------------------------------------------------------- table files
def find_table(folder: Path, name: str) -> Path | None:
    """The file of table ``name`` in ``folder``: ``name.csv`` or ``name.parquet``, any case."""
    wanted = {f"{name.lower()}.csv", f"{name.lower()}.parquet"}
    for p in sorted(folder.iterdir()):
        if p.name.lower() in wanted:
            return p
    return None


def read_arrow(path: Path) -> pa.Table:
    """A CSV or Parquet table with every column as strings (CSV: "" for an empty cell)."""
    try:
        if path.name.lower().endswith(".parquet"):
            t = pq.read_table(path)
            return pa.table({n: t.column(n).cast(pa.string()) for n in t.column_names})
        with path.open(encoding="utf-8", newline="") as fh:
            names = next(csv.reader([fh.readline()]))
        return pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=False
            ),
        )
    except (OSError, pa.ArrowException, UnicodeDecodeError, StopIteration) as exc:
        raise StandardsError(path.name, f"not a readable CSV or Parquet table ({exc})") from None


def read_table(path: Path) -> list[dict[str, str]]:
    """Every row of a CSV or Parquet table as strings (empty string for a missing cell)."""
    rows: list[dict[str, str]] = read_arrow(path).to_pylist()
    return [{k.lower(): ("" if v is None else str(v)) for k, v in r.items()} for r in rows]


def write_table(rows: list[dict[str, Any]], columns: Sequence[str], path: Path) -> None:
    """Write ``rows`` as CSV with the header ``columns`` (empty cell for None)."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        for r in rows:
            w.writerow(["" if r.get(c) is None else r.get(c) for c in columns])


# ------------------------------------------------------------------------------------ grading
def _point_rejects(read: StandardRead, rejects: pa.Table, columns: dict[str, dict[str, str]]) -> pa.Table:
    """The timeline's rejects of ``read.observations`` pointed back at the source rows."""
    rows = rejects.to_pylist()
    for r in rows:
        file, row = read.provenance[int(r["row"]) - 1]
        r["file"], r["row"] = file, row
        r["column"] = columns.get(file.lower().split(".")[0], {}).get(r["column"], r["column"])
    return pa.concat_tables([read.rejects, pa.Table.from_pylist(rows, schema=REJECTS_SCHEMA)])


def grade_read(
    read: StandardRead,
    scales: str | Sequence[str],
    columns: dict[str, dict[str, str]],
    **kwargs: Any,
) -> TimelineResult:
    """:func:`immunotox.timeline.grade_observations` on the rows of a standard folder."""
    res = grade_observations(read.observations, scales, **kwargs)
    res.rejects = _point_rejects(read, res.rejects, columns)
    res.input_rows = read.source_rows
    return res


def run_read(
    read: StandardRead,
    label: str,
    scales: str | Sequence[str],
    out_dir: str | Path,
    columns: dict[str, dict[str, str]],
    **kwargs: Any,
) -> RunSummary:
    """:func:`immunotox.timeline.run_timeline` on the rows of a standard folder; the rejects file
    and ``summary.json`` then count the source rows (reader rejects included)."""
    summary = run_timeline(read.observations, scales, out_dir, **kwargs)
    out = Path(out_dir)
    path = Path(summary.outputs["rejects"])
    if path.suffix == ".parquet":
        rejects = _point_rejects(read, pq.read_table(path), columns)
        pq.write_table(rejects, path)
    else:
        rejects = _point_rejects(read, pacsv.read_csv(path, convert_options=_REJECT_TYPES), columns)
        pacsv.write_csv(rejects, path)
    summary.input = label
    summary.input_rows = read.source_rows
    summary.rejected_rows = int(rejects.num_rows)
    summary.accepted_rows = read.source_rows - summary.rejected_rows - sum(read.ignored.values())
    by: dict[str, int] = {}
    for reason in rejects.column("reason").to_pylist():
        by[reason] = by.get(reason, 0) + 1
    summary.rejected_by_reason = by
    doc = json.loads(summary.to_json())
    doc["ignored_rows"] = read.ignored
    (out / "summary.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", "utf-8")
    return summary


_REJECT_TYPES = pacsv.ConvertOptions(
    column_types=dict(zip(REJECTS_SCHEMA.names, REJECTS_SCHEMA.types, strict=True))
)
