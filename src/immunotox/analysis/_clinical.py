"""The clinical table: one row per infused patient (product, baseline, response, relapse, death).

Columns (``CLINICAL_SCHEMA``; documented in ``docs/analysis.md``). Required: ``patient_id``,
``product``, ``infusion_time``, ``last_followup``. Every other column may be empty (null) but must
be present. Reading follows the observation contract's rules: a file with a missing column is
refused with one line naming it; a row with a bad value is **rejected with its reason** (the
``rejects`` table: ``file, row, column, value, reason, detail``) and never altered; nothing is
dropped silently. Rows are numbered from 1 (the first data row).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from ..errors import FindingError
from ..management._drugs import resolve_product
from ._errors import AnalysisError

TIMESTAMP = pa.timestamp("us", tz="UTC")

CLINICAL_SCHEMA = pa.schema(
    [
        pa.field("patient_id", pa.string(), nullable=False),
        pa.field("product", pa.string(), nullable=False),
        pa.field("indication", pa.string()),
        pa.field("age_years", pa.float64()),
        pa.field("sex", pa.string()),
        pa.field("infusion_time", TIMESTAMP, nullable=False),
        pa.field("lymphodepletion", pa.string()),
        pa.field("easix", pa.float64()),
        pa.field("m_easix", pa.float64()),
        pa.field("car_hematotox", pa.float64()),
        pa.field("best_response", pa.string()),
        pa.field("response_date", TIMESTAMP),
        pa.field("progression_date", TIMESTAMP),
        pa.field("death_date", TIMESTAMP),
        pa.field("death_cause", pa.string()),
        pa.field("next_therapy_date", TIMESTAMP),
        pa.field("last_followup", TIMESTAMP, nullable=False),
    ]
)
"""One row per infused patient; times UTC (microseconds)."""

REQUIRED = ("patient_id", "product", "infusion_time", "last_followup")
RESPONSES = ("CR", "PR", "SD", "PD", "NE")
SEXES = ("F", "M", "other", "unknown")
DEATH_CAUSES = ("crs", "icans", "infection", "progression", "other", "unknown")
AFTER_INFUSION = ("response_date", "progression_date", "death_date", "next_therapy_date", "last_followup")

REJECTS_SCHEMA = pa.schema(
    [
        pa.field("file", pa.string()),
        pa.field("row", pa.int64()),
        pa.field("column", pa.string()),
        pa.field("value", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
    ]
)


@dataclass(frozen=True)
class Clinical:
    """An accepted clinical table and its rejected rows (both Polars)."""

    table: pl.DataFrame
    rejects: pl.DataFrame


def _frame(path: Path) -> pl.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(path)
        if suffix == ".csv":
            return pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise AnalysisError(
            "--clinical", str(path), f"a readable clinical table ({exc})".replace("\n", " ")
        ) from None
    raise AnalysisError("--clinical", str(path), "a .parquet or .csv file")


def _parse_time(value: str) -> dt.datetime | None:
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def read_clinical(source: str | Path | pl.DataFrame | pa.Table, label: str | None = None) -> Clinical:
    """Read and check a clinical table (Parquet, CSV or a table): accepted rows and rejects.

    A missing column raises :class:`AnalysisError` naming it. Rejected rows (reason, first bad
    column): ``missing_value`` (a required cell empty), ``bad_value`` (not a number, a time or a
    known token), ``unknown_product``, ``duplicate_patient_id`` (every row after the first),
    ``before_infusion`` (a response, progression, death, next therapy or follow-up time before the
    infusion), ``after_followup`` (an event after the last follow-up: a censoring time before an
    event), ``death_without_cause`` / ``cause_without_death``, ``response_without_date``.
    """
    if isinstance(source, pl.DataFrame):
        df, name = source, label or "<table>"
    elif isinstance(source, pa.Table):
        df, name = pl.from_arrow(source), label or "<table>"  # type: ignore[assignment]
    else:
        path = Path(source)
        if not path.is_file():
            raise AnalysisError("--clinical", str(path), "an existing file")
        df, name = _frame(path), label or path.name
    missing = [c for c in CLINICAL_SCHEMA.names if c not in df.columns]
    if missing:
        raise AnalysisError(
            "--clinical",
            name,
            f"missing column(s) {', '.join(missing)}; see docs/analysis.md (clinical table)",
        )
    return _check(df.select(CLINICAL_SCHEMA.names), name)


UTC_TS = pl.Datetime("us", "UTC")
ISO = "%Y-%m-%dT%H:%M:%S%:z"


def _as_utc(col: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.Datetime):
        utc = col.dt.replace_time_zone("UTC") if dtype.time_zone is None else col.dt.convert_time_zone("UTC")
        return utc.cast(UTC_TS)
    if isinstance(dtype, pl.Date):
        return col.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if dtype == pl.String:
        return col.str.strip_chars().map_elements(_parse_time, return_dtype=UTC_TS, skip_nulls=True)
    return pl.lit(None, dtype=UTC_TS)


def _check(df: pl.DataFrame, name: str) -> Clinical:
    """Every row checked at once (Polars); the first failing rule of a row is its reject reason."""
    df = df.rename({c: f"_raw_{c}" for c in CLINICAL_SCHEMA.names})
    df = df.with_row_index("row", offset=1).with_columns(pl.col("row").cast(pl.Int64))
    checks: list[tuple[pl.Expr, str, pl.Expr, str, pl.Expr]] = []  # (failed, column, value, reason, detail)
    parsed: list[pl.Expr] = []
    for field in CLINICAL_SCHEMA:
        c = field.name
        col = pl.col(f"_raw_{c}")
        dtype = df.schema[f"_raw_{c}"]
        text = col.cast(pl.String)
        present = col.is_not_null() & (col.str.strip_chars() != "" if dtype == pl.String else pl.lit(True))
        if c in REQUIRED:
            checks.append(
                (~present, c, pl.lit(None, pl.String), "missing_value", pl.lit("a value is required"))
            )
        if pa.types.is_timestamp(field.type):
            value = pl.when(present).then(_as_utc(col, dtype))
            iso = pl.lit("an ISO 8601 time, e.g. 2024-03-05T14:20:00Z")
            checks.append((present & value.is_null(), c, text, "bad_value", iso))
        elif pa.types.is_floating(field.type):
            number = (col.str.strip_chars() if dtype == pl.String else col).cast(pl.Float64, strict=False)
            value = pl.when(present).then(number)
            bad = present & (number.is_null() | number.is_nan() | number.is_infinite() | (number < 0))
            checks.append((bad, c, text, "bad_value", pl.lit("a finite number >= 0")))
            if c == "age_years":
                checks.append(
                    (present & (number > 120), c, text, "bad_value", pl.lit("an age in years, 0-120"))
                )
        else:
            value = pl.when(present).then(text.str.strip_chars())
        parsed.append(value.alias(c))
    df = df.with_columns(parsed)
    products: dict[str, str | None] = {}
    for raw in df["product"].drop_nulls().unique().to_list():
        try:
            products[raw] = resolve_product("product", raw).id
        except FindingError:
            products[raw] = None
    df = df.with_columns(
        pl.col("product").replace_strict(products, default=None, return_dtype=pl.String).alias("_product_id")
    )
    unknown = pl.col("product").is_not_null() & pl.col("_product_id").is_null()
    checks.append(
        (
            unknown,
            "product",
            pl.col("product"),
            "unknown_product",
            pl.lit("a product id, INN or brand (data/drugs.toml)"),
        )
    )
    for c, allowed in (("best_response", RESPONSES), ("sex", SEXES), ("death_cause", DEATH_CAUSES)):
        bad = pl.col(c).is_not_null() & ~pl.col(c).is_in(list(allowed))
        checks.append((bad, c, pl.col(c), "bad_value", pl.lit(f"one of {', '.join(allowed)}")))
    t0 = pl.col("infusion_time")
    for c in AFTER_INFUSION:
        detail = pl.lit("on or after infusion_time ") + t0.dt.strftime(ISO)
        checks.append((pl.col(c) < t0, c, pl.col(c).dt.strftime(ISO), "before_infusion", detail))
    end = pl.col("last_followup")
    for c in ("response_date", "progression_date", "death_date", "next_therapy_date"):
        detail = pl.lit(f"last follow-up on or after {c} ") + pl.col(c).dt.strftime(ISO)
        checks.append((pl.col(c) > end, "last_followup", end.dt.strftime(ISO), "after_followup", detail))
    no_date, no_cause = pl.col("death_date").is_null(), pl.col("death_cause").is_null()
    pair = pl.lit("death_date and death_cause go together")
    checks.append((~no_date & no_cause, "death_cause", pl.lit(None, pl.String), "death_without_cause", pair))
    checks.append((no_date & ~no_cause, "death_date", pl.lit(None, pl.String), "cause_without_death", pair))
    together = pl.lit("best_response and response_date go together")
    mismatch = pl.col("best_response").is_null() != pl.col("response_date").is_null()
    checks.append((mismatch, "response_date", pl.lit(None, pl.String), "response_without_date", together))

    def first(pick: int) -> pl.Expr:
        chain: Any = pl
        for failed, column, value, reason, detail in checks:
            out = (pl.lit(column), value, pl.lit(reason), detail)[pick]
            chain = chain.when(failed.fill_null(False)).then(out)
        result: pl.Expr = chain.otherwise(None)
        return result

    df = df.with_columns(
        first(0).alias("_column"),
        first(1).alias("_value"),
        first(2).alias("_reason"),
        first(3).alias("_detail"),
    )
    ok = pl.col("_reason").is_null()
    first_row = pl.when(ok).then(pl.col("row")).min().over("patient_id")  # among rows without a problem
    df = df.with_columns(
        pl.when(ok).then(first_row).alias("_first_row")
        if df.height
        else pl.lit(None, pl.Int64).alias("_first_row")
    )
    df = df.with_columns(
        pl.when(ok & (pl.col("row") != pl.col("_first_row")))
        .then(pl.lit("duplicate_patient_id"))
        .otherwise(pl.col("_reason"))
        .alias("_reason"),
        pl.when(ok & (pl.col("row") != pl.col("_first_row")))
        .then(pl.lit("patient_id"))
        .otherwise(pl.col("_column"))
        .alias("_column"),
        pl.when(ok & (pl.col("row") != pl.col("_first_row")))
        .then(pl.col("patient_id"))
        .otherwise(pl.col("_value"))
        .alias("_value"),
        pl.when(ok & (pl.col("row") != pl.col("_first_row")))
        .then(pl.lit("first at row ") + pl.col("_first_row").cast(pl.String))
        .otherwise(pl.col("_detail"))
        .alias("_detail"),
    )
    rejects = df.filter(pl.col("_reason").is_not_null()).select(
        pl.lit(name).alias("file"),
        "row",
        pl.col("_column").alias("column"),
        pl.col("_value").cast(pl.String).alias("value"),
        pl.col("_reason").alias("reason"),
        pl.col("_detail").cast(pl.String).alias("detail"),
    )
    accepted = df.filter(pl.col("_reason").is_null()).with_columns(pl.col("_product_id").alias("product"))
    types = {
        f.name: (
            UTC_TS
            if pa.types.is_timestamp(f.type)
            else pl.Float64
            if pa.types.is_floating(f.type)
            else pl.String
        )
        for f in CLINICAL_SCHEMA
    }
    table = accepted.select([pl.col(c).cast(t) for c, t in types.items()])
    return Clinical(table=table, rejects=rejects)
