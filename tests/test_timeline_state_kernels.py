"""Array kernels of the cohort engine against plain Python: the state layer's window reductions
(short windows element by element, long ones by ``reduceat``) and window search (a binary search
per grid point, or a running count when the series is short), and ``normalize``'s value entries
of the open codes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from immunotox.timeline._read import _values_of_entries
from immunotox.timeline._state import _SHORT_WINDOW, Features, Grid, _reduce_windows


def _plain_reduce(values: list[float], lo: list[int], hi: list[int], how: str) -> list[float]:
    out = []
    for a, b in zip(lo, hi, strict=True):
        w = values[a:b]
        if not w:
            out.append(math.nan)
        elif any(math.isnan(x) for x in w):
            out.append(math.nan)  # np.maximum / np.minimum propagate NaN
        else:
            out.append(max(w) if how == "max" else min(w))
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("how", ["max", "min"])
def test_window_reduction_equals_plain_python(seed: int, how: str) -> None:
    rng = np.random.default_rng(seed)
    m = 300
    values = rng.normal(37.0, 1.5, m).round(1)
    values[rng.integers(0, m, 4)] = np.nan
    n = 400
    lo = rng.integers(0, m + 1, n)
    # empty, short and long windows (longer than the element-by-element part)
    length = rng.choice([0, 1, 2, 3, _SHORT_WINDOW - 1, _SHORT_WINDOW, _SHORT_WINDOW + 1, 40], n)
    hi = np.minimum(lo + length, m)
    got = _reduce_windows(values, lo.astype(np.int64), hi.astype(np.int64), how)
    want = _plain_reduce(values.tolist(), lo.tolist(), hi.tolist(), how)
    assert np.array_equal(got, np.array(want), equal_nan=True)
    assert int((hi - lo).max()) > _SHORT_WINDOW  # the long-window path ran


def test_window_reduction_of_no_window_and_of_empty_windows() -> None:
    v = np.array([1.0, 2.0])
    assert _reduce_windows(v, np.zeros(0, np.int64), np.zeros(0, np.int64), "max").shape == (0,)
    got = _reduce_windows(v, np.array([0, 1, 2]), np.array([0, 1, 2]), "min")
    assert np.isnan(got).all()


def _features_on(grid_keys: np.ndarray) -> Features:
    f = object.__new__(Features)
    f.grid = Grid(key=grid_keys, pid=np.zeros(grid_keys.shape[0], np.int32), t=grid_keys)
    f._cache = {}
    return f


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("m", [0, 1, 7, 60, 150, 400])
@pytest.mark.parametrize("window", [0, 5, 1000])
def test_window_search_counts_the_keys_at_or_before_each_point(seed: int, m: int, window: int) -> None:
    rng = np.random.default_rng(seed)
    grid = np.unique(rng.integers(0, 2000, 300)).astype(np.int64)
    # series keys: some on grid points (a code the grid is made of), some between them, ties excluded
    on_grid, between = rng.choice(grid, m // 2), rng.integers(0, 2100, m - m // 2)
    keys = np.unique(np.concatenate((on_grid, between))).astype(np.int64)
    f = _features_on(grid)
    got = f._search(keys, window)
    want = [sum(1 for k in keys.tolist() if k <= g - window) for g in grid.tolist()]
    assert got.dtype == np.int64
    assert got.tolist() == want
    assert f._search(keys, window) is got  # computed once per key array


@pytest.mark.parametrize("n_entries", [0, 1, 2, 8, 9, 30])
def test_value_entries_of_the_open_code_rows(n_entries: int) -> None:
    """``normalize``'s value entries read by an open code: equal to a plain scan, with few (one
    comparison each) or many (one gather) code entries."""
    rng = np.random.default_rng(n_entries)
    c_idx = rng.integers(0, 60, 5000).astype(np.int32)
    v_idx = rng.integers(0, 900, 5000).astype(np.int32)
    entries = np.sort(rng.choice(60, n_entries, replace=False)).astype(np.int64)
    got = _values_of_entries(c_idx, v_idx, entries)
    wanted = set(entries.tolist())
    want = sorted({v for c, v in zip(c_idx.tolist(), v_idx.tolist(), strict=True) if c in wanted})
    assert got.tolist() == want
