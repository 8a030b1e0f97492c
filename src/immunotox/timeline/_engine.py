"""Grade one partition of whole patients: the embedded (vectorised) and the scalar engines.

Both take the same :class:`~immunotox.timeline._read.Obs` and return the same four Arrow tables
(schemas below); the differential tests hold them equal.

* ``embedded`` — :mod:`._state` reconstructs the state of every assessment of every patient at
  once; ``astct2019:crs`` and ``astct2019:icans`` are graded by the vectorised interpreter of
  their rule table (:mod:`._astct`), the legacy CRS scales (Lee 2014, Penn, MSKCC, CARTOX) by
  the vectorised interpreter of theirs (:mod:`._legacy`), the CTCAE clinical terms (CRS…) by
  classes of equal condition outcomes evaluated on whole columns (:mod:`._criteria`), ICAHT from
  the ANC course known at each result by the vectorised gap, episode and nadir rules of its table
  (:mod:`._icaht`), the CTCAE laboratory terms from their dated results on whole columns
  (:mod:`._labs`), the ASCO 2021 organ grades by the vectorised interpreter of their table
  (:mod:`._asco`); any other scale is graded by the grading core once per *distinct* snapshot
  and joined back.
* ``scalar`` — the reference: :mod:`._reference`, one patient and one assessment at a time.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from ..vocabulary import vocabulary
from . import _asco, _astct, _criteria, _icaht, _labs, _legacy
from ._arrow import from_np, strings
from ._read import F64, I32, I64, B, Obs
from ._reference import DAY_US, grade_patient, records
from ._reference import day0 as day0_py
from ._snapshot import Grader, ScalePlan, findings_from_raw
from ._state import Features, KeyOverflow, Timeline, episodes, range_reduce

TS = pa.timestamp("us", tz="UTC")
GRADES_SCHEMA = pa.schema(
    [
        ("patient_id", pa.string()),
        ("scale", pa.string()),
        ("time", TS),
        ("day", pa.int32()),
        ("grade", pa.int8()),
        ("grade_lo", pa.int8()),
        ("grade_hi", pa.int8()),
        ("complete", pa.bool_()),
    ]
)
DAILY_SCHEMA = pa.schema(
    [
        ("patient_id", pa.string()),
        ("scale", pa.string()),
        ("day", pa.int32()),
        ("max_grade", pa.int8()),
        ("max_grade_hi", pa.int8()),
        ("complete", pa.bool_()),
        ("n_assessments", pa.int32()),
    ]
)
EPISODES_SCHEMA = pa.schema(
    [
        ("patient_id", pa.string()),
        ("scale", pa.string()),
        ("episode", pa.int32()),
        ("onset", TS),
        ("onset_day", pa.int32()),
        ("peak_grade", pa.int8()),
        ("peak_time", TS),
        ("resolution", TS),
        ("duration_h", pa.float64()),
        ("resolved", pa.bool_()),
        ("last_positive", TS),
        ("peak_grade_hi", pa.int8()),
        ("complete", pa.bool_()),
    ]
)
PATIENTS_SCHEMA = pa.schema(
    [
        ("patient_id", pa.string()),
        ("scale", pa.string()),
        ("n_assessments", pa.int32()),
        ("max_grade", pa.int8()),
        ("max_grade_hi", pa.int8()),
        ("complete", pa.bool_()),
        ("n_episodes", pa.int32()),
        ("first_onset", TS),
        ("onset_day", pa.int32()),
        ("day0", TS),
        ("day0_source", pa.string()),
    ]
)
SCHEMAS = {
    "grades": GRADES_SCHEMA,
    "daily_max": DAILY_SCHEMA,
    "episodes": EPISODES_SCHEMA,
    "patients": PATIENTS_SCHEMA,
}
ENGINES = ("embedded", "scalar")
_DICT = pa.dictionary(pa.int32(), pa.string())


def writer_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with its repeated strings dictionary-encoded (how partitions are produced and
    written; read back, the columns are plain strings)."""
    fields = []
    for f in schema:
        if f.name in ("patient_id", "scale", "day0_source", "file", "reason", "column"):
            fields.append(pa.field(f.name, _DICT, f.nullable))
        else:
            fields.append(f)
    return pa.schema(fields)


W_SCHEMAS = {k: writer_schema(s) for k, s in SCHEMAS.items()}
_DAY0_SOURCES = strings(["first_observation", "infusion"])


DEFAULT_RESOLUTION_H = vocabulary().episode_resolution_h
"""Hours at grade 0 after which an episode resolves ([episode] of ``data/observations.toml``)."""


@dataclass
class Params:
    """Run parameters."""

    resolution_hours: float = DEFAULT_RESOLUTION_H

    @property
    def resolution_us(self) -> int:
        return round(self.resolution_hours * 3_600_000_000)


@dataclass
class PartitionOutput:
    """The four output tables of one partition."""

    tables: dict[str, list[pa.Table]] = field(default_factory=lambda: {k: [] for k in SCHEMAS})
    n_assessments: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, table: pa.Table) -> None:
        self.tables[name].append(table)

    def table(self, name: str) -> pa.Table:
        """All partitions' rows of output ``name``, with plain string columns."""
        parts = [t.cast(SCHEMAS[name]) for t in self.tables[name]]
        return pa.concat_tables(parts) if parts else pa.Table.from_batches([], schema=SCHEMAS[name])


def grade_partition(
    obs: Obs,
    plans: Sequence[ScalePlan],
    params: Params,
    engine: str = "embedded",
    grader: Grader | None = None,
) -> PartitionOutput:
    """Grade every plan on the patients of ``obs`` with ``engine`` (``embedded`` or ``scalar``)."""
    g = grader or Grader()
    if engine == "scalar":
        return _scalar(obs, plans, params, g)
    try:
        return _embedded(obs, plans, params, g)
    except KeyOverflow:
        if obs.n_patients < 2:
            raise
        half = obs.n_patients // 2
        out = PartitionOutput()
        for part in (obs.select_patients(0, half), obs.select_patients(half, obs.n_patients)):
            sub = grade_partition(part, plans, params, engine, g)
            for k in SCHEMAS:
                out.tables[k].extend(sub.tables[k])
            for s, n in sub.n_assessments.items():
                out.n_assessments[s] = out.n_assessments.get(s, 0) + n
        return out


# ------------------------------------------------------------------------------ embedded engine
def _day0(obs: Obs) -> tuple[I64, B]:
    """Per patient: day-0 time (first infusion row, else first observation) and whether it is an infusion."""
    first = obs.first_t.copy()
    inf_rows = np.flatnonzero(obs.code == vocabulary().code("infusion").index)
    has = np.zeros(obs.n_patients, bool)
    if inf_rows.shape[0]:
        big = np.iinfo(np.int64).max
        t_inf = np.full(obs.n_patients, big, np.int64)
        np.minimum.at(t_inf, obs.pid[inf_rows].astype(np.int64), obs.t[inf_rows])
        has = t_inf != big
        first[has] = t_inf[has]
    return first, has


def _ts(values: I64, valid: B | None = None) -> pa.Array:
    return from_np(values, TS, valid)


def _int(values: Any, dtype: pa.DataType, valid: B | None = None) -> pa.Array:
    return from_np(values, dtype, valid)


def _strings(ids: pa.Array, idx: I32 | I64) -> pa.Array:
    return pa.DictionaryArray.from_arrays(from_np(idx, pa.int32()), ids)


@functools.cache
def _one_string(value: str) -> pa.Array:
    return strings([value])


def _const(value: str, n: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(from_np(np.zeros(n, np.int32), pa.int32()), _one_string(value))


def _snapshot_grades(
    f: Features, p: ScalePlan, grader: Grader, only: I64 | None = None
) -> tuple[I64, I64, B, B]:
    """Grade a scale through the grading core once per distinct snapshot (at the points ``only``
    when given: the snapshots a vectorised interpreter leaves to the core)."""
    voc = f.voc
    cols: dict[str, pl.Series] = {}
    layout: list[tuple[str, list[str]]] = []
    for k in p.findings:
        raw = f.raw(k)
        d = voc.derivations[k]
        if d.method == "record_last":
            names = [f"{k}.{c}" for c in d.codes]
            for name, c in zip(names, d.codes, strict=True):
                cols[name] = pl.Series(name, raw[c] if only is None else raw[c][only]).fill_nan(None)
            layout.append((k, names))
        else:
            s = pl.Series(k, raw if only is None else raw[only])
            if s.dtype == pl.Float64:
                s = s.fill_nan(None)
            cols[k] = s
            layout.append((k, [k]))
    n = len(f.grid) if only is None else only.shape[0]
    lo = np.zeros(n, np.int64)
    hi = np.zeros(n, np.int64)
    complete = np.zeros(n, bool)
    assessable = np.zeros(n, bool)
    if n == 0:
        return lo, hi, complete, assessable
    if not cols:
        cols["_none"] = pl.Series("_none", np.zeros(n, np.int8))
    df = pl.DataFrame(list(cols.values()))
    keys = list(cols)
    ids = df.select(pl.struct(keys).rank("dense").alias("id"))["id"].to_numpy().astype(np.int64) - 1
    first = np.full(int(ids.max()) + 1, -1, np.int64)
    first[ids[::-1]] = np.arange(n - 1, -1, -1)
    u_lo = np.zeros(first.shape[0], np.int64)
    u_hi = np.zeros(first.shape[0], np.int64)
    u_c = np.zeros(first.shape[0], bool)
    u_a = np.zeros(first.shape[0], bool)
    rows = df[first.tolist()].rows(named=True)
    for j, row in enumerate(rows):
        raw_state: dict[str, Any] = {}
        for k, names in layout:
            if len(names) == 1 and names[0] == k:
                raw_state[k] = row[k]
            else:
                raw_state[k] = tuple(row[nm] for nm in names)
        r = grader.grade(p.scale, findings_from_raw(p, raw_state, voc, with_units=True))
        u_lo[j], u_hi[j], u_c[j], u_a[j] = r.lo, r.hi, r.complete, r.grade is not None
    return u_lo[ids], u_hi[ids], u_c[ids], u_a[ids]


def _embedded(obs: Obs, plans: Sequence[ScalePlan], params: Params, grader: Grader) -> PartitionOutput:
    out = PartitionOutput()
    tl = Timeline(obs)
    d0, d0_inf = _day0(obs)
    ids = strings(obs.patient_ids)
    feats: dict[tuple[frozenset[str], frozenset[str]], Features] = {}
    for p in plans:
        key = (p.grid_codes, p.interval_codes)
        if key not in feats:
            feats[key] = Features(
                tl, tl.grid(p.grid_codes, p.interval_codes), params.resolution_us, _astct.DERIVED
            )
        f = feats[key]
        if p.scale_id in _astct.SCALES:
            gr = _astct.grade(p.scale_id, f)
            lo, hi, complete, assessable = gr.lo, gr.hi, gr.complete, gr.assessable
        elif _icaht.handles(p):
            gr = _icaht.grade(p, f, d0)
            lo, hi, complete, assessable = gr.lo, gr.hi, gr.complete, gr.assessable
        elif _labs.handles(p):
            gr = _labs.grade(p, f, d0, d0_inf, grader)
            lo, hi, complete, assessable = gr.lo, gr.hi, gr.complete, gr.assessable
        elif _legacy.handles(p) or _criteria.handles(p):
            gr, refused_at = (_legacy if _legacy.handles(p) else _criteria).grade(p, f)
            lo, hi, complete, assessable = gr.lo, gr.hi, gr.complete, gr.assessable
            # the snapshots the core refuses (contradictory findings, rare) are graded by the core
            # itself, so the summary counts and quotes its refusals as on the snapshot path
            refused = np.flatnonzero(refused_at)
            if refused.shape[0]:
                r_lo, r_hi, r_c, r_a = _snapshot_grades(f, p, grader, refused)
                lo[refused], hi[refused], complete[refused], assessable[refused] = r_lo, r_hi, r_c, r_a
        elif _asco.handles(p):
            gr = _asco.grade(p, f, d0, d0_inf, grader)
            lo, hi, complete, assessable = gr.lo, gr.hi, gr.complete, gr.assessable
        else:
            lo, hi, complete, assessable = _snapshot_grades(f, p, grader)
        _emit(out, p.scale_id, ids, f.grid.pid, f.grid.t, lo, hi, complete, assessable, d0, d0_inf, params)
    return out


def _emit(
    out: PartitionOutput,
    scale: str,
    ids: pa.Array,
    pid: I32,
    t: I64,
    lo: I64,
    hi: I64,
    complete: B,
    assessable: B,
    d0: I64,
    d0_inf: B,
    params: Params,
) -> None:
    n = t.shape[0]
    npat = len(ids)
    out.n_assessments[scale] = out.n_assessments.get(scale, 0) + n
    day = np.floor_divide(t - d0[pid], DAY_US).astype(np.int32)
    eff = np.where(assessable, lo, -1)
    out.add(
        "grades",
        pa.table(
            [
                _strings(ids, pid),
                _const(scale, n),
                _ts(t),
                from_np(day, pa.int32()),
                _int(lo, pa.int8(), assessable),
                _int(lo, pa.int8()),
                _int(hi, pa.int8()),
                from_np(complete, pa.bool_()),
            ],
            schema=W_SCHEMAS["grades"],
        ),
    )
    # daily maximum: runs of (patient, day)
    if n:
        new = np.concatenate(([True], (pid[1:] != pid[:-1]) | (day[1:] != day[:-1])))
        st = np.flatnonzero(new)
        stop = np.concatenate((st[1:], [n]))
        dmax = np.maximum.reduceat(eff, st)
        dhi = np.maximum.reduceat(hi, st)
        dcomp = np.minimum.reduceat(complete.astype(np.int8), st).astype(bool)
        out.add(
            "daily_max",
            pa.table(
                [
                    _strings(ids, pid[st]),
                    _const(scale, st.shape[0]),
                    from_np(day[st], pa.int32()),
                    _int(dmax, pa.int8(), dmax >= 0),
                    _int(dhi, pa.int8()),
                    from_np(dcomp, pa.bool_()),
                    from_np((stop - st).astype(np.int32), pa.int32()),
                ],
                schema=W_SCHEMAS["daily_max"],
            ),
        )
    # episodes over the established grade
    bounds = np.searchsorted(pid, np.arange(npat + 1)).astype(np.int64)
    ep = episodes(pid, t, eff >= 1, params.resolution_us, bounds)
    m = ep.start.shape[0]
    n_ep = np.zeros(npat, np.int64)
    first_onset = np.zeros(npat, np.int64)
    has_onset = np.zeros(npat, bool)
    if m:
        ep_pid = pid[ep.start].astype(np.int64)
        peak = range_reduce(eff, ep.start, ep.stop, np.maximum, -1)
        rows = np.arange(n, dtype=np.int64)
        big = np.iinfo(np.int64).max
        row_peak = np.where((ep.row_episode >= 0) & (eff == peak[np.maximum(ep.row_episode, 0)]), rows, big)
        peak_row = range_reduce(row_peak, ep.start, ep.stop, np.minimum, big)
        peak_hi = range_reduce(hi, ep.start, ep.stop, np.maximum, 0)
        ep_comp = range_reduce(complete.astype(np.int8), ep.start, ep.stop, np.minimum, 1).astype(bool)
        first_of_pid = np.concatenate(([True], ep_pid[1:] != ep_pid[:-1]))
        grp_start = np.maximum.accumulate(np.where(first_of_pid, np.arange(m), 0))
        number = (np.arange(m) - grp_start + 1).astype(np.int32)
        onset = t[ep.start]
        dur = np.where(ep.resolved, (ep.resolution - onset) / 3_600_000_000, np.nan)
        out.add(
            "episodes",
            pa.table(
                [
                    _strings(ids, ep_pid),
                    _const(scale, m),
                    from_np(number, pa.int32()),
                    _ts(onset),
                    from_np(np.floor_divide(onset - d0[ep_pid], DAY_US).astype(np.int32), pa.int32()),
                    _int(peak, pa.int8()),
                    _ts(t[peak_row]),
                    _ts(ep.resolution, ep.resolved),
                    from_np(np.nan_to_num(dur), pa.float64(), ep.resolved),
                    from_np(ep.resolved, pa.bool_()),
                    _ts(t[ep.last_pos]),
                    _int(peak_hi, pa.int8()),
                    from_np(ep_comp, pa.bool_()),
                ],
                schema=W_SCHEMAS["episodes"],
            ),
        )
        np.add.at(n_ep, ep_pid, 1)
        first_onset[ep_pid[first_of_pid]] = onset[first_of_pid]
        has_onset[ep_pid[first_of_pid]] = True
    # patient summary (every patient of the partition, assessed or not)
    cnt = np.diff(bounds)
    pmax = range_reduce(eff, bounds[:-1], bounds[1:], np.maximum, -1)
    phi = range_reduce(hi, bounds[:-1], bounds[1:], np.maximum, -1)
    # complete: every assessment complete - and at least one assessment (no grade is not complete)
    pcomp = range_reduce(complete.astype(np.int8), bounds[:-1], bounds[1:], np.minimum, 0).astype(bool)
    src = pa.DictionaryArray.from_arrays(from_np(d0_inf.astype(np.int32), pa.int32()), _DAY0_SOURCES)
    out.add(
        "patients",
        pa.table(
            [
                _strings(ids, np.arange(npat)),
                _const(scale, npat),
                from_np(cnt.astype(np.int32), pa.int32()),
                _int(pmax, pa.int8(), pmax >= 0),
                _int(phi, pa.int8(), phi >= 0),
                from_np(pcomp, pa.bool_()),
                from_np(n_ep.astype(np.int32), pa.int32()),
                _ts(first_onset, has_onset),
                from_np(np.floor_divide(first_onset - d0, DAY_US).astype(np.int32), pa.int32(), has_onset),
                _ts(d0),
                src,
            ],
            schema=W_SCHEMAS["patients"],
        ),
    )


# -------------------------------------------------------------------------------- scalar engine
def _scalar(obs: Obs, plans: Sequence[ScalePlan], params: Params, grader: Grader) -> PartitionOutput:
    out = PartitionOutput()
    res: dict[str, dict[str, list[Any]]] = {k: {c: [] for c in s.names} for k, s in SCHEMAS.items()}

    def put(name: str, *vals: Any) -> None:
        for c, v in zip(SCHEMAS[name].names, vals, strict=True):
            res[name][c].append(v)

    for k, (pid, rec) in enumerate(records(obs)):
        d0, d0_src = day0_py(rec, int(obs.first_t[k]))
        graded = grade_patient(rec, plans, params.resolution_us, grader, d0)
        for p in plans:
            pg = graded[p.scale_id]
            out.n_assessments[p.scale_id] = out.n_assessments.get(p.scale_id, 0) + len(pg.times)
            days = [(t - d0) // DAY_US for t in pg.times]
            for t, dday, r in zip(pg.times, days, pg.rows, strict=True):
                put("grades", pid, p.scale_id, t, dday, r.grade, r.lo, r.hi, r.complete)
            by_day: dict[int, list[int]] = {}
            for i, dday in enumerate(days):
                by_day.setdefault(dday, []).append(i)
            for dday, idx in by_day.items():
                gs = [g for i in idx if (g := pg.rows[i].grade) is not None]
                put(
                    "daily_max",
                    pid,
                    p.scale_id,
                    dday,
                    max(gs) if gs else None,
                    max(pg.rows[i].hi for i in idx),
                    all(pg.rows[i].complete for i in idx),
                    len(idx),
                )
            for number, ep in enumerate(pg.episodes, start=1):
                span = range(ep.start, ep.stop)
                grades = [pg.rows[i].grade or 0 for i in span]
                peak = max(grades)
                peak_i = next(i for i in span if (pg.rows[i].grade or 0) == peak)
                onset = pg.times[ep.start]
                put(
                    "episodes",
                    pid,
                    p.scale_id,
                    number,
                    onset,
                    (onset - d0) // DAY_US,
                    peak,
                    pg.times[peak_i],
                    ep.resolution,
                    None if ep.resolution is None else (ep.resolution - onset) / 3_600_000_000,
                    ep.resolved,
                    pg.times[ep.last_pos],
                    max(pg.rows[i].hi for i in span),
                    all(pg.rows[i].complete for i in span),
                )
            gs = [g for r in pg.rows if (g := r.grade) is not None]
            first = pg.times[pg.episodes[0].start] if pg.episodes else None
            put(
                "patients",
                pid,
                p.scale_id,
                len(pg.rows),
                max(gs) if gs else None,
                max((r.hi for r in pg.rows), default=None),
                bool(pg.rows) and all(r.complete for r in pg.rows),
                len(pg.episodes),
                first,
                None if first is None else (first - d0) // DAY_US,
                d0,
                d0_src,
            )
    for name, schema in SCHEMAS.items():
        cols = []
        for fld in schema:
            vals = res[name][fld.name]
            if fld.type == TS:
                cols.append(pa.array(vals, pa.int64()).cast(TS))
            else:
                cols.append(pa.array(vals, fld.type))
        out.add(name, pa.table(cols, schema=schema).cast(W_SCHEMAS[name]))
    return out


def empty_outputs() -> dict[str, pa.Table]:
    return {k: pa.Table.from_batches([], schema=s) for k, s in SCHEMAS.items()}


_ = (F64,)
