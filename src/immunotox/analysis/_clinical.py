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
    rows = df.select(CLINICAL_SCHEMA.names).to_dicts()
    accepted: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    first_row: dict[str, int] = {}
    for i, raw in enumerate(rows, start=1):
        rec, problem = _check_row(raw)
        if problem is None:
            pid = rec["patient_id"]
            if pid in first_row:
                problem = ("patient_id", pid, "duplicate_patient_id", f"first at row {first_row[pid]}")
            else:
                first_row[pid] = i
        if problem is not None:
            col, value, reason, detail = problem
            rejects.append(
                {
                    "file": name,
                    "row": i,
                    "column": col,
                    "value": None if value is None else str(value),
                    "reason": reason,
                    "detail": detail,
                }
            )
        else:
            accepted.append(rec)
    table = pl.from_arrow(pa.Table.from_pylist(accepted, schema=CLINICAL_SCHEMA))
    assert isinstance(table, pl.DataFrame)
    rej = pl.from_arrow(pa.Table.from_pylist(rejects, schema=REJECTS_SCHEMA))
    assert isinstance(rej, pl.DataFrame)
    return Clinical(table=table, rejects=rej)


Problem = tuple[str, Any, str, str]


def _check_row(raw: dict[str, Any]) -> tuple[dict[str, Any], Problem | None]:
    rec: dict[str, Any] = {}
    for field in CLINICAL_SCHEMA:
        value = raw[field.name]
        if isinstance(value, str) and not value.strip():
            value = None
        if value is None:
            if field.name in REQUIRED:
                return rec, (field.name, None, "missing_value", "a value is required")
            rec[field.name] = None
            continue
        if pa.types.is_timestamp(field.type):
            if isinstance(value, str):
                t = _parse_time(value)
                if t is None:
                    return rec, (
                        field.name,
                        value,
                        "bad_value",
                        "an ISO 8601 time, e.g. 2024-03-05T14:20:00Z",
                    )
                value = t
            elif isinstance(value, dt.datetime):
                value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
            elif isinstance(value, dt.date):
                value = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
            else:
                return rec, (field.name, value, "bad_value", "a time")
        elif pa.types.is_floating(field.type):
            try:
                number = float(value)
            except (TypeError, ValueError):
                return rec, (field.name, value, "bad_value", "a number")
            if number != number or number < 0 or number == float("inf"):
                return rec, (field.name, value, "bad_value", "a finite number >= 0")
            if field.name == "age_years" and number > 120:
                return rec, (field.name, value, "bad_value", "an age in years, 0-120")
            value = number
        else:
            value = str(value).strip()
        rec[field.name] = value
    try:
        rec["product"] = resolve_product("product", rec["product"]).id
    except FindingError:
        return rec, (
            "product",
            rec["product"],
            "unknown_product",
            "a product id, INN or brand (data/drugs.toml)",
        )
    for name, allowed in (("best_response", RESPONSES), ("sex", SEXES), ("death_cause", DEATH_CAUSES)):
        if rec[name] is not None and rec[name] not in allowed:
            return rec, (name, rec[name], "bad_value", f"one of {', '.join(allowed)}")
    t0 = rec["infusion_time"]
    for name in AFTER_INFUSION:
        if rec[name] is not None and rec[name] < t0:
            return rec, (
                name,
                rec[name].isoformat(),
                "before_infusion",
                f"on or after infusion_time {t0.isoformat()}",
            )
    end = rec["last_followup"]
    for name in ("response_date", "progression_date", "death_date", "next_therapy_date"):
        if rec[name] is not None and rec[name] > end:
            return rec, (
                "last_followup",
                end.isoformat(),
                "after_followup",
                f"last follow-up on or after {name} {rec[name].isoformat()}",
            )
    if (rec["death_date"] is None) != (rec["death_cause"] is None):
        reason = "death_without_cause" if rec["death_cause"] is None else "cause_without_death"
        col = "death_cause" if rec["death_cause"] is None else "death_date"
        return rec, (col, None, reason, "death_date and death_cause go together")
    if (rec["best_response"] is None) != (rec["response_date"] is None):
        return rec, (
            "response_date",
            None,
            "response_without_date",
            "best_response and response_date go together",
        )
    return rec, None
