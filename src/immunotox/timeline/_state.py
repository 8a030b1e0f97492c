"""Vectorised state reconstruction: what holds at each assessment time, for many patients at once.

An *order-aware* plan over the patient-sorted observations (the fastest plan of the measurement
made before the engine, ``docs/benchmarks.md`` "Before the code"): every (patient, time) pair is
packed into one sortable int64 key, ``patient << S | time offset``, so that one ``searchsorted``
answers "the rows of this code in (t - w, t] for this patient" for every assessment at once;
windows never cross patients
because each patient owns a key block wider than its time span plus the longest window. Interval
events (oxygen, vasopressors) are few: each is expanded over the assessment rows it covers and
reduced back by row index. No joins, no hash tables, no per-row Python.

The reference for every rule here is :mod:`immunotox.timeline._reference` (plain Python, one
patient at a time); the differential tests hold the two equal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..vocabulary import Derivation, Vocabulary, vocabulary
from ._read import F64, I32, I64, NO_END, B, Obs

_MAX_KEY_BITS = 62


class KeyOverflow(Exception):
    """The partition's patients x time span does not fit the int64 key: split the partition."""


@dataclass
class Grid:
    """The assessment points of one set of codes: sorted keys, patient index and time."""

    key: I64
    pid: I32
    t: I64

    def __len__(self) -> int:
        return int(self.key.shape[0])


#: windows longer than this (rows) are reduced by ``reduceat``; shorter ones element by element
_SHORT_WINDOW = 8


def _reduce_windows(values: F64, lo: I64, hi: I64, how: str) -> F64:
    """max/min of ``values[lo:hi]`` for every window; NaN where the window is empty.

    Windows are short (a day of vitals: one or two rows on average), so the reduction runs
    element by element in the order ``reduceat`` would (``acc = op(acc, values[lo + d])``), over
    the windows still longer than ``d``; the few longer than :data:`_SHORT_WINDOW` are reduced by
    ``reduceat``. No 2n-segment ``reduceat`` over the gaps between windows."""
    out = np.full(lo.shape[0], np.nan)
    length = hi - lo
    sel = np.flatnonzero(length > 0)
    if sel.shape[0] == 0:
        return out
    ufunc = np.maximum if how == "max" else np.minimum
    start = np.take(lo, sel)
    n_sel = np.take(length, sel)
    acc = np.take(values, start)
    live = np.flatnonzero(n_sel > 1)
    d = 1
    while live.shape[0] and d < _SHORT_WINDOW:
        acc[live] = ufunc(np.take(acc, live), np.take(values, np.take(start, live) + d))
        d += 1
        live = live[np.take(n_sel, live) > d]
    if live.shape[0]:  # the long windows: their first d rows are in acc, the rest by reduceat
        ext = np.append(values, np.nan)
        idx = np.empty(2 * live.shape[0], np.int64)
        idx[0::2] = start[live] + d
        idx[1::2] = start[live] + n_sel[live]
        acc[live] = ufunc(acc[live], ufunc.reduceat(ext, idx)[0::2])
    out[sel] = acc
    return out


def range_reduce(values: Any, start: I64, stop: I64, ufunc: Any, empty: Any) -> Any:
    """``ufunc.reduce(values[start:stop])`` for every (start, stop); ``empty`` where start == stop."""
    out = np.full(start.shape[0], empty, dtype=np.asarray(values).dtype)
    sel = np.flatnonzero(stop > start)
    if sel.shape[0] == 0:
        return out
    ext = np.append(values, values[:1] if len(values) else np.zeros(1, np.asarray(values).dtype))
    idx = np.empty(2 * sel.shape[0], np.int64)
    idx[0::2] = start[sel]
    idx[1::2] = stop[sel]
    out[sel] = ufunc.reduceat(ext, idx)[0::2]
    return out


class Timeline:
    """Keys and per-code series of one partition of patients (an :class:`Obs`)."""

    def __init__(self, obs: Obs, vocab: Vocabulary | None = None) -> None:
        self.obs = obs
        self.voc = vocab or vocabulary()
        n_pat = max(obs.n_patients, 1)
        pad = max((d.window_us for d in self.voc.derivations.values()), default=0) + 1
        self.pad = pad
        bounds = obs.patient_bounds()
        self.bounds = bounds
        tmin = np.zeros(n_pat, np.int64)
        span = 0
        if len(obs):
            nonempty = np.flatnonzero(np.diff(bounds) > 0)
            first = bounds[nonempty]
            tmin[nonempty] = obs.t[first]
            # a patient's rows are sorted by time: its latest time is its last row's, or an end time
            last = bounds[nonempty + 1] - 1
            span = int((obs.t[last] - tmin[nonempty]).max())
            ended = np.flatnonzero(obs.end != NO_END)
            if ended.shape[0]:
                span = max(span, int((obs.end[ended] - tmin[obs.pid[ended]]).max()))
            span += pad
        self.base = tmin - pad
        self.shift = max(int(span + 2).bit_length(), 1)
        if (n_pat << self.shift) >= (1 << _MAX_KEY_BITS):
            raise KeyOverflow
        self.low_mask = (1 << self.shift) - 1
        # key() of every row: the time offset fits below the patient bits, so the OR is an add of
        # a per-patient constant (one gather and one add instead of five passes)
        offset = (np.arange(n_pat, dtype=np.int64) << self.shift) - self.base
        self.key_all: I64 = np.take(offset, obs.pid) + obs.t
        # rows of each code, in key order: one stable counting sort of the code column
        order = np.argsort(obs.code, kind="stable")
        counts = (
            np.bincount(obs.code, minlength=len(self.voc.codes))
            if len(obs)
            else np.zeros(len(self.voc.codes), np.int64)
        )
        offsets = np.concatenate(([0], np.cumsum(counts)))
        self._order = order
        self._offsets = offsets
        self._rows: dict[int, I64] = {}
        self._series: dict[int, tuple[I64, F64, I64]] = {}

    # ------------------------------------------------------------------ keys
    def key(self, pid: Any, t: Any) -> I64:
        pid64 = np.asarray(pid).astype(np.int64)
        out: I64 = np.left_shift(pid64, self.shift)
        out |= np.asarray(t, np.int64) - np.take(self.base, pid64)
        return out

    def patient_end_key(self, pid: Any) -> I64:
        """The last key of each patient's block (stands for 'until the end of the record')."""
        return (np.asarray(pid, np.int64) << self.shift) | self.low_mask

    def time_of(self, key: I64) -> tuple[I32, I64]:
        pid = (key >> self.shift).astype(np.int32)
        return pid, (key & self.low_mask) + self.base[pid]

    # ------------------------------------------------------------------ rows and series
    def rows(self, code: str) -> I64:
        """Row indices of ``code`` (in key order)."""
        c = self.voc.code(code).index
        if c not in self._rows:
            # a view of the code sort's order (int64 already: no copy per code)
            self._rows[c] = np.asarray(self._order[self._offsets[c] : self._offsets[c + 1]], np.int64)
        return self._rows[c]

    def series(self, code: str) -> tuple[I64, F64, I64]:
        """(keys, values, first row) of ``code`` with one entry per (patient, time): ties resolved
        to the worst value (the code's ``ties`` rule)."""
        spec = self.voc.code(code)
        c = spec.index
        if c in self._series:
            return self._series[c]
        r = self.rows(code)
        k = np.take(self.key_all, r)
        v = np.take(self.obs.num, r)
        if k.shape[0] > 1 and bool((k[1:] == k[:-1]).any()):
            starts = np.flatnonzero(np.concatenate(([True], k[1:] != k[:-1])))
            worst_max = spec.ties == "max" or spec.kind in ("token", "bool")
            v = (np.maximum if worst_max else np.minimum).reduceat(v, starts)
            k = np.take(k, starts)
            r = np.take(r, starts)
        # codes recorded together (vitals, ICE rounds) share one key array: lookups are reused
        for k2, _v2, _r2 in self._series.values():
            if k2.shape != k.shape:
                continue
            if (k.shape[0] == 0 or (k2[0] == k[0] and k2[-1] == k[-1])) and np.array_equal(k2, k):
                k = k2
                break
        self._series[c] = (k, v, r)
        return k, v, r

    def intervals(self, code: str, per_token: bool) -> tuple[I64, I64, F64]:
        """(start key, end key, token) of every row of an interval code.

        An empty ``end_time`` runs until the next row of the same code (and token when
        ``per_token``) at a later time, else until the end of the patient's record.
        """
        r = self.rows(code)
        start = self.key_all[r]
        tok = self.obs.num[r]
        end_t = self.obs.end[r]
        pid = self.obs.pid[r]
        end = np.empty(r.shape[0], np.int64)
        has = end_t != NO_END
        end[has] = self.key(pid[has], end_t[has])
        open_ = np.flatnonzero(~has)
        if open_.shape[0]:
            if per_token:
                groups = (pid.astype(np.int64) << 8) | tok.astype(np.int64)
                order = np.lexsort((start, groups))
            else:
                groups = pid.astype(np.int64)
                order = np.arange(r.shape[0])
            gs, ks = groups[order], start[order]
            # next start strictly later within the same group
            nxt = np.empty(order.shape[0], np.int64)
            n = order.shape[0]
            # last index of each run of equal (group, key), then the entry after it
            same_next = np.concatenate(((gs[1:] == gs[:-1]) & (ks[1:] == ks[:-1]), [False]))
            run_last = np.flatnonzero(~same_next)
            pos = np.searchsorted(run_last, np.arange(n), side="left")
            after = run_last[pos] + 1
            ok = after < n
            after_c = np.minimum(after, n - 1)
            ok &= gs[after_c] == gs
            nxt[:] = self.patient_end_key(pid[order])
            nxt[ok] = ks[after_c][ok]
            inv = np.empty(n, np.int64)
            inv[order] = np.arange(n)
            end[open_] = nxt[inv[open_]]
        return start, end, tok

    # ------------------------------------------------------------------ grids
    def grid(self, codes: frozenset[str], interval_codes: frozenset[str]) -> Grid:
        """Assessment points: every distinct (patient, time) of a row of ``codes``, plus the
        explicit end times of rows of ``interval_codes``."""
        table = np.zeros(len(self.voc.codes), bool)
        for c in codes:
            table[self.voc.code(c).index] = True
        keys = np.take(self.key_all, np.flatnonzero(np.take(table, self.obs.code)))
        if keys.shape[0] > 1:
            keys = np.take(keys, np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1]))))
        ends = []
        for c in sorted(interval_codes):
            r = self.rows(c)
            e = self.obs.end[r]
            has = e != NO_END
            if has.any():
                ends.append(self.key(self.obs.pid[r][has], e[has]))
        if ends:
            extra = np.unique(np.concatenate(ends))
            pos = np.searchsorted(keys, extra)
            n = keys.shape[0]
            new = (
                (pos >= n) | (keys[np.minimum(pos, max(n - 1, 0))] != extra)
                if n
                else np.ones_like(extra, bool)
            )
            keys = np.insert(keys, pos[new], extra[new])
        pid, t = self.time_of(keys)
        return Grid(key=keys, pid=pid, t=t)


class Features:
    """The state at every point of a :class:`Grid`, one derivation method at a time (cached)."""

    def __init__(
        self,
        tl: Timeline,
        grid: Grid,
        resolution_us: int,
        derived: Mapping[str, Callable[[Features], Any]] | None = None,
    ) -> None:
        self.tl = tl
        self.grid = grid
        self.voc = tl.voc
        self.resolution_us = resolution_us
        # derivation methods computed from a scale's rule above this layer (``masking``: the
        # ASTCT CRS course, :func:`._astct.masking`), given by the engine that builds the features
        self.derived: Mapping[str, Callable[[Features], Any]] = derived or {}
        self._cache: dict[str, Any] = {}

    def cached(self, name: str, fn: Callable[[], Any]) -> Any:
        """``fn()``, computed once per grid under ``name``."""
        if name not in self._cache:
            self._cache[name] = fn()
        return self._cache[name]

    _cached = cached

    def _search(self, keys: I64, window_us: int) -> I64:
        """``searchsorted(keys, grid.key - window_us, "right")`` (the number of keys at or before
        each grid key minus ``window_us``), computed once per key array.

        A series much shorter than the grid (a drug, a device, a rare finding) is placed in the
        grid instead: key j counts from the first grid point g with ``g >= keys[j] + window_us``,
        and a running count of those first points gives the same numbers in two linear passes
        instead of a binary search per grid point."""
        tag = f"search:{id(keys)}:{window_us}"
        if tag not in self._cache:
            gk = self.grid.key
            n = gk.shape[0]
            if 2 * keys.shape[0] >= n:
                found = np.searchsorted(keys, gk - window_us if window_us else gk, side="right")
            else:
                first = np.searchsorted(gk, keys + window_us if window_us else keys, side="left")
                found = np.cumsum(np.bincount(first, minlength=n + 1)[:n])
            self._cache[tag] = (keys, found)
        got: I64 = self._cache[tag][1]
        return got

    def _window(self, code: str, window_us: int) -> tuple[I64, I64, I64, F64, I64]:
        k, v, r = self.tl.series(code)
        return self._search(k, window_us), self._search(k, 0), k, v, r

    # ------------------------------------------------------------------ methods
    def window(self, d: Derivation, how: str) -> F64:
        def run() -> F64:
            lo, hi, _k, v, _r = self._window(d.codes[0], d.window_us)
            return _reduce_windows(v, lo, hi, how)

        return self._cached(f"{d.finding}", run)  # type: ignore[no-any-return]

    def last(self, code: str, window_us: int) -> tuple[F64, I64]:
        """(value, key) of the most recent row of ``code`` in (t - w, t]; NaN / -1 when none."""

        def run() -> tuple[F64, I64]:
            k, v, _r = self.tl.series(code)
            if k.shape[0] == 0:
                return np.full(len(self.grid), np.nan), np.full(len(self.grid), -1, np.int64)
            j = self._search(k, 0) - 1
            jc = np.maximum(j, 0)
            kk = k[jc]
            has = (j >= 0) & (kk > self.grid.key - window_us)
            val = np.where(has, v[jc], np.nan)
            key = np.where(has, kk, -1)
            return val, key

        return self._cached(f"last:{code}:{window_us}", run)  # type: ignore[no-any-return]

    def record(self, d: Derivation) -> tuple[dict[str, F64], B]:
        """(per item code, its value in the latest record of ``d``; True where that record is
        later than the latest row of ``d.unless``) — the ``record_last`` rule."""

        def run() -> tuple[dict[str, F64], B]:
            lasts = {c: self.last(c, d.window_us) for c in d.codes}
            kmax = np.full(len(self.grid), -1, np.int64)
            for _v, k in lasts.values():
                kmax = np.maximum(kmax, k)
            newer = kmax >= 0
            if d.unless is not None:
                u = self.voc.derivation(d.unless)
                newer &= kmax > self.last(u.codes[0], u.window_us)[1]
            out = {c: np.where(newer & (k == kmax), v, np.nan) for c, (v, k) in lasts.items()}
            return out, newer

        return self._cached(f"record:{d.finding}", run)  # type: ignore[no-any-return]

    def device(self, code: str) -> tuple[F64, I64]:
        """(token index of the most intensive running device, start key of its latest-starting
        running interval); the 'none' token and -1 when no device runs."""

        def run() -> tuple[F64, I64]:
            spec = self.voc.code(code)
            rank_of_token = np.array([spec.intensity.index(t) for t in spec.tokens], np.int64)
            token_of_rank = np.array([spec.tokens.index(t) for t in spec.intensity], np.int64)
            start, end, tok = self.tl.intervals(code, per_token=False)
            gi, which = self._expand(start, end)
            n = len(self.grid)
            best = np.zeros(n, np.int64)  # rank 0 = 'none'
            if gi.shape[0]:
                np.maximum.at(best, gi, rank_of_token[tok[which].astype(np.int64)])
            dev_start = np.full(n, -1, np.int64)
            if gi.shape[0]:
                r = rank_of_token[tok[which].astype(np.int64)]
                sel = (r == best[gi]) & (r > 0)
                np.maximum.at(dev_start, gi[sel], start[which[sel]])
            return token_of_rank[best].astype(np.float64), dev_start

        return self._cached(f"device:{code}", run)  # type: ignore[no-any-return]

    def device_last(self, d: Derivation, device_code: str) -> F64:
        def run() -> F64:  # the value must belong to the running device
            dev, dev_start = self.device(device_code)
            none_tok = self.voc.code(device_code).tokens.index("none")
            val, key = self.last(d.codes[0], d.window_us)
            ok = (dev != none_tok) & (key >= dev_start) & (dev_start >= 0)
            return np.where(ok, val, np.nan)

        return self._cached(d.finding, run)  # type: ignore[no-any-return]

    def active_set(self, code: str) -> I64:
        """Bitmask of the tokens of ``code`` running at each point (bit i = token i)."""

        def run() -> I64:
            start, end, tok = self.tl.intervals(code, per_token=True)
            gi, which = self._expand(start, end)
            mask = np.zeros(len(self.grid), np.int64)
            if gi.shape[0]:
                np.bitwise_or.at(mask, gi, np.left_shift(1, tok[which].astype(np.int64)))
            return mask

        return self._cached(f"set:{code}", run)  # type: ignore[no-any-return]

    def active_hours(self, code: str) -> F64:
        """Hours of ``code`` therapy (union of its intervals) up to each point."""

        def run() -> F64:
            start, end, _tok = self.tl.intervals(code, per_token=False)
            n = len(self.grid)
            if start.shape[0] == 0:
                return np.zeros(n)
            order = np.argsort(start, kind="stable")
            s, e = start[order], end[order]
            # merge overlapping intervals (keys of different patients never overlap)
            run_end = np.maximum.accumulate(e)
            new = np.concatenate(([True], s[1:] > run_end[:-1]))
            grp = np.cumsum(new) - 1
            ms = s[new]
            me = np.zeros(ms.shape[0], np.int64)
            np.maximum.at(me, grp, e)
            dur = me - ms
            prefix = np.concatenate(([0], np.cumsum(dur)))
            k = self.grid.key
            j = np.searchsorted(ms, k, side="right") - 1
            ok = j >= 0
            jc = np.maximum(j, 0)
            ok &= (ms[jc] >> self.tl.shift) == (k >> self.tl.shift)
            first = np.searchsorted(ms, (k >> self.tl.shift) << self.tl.shift, side="left")
            done = prefix[jc] - prefix[first]
            part = np.minimum(k, me[jc]) - ms[jc]
            hours = np.where(ok, done + part, 0) / 3_600_000_000
            # given only while the therapy runs
            return np.where(self.active_set(code) != 0, hours, np.nan)

        return self._cached(f"hours:{code}", run)  # type: ignore[no-any-return]

    def patient_last(self, code: str) -> F64:
        def run() -> F64:
            k, v, _r = self.tl.series(code)
            per = np.full(max(self.tl.obs.n_patients, 1), np.nan)
            if k.shape[0]:
                pid = (k >> self.tl.shift).astype(np.int64)
                last = np.concatenate((pid[1:] != pid[:-1], [True]))
                per[pid[last]] = v[last]
            return per[self.grid.pid]

        return self._cached(f"plast:{code}", run)  # type: ignore[no-any-return]

    def event_since(self, code: str, token: str) -> B:
        def run() -> B:
            spec = self.voc.code(code)
            k, v, _r = self.tl.series(code)
            hit = k[v == spec.tokens.index(token)]
            first = np.full(max(self.tl.obs.n_patients, 1), np.iinfo(np.int64).max)
            if hit.shape[0]:
                np.minimum.at(first, (hit >> self.tl.shift).astype(np.int64), hit)
            return first[self.grid.pid] <= self.grid.key

        return self._cached(f"event:{code}:{token}", run)  # type: ignore[no-any-return]

    def at_rows_of(self, codes: tuple[str, ...]) -> B:
        """True at the points where a row of one of ``codes`` was recorded."""
        out = np.zeros(len(self.grid), bool)
        for c in codes:
            k = self.tl.key_all[self.tl.rows(c)]
            pos = np.searchsorted(self.grid.key, k)
            ok = pos < len(self.grid)
            pos = pos[ok]
            hit = self.grid.key[pos] == k[ok]
            out[pos[hit]] = True
        return out

    def masking(self) -> B:
        if "masking" not in self.derived:
            raise AssertionError("the 'masking' derivation needs Features(derived={'masking': ...})")
        fn = self.derived["masking"]
        return self._cached("fever_masked", lambda: fn(self))  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ helpers
    def _expand(self, start: I64, end: I64) -> tuple[I64, I64]:
        """(grid index, interval index) for every grid point each interval [start, end) covers."""
        lo = np.searchsorted(self.grid.key, start, side="left")
        hi = np.searchsorted(self.grid.key, end, side="left")
        cnt = np.maximum(hi - lo, 0)
        total = int(cnt.sum())
        if total == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        which = np.repeat(np.arange(start.shape[0]), cnt)
        offs = np.repeat(np.cumsum(cnt) - cnt, cnt)
        gi = lo[which] + (np.arange(total) - offs)
        return gi.astype(np.int64), which.astype(np.int64)

    # ------------------------------------------------------------------ raw feature by finding
    def raw(self, finding: str) -> Any:
        """The raw per-point feature of ``finding`` (NaN / -1 / False where unknown)."""
        d = self.voc.derivation(finding)
        m = d.method
        if m == "window_max":
            return self.window(d, "max")
        if m == "window_min":
            return self.window(d, "min")
        if m == "last":
            record = self.voc.record_of(finding)
            if record is None:
                return self.last(d.codes[0], d.window_us)[0]
            # a later record of items supersedes it
            return self._cached(
                f"last-unless:{finding}",
                lambda: np.where(self.record(record)[1], np.nan, self.last(d.codes[0], d.window_us)[0]),
            )
        if m == "device":
            return self.device(d.codes[0])[0]
        if m == "device_last":
            dev = next(x for x in self.voc.derivations.values() if x.method == "device")
            return self.device_last(d, dev.codes[0])
        if m == "active_set":
            return self.active_set(d.codes[0])
        if m == "active_hours":
            return self.active_hours(d.codes[0])
        if m == "masking":
            return self.masking()
        if m == "patient_last":
            return self.patient_last(d.codes[0])
        if m == "event_since":
            assert d.token is not None
            return self.event_since(d.codes[0], d.token)
        if m == "record_last":
            return self.record(d)[0]
        raise AssertionError(m)


# ------------------------------------------------------------------------------------ episodes
@dataclass
class Episodes:
    """Episodes of one boolean series over sorted assessment rows (see :func:`episodes`)."""

    start: I64  # first row (the onset)
    stop: I64  # one past the last row that belongs to the episode
    last_pos: I64  # last positive row
    resolved: B
    resolution: I64  # time of the first grade-0 row after the last positive (resolved only)
    row_episode: I64  # episode index of every row, -1 outside any episode


def episodes(pid: I32, t: I64, pos: B, resolution_us: int, bounds: I64 | None = None) -> Episodes:
    """Group positive rows into episodes (the episode rule, vectorised).

    Rows are sorted by (patient, time). An episode starts at a positive row outside any episode.
    After its last positive row p, let r be the time of the next row when that row is negative
    (the start of a run at grade 0). The episode *resolves at r* when no positive row follows
    before r + N — i.e. the next positive q has q - r >= N, or, with no later positive, the
    patient's record continues to at least r + N. Otherwise a later positive joins the episode
    (or the episode is still open at the end of the record: unresolved). The rows of an episode
    run from its onset to just before its resolution (to the end of the record when unresolved).
    """
    n = t.shape[0]
    P = np.flatnonzero(pos)
    empty = np.zeros(0, np.int64)
    if P.shape[0] == 0:
        return Episodes(empty, empty, empty, np.zeros(0, bool), empty, np.full(n, -1, np.int64))
    if bounds is None:
        npat = int(pid.max()) + 1
        bounds = np.searchsorted(pid, np.arange(npat + 1)).astype(np.int64)
    pp = pid[P].astype(np.int64)
    last_row = bounds[pp + 1] - 1
    nxt = P + 1
    nxt_c = np.minimum(nxt, n - 1)
    zero_after = (nxt <= last_row) & ~pos[nxt_c]
    r = t[nxt_c]
    pn = np.concatenate((P[1:], [-1]))
    same_next = np.concatenate((pp[1:] == pp[:-1], [False]))
    gap_end = np.where(same_next, t[np.maximum(pn, 0)], t[last_row])
    brk = zero_after & (gap_end - r >= resolution_us)
    start_flag = np.concatenate(([True], (pp[1:] != pp[:-1]) | brk[:-1]))
    ep_of_pos = np.cumsum(start_flag) - 1
    first_j = np.flatnonzero(start_flag)
    last_j = np.concatenate((first_j[1:] - 1, [P.shape[0] - 1]))
    resolved = brk[last_j]
    start = P[first_j]
    last_pos = P[last_j]
    stop = np.where(resolved, last_pos + 1, last_row[last_j] + 1)
    resolution = np.where(resolved, r[last_j], np.iinfo(np.int64).min)
    # starts are strictly increasing, and so are stops (an episode ends before the next starts)
    diff = np.zeros(n + 1, np.int64)
    diff[start] += 1
    diff[stop] -= 1
    inside = np.cumsum(diff[:-1]) > 0
    is_start = np.zeros(n, np.int64)
    is_start[start] = 1
    row_ep = np.cumsum(is_start)
    row_ep -= 1
    row_ep[~inside] = -1
    del ep_of_pos
    return Episodes(start, stop, last_pos, resolved, resolution, row_ep)
