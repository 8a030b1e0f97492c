"""Plausibility rules shared by the timeline engine and the monitoring service.

Declared once in ``data/plausibility.toml``.

>>> lo, hi = time_window()
>>> lo.isoformat(), hi.isoformat()
('1980-01-01T00:00:00+00:00', '2100-01-01T00:00:00+00:00')
>>> time_window_text()
'1980-01-01 – 2100-01-01'
"""

from __future__ import annotations

import datetime as dt
import functools
import tomllib
from collections.abc import Mapping
from importlib import resources
from typing import Any

from .errors import RuleSpecError


def parse_time_window(t: Mapping[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    """``[time]`` of ``plausibility.toml`` -> (from, until) in UTC; a packaging error if malformed."""
    lo, hi = t.get("plausible_from"), t.get("plausible_until")
    if not (
        isinstance(lo, dt.datetime) and isinstance(hi, dt.datetime) and lo.tzinfo and hi.tzinfo and lo < hi
    ):
        raise RuleSpecError(
            "plausibility.toml [time]: plausible_from and plausible_until must be date-times with "
            f"an offset, from before until (got {lo!r}, {hi!r})"
        )
    return lo.astimezone(dt.UTC), hi.astimezone(dt.UTC)


@functools.cache
def time_window() -> tuple[dt.datetime, dt.datetime]:
    """Plausible observation times ``[from, until)``, UTC."""
    text = resources.files("immunotox").joinpath("data/plausibility.toml").read_text("utf-8")
    return parse_time_window(tomllib.loads(text)["time"])


@functools.cache
def time_window_us() -> tuple[int, int]:
    """:func:`time_window` as microseconds since the epoch (the timeline engine's time unit).

    >>> time_window_us()
    (315532800000000, 4102444800000000)
    """
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    lo, hi = time_window()
    return (lo - epoch) // dt.timedelta(microseconds=1), (hi - epoch) // dt.timedelta(microseconds=1)


def time_window_text() -> str:
    """The window as people read it: ``from – until`` (dates)."""
    lo, hi = time_window()
    return f"{lo:%Y-%m-%d} – {hi:%Y-%m-%d}"
