"""Vectorised ICAHT (EHA/EBMT 2023) from dated ANC series in the cohort engine.

At every ANC result of a patient, the ICAHT scales (``ehaebmt2023:icaht``, ``-early``, ``-late``)
are graded on the ANC course known at that time (``[derive.anc_series]`` of
``data/observations.toml``: days from day 0, values with their unit). This module does, on whole
arrays (numpy; no Python per row or per patient), what :mod:`immunotox.scales.icaht` does for one
series, reading the SAME typed rule table (:func:`immunotox.scales.icaht_spec.table`, the object the
scalar core reads: windows, gap filling, joined recoveries, duration bands, never-recovered rule,
late nadir bands, minimum count, cap):

* the daily minimum of every (patient, day) of the two windows, as known at each result: the
  days before the result's day are complete, the result's own day is its running minimum;
* early window: the gap rule (interpolation, carried values, unknown days) once on a matrix of
  one row per result and one column per day, then the grade twice (unknown days recovered: the
  lower bound; at ANC 0: the upper bound), with the longest joined episode per threshold;
* late window: measured values only, the two lowest, the nadir band, transient or single values;
* the grade (lowest, highest, complete, assessable) combined as :meth:`Scale.resolve` does.

The values are converted to the scale's unit by :func:`immunotox.units.convert` itself, once per
distinct value (a lab reports few distinct values), so that a value on a threshold stays on it
exactly as in the core. No timeline gives ``last_follow_up_*`` or ``censor_*``: both windows end
at their nominal last day, and late ICAHT is never "not applicable" here.

``tests/test_timeline_icaht.py`` proves the engine equal to the scalar reference (the grading
core on each snapshot) on random ANC courses (hypothesis).

References
----------
Rejeski K, Subklewe M, Aljurf M, et al. Blood 2023;142(10):865-877. doi:10.1182/blood.2023020578
Liang EC. automatedicahtgrading (commit c3e0109, 2024).
"""

from __future__ import annotations

import functools

import numpy as np
import polars as pl

from .. import units
from ..catalogue import all_scales
from ..findings import vocabulary as finding_specs
from ..scales.icaht import Icaht, IcahtEarly, IcahtLate
from ..scales.icaht_spec import Early, Late, table
from ._astct import Graded
from ._read import F64, I64, B
from ._reference import DAY_US
from ._snapshot import ScalePlan
from ._state import Features

_KINDS = {Icaht.id: ("early", "late"), IcahtEarly.id: ("early",), IcahtLate.id: ("late",)}
FINDING = "anc_series"


def handles(p: ScalePlan) -> bool:
    """True when ``p`` is an ICAHT scale fed its ANC series (the only input a timeline gives)."""
    return p.scale_id in _KINDS and p.findings == (FINDING,)


def _to_scale_unit(values: F64, code_unit: str) -> F64:
    """The values in the finding's unit, converted by the core's own function (once per value)."""
    spec = finding_specs()[FINDING]
    assert spec.unit is not None
    if values.shape[0] == 0:
        return values
    uniq, inv = np.unique(values, return_inverse=True)
    conv = np.array([units.convert(FINDING, float(x), code_unit, spec.unit) for x in uniq.tolist()])
    out: F64 = conv[inv.reshape(-1)]
    return out


def _daily(f: Features, d0: I64, first: int, last: int) -> F64:
    """Daily minimum of every day ``first..last`` as known at each grid point (NaN: no value)."""
    tl, grid = f.tl, f.grid
    d = f.voc.derivation(FINDING)
    code = d.codes[0]
    keys, vals, _rows = tl.series(code)
    width = last - first + 1
    n = len(grid)
    out = np.full((n, width), np.nan)
    if keys.shape[0] == 0 or n == 0:
        return out
    pid, t = tl.time_of(keys)
    day = np.floor_divide(t - d0[pid], DAY_US)
    v = _to_scale_unit(vals, f.voc.code(code).unit or "")
    # the last value known at each grid point (of the same patient)
    j = np.searchsorted(keys, grid.key, side="right") - 1
    ok = j >= 0
    ok[ok] = pid[j[ok]] == grid.pid[ok]
    # running minimum within each (patient, day), and the final minimum of each (patient, day)
    run = np.concatenate(([True], (pid[1:] != pid[:-1]) | (day[1:] != day[:-1]))).cumsum()
    running = pl.DataFrame({"r": run, "v": v}).select(pl.col("v").cum_min().over("r"))["v"].to_numpy()
    n_pat = int(d0.shape[0])
    inw = (day >= first) & (day <= last)
    final = np.full((n_pat, width), np.inf)
    np.minimum.at(final, (pid[inw].astype(np.int64), (day[inw] - first).astype(np.int64)), v[inw])
    final[np.isinf(final)] = np.nan
    # at a grid point whose last value is on day dj: complete days before dj, running min on dj
    g = np.flatnonzero(ok)
    jg = j[g]
    dj = day[jg]
    cols = np.arange(first, last + 1)
    out[g] = np.where(cols[None, :] < dj[:, None], final[grid.pid[g].astype(np.int64)], np.nan)
    own = (dj >= first) & (dj <= last)
    out[g[own], (dj[own] - first).astype(np.int64)] = running[jg[own]]
    return out


def _fill(e: F64, max_gap: int) -> tuple[F64, B]:
    """The gap rule of :func:`immunotox.scales.icaht.fill_gaps` on every row: (values, unknown)."""
    n, w = e.shape
    measured = ~np.isnan(e)
    idx = np.arange(w)
    prev = np.maximum.accumulate(np.where(measured, idx, -1), axis=1)
    nxt = np.minimum.accumulate(np.where(measured, idx, w)[:, ::-1], axis=1)[:, ::-1]
    gap = nxt - prev - 1
    rows = np.arange(n)[:, None]
    va = e[rows, np.maximum(prev, 0)]
    vb = e[rows, np.minimum(nxt, w - 1)]
    with np.errstate(invalid="ignore"):
        interp = va + (vb - va) * (idx[None, :] - prev) / (nxt - prev)
    filled = np.where(prev < 0, vb, np.where(nxt >= w, va, interp))
    out = np.where(measured, e, filled)
    unknown = ~measured & (gap > max_gap)
    return np.where(unknown, np.nan, out), unknown


def _assess_early(values: F64, first: int, t: Early) -> tuple[I64, B]:
    """:func:`immunotox.scales.icaht.assess_early` on every row: (grade, a rule fired)."""
    n, w = values.shape
    idx = np.arange(w)
    grade = np.zeros(n, np.int64)
    hit = np.zeros(n, bool)
    join = t.max_joined_recovery_days
    for thr in t.thresholds:
        below = values <= thr.max_per_ul
        last_below = np.maximum.accumulate(np.where(below, idx, -(join + 2) * 10 - w), axis=1)
        prev = np.concatenate((np.full((n, 1), -(join + 2) * 10 - w), last_below[:, :-1]), axis=1)
        new = below & (idx[None, :] - prev - 1 > join)
        start = np.maximum.accumulate(np.where(new, idx, -1), axis=1)
        longest = np.where(below, idx[None, :] - start + 1, 0).max(axis=1)
        if thr.key == t.never_recovered_threshold_key:
            never = below[:, -1] & (start[:, -1] + first <= t.never_recovered_max_start_day)
            g_nr = t.never_recovered_grade
            grade = np.where(never, np.maximum(grade, g_nr), grade)
            hit |= never
        band = np.zeros(n, np.int64)
        for b in thr.bands:
            band = np.where((longest >= b.min_days) & (longest <= b.max_days), b.grade, band)
        band = np.where(longest > 0, band, 0)
        hit |= band > 0
        grade = np.maximum(grade, band)
    return grade, hit


def _early(f: Features, d0: I64, top: int) -> tuple[I64, I64, B, B]:
    """Early domain at every point: (lowest, highest, known, a rule fired)."""
    t = table().early
    first, last = t.first_day, t.last_day
    e = _daily(f, d0, first, last)
    any_value = (~np.isnan(e)).any(axis=1)
    filled, unknown = _fill(e, t.max_filled_gap_days)
    best, best_hit = _assess_early(np.where(unknown, np.inf, filled), first, t)
    worst, _ = _assess_early(np.where(unknown, 0.0, filled), first, t)
    lo = np.where(any_value, best, 0)
    hi = np.where(any_value, worst, top)
    return lo, hi, any_value & (best == worst), any_value & best_hit


def _late(f: Features, d0: I64, top: int) -> tuple[I64, I64, B, B]:
    """Late domain at every point: (lowest, highest, known, a rule fired)."""
    t: Late = table().late
    e = _daily(f, d0, t.first_day, t.last_day)
    count = (~np.isnan(e)).sum(axis=1)
    s = np.sort(e, axis=1)
    v1 = s[:, 0]
    v2 = s[:, 1] if s.shape[1] > 1 else np.full(s.shape[0], np.nan)
    band = np.zeros(e.shape[0], np.int64)
    has_band = np.zeros(e.shape[0], bool)
    for b in reversed(t.bands):  # most severe first in the table: the first that holds wins
        holds = v1 <= b.max_per_ul
        band = np.where(holds, b.grade, band)
        has_band |= holds
    few = count < t.min_values
    with np.errstate(invalid="ignore"):
        confirmed = v2 <= t.neutropenia_max_per_ul
    unknown = (count == 0) | (has_band & few)
    fired = has_band & ~few & confirmed
    lo = np.where(fired, band, 0)
    hi = np.where(unknown, top, lo)
    return lo, hi, ~unknown, fired


def grade(p: ScalePlan, f: Features, d0: I64) -> Graded:
    """Grade the ICAHT scale of ``p`` at every point of ``f``'s grid (``d0``: day 0 per patient)."""
    if not handles(p):
        raise KeyError(p.scale_id)
    top = max(all_scales()[p.scale_id].grades)
    doms: list[tuple[I64, I64, B, B]] = []
    for k in _KINDS[p.scale_id]:
        fn = _early if k == "early" else _late
        doms.append(f.cached(f"icaht.{k}", functools.partial(fn, f, d0, top)))
    lo = np.maximum.reduce([d[0] for d in doms])
    hi = np.maximum.reduce([d[1] for d in doms])
    known = [d[2] for d in doms]
    hits = np.logical_or.reduce([d[3] for d in doms])
    complete = np.logical_and.reduce(known)
    nothing_known = ~np.logical_or.reduce(known) & ~hits
    assessable = ~(nothing_known & (lo != hi))
    return Graded(lo.astype(np.int64), hi.astype(np.int64), complete, assessable)
