"""Where standard tables are read from: a folder of CSV/Parquet files or a database URL.

Both give each table as a Polars frame of strings (column names lower-cased, an empty string for
a missing cell), so the readers see the same thing whatever the source:

* a **folder**: ``measurement.csv`` or ``MEASUREMENT.parquet`` (any case); a reject names the file;
* a **database URL** (SQLAlchemy: ``sqlite:///cdm.db``, ``postgresql+psycopg://user@host/db``,
  with ``?schema=cdm`` to read another schema than the default); a reject names the table. Cells
  are written as the CSV files hold them: a date-time as ISO 8601 (UTC with ``Z`` when the
  database gives an offset, as is when it gives none: the contract reads it as UTC), a date as
  ``YYYY-MM-DD``, a whole number without decimals.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from pathlib import Path
from typing import Any, Protocol

import polars as pl
import pyarrow as pa

from ._source import StandardsError, read_arrow

_URL = re.compile(r"^[a-z][a-z0-9+]*://", re.IGNORECASE)


def is_database_url(source: str | Path) -> bool:
    """True when ``source`` is a database URL (``scheme://...``), not a path."""
    return isinstance(source, str) and _URL.match(source) is not None


class Tables(Protocol):
    """A set of named tables (a folder or a database)."""

    label: str

    def find(self, name: str) -> str | None:
        """The label of table ``name`` (file or table name), or None when absent."""

    def read(self, name: str) -> pl.DataFrame:
        """Table ``name`` as strings (lower-case column names, "" for a missing cell)."""


def _strings(t: pa.Table) -> pl.DataFrame:
    df = pl.from_arrow(pa.table({n: t.column(n).cast(pa.string()) for n in t.column_names}))
    assert isinstance(df, pl.DataFrame)
    return df.select(pl.col(c).cast(pl.Utf8).fill_null("").alias(c.lower()) for c in df.columns)


class FolderTables:
    """Tables as files of a folder: ``name.csv`` or ``name.parquet`` (any case)."""

    def __init__(self, folder: str | Path) -> None:
        self.root = Path(folder)
        self.label = str(folder)
        self._files = {p.name.lower(): p for p in sorted(self.root.iterdir())} if self.root.is_dir() else {}

    def _path(self, name: str) -> Path | None:
        for ext in (".csv", ".parquet"):
            p = self._files.get(name.lower() + ext)
            if p is not None:
                return p
        return None

    def find(self, name: str) -> str | None:
        p = self._path(name)
        return None if p is None else p.name

    def read(self, name: str) -> pl.DataFrame:
        path = self._path(name)
        if path is None:
            raise StandardsError(self.label, f"no {name} table")
        t = read_arrow(path)
        return _strings(t)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(dt.UTC)
            return str(v.replace(tzinfo=None).isoformat()) + "Z"
        return str(v.isoformat())
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, float | decimal.Decimal) and v == int(v):
        return str(int(v))
    return str(v)


class DatabaseTables:
    """Tables of a database reached through SQLAlchemy (read only; one connection per read)."""

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self.label = _safe_url(url)
        base, _, query = url.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        self.schema = params.pop("schema", None)
        rest = "&".join(f"{k}={v}" for k, v in params.items())
        try:
            self.engine = sa.create_engine(base + (f"?{rest}" if rest else ""))
            with self.engine.connect() as conn:
                names = sa.inspect(conn).get_table_names(schema=self.schema)
        except (sa.exc.SQLAlchemyError, ImportError, ValueError) as exc:
            raise StandardsError(self.label, f"cannot open the database ({type(exc).__name__})") from None
        self._names = {n.lower(): n for n in names}

    def find(self, name: str) -> str | None:
        return self._names.get(name.lower())

    def read(self, name: str) -> pl.DataFrame:
        import sqlalchemy as sa

        real = self._names.get(name.lower())
        if real is None:
            raise StandardsError(self.label, f"no {name} table")
        table = sa.Table(real, sa.MetaData(), schema=self.schema)
        try:
            with self.engine.connect() as conn:
                result = conn.execute(sa.select(sa.text("*")).select_from(table))
                keys = result.keys()
                cols = [str(c).lower() for c in keys]
                rows = result.fetchall()
        except sa.exc.SQLAlchemyError as exc:
            raise StandardsError(real, f"cannot read the table ({type(exc).__name__})") from None
        data = {c: [_cell(r[i]) for r in rows] for i, c in enumerate(cols)}
        return pl.DataFrame(data, schema={c: pl.Utf8 for c in cols})

    def dispose(self) -> None:
        self.engine.dispose()


def _safe_url(url: str) -> str:
    """The URL without its password (never echoed)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def open_tables(source: str | Path, what: str) -> Tables:
    """A folder or a database URL as :class:`Tables` (``what`` names the standard in errors)."""
    if is_database_url(source):
        return DatabaseTables(str(source))
    root = Path(source)
    if not root.is_dir():
        raise StandardsError(str(root), f"not a folder of {what} nor a database URL")
    return FolderTables(root)
