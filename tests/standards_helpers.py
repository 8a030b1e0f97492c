"""Helpers shared by the standards tests."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa


def icu_stays(rows: pa.Table) -> list[tuple[str, dt.datetime, dt.datetime | None]]:
    """The ICU stays of contract rows (times as UTC instants, whatever their written form)."""

    def when(t: object) -> dt.datetime | None:
        if t is None or isinstance(t, dt.datetime):
            return t
        w = dt.datetime.fromisoformat(str(t))
        return w if w.tzinfo is not None else w.replace(tzinfo=dt.UTC)

    stays = [r for r in rows.to_pylist() if r["code"] == "icu"]
    out = [(str(r["patient_id"]), when(r["time"]), when(r["end_time"])) for r in stays]
    return sorted((p, t, e) for p, t, e in out if t is not None)
