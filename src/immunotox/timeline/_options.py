"""The options of a timeline run, checked: the scales asked for, the memory limit and the partition
size it gives, and the one error a bad option raises (:class:`TimelineArgumentError`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..catalogue import all_scales, get_scale
from ..errors import ImmunotoxError
from ._snapshot import plan

DEFAULT_PARTITION_ROWS = 1_000_000
_BYTES_PER_ROW_IN_FLIGHT = 400  # measured order of magnitude, all partitions in flight together
_BASELINE_BYTES = 250 * 2**20


class TimelineArgumentError(ImmunotoxError, ValueError):
    """A bad argument to a timeline run (unknown scale group, engine, format, memory size)."""

    def __init__(self, option: str, value: Any, problem: str) -> None:
        super().__init__(option, value, problem)
        self.option = option
        self.value = value
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.option} = {self.value!r}: {self.problem}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.option, self.value, self.problem))


def is_crs(scale_id: str) -> bool:
    """Whether ``scale_id`` grades CRS (a CRS scale, or a CTCAE CRS term): one crosstab family."""
    s = all_scales()[scale_id]
    term = scale_id.split(":", 1)[1]
    return s.family == "crs" or term in ("crs", "cytokine-release-syndrome")


def select_scales(spec: str | Sequence[str]) -> list[str]:
    """Scale ids from ``astct2019:crs,astct2019:icans``, ``all-crs`` or ``all``.

    ``all-crs`` is every CRS scale of the catalogue (whichever exist at run time); ``all`` every
    scale that reads at least one finding a timeline can reconstruct (the CTCAE laboratory terms
    graded from their results included).
    """
    items = [x.strip() for x in (spec.split(",") if isinstance(spec, str) else spec) if x.strip()]
    if not items:
        raise TimelineArgumentError("--scales", spec, "no scale given")
    out: list[str] = []
    for item in items:
        if item == "all-crs":
            got = [s for s in all_scales() if is_crs(s) and _readable(s)]
        elif item == "all":
            got = [s for s in all_scales() if _readable(s)]
        else:
            get_scale(item)
            got = [item]
        out += [g for g in got if g not in out]
    return out


def _readable(scale_id: str) -> bool:
    """Whether a timeline reconstructs an input of the scale (a finding, or a lab term's results)."""
    p = plan(all_scales()[scale_id])
    return bool(p.findings) or p.lab is not None


def memory_bytes(text: str | None) -> int | None:
    """Parse ``1GB``, ``512MB``, ``2GiB``, ``800000000`` into bytes (None stays None)."""
    if text is None:
        return None
    raw = text.strip().upper().replace(" ", "")
    factors = {"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "B": 1}
    for suffix in sorted(factors, key=len, reverse=True):
        if raw.endswith(suffix):
            number = raw[: -len(suffix)]
            break
    else:
        number, suffix = raw, "B"
    try:
        value = float(number) * factors[suffix]
    except ValueError:
        raise TimelineArgumentError("--memory-limit", text, "expected a size such as 1GB or 512MB") from None
    if not math.isfinite(value) or value < 64e6:
        raise TimelineArgumentError("--memory-limit", text, "must be at least 64MB")
    return int(value)


def partition_rows(memory_limit: int | None) -> int:
    """Input rows per partition: a fixed default, or what fits ``memory_limit``."""
    if memory_limit is None:
        return DEFAULT_PARTITION_ROWS
    return max(50_000, int((memory_limit - _BASELINE_BYTES) / _BYTES_PER_ROW_IN_FLIGHT))
