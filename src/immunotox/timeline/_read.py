"""Observation input: raw contract rows -> checked, canonical, sorted arrays plus a rejects table.

Every input row ends up in exactly one of two places: the accepted observations (:class:`Obs`)
or the rejects table (``file, row, column, value, reason, detail``), so that
``accepted + rejected == input rows`` always holds. Nothing is corrected or guessed: a value in
another unit is converted with :func:`immunotox.units.convert` (pint + UCUM), a value outside the
plausible range is refused, never clipped.

The work is vectorised over Arrow dictionaries: code, unit and value strings are checked once per
*distinct* string, then gathered back to the rows, so validating ten million rows costs a few
array gathers.

Reasons (one per rejected row, first failing check in this order):

==================== ============================================================================
missing_patient_id   ``patient_id`` empty
bad_time             ``time`` empty or not an ISO 8601 date-time
implausible_time     ``time`` outside the plausible window (``data/plausibility.toml``): a
                     placeholder date such as 1900-01-01, 1970-01-01 or 9999-12-31
unknown_code         ``code`` is neither a canonical code nor a LOINC alias
bad_value            ``value`` is not a number / whole number / allowed token for the code
bad_unit             ``unit`` unknown, or not convertible to the code's canonical unit
impossible_value     the number, in the canonical unit, is outside the plausible range
bad_end_time         ``end_time`` not a date-time, before ``time``, or outside the plausible window
bad_dose             ``dose`` not a non-negative number, or given without a known UCUM ``dose_unit``
bad_reference        ``ref_low``/``ref_high`` (optional: a laboratory result's reference interval)
                     refused as the API refuses it (:func:`immunotox.labs.check_reference`):
                     ``ref_low >= ref_high``, not a number, negative, no unit, a unit not fitting
                     the analyte, or given on a code that is not a laboratory quantity
==================== ============================================================================
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from .. import labs, units
from ..errors import FindingError
from ..plausibility import time_window_text, time_window_us
from ..vocabulary import Vocabulary, vocabulary
from ._arrow import indices, to_np, valid_indices
from ._contract import (
    CONTRACT_COLUMNS,
    F64,
    I16,
    I32,
    I64,
    NO_END,
    READ_COLUMNS,
    REASONS,
    REFERENCE_COLUMNS,
    REJECTS_SCHEMA,
    REQUIRED_COLUMNS,
    B,
    ObservationFileError,
    missing_columns,
)
from ._rejects import _rejects_table
from ._values import (
    _KEPT,
    _R,
    MAX_CODES,
    State,
    _as_string,
    _column,
    _conversion,
    _encode,
    _numbers,
    _value_tables,
    parse_times,
)

# the contract's names are given here too: the engine's modules import them from this module
__all__ = [
    "CONTRACT_COLUMNS",
    "F64",
    "I16",
    "I32",
    "I64",
    "NO_END",
    "READ_COLUMNS",
    "REASONS",
    "REFERENCE_COLUMNS",
    "REJECTS_SCHEMA",
    "REQUIRED_COLUMNS",
    "B",
    "Normalized",
    "Obs",
    "ObservationFileError",
    "concat_obs",
    "missing_columns",
    "normalize",
    "prepend",
]


@dataclass
class Obs:
    """Accepted observations of whole patients, sorted by (patient, time), canonical values.

    ``num`` holds the canonical number (quantity, integer), the token's index in the code's
    ``tokens`` (token, bool: false=0, true=1), or 0 (open text). ``end`` is :data:`NO_END` when
    ``end_time`` was empty. ``pid`` is a dense patient index into ``patient_ids``.
    ``ref_low``/``ref_high``: the reference interval a laboratory result was reported with, in the
    code's canonical unit (NaN where not given; None when no row of the batch has one).
    """

    patient_ids: list[str]
    pid: I32
    t: I64
    code: I16
    num: F64
    end: I64
    first_t: I64  # per patient: time of the first accepted row, whatever its code
    ref_low: F64 | None = None
    ref_high: F64 | None = None

    def refs(self) -> tuple[F64, F64]:
        """(ref_low, ref_high) of every row, NaN where not given."""
        if self.ref_low is None or self.ref_high is None:
            none = np.full(len(self), np.nan)
            return none, none.copy()
        return self.ref_low, self.ref_high

    def __len__(self) -> int:
        return int(self.t.shape[0])

    @property
    def n_patients(self) -> int:
        return len(self.patient_ids)

    def patient_bounds(self) -> I64:
        """Row offsets of each patient's first row, plus the total (length n_patients + 1)."""
        return np.searchsorted(self.pid, np.arange(self.n_patients + 1)).astype(np.int64)

    def select_patients(self, first: int, stop: int) -> Obs:
        """The observations of patients ``first`` .. ``stop - 1`` (re-indexed from 0)."""
        b = self.patient_bounds()
        lo, hi = int(b[first]), int(b[stop])
        return Obs(
            patient_ids=self.patient_ids[first:stop],
            pid=(self.pid[lo:hi] - first).astype(np.int32),
            t=self.t[lo:hi],
            code=self.code[lo:hi],
            num=self.num[lo:hi],
            end=self.end[lo:hi],
            first_t=self.first_t[first:stop],
            ref_low=None if self.ref_low is None else self.ref_low[lo:hi],
            ref_high=None if self.ref_high is None else self.ref_high[lo:hi],
        )

    @staticmethod
    def empty() -> Obs:
        return Obs(
            [],
            np.zeros(0, np.int32),
            np.zeros(0, np.int64),
            np.zeros(0, np.int16),
            np.zeros(0, np.float64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
        )


@dataclass
class Normalized:
    """The result of :func:`normalize`: accepted observations and the rejects of one batch."""

    obs: Obs
    rejects: pa.Table
    n_input: int

    @property
    def n_rejected(self) -> int:
        return int(self.rejects.num_rows)


# ----------------------------------------------------------------------------------- normalize
def normalize(
    raw: pa.Table,
    *,
    file: str,
    rows: I64 | None = None,
    row0: int = 0,
    keep: frozenset[str] | None = None,
    vocab: Vocabulary | None = None,
) -> Normalized:
    """Check and canonicalise raw contract rows.

    Parameters
    ----------
    raw
        Arrow table with the contract columns (``patient_id, time, code, value, unit`` required;
        ``end_time, dose, dose_unit`` optional), strings or typed, plain or dictionary-encoded.
    file
        Name reported in the rejects table.
    rows
        1-based row number of each input row (default ``row0 + 1 .. row0 + n``).
    keep
        Codes to keep in the accepted observations (default: all). Rows of other codes are still
        checked and counted as accepted; the first accepted time of every patient is kept
        (:attr:`Obs.first_t`) whatever its code.

    Returns
    -------
    Normalized
        The accepted observations, sorted by (patient_id, time), and the rejects.
    """
    voc = vocab or vocabulary()
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.column_names]
    if missing:
        raise ObservationFileError(file, missing_columns(missing, raw.column_names))
    n = raw.num_rows
    detail: dict[int, str] = {}
    ncodes = len(voc.codes)

    # code and value, through (code, value string) tables indexed by the dictionaries' indices
    ccol, vcol, ucol = _column(raw, "code"), _column(raw, "value"), _column(raw, "unit")
    assert ccol is not None and vcol is not None and ucol is not None
    c_idx, c_dict = _encode(ccol)
    nc = len(c_dict) + 1  # last slot: empty code
    if ccol.null_count and (c_idx < 0).any():
        c_idx = np.where(c_idx < 0, nc - 1, c_idx).astype(np.int32)
    code_of = np.array([_code_index(voc, str(x)) for x in c_dict.to_pylist()] + [-1], np.int32)
    code_of[code_of < 0] = ncodes  # ncodes = unknown code
    v_idx, v_dict = _encode(vcol)
    nv = len(v_dict) + 1  # last slot: empty value
    if vcol.null_count and (v_idx < 0).any():
        v_idx = np.where(v_idx < 0, nv - 1, v_idx).astype(np.int32)
    numbers = _numbers(v_dict)
    keep_codes = None if keep is None else frozenset(voc.code(name).index for name in keep)
    if ncodes > MAX_CODES:
        raise AssertionError(f"the row state holds at most {MAX_CODES} codes, not {ncodes}")
    # the value entries read by an open code (a free token: few rows) are the only ones matched
    is_open = np.array([c < ncodes and voc.codes[c].kind == "open" for c in code_of.tolist()], bool)
    open_values = _values_of_entries(c_idx, v_idx, np.flatnonzero(is_open))
    r_tab, n_tab = _value_tables(voc, code_of, v_dict, numbers, keep_codes, open_values)
    cv = c_idx * np.int32(nv) + v_idx if nc * nv < 2**31 else c_idx.astype(np.int64) * nv + v_idx
    reason = np.take(r_tab.ravel(), cv)

    conv_rows, conv_vals = _check_units(voc, ucol, c_idx, code_of, v_idx, numbers, keep_codes, reason, detail)

    # time (higher priority than code and value)
    tcol = _column(raw, "time")
    assert tcol is not None
    t = parse_times(tcol)
    if tcol.null_count or not (pa.types.is_timestamp(tcol.type) or pa.types.is_date(tcol.type)):
        reason[t == NO_END] = _R["bad_time"]
    t_lo, t_hi = time_window_us()
    if n and (int(t.min()) < t_lo or int(t.max()) >= t_hi):  # two reductions; the mask only if needed
        reason[(t != NO_END) & ((t < t_lo) | (t >= t_hi))] = _R["implausible_time"]

    # patient_id (highest priority)
    pcol = _column(raw, "patient_id")
    assert pcol is not None
    p_idx, p_dict_arr = _encode(pcol)
    p_dict = [str(x) for x in p_dict_arr.to_pylist()]
    p_blank = np.array([x.strip() == "" for x in p_dict] + [True], bool)
    if p_blank[:-1].any() or (pcol.null_count and (p_idx < 0).any()):
        reason[p_blank[np.where(p_idx < 0, len(p_dict), p_idx)]] = _R["missing_patient_id"]

    gi, e = _check_end_times(raw, t, reason, detail)

    _check_doses(raw, reason, detail)
    ref_rows, ref_vals = _check_references(raw, reason, detail, c_idx, code_of, voc)

    # ---- assemble: rejects; accepted rows of the kept codes with their canonical values
    rejected = np.flatnonzero((reason > 0) & (reason < _KEPT))
    rejects = _rejects_table(raw, file, rows, row0, reason, rejected, detail, c_idx, code_of, voc)
    accepted = None
    if rejected.shape[0]:
        accepted = np.ones(n, bool)
        accepted[rejected] = False
    first_by_dict = _first_times(p_idx, t, accepted, len(p_dict))
    sel = np.flatnonzero(reason >= _KEPT)
    k_c = (np.take(reason, sel) - _KEPT).astype(np.int16)
    num = np.take(n_tab.ravel(), np.take(cv, sel))
    k_p, k_t = np.take(p_idx, sel), np.take(t, sel)
    k_e = np.full(sel.shape[0], NO_END, np.int64)
    for rows_x, vals_x in ((gi, e), (conv_rows, conv_vals)):
        if rows_x.shape[0] and sel.shape[0]:
            pos = np.searchsorted(sel, rows_x)
            hit = (pos < sel.shape[0]) & (sel[np.minimum(pos, sel.shape[0] - 1)] == rows_x)
            target = k_e if rows_x is gi else num
            target[pos[hit]] = vals_x[hit]
    k_ref: tuple[F64, F64] | None = None
    if ref_rows.shape[0] and sel.shape[0]:
        k_ref = (np.full(sel.shape[0], np.nan), np.full(sel.shape[0], np.nan))
        pos = np.searchsorted(sel, ref_rows)
        hit = (pos < sel.shape[0]) & (sel[np.minimum(pos, sel.shape[0] - 1)] == ref_rows)
        k_ref[0][pos[hit]] = ref_vals[hit, 0]
        k_ref[1][pos[hit]] = ref_vals[hit, 1]
    obs = _sorted_obs(k_p, p_dict, k_t, k_c, num, k_e, first_by_dict, k_ref)
    return Normalized(obs=obs, rejects=rejects, n_input=n)


def _check_units(
    voc: Vocabulary,
    ucol: pa.Array,
    c_idx: I32,
    code_of: I32,
    v_idx: I32,
    numbers: F64,
    keep_codes: frozenset[int] | None,
    reason: State,
    detail: dict[int, str],
) -> tuple[I64, F64]:
    """Units, through a (code, unit string) table: a unit that cannot be converted to the code's
    canonical unit is ``bad_unit``; the rows to convert are returned with their canonical values
    (a converted value outside the possible range is ``impossible_value``)."""
    ncodes = len(voc.codes)
    nc = code_of.shape[0]
    conv_rows = np.zeros(0, np.int64)
    conv_vals = np.zeros(0)
    u_idx, u_dict = _encode(ucol)
    nu = len(u_dict) + 1
    if ucol.null_count and (u_idx < 0).any():
        u_idx = np.where(u_idx < 0, nu - 1, u_idx).astype(np.int32)
    cu = c_idx * np.int32(nu) + u_idx
    pairs = np.flatnonzero(np.bincount(cu, minlength=nc * nu))
    units_ext = [*(str(x) for x in u_dict.to_pylist()), ""]
    state_tab = np.zeros(nc * nu, np.int8)
    for pr in pairs.tolist():
        d, u = divmod(pr, nu)
        if code_of[d] < ncodes:
            state_tab[pr] = _conversion(voc, int(code_of[d]), units_ext[u]).state
    if state_tab[pairs].any():
        special = np.flatnonzero(np.take(state_tab, cu))
        sp_state = state_tab[cu[special]]
        sp_reason = reason[special]
        keep_bad = (sp_reason == _R["unknown_code"]) | (sp_reason == _R["bad_value"])
        to_bad_unit = (sp_state == 2) & ~keep_bad
        for i in special[to_bad_unit][:1000].tolist():
            d = int(c_idx[i])
            detail[i] = _conversion(voc, int(code_of[d]), units_ext[int(u_idx[i])]).error or ""
        reason[special[to_bad_unit]] = _R["bad_unit"]
        conv_rows = special[(sp_state == 1) & ~keep_bad]
        if conv_rows.shape[0]:
            conv_codes = code_of[c_idx[conv_rows]]
            kept = (
                np.ones(conv_rows.shape[0], bool)
                if keep_codes is None
                else np.isin(conv_codes, list(keep_codes))
            )
            reason[conv_rows] = np.where(kept, _KEPT + conv_codes, 0)
            conv_vals = np.zeros(conv_rows.shape[0])
            pair_of = cu[conv_rows]
            for pr in np.unique(pair_of).tolist():
                which = np.flatnonzero(pair_of == pr)
                sel_c = conv_rows[which]
                d, u = divmod(pr, nu)
                c = int(code_of[d])
                vals = _conversion(voc, c, units_ext[u]).apply(numbers[v_idx[sel_c]])
                conv_vals[which] = vals
                spec = voc.codes[c]
                if spec.range is not None:
                    bad = ~((vals >= spec.range[0]) & (vals <= spec.range[1]))
                    reason[sel_c[bad]] = _R["impossible_value"]

    return conv_rows, conv_vals


def _check_end_times(raw: pa.Table, t: I64, reason: State, detail: dict[int, str]) -> tuple[I64, I64]:
    """``end_time``, only where given: unparseable, before ``time`` or outside the plausible window
    is ``bad_end_time``. Returns the rows with an end time and their end times."""
    n = raw.num_rows
    t_lo, t_hi = time_window_us()
    gi = np.zeros(0, np.int64)  # rows with an end_time, and their end times
    e = np.zeros(0, np.int64)
    ecol = _column(raw, "end_time")
    if ecol is not None and (ecol.null_count < n):
        gi = _given(ecol)
        e = parse_times(ecol.take(indices(gi)))
        parsed = e != NO_END
        before = parsed & (e < t[gi])
        outside = parsed & ~before & ((e < t_lo) | (e >= t_hi))
        ok_so_far = (reason[gi] == 0) | (reason[gi] >= _KEPT)
        for rows_k, text in (
            (gi[before & ok_so_far], "end_time is before time"),
            (gi[outside & ok_so_far], _outside_end()),
        ):
            for i in rows_k.tolist():
                detail[i] = text
        reason[gi[(~parsed | before | outside) & ok_so_far]] = _R["bad_end_time"]

    return gi, e


def _check_doses(raw: pa.Table, reason: State, detail: dict[int, str]) -> None:
    """``dose`` and ``dose_unit``, only where given: a dose must be a non-negative number with a
    known UCUM unit, else ``bad_dose``."""
    n = raw.num_rows
    dcol = _column(raw, "dose")
    if dcol is not None and dcol.null_count < n:
        di = _given(dcol)
        dv = dcol.take(indices(di))
        if pa.types.is_floating(dv.type) or pa.types.is_integer(dv.type):
            dose = to_np(dv.cast(pa.float64()), np.float64, fill=np.nan)
        else:
            ds = pl.Series(_as_string(dv).cast(pa.string())).str.strip_chars()
            dose = ds.cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy()
        ducol = _column(raw, "dose_unit")
        du: list[str | None] = [None] * di.shape[0]
        bad_unit = np.ones(di.shape[0], bool)
        if ducol is not None:
            d_idx, d_dict = _encode(ducol.take(indices(di)))
            names = [str(x) for x in d_dict.to_pylist()]
            ok_d = np.array([x.strip() != "" and units.is_known(x) for x in names] + [False], bool)
            bad_unit = ~ok_d[np.where(d_idx < 0, len(names), d_idx)]
            du = [None if i < 0 else names[i] for i in d_idx.tolist()] if bad_unit.any() else du
        bad_num = ~(np.isfinite(dose) & (dose >= 0))
        bad = (bad_num | bad_unit) & ((reason[di] == 0) | (reason[di] >= _KEPT))
        for k in np.flatnonzero(bad)[:1000].tolist():
            detail[int(di[k])] = (
                "dose must be a non-negative number"
                if bad_num[k]
                else f"dose given without a known UCUM dose_unit (got {du[k]!r})"
            )
        reason[di[bad]] = _R["bad_dose"]


def _values_of_entries(c_idx: I32, v_idx: I32, entries: I64) -> I64:
    """The distinct value entries of the rows whose code entry is one of ``entries`` (the few
    spellings of the open codes): one comparison per entry instead of a gather of a per-entry flag
    for every row (whose int32 indices numpy casts first)."""
    if entries.shape[0] == 0:
        return np.zeros(0, np.int64)
    if entries.shape[0] > 8:
        flag = np.zeros(int(max(int(c_idx.max(initial=0)), int(entries.max()))) + 1, bool)
        flag[entries] = True
        rows: B = np.take(flag, c_idx)
    else:
        rows = c_idx == entries[0]
        for e in entries[1:].tolist():
            rows |= c_idx == e
    out: I64 = np.unique(v_idx[rows])
    return out


def _first_times(p_idx: I32, t: I64, accepted: B | None, n_dict: int) -> I64:
    """Earliest accepted time of each dictionary patient (max int64 when it has none)."""
    big = np.iinfo(np.int64).max
    out = np.full(n_dict + 1, big, np.int64)
    if accepted is not None:
        ok = np.flatnonzero(accepted)
        p_idx, t = p_idx[ok], t[ok]
    if p_idx.shape[0] == 0:
        return out[:n_dict]
    starts = np.flatnonzero(np.concatenate(([True], p_idx[1:] != p_idx[:-1])))
    run_min = np.minimum.reduceat(t, starts)
    np.minimum.at(out, p_idx[starts], run_min)
    return out[:n_dict]


def _given(col: pa.Array) -> I64:
    """Row indices where an optional column has a value (not null, not blank text)."""
    if pa.types.is_dictionary(col.type) or pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        s = pl.Series(_as_string(col).cast(pa.string())).str.strip_chars()
        out: I64 = np.flatnonzero((~(s.is_null() | (s == ""))).to_numpy())
        return out
    return valid_indices(col)


def _outside_end() -> str:
    return (
        f"end_time is outside the plausible window {time_window_text()}; "
        "leave end_time empty for an interval still running"
    )


def _code_index(voc: Vocabulary, raw: str) -> int:
    spec = voc.lookup(raw)
    return -1 if spec is None else spec.index


def _sorted_obs(
    p_idx: I32,
    p_dict: Sequence[str],
    t: I64,
    code: I16,
    num: F64,
    end: I64,
    first_by_dict: I64,
    ref: tuple[F64, F64] | None = None,
) -> Obs:
    """Sort rows by (patient_id, time) with dense patient indices in id order.

    Every patient with an accepted row (``first_by_dict`` < max) is listed, even without rows here.
    """
    big = np.iinfo(np.int64).max
    used = np.flatnonzero(first_by_dict != big)
    if used.shape[0] == 0:
        return Obs.empty()
    names_used = [p_dict[i] for i in used.tolist()]
    ids = sorted(set(names_used))
    rank = {name: i for i, name in enumerate(ids)}
    remap = np.full(len(p_dict), -1, np.int32)
    ranks = np.array([rank[name] for name in names_used], np.int32)
    remap[used] = ranks
    first_t = np.full(len(ids), big, np.int64)
    np.minimum.at(first_t, ranks, first_by_dict[used])
    pid = remap[p_idx]
    if pid.shape[0] > 1:
        d = np.diff(pid)
        if (d < 0).any() or bool(((d == 0) & (t[1:] < t[:-1])).any()):
            perm = np.lexsort((t, pid))
            pid, t, code, num, end = pid[perm], t[perm], code[perm], num[perm], end[perm]
            ref = None if ref is None else (ref[0][perm], ref[1][perm])
    return Obs(
        patient_ids=ids,
        pid=np.ascontiguousarray(pid, np.int32),
        t=np.ascontiguousarray(t, np.int64),
        code=np.ascontiguousarray(code, np.int16),
        num=np.ascontiguousarray(num, np.float64),
        end=np.ascontiguousarray(end, np.int64),
        first_t=first_t,
        ref_low=None if ref is None else ref[0],
        ref_high=None if ref is None else ref[1],
    )


def concat_obs(parts: Sequence[Obs]) -> Obs:
    """Concatenate observations (a patient may appear in several parts); re-sorted."""
    parts = [p for p in parts if p.n_patients]
    if not parts:
        return Obs.empty()
    if len(parts) == 1:
        return parts[0]
    ids = sorted({i for p in parts for i in p.patient_ids})
    rank = {name: i for i, name in enumerate(ids)}
    pids, firsts, owners = [], [], []
    for p in parts:
        remap = np.array([rank[i] for i in p.patient_ids], np.int32)
        pids.append(remap[p.pid])
        firsts.append(p.first_t)
        owners.append(remap)
    pid = np.concatenate(pids)
    t = np.concatenate([p.t for p in parts])
    code = np.concatenate([p.code for p in parts])
    num = np.concatenate([p.num for p in parts])
    end = np.concatenate([p.end for p in parts])
    ref = _concat_refs(parts)
    dp = np.diff(pid)
    if not bool(np.all((dp > 0) | ((dp == 0) & (np.diff(t) >= 0)))):
        perm = np.lexsort((t, pid))
        pid, t, code, num, end = pid[perm], t[perm], code[perm], num[perm], end[perm]
        ref = None if ref is None else (ref[0][perm], ref[1][perm])
    ft = np.full(len(ids), np.iinfo(np.int64).max, np.int64)
    np.minimum.at(ft, np.concatenate(owners).astype(np.int64), np.concatenate(firsts))
    lo, hi = (None, None) if ref is None else ref
    return Obs(ids, pid.astype(np.int32), t, code, num, end, ft, lo, hi)


def _concat_refs(parts: Sequence[Obs]) -> tuple[F64, F64] | None:
    """The reference intervals of ``parts`` end to end (None when no part has one)."""
    if all(p.ref_low is None for p in parts):
        return None
    pairs = [p.refs() for p in parts]
    return np.concatenate([a for a, _ in pairs]), np.concatenate([b for _, b in pairs])


def prepend(carry: Obs, o: Obs) -> Obs:
    """``carry`` (patients whose ids are <= the first id of ``o``) followed by ``o``.

    Cheap when the input is sorted by patient: only the arrays are concatenated; when the last
    patient of ``carry`` continues in ``o``, its rows are merged (and re-sorted by time if needed).
    """
    if carry.n_patients == 0:
        return o
    if o.n_patients == 0:
        return carry
    same = carry.patient_ids[-1] == o.patient_ids[0]
    shift = carry.n_patients - 1 if same else carry.n_patients
    ids = carry.patient_ids + o.patient_ids[1:] if same else carry.patient_ids + o.patient_ids
    pid = np.concatenate((carry.pid, o.pid + np.int32(shift)))
    t = np.concatenate((carry.t, o.t))
    code = np.concatenate((carry.code, o.code))
    num = np.concatenate((carry.num, o.num))
    end = np.concatenate((carry.end, o.end))
    ref = _concat_refs([carry, o])
    first_t = np.concatenate((carry.first_t, o.first_t[1:] if same else o.first_t))
    if same:
        first_t[carry.n_patients - 1] = min(int(carry.first_t[-1]), int(o.first_t[0]))
        lo = int(np.searchsorted(carry.pid, carry.n_patients - 1))
        hi = carry.pid.shape[0] + int(np.searchsorted(o.pid, 1))
        seg = t[lo:hi]
        if seg.shape[0] > 1 and bool((seg[1:] < seg[:-1]).any()):
            perm = lo + np.argsort(seg, kind="stable")
            for arr in (t, code, num, end, *(ref or ())):
                arr[lo:hi] = arr[perm]
    r_lo, r_hi = (None, None) if ref is None else ref
    return Obs(ids, pid, t, code, num, end, first_t, r_lo, r_hi)


def _check_references(
    raw: pa.Table,
    reason: State,
    detail: dict[int, str],
    c_idx: I32,
    code_of: Any,
    voc: Vocabulary,
) -> tuple[I64, F64]:
    """Reject (``bad_reference``) the rows whose reference interval (``ref_low``/``ref_high``,
    optional columns) the API would refuse; the detail is the API's message, naming the field.
    Checked row by row where given (a laboratory's interval is on few rows), once per distinct
    (code, limits, unit). Returns the rows with an accepted interval and the interval in the
    code's canonical unit (``(low, high)`` per row, NaN for a limit not given): the CTCAE
    laboratory terms read it (timeline/_labs.py)."""
    none = (np.zeros(0, np.int64), np.zeros((0, 2)))
    cols = {k: _column(raw, k) for k in REFERENCE_COLUMNS}
    present = [c for c in cols.values() if c is not None and c.null_count < len(c)]
    if not present:
        return none
    rows = np.unique(np.concatenate([_given(c) for c in present]))
    rows = rows[(reason[rows] == 0) | (reason[rows] >= _KEPT)]
    if not rows.shape[0]:
        return none
    take = indices(rows)
    ucol = _column(raw, "unit")
    assert ucol is not None
    got = {
        k: (
            [None] * rows.shape[0]
            if c is None
            else [_blank_none(x) for x in _as_string(c.take(take)).cast(pa.string()).to_pylist()]
        )
        for k, c in cols.items()
    }
    unit = [_blank_none(x) for x in _as_string(ucol.take(take)).cast(pa.string()).to_pylist()]
    vals = np.full((rows.shape[0], 2), np.nan)
    ok = np.zeros(rows.shape[0], bool)
    for k, i in enumerate(rows.tolist()):
        name = voc.codes[int(code_of[c_idx[i]])].name
        got_k = _reference(name, got["ref_low"][k], got["ref_high"][k], unit[k])
        if isinstance(got_k, str):
            reason[i] = _R["bad_reference"]
            detail[i] = got_k
        elif got_k is not None:
            ok[k] = True
            vals[k] = [np.nan if x is None else x for x in (got_k.low, got_k.high)]
    return rows[ok], vals[ok]


def _blank_none(x: Any) -> Any:
    return None if x is None or str(x).strip() == "" else str(x).strip()


@functools.lru_cache(maxsize=4096)
def _reference(code: str, low: str | None, high: str | None, unit: str | None) -> labs.Reference | str | None:
    """The checked interval in the canonical unit, or the API's refusal (a message)."""
    try:
        return labs.check_reference(vocabulary().code(code), low, high, unit)
    except FindingError as exc:
        return str(exc)
