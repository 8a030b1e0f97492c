"""CTCAE laboratory terms in the cohort engine: findings from dated results, graded on whole columns.

A CTCAE laboratory term (``ctcae5:alanine-aminotransferase-increased``…, the ``lab`` part of
:class:`immunotox.scales.ctcae.CtcaeScale`) is graded at every result of its observation code
(``[terms]`` of ``data/reference_intervals.toml``; the v4.03 term of the same name reads the same
code). Its inputs are reconstructed as the monitoring service reconstructs them
(:mod:`immunotox.service.labs`), with what an observation file holds:

==============  ================================================================================
input           reconstruction
==============  ================================================================================
``value``       the result at t (several at t: the worst, the code's ``ties``)
``uln``/``lln`` the site's default interval (:func:`immunotox.labs.default_interval`) for the
                patient's age (``[derive.age_years]``) and an unknown sex: the observation
                contract has no sex, so only the intervals of ``sex = "any"`` apply; otherwise
                unknown (a sex-specific analyte such as ALT is then a range naming ULN)
``baseline``    (terms that read it) the latest result before day 0 (the first ``infusion``
                row); unknown without an infusion row, without an earlier result, or for a
                result that is itself before day 0
==============  ================================================================================

:func:`lab_inputs` (its references by :func:`references`) is the one reconstruction, used as it
is by the scalar reference engine (one patient, one result at a time); :func:`reference_columns`
is :func:`references` on whole arrays. The ASCO 2021 laboratory organ grades (:func:`organ_refs`:
ALT, AST, bilirubin, glucose, free T4 × ULN, creatinine × baseline) read the same two functions,
at the result their value was derived from, as the service reads :func:`immunotox.service.labs.reference`.
:func:`grade` does the same on whole arrays and grades them
from the SAME typed rule object (:class:`immunotox.scales.ctcae_spec.Lab`, read by
:class:`immunotox.scales.ctcae_lab.LabGrader`): every bound of every band is evaluated on columns
with the table's tolerance (:func:`immunotox.scales.ctcae_spec.compare`), three-valued where an
input is unknown; with exactly one unknown input, the core's representative values of that input
(every critical value the bounds solve for, the midpoints, the ends of the range, the
consistency limits) are built as a matrix and the bands evaluated at each. So every point gets
its *lab outcome* — which input is unknown, the set of possible grades and the bands that hold
whatever the unknown input — and the consistency checks the core applies. The grade is a
function of that outcome: the grading core grades ONE representative per distinct outcome (a
handful per partition whatever its size), so the combination with the term's clinical criteria,
the completeness and the refusals are the core's own. ``tests/test_timeline_labs.py`` proves the
engine equal to the scalar reference on random laboratory courses (hypothesis).
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import numpy as np

from .. import labs
from ..catalogue import all_scales
from ..scales.asco2021 import LabCriterion, lab_criteria
from ..scales.ctcae import CtcaeScale
from ..scales.ctcae_spec import LAB_INPUTS, REL_TOL, Bound, Lab
from ..vocabulary import vocabulary
from ._astct import Graded
from ._labcode import lab_code
from ._read import F64, I64, B
from ._snapshot import Grader, ScalePlan, grade_findings
from ._state import Features

_REFS = ("uln", "lln")


# ------------------------------------------------------------------------------- which terms
@functools.cache
def handles(p: ScalePlan) -> bool:
    """True when ``p`` is a CTCAE laboratory term graded from its observation code."""
    return p.lab is not None and lab_code(p.scale_id) == p.lab


def _lab(scale_id: str) -> tuple[CtcaeScale, Lab]:
    scale = all_scales()[scale_id]
    assert isinstance(scale, CtcaeScale) and scale.term.lab is not None
    return scale, scale.term.lab


#: a criterion of an ASCO 2021 organ grade comparing a laboratory result with its reference
OrganRef = LabCriterion


def organ_refs(scale_id: str) -> tuple[OrganRef, ...]:
    """The laboratory criteria of the ASCO 2021 organ grade ``scale_id`` (none for another scale),
    as the scale defines them (:func:`immunotox.scales.asco2021.lab_criteria`, read by the live
    service too); their references are reconstructed by :func:`references`."""
    return lab_criteria().get(scale_id, ())


# ------------------------------------------------------------------------- the reconstruction
class _Record(Protocol):
    ref_at: dict[tuple[str, int], tuple[float | None, float | None]]

    def series(self, code: str) -> tuple[list[int], list[float]]: ...


def interval(code: str, age: float | None) -> tuple[float, float] | None:
    """(low, high) of the site's default interval of ``code`` at ``age`` for an unknown sex."""
    iv = labs.default_interval(code, None, age)
    return None if iv is None else (iv.low, iv.high)


def lab_inputs(rec: _Record, scale_id: str, code: str, t: int) -> dict[str, float]:
    """The known inputs of the lab term at the result time ``t`` of one patient's record (the
    table in the module docstring), as numbers in the code's canonical unit."""
    _scale, lab = _lab(scale_id)
    ts, vs = rec.series(code)
    return {"value": vs[bisect.bisect_left(ts, t)], **references(rec, code, lab.refs, t)}


def references(rec: _Record, code: str, refs: Iterable[str], t: int) -> dict[str, float]:
    """The known references among ``refs`` (``uln``, ``lln``, ``baseline``) of the result of
    ``code`` taken at ``t`` in one patient's record (the table in the module docstring): the
    result's own interval, else the site default for the patient's age and an unknown sex; the
    latest result before day 0 for a result at or after day 0. Read by the CTCAE laboratory terms
    and by the ASCO 2021 laboratory organ grades (:func:`organ_refs`)."""
    refs = tuple(refs)
    ts, vs = rec.series(code)
    q: dict[str, float] = {}
    ages = rec.series("age")[1]
    iv = interval(code, ages[-1] if ages else None)
    own_low, own_high = rec.ref_at.get((code, t), (None, None))
    for ref in _REFS:
        if ref not in refs:
            continue
        own = own_high if ref == "uln" else own_low
        if own is not None:
            q[ref] = own
        elif iv is not None:
            q[ref] = iv[1] if ref == "uln" else iv[0]
    if "baseline" in refs:
        inf = rec.series("infusion")[0]
        if inf and t >= inf[0]:
            j = bisect.bisect_left(ts, inf[0]) - 1
            if j >= 0:
                q["baseline"] = vs[j]
    return q


def lab_findings(q: Mapping[str, float], unit: str) -> dict[str, Any]:
    """The findings of the grading core: each known input with its unit (always given: some
    analytes refuse a bare number)."""
    return {k: {"value": float(x), "unit": unit} for k, x in q.items()}


def add_reference(findings: dict[str, Any], c: OrganRef, x: float | None) -> None:
    """Give the organ grade's ``findings`` the reference ``x`` of ``c`` (None: unknown, left
    out) and its value, both with the code's unit, as the service gives them."""
    if x is None or c.finding not in findings:
        return
    unit = vocabulary().code(c.code).unit
    value = findings[c.finding]
    if not isinstance(value, dict):
        findings[c.finding] = {"value": value, "unit": unit}
    findings[c.ref] = {"value": x, "unit": unit}


# ------------------------------------------------------------------------------ on columns
def _close(a: F64, b: F64) -> B:
    """``math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12)`` element-wise (the table's tolerance)."""
    with np.errstate(invalid="ignore"):
        out: B = np.abs(a - b) <= np.maximum(REL_TOL * np.maximum(np.abs(a), np.abs(b)), 1e-12)
    return out


def _compare(a: F64, op: str, b: F64) -> B:
    """:func:`immunotox.scales.ctcae_spec.compare` element-wise (False where a or b is NaN)."""
    with np.errstate(invalid="ignore"):
        strict = a < b if op in ("<", "<=") else a > b
        out: B = np.where(_close(a, b), op in ("<=", ">="), strict) & ~np.isnan(a) & ~np.isnan(b)
    return out


def _evaluate(bd: Bound, q: Mapping[str, F64]) -> tuple[B, B]:
    """(holds, known) of :meth:`Bound.evaluate` on columns (``q``: NaN where unknown)."""
    a = q[bd.lhs]
    b = np.full(a.shape, bd.x) if bd.ref is None else q[bd.ref] * bd.x + bd.add
    known: B = ~np.isnan(a) & ~np.isnan(b)
    return _compare(a, bd.op, b), known


def _band_status(lab: Lab, q: Mapping[str, F64]) -> tuple[B, B]:
    """(surely holds, may hold) of every band (columns: one row per band) — three-valued."""
    n = next(iter(q.values())).shape[0]
    sure = np.ones((len(lab.bands), n), bool)
    may = np.ones((len(lab.bands), n), bool)
    for i, band in enumerate(lab.bands):
        for bd in (*band.bounds, *(lab.conditions[c] for c in band.if_)):
            holds, known = _evaluate(bd, q)
            sure[i] &= holds & known
            may[i] &= holds | ~known
    return sure, may


def _solve(bd: Bound, q: Mapping[str, F64], var: str) -> F64 | None:
    """:meth:`Bound.solve` on columns (NaN where it has no value)."""
    if var == bd.lhs and var != bd.ref:
        if bd.ref is None:
            return np.full(q["value"].shape, bd.x)
        return q[bd.ref] * bd.x + bd.add
    if var == bd.ref:
        return (q[bd.lhs] - bd.add) / bd.x
    return None


def _points(lab: Lab, q: Mapping[str, F64], var: str) -> tuple[F64, B]:
    """The core's representative values of the unknown ``var`` (``LabGrader._points``) as a
    matrix (one row per point of ``q``), and which of them are admissible."""
    n = q["value"].shape[0]
    crit: list[F64] = []
    bounds = [*(bd for b in lab.bands for bd in b.bounds), *lab.conditions.values()]
    for bd in bounds:
        c = _solve(bd, q, var)
        if c is not None:
            with np.errstate(invalid="ignore"):
                crit.append(np.where(c > 0, c, np.nan))
    limits = {"uln": ("lln", "mi_level"), "lln": ("uln",), "mi_level": ("uln",)}
    for k in limits.get(var, ()):
        if k in q:
            with np.errstate(invalid="ignore"):
                crit.append(np.where(q[k] > 0, q[k], np.nan))
    lo, hi = lab.range
    ts = np.sort(np.stack(crit, axis=1), axis=1) if crit else np.full((n, 0), np.nan)  # NaN last
    count = (~np.isnan(ts)).sum(axis=1)
    has = count > 0
    first = ts[:, 0] if ts.shape[1] else np.full(n, np.nan)
    last = ts[np.arange(n), np.maximum(count - 1, 0)] if ts.shape[1] else np.full(n, np.nan)
    cols = [ts, (ts[:, :-1] + ts[:, 1:]) / 2] if ts.shape[1] > 1 else [ts]
    extra = np.stack(
        [
            np.where(has, first / 2, np.nan),
            np.where(has, last * 2, np.nan),
            np.where(has, (lo + first) / 2, np.nan),
            np.where(has, np.nan, (lo + hi) / 2),
            np.full(n, float(lo)),
            np.full(n, float(hi)),
        ],
        axis=1,
    )
    pts = np.concatenate([*cols, extra], axis=1)
    with np.errstate(invalid="ignore"):
        ok = ~np.isnan(pts) & (pts >= lo) & (pts <= hi)
        if var != "value":
            ok &= pts > 0
        col = {k: v[:, None] for k, v in q.items()}
        if var == "uln" and "lln" in q:
            ok &= ~(pts <= col["lln"])
        if var == "lln" and "uln" in q:
            ok &= ~(pts >= col["uln"])
        if var == "mi_level" and "uln" in q:
            ok &= ~(pts < col["uln"])
        if var == "uln" and "mi_level" in q:
            ok &= ~(pts > col["mi_level"])
    return pts, ok


def _fired_grade(lab: Lab, q: Mapping[str, F64]) -> tuple[I64, I64]:
    """(grade, bitmask of the bands that hold) where every operand is known."""
    sure, _may = _band_status(lab, q)
    grades = np.array([b.grade for b in lab.bands], np.int64)
    n = sure.shape[1]
    g = np.zeros(n, np.int64)
    mask = np.zeros(n, np.int64)
    for i in range(len(lab.bands)):
        g = np.where(sure[i], np.maximum(g, grades[i]), g)
        mask |= sure[i].astype(np.int64) << i
    return g, mask


def _fired_at(lab: Lab, q: Mapping[str, F64], fixed: Mapping[int, B]) -> tuple[I64, I64]:
    """:func:`_fired_grade` where every operand is known, reusing the outcomes ``fixed`` of the
    bounds that do not read the varied input."""
    n = q["value"].shape[0]
    g = np.zeros(n, np.int64)
    mask = np.zeros(n, np.int64)
    for i, band in enumerate(lab.bands):
        holds = np.ones(n, bool)
        for bd in (*band.bounds, *(lab.conditions[c] for c in band.if_)):
            got = fixed.get(id(bd))
            holds &= _evaluate(bd, q)[0] if got is None else got
        g = np.where(holds, np.maximum(g, band.grade), g)
        mask |= holds.astype(np.int64) << i
    return g, mask


def outcome(lab: Lab, q: Mapping[str, F64]) -> I64:
    """The lab outcome of every point as key columns (one row per point): which operand is
    unknown (or ``-1``, ``-2`` for none, several), the bitmask of possible grades, the bitmask of
    the bands that surely hold, and the core's consistency checks (``LabGrader.grade``,
    ``CtcaeScale._check_lab``, the findings' range)."""
    n = q["value"].shape[0]
    ops = lab.operands()
    unknown = np.stack([np.isnan(q[k]) for k in ops], axis=1)
    n_unknown = unknown.sum(axis=1)
    which = np.where(n_unknown == 0, -1, np.where(n_unknown >= 2, -2, np.argmax(unknown, axis=1)))
    grades = np.zeros(n, np.int64)
    sure_mask = np.zeros(n, np.int64)
    three = n_unknown >= 2
    none = np.flatnonzero(n_unknown == 0)
    if none.shape[0]:
        g, mask = _fired_grade(lab, {k: v[none] for k, v in q.items()})
        grades[none] = np.int64(1) << g
        sure_mask[none] = mask
    for j, var in enumerate(ops):
        rows = np.flatnonzero(which == j)
        if not rows.shape[0]:
            continue
        sub = {k: v[rows] for k, v in q.items()}
        pts, ok = _points(lab, sub, var)
        got = np.zeros(rows.shape[0], np.int64)
        sure = np.full(rows.shape[0], -1, np.int64)
        # the bounds that do not read ``var`` hold or not whatever its value: evaluated once
        fixed = {
            id(bd): _evaluate(bd, sub)[0]
            for band in lab.bands
            for bd in (*band.bounds, *(lab.conditions[c] for c in band.if_))
            if var not in bd.operands()
        }
        for c in range(pts.shape[1]):
            g, mask = _fired_at(lab, {**sub, var: pts[:, c]}, fixed)
            got |= np.where(ok[:, c], np.int64(1) << g, 0)
            sure &= np.where(ok[:, c], mask, -1)
        none_ok = ~ok.any(axis=1)
        three[rows[none_ok]] = True  # no admissible value: graded three-valued, as the core does
        grades[rows] = got
        sure_mask[rows] = np.where(none_ok, 0, sure)
    tv = np.flatnonzero(three)
    if tv.shape[0]:
        s, m = _band_status(lab, {k: v[tv] for k, v in q.items()})
        grades[tv] = 0
        sure_mask[tv] = 0
        for i in range(len(lab.bands)):
            sure_mask[tv] |= s[i].astype(np.int64) << i
            grades[tv] |= m[i].astype(np.int64) << (len(lab.bands) + i)
    checks = _checks(lab, q)
    return np.stack([which, grades, sure_mask, three.astype(np.int64), checks], axis=1)


def _checks(lab: Lab, q: Mapping[str, F64]) -> I64:
    """A bitmask of the comparisons the core's consistency and range checks read."""
    n = q["value"].shape[0]
    lo, hi = lab.range
    nan = np.full(n, np.nan)
    uln, lln = q.get("uln", nan), q.get("lln", nan)
    base, mi = q.get("baseline", nan), q.get("mi_level", nan)
    tests: list[B] = []
    with np.errstate(invalid="ignore"):
        for k in LAB_INPUTS:
            x = q.get(k, nan)
            tests += [np.isnan(x), x < lo, x > hi, x == lo, x == hi]
        tests += [uln <= 0, lln <= 0, lln >= hi, lln >= uln, base <= 0, mi < uln]
    out = np.zeros(n, np.int64)
    for i, t in enumerate(tests):
        out |= np.asarray(t, bool).astype(np.int64) << i
    return out


def columns(p: ScalePlan, f: Features, d0: I64, d0_inf: B) -> dict[str, F64]:
    """The inputs of the lab term at every point of ``f``'s grid (NaN where unknown): the
    reconstruction of :func:`lab_inputs` on whole arrays."""
    _scale, lab = _lab(p.scale_id)
    assert p.lab is not None
    grid = f.grid
    n = len(grid)
    k, v, _r = f.tl.series(p.lab)
    j = np.minimum(np.searchsorted(k, grid.key), max(k.shape[0] - 1, 0))
    q: dict[str, F64] = {"value": v[j] if k.shape[0] else np.zeros(n)}
    at = j if k.shape[0] else np.full(n, -1, np.int64)
    return {**q, **reference_columns(f, p.lab, lab.refs, at, grid.t, d0, d0_inf)}


def reference_columns(
    f: Features, code: str, refs: Iterable[str], j: I64, t: I64, d0: I64, d0_inf: B
) -> dict[str, F64]:
    """:func:`references` on whole arrays: at every point of ``f``'s grid, the references among
    ``refs`` of the entry ``j`` of ``code``'s series (``-1``: no result, every reference NaN),
    a result taken at time ``t``; NaN where unknown."""
    refs = tuple(refs)
    grid = f.grid
    n = len(grid)
    k, v, _r = f.tl.series(code)
    has = j >= 0
    jc = np.maximum(j, 0)
    age = np.asarray(f.raw("age_years"), np.float64)
    bounds = [r for r in _REFS if r in refs]
    q: dict[str, F64] = {r: np.full(n, np.nan) for r in bounds}
    if bounds and n:
        ages, inv = np.unique(age, return_inverse=True)
        for a, age_value in enumerate(ages.tolist()):
            iv = interval(code, None if np.isnan(age_value) else float(age_value))
            if iv is None:
                continue
            at = np.flatnonzero(inv.reshape(-1) == a)
            for r in bounds:
                q[r][at] = iv[1] if r == "uln" else iv[0]
        if f.tl.obs.ref_low is not None and k.shape[0]:
            own_low, own_high = _own_interval(f, code)
            for r in bounds:
                own = (own_high if r == "uln" else own_low)[jc]
                q[r] = np.where(np.isnan(own), q[r], own)
        for r in bounds:
            q[r] = np.where(has, q[r], np.nan)
    if "baseline" in refs:
        base = np.full(n, np.nan)
        if n and k.shape[0]:
            pid = grid.pid.astype(np.int64)
            d0_key = f.tl.key(pid, d0[pid])
            jb = np.searchsorted(k, d0_key) - 1  # the last result strictly before day 0
            jbc = np.maximum(jb, 0)
            same = (jb >= 0) & (f.tl.time_of(k[jbc])[0] == pid)
            ok = has & d0_inf[pid] & (t >= d0[pid]) & same
            base = np.where(ok, v[jbc], np.nan)
        q["baseline"] = base
    return q


def _own_interval(f: Features, code: str) -> tuple[F64, F64]:
    """Per entry of the code's series (one per patient and time): the reference interval of the
    result the code's ``ties`` rule picks (the worst value; of equal values the last row)."""
    obs = f.tl.obs
    rows = f.tl.rows(code)
    keys = np.take(f.tl.key_all, rows)
    vals = np.take(obs.num, rows)
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    ties_max = vocabulary().code(code).ties == "max"  # the rule of Timeline.series
    worst = (np.maximum if ties_max else np.minimum).reduceat(vals, starts)
    group = np.cumsum(np.concatenate(([True], keys[1:] != keys[:-1]))) - 1
    pos = np.where(vals == worst[group], np.arange(rows.shape[0]), -1)
    picked = rows[np.maximum.reduceat(pos, starts)]
    low, high = obs.refs()
    return low[picked], high[picked]


def _classes(key: I64) -> tuple[I64, I64]:
    """(first row of each distinct key row, class of every row): the key columns ranked one at a
    time into one dense int64 (a sort per column, cheaper than sorting rows of several columns)."""
    ids = np.zeros(key.shape[0], np.int64)
    for j in range(key.shape[1]):
        _, rank = np.unique(key[:, j], return_inverse=True)
        ids = ids * (int(rank.max()) + 1) + rank.reshape(-1)
        _, ids = np.unique(ids, return_inverse=True)
        ids = ids.reshape(-1)
    _, first, cls = np.unique(ids, return_index=True, return_inverse=True)
    return first, cls.reshape(-1)


def grade(p: ScalePlan, f: Features, d0: I64, d0_inf: B, grader: Grader) -> Graded:
    """Grade the lab term of ``p`` at every point of ``f``'s grid (one core call per outcome;
    a refused outcome is counted once per point, as the scalar engine counts it)."""
    scale, lab = _lab(p.scale_id)
    n = len(f.grid)
    if n == 0:
        e = np.zeros(0, np.int64)
        return Graded(e, e, np.zeros(0, bool), np.zeros(0, bool))
    q = columns(p, f, d0, d0_inf)
    # a laboratory reports few distinct numbers: the outcome is computed once per distinct input
    # tuple (bitwise equal), then the points are classed by outcome
    names = sorted(q)
    u_first, u_cls = _classes(np.stack([q[k] for k in names], axis=1).view(np.int64))
    u_key = outcome(lab, {k: q[k][u_first] for k in names})
    first_u, cls_u = _classes(u_key)
    cls = cls_u[u_cls]
    first = u_first[first_u]
    sizes = np.bincount(cls)
    m = first.shape[0]
    u_lo, u_hi = np.zeros(m, np.int64), np.zeros(m, np.int64)
    u_c, u_a = np.zeros(m, bool), np.zeros(m, bool)
    for c, row in enumerate(first.tolist()):
        known = {name: float(col[row]) for name, col in q.items() if not np.isnan(col[row])}
        r = grade_findings(scale, lab_findings(known, lab.unit))
        u_lo[c], u_hi[c], u_c[c], u_a[c] = r.lo, r.hi, r.complete, r.grade is not None
        if r.error is not None:
            grader.refused[scale.id] = grader.refused.get(scale.id, 0) + int(sizes[c])
            grader.first_refusal.setdefault(scale.id, r.error)
    return Graded(u_lo[cls], u_hi[cls], u_c[cls], u_a[cls])
