"""The rejects table: one row per refused input row, naming the file, the row, the column, the
value as given, the reason and a detail that says what was expected."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from ..plausibility import time_window_text
from ..vocabulary import Vocabulary
from ._arrow import indices
from ._contract import _REASON_COLUMN, I32, I64, REASONS, REJECTS_SCHEMA
from ._values import State, _column


def _raw_strings(raw: pa.Table, column: str, idx: I64) -> list[str | None]:
    col = _column(raw, column)
    if col is None:
        return [None] * int(idx.shape[0])
    taken = col.take(indices(idx))
    if pa.types.is_dictionary(taken.type):
        taken = taken.cast(taken.type.value_type)
    if pa.types.is_timestamp(taken.type):
        return [None if x is None else x.isoformat() for x in taken.to_pylist()]
    return [None if x is None else str(x) for x in taken.to_pylist()]


def _rejects_table(
    raw: pa.Table,
    file: str,
    rows: I64 | None,
    row0: int,
    reason: State,
    idx: I64,
    detail: dict[int, str],
    c_idx: I32,
    code_of: I32,
    voc: Vocabulary,
) -> pa.Table:
    if idx.shape[0] == 0:
        return pa.Table.from_batches([], schema=REJECTS_SCHEMA)
    reasons = [REASONS[int(r) - 1] for r in reason[idx].tolist()]
    columns = [_REASON_COLUMN[r] for r in reasons]
    values: list[str | None] = [None] * len(reasons)
    for col in set(columns):
        pos = [k for k, c in enumerate(columns) if c == col]
        got = _raw_strings(raw, col, idx[pos])
        for k, v in zip(pos, got, strict=True):
            values[k] = v
    # the unit of every out-of-range value, in one take (the detail quotes it)
    imp = [k for k, r in enumerate(reasons) if r == "impossible_value"]
    unit_of = dict(zip(imp, _raw_strings(raw, "unit", idx[imp]), strict=True)) if imp else {}
    details: list[str] = []
    ncodes = len(voc.codes)
    codes = code_of[c_idx[idx]].tolist()
    same: dict[tuple[str, int], str] = {}  # details that depend on the reason and code only
    for k, (i, r, c) in enumerate(zip(idx.tolist(), reasons, codes, strict=True)):
        d = detail.get(i)
        if d is None:
            code = c if c < ncodes else -1
            if r == "impossible_value":
                d = _default_detail(r, values[k], code, voc, unit_of.get(k))
            else:
                d = same.get((r, code))
                if d is None:
                    d = same[(r, code)] = _default_detail(r, None, code, voc, None)
        details.append(d)
    return pa.table(
        {
            "file": pa.array([file] * len(reasons), pa.string()),
            "row": pa.array(idx + row0 + 1 if rows is None else np.asarray(rows)[idx], pa.int64()),
            "column": pa.array(columns, pa.string()),
            "value": pa.array(values, pa.string()),
            "reason": pa.array(reasons, pa.string()),
            "detail": pa.array(details, pa.string()),
        },
        schema=REJECTS_SCHEMA,
    )


def _default_detail(reason: str, value: Any, code: int, voc: Vocabulary, unit: str | None) -> str:
    """The detail of a rejected row: from its reason and code; the value and unit are quoted for
    a value outside the plausible range."""
    name = voc.codes[code].name if code >= 0 else None
    if reason == "missing_patient_id":
        return "patient_id is empty"
    if reason == "bad_time":
        return "time is empty or not an ISO 8601 date-time (e.g. 2024-03-01T14:30:00Z)"
    if reason == "implausible_time":
        return (
            f"time is outside the plausible window {time_window_text()}: a placeholder date "
            "(0001-01-01, 1900-01-01, 1970-01-01, 9999-12-31) or a typing error?"
        )
    if reason == "unknown_code":
        return "not a canonical code or LOINC alias; see docs/observations.md"
    if reason == "bad_value" and name is not None:
        spec = voc.codes[code]
        if spec.kind == "integer":
            return f"{name} expects a whole number"
        if spec.kind == "quantity":
            return f"{name} expects a number written plainly (e.g. 38.6)"
        if spec.kind in ("token", "bool"):
            return f"{name}: not one of {list(spec.tokens)}"
        return f"{name} expects a non-empty value"
    if reason == "impossible_value" and name is not None:
        spec = voc.codes[code]
        assert spec.range is not None
        return (
            f"{name} = {value} {unit or ''}".rstrip()
            + f": outside the plausible range {spec.range[0]:g}–{spec.range[1]:g} {spec.unit}"
            + "; check the unit and the decimal point"
        )
    if reason == "bad_end_time":
        return "end_time is not an ISO 8601 date-time"
    return reason
