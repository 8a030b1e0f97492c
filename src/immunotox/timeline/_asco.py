"""Vectorised interpreter of the ASCO 2021 organ grades (``asco2021:<organ>``) in the cohort engine.

Reads the SAME typed rule object as the scalar core (:mod:`immunotox.scales.asco2021`): the
scale's ``criteria``, the organ's table of :func:`immunotox.scales.asco2021_spec.table` — kinds,
findings and references, bands (``gt``/``ge``/``value_gt``/``rise_gt`` and their grades), enum
values and the grade of a true bool; no threshold is typed here, and every organ of the table is
covered the same way. Each criterion is one domain of the scalar core, evaluated on whole columns
(numpy) as the set of grades it leaves possible, held as a bitmask (bit ``g``: grade ``g``
possible):

* a value given (and its reference, for a multiple): the most severe band that holds, else 0 —
  one grade, known;
* a value given without its reference: the floor the bands on the value alone establish, and
  every band on the reference above it (the core's ``_without_ref``); known when none remains;
* a value absent: every grade the criterion can give (missing, never normal); a finding no
  timeline reconstructs (hospitalization, ADL…) is always absent.

The reference of a laboratory value (ALT × ULN, creatinine × baseline…: :func:`._labs.organ_refs`)
is reconstructed as for the CTCAE laboratory terms and as the service does
(:func:`._labs.reference_columns`, at the result the value was derived from); a reference outside
its finding's range is refused by the core, so those few points are handed to the core.

Bands compare the value rounded to 9 decimals as :meth:`Band.holds` does; numpy's rounding can
differ from Python's by one unit in the ninth decimal, so the few points within 1e-8 of a bound
are compared with Python's own ``round`` (never a whole column).

The grade's lowest and highest values are the scale's own ``combine`` over every combination of
the domains' possible grades (``Scale._enumerate``, the core's memoised resolution, so the rash's
"over 30% BSA is grade 3 only with moderate or severe symptoms" is the core's code, not a copy):
called once per distinct combination of bitmasks, a handful per partition whatever its size. A
grade is complete when every domain is known, and assessable when a domain is known, a band on
the value alone held, or the range is one grade (:meth:`Scale.resolve`).

The ASCO scales check no contradiction between findings, and :func:`handles` only accepts a plan
whose derived values the core always accepts (same unit, code range within the finding's range,
tokens among its values); a plan it refuses is graded by the core snapshot by snapshot, and
``tests/test_timeline_asco.py`` fails so that this module is extended.
``tests/test_timeline_asco.py`` proves the engine equal to the scalar reference on random
timelines, missing inputs included.

References
----------
Schneider BJ, Naidoo J, Santomasso BD, et al. Management of immune-related adverse events in
patients treated with immune checkpoint inhibitor therapy: ASCO guideline update. J Clin Oncol
2021;39(36):4073-4126. doi:10.1200/JCO.21.01440
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..catalogue import all_scales
from ..findings import vocabulary as finding_specs
from ..scales._base import Scale
from ..scales.asco2021 import AscoScale
from ..scales.asco2021_spec import Band, Criterion
from ..vocabulary import Vocabulary, vocabulary
from ._astct import Graded, _popcount
from ._criteria import _kind
from ._labs import add_reference, organ_refs, reference_columns
from ._read import F64, I64, B
from ._snapshot import Grader, ScalePlan, findings_from_raw
from ._state import Features

# the column a criterion's finding must come from: finding kind -> column kind (_criteria._kind)
_COLUMN = {"quantity": "number", "integer": "number", "enum": "token", "bool": "bool"}
_NEAR = 1e-8  # within this (relative) distance of a bound, compare with Python's round


def _scale(p: ScalePlan) -> AscoScale | None:
    s = all_scales().get(p.scale_id)
    return s if isinstance(s, AscoScale) else None


def _accepted(voc: Vocabulary, k: str) -> bool:
    """Does the core accept every value the timeline derives for finding ``k`` (no refusal)?"""
    spec = finding_specs().get(k)
    kind = _kind(voc, k)
    if spec is None or kind is None or _COLUMN.get(spec.kind) != kind:
        return False
    code = voc.code(voc.derivations[k].codes[0])
    if spec.kind in ("quantity", "integer") and code.kind != spec.kind:
        return False
    if (code.unit or None) != (spec.unit or None):  # with its unit when required: no conversion
        return False
    if spec.range is not None and (
        code.range is None or not spec.range[0] <= code.range[0] <= code.range[1] <= spec.range[1]
    ):
        return False
    return spec.kind != "enum" or set(code.tokens) <= set(spec.values)


def handles(p: ScalePlan) -> bool:
    """True when ``p`` is an ASCO 2021 organ grade fed only findings the core always accepts."""
    scale = _scale(p)
    if scale is None or type(scale).check is not Scale.check:  # a contradiction check: not here
        return False
    voc = vocabulary()
    reads = {k for c in scale.criteria.values() for k in c.reads}
    for k in p.findings:
        if k not in reads or not _accepted(voc, k):
            return False
        unless = voc.derivations[k].unless
        if unless is not None and unless in p.findings and _kind(voc, unless) is None:
            return False
    return True


@dataclass
class Column:
    """One finding at every point: given, and its value (a number, 0/1, or an index of ``tokens``)."""

    given: B
    value: F64
    tokens: tuple[str, ...] = ()


def _columns(p: ScalePlan, f: Features) -> dict[str, Column]:
    """The findings of ``p`` as the core receives them (:func:`._snapshot.findings_from_raw`)."""
    voc = f.voc
    out: dict[str, Column] = {}
    for k in p.findings:
        raw = np.asarray(f.raw(k), np.float64)
        given: B = ~np.isnan(raw)
        d = voc.derivations[k]
        if d.unless is not None and d.unless in p.findings:  # left out when the other is known
            given &= np.isnan(np.asarray(f.raw(d.unless), np.float64))
        code = voc.code(d.codes[0])
        out[k] = Column(given, np.trunc(raw) if code.kind == "integer" else raw, tuple(code.tokens))
    return out


def _bits(grades: Iterable[int]) -> int:
    return sum(1 << g for g in set(grades))


def _compare(x: F64, bound: float, strict: bool) -> B:
    """``round(x, 9) > bound`` (``>=`` unless ``strict``) at every point, as :meth:`Band.holds`."""
    with np.errstate(invalid="ignore"):
        r = np.round(x, 9)
        out: B = r > bound if strict else r >= bound
        near = np.flatnonzero(np.abs(x - bound) <= _NEAR * max(1.0, abs(bound)))
    if near.shape[0]:  # numpy and Python may round a point this close to the bound differently
        exact = [round(v, 9) for v in x[near].tolist()]
        out[near] = [v > bound if strict else v >= bound for v in exact]
    return out


def _holds(b: Band, value: F64, ref: F64 | None) -> B:
    """``b.holds(value, ref)`` at every point (``ref`` None: the criterion has no reference)."""
    kind, bound = b.comparison
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "value_gt":
            return _compare(value, bound, True)
        if kind == "rise_gt":
            assert ref is not None  # rise_gt is for a multiple (asco2021_spec)
            return _compare(value - ref, bound, True)
        return _compare(value if ref is None else value / ref, bound, kind == "gt")


def _criterion(c: Criterion, cols: Mapping[str, Column], n: int) -> tuple[I64, B]:
    """The grades criterion ``c`` leaves possible at every point (a bitmask), and whether a band on
    the value alone held while the reference is missing (a rule fired in an unknown domain)."""
    absent = Column(np.zeros(n, bool), np.full(n, np.nan))
    col = cols.get(c.finding, absent)
    open_ = np.full(n, _bits(c.grades()), np.int64)
    no_hit = np.zeros(n, bool)
    if c.kind == "enum":
        graded = [c.values[t].grade if t in c.values else 0 for t in col.tokens]
        lut = np.array([1 << g for g in graded] or [1], np.int64)
        idx = np.where(col.given, col.value, 0).astype(np.int64)
        return np.where(col.given, lut[idx], open_), no_hit
    if c.kind == "bool":
        assert c.true is not None  # a bool criterion (checked at load)
        true_bit = 1 << c.true.grade
        return np.where(col.given, np.where(col.value != 0, true_bit, 1), 1 | true_bit), no_hit
    # multiple / number: the most severe band that holds
    ref = None if c.ref is None else cols.get(c.ref, absent)
    ref_value = None if ref is None else ref.value
    with_ref = col.given if ref is None else col.given & ref.given
    top = np.zeros(n, np.int64)
    for b in c.bands:
        top = np.where(_holds(b, col.value, ref_value), np.maximum(top, b.grade), top)
    mask = np.where(with_ref, np.left_shift(1, top), open_)
    if ref is None:
        return mask, no_hit
    # the value without its reference: the bands on the value alone give a floor
    alone = [b for b in c.bands if b.comparison[0] == "value_gt"]
    floor = np.zeros(n, np.int64)
    for b in alone:
        floor = np.where(_holds(b, col.value, None), np.maximum(floor, b.grade), floor)
    held = np.zeros(n, bool)
    for b in alone:
        held |= _holds(b, col.value, None)
    partial = np.left_shift(1, floor)
    for b in c.bands:
        if b.comparison[0] != "value_gt":
            partial |= np.where(b.grade > floor, 1 << b.grade, 0)
    without = col.given & ~ref.given
    return np.where(without, partial, mask), without & held


def grade(p: ScalePlan, f: Features, d0: I64, d0_inf: B, grader: Grader) -> Graded:
    """Grade the ASCO 2021 organ scale of ``p`` at every point of ``f``'s grid (``d0``,
    ``d0_inf``: each patient's day 0 and whether it is an infusion, for the baselines)."""
    scale = _scale(p)
    if scale is None or not handles(p):
        raise KeyError(p.scale_id)
    cols = _columns(p, f)
    refused = _references(p, f, cols, d0, d0_inf)
    g = grade_columns(scale, cols, len(f.grid))
    for i in np.flatnonzero(refused).tolist():  # a reference the core refuses: the core's refusal
        r = grader.grade(scale, _snapshot(p, f, cols, i))
        g.lo[i], g.hi[i], g.complete[i], g.assessable[i] = r.lo, r.hi, r.complete, r.grade is not None
    return g


def _references(p: ScalePlan, f: Features, cols: dict[str, Column], d0: I64, d0_inf: B) -> B:
    """Add to ``cols`` the reference of each laboratory value of ``p`` (ULN, baseline), the
    reconstruction of the CTCAE laboratory terms (:func:`._labs.reference_columns`) at the result
    the value came from; returns the points where a reference lies outside its finding's range
    (the core refuses the snapshot there)."""
    refused = np.zeros(len(f.grid), bool)
    for c in organ_refs(p.scale_id):
        if c.finding not in cols:
            continue
        key = f.last(c.code, f.voc.derivations[c.finding].window_us)[1]
        k = f.tl.series(c.code)[0]
        j = np.where(key >= 0, np.searchsorted(k, key), -1)
        t = f.tl.time_of(np.maximum(key, 0))[1]
        x = reference_columns(f, c.code, (c.ref_name,), j, t, d0, d0_inf)[c.ref_name]
        given = cols[c.finding].given & ~np.isnan(x)
        cols[c.ref] = Column(given, np.where(given, x, np.nan))
        rng = finding_specs()[c.ref].range
        if rng is not None:
            with np.errstate(invalid="ignore"):
                refused |= given & ((x < rng[0]) | (x > rng[1]))
    return refused


def _snapshot(p: ScalePlan, f: Features, cols: Mapping[str, Column], i: int) -> dict[str, Any]:
    """The findings the scalar reference hands the core at point ``i`` (:mod:`._reference`)."""
    raw = {k: np.asarray(f.raw(k))[i].item() for k in p.findings}
    out = findings_from_raw(p, {k: None if v != v else v for k, v in raw.items()}, f.voc, with_units=True)
    for c in organ_refs(p.scale_id):
        ref = cols.get(c.ref)
        add_reference(out, c, float(ref.value[i]) if ref is not None and ref.given[i] else None)
    return out


def grade_columns(scale: AscoScale, cols: Mapping[str, Column], n: int) -> Graded:
    """Grade ``scale`` at ``n`` points from the columns of the findings it is given (the others
    are absent at every point)."""
    names = tuple(scale.criteria)
    masks: list[I64] = []
    hits: list[B] = []
    for c in scale.criteria.values():
        m, h = _criterion(c, cols, n)
        masks.append(m)
        hits.append(h)
    width = max(scale.grades) + 1
    known = [_popcount(m, width) == 1 for m in masks]
    if n == 0:
        e = np.zeros(0, np.int64)
        return Graded(e, e, np.zeros(0, bool), np.zeros(0, bool))
    # one call of the core's resolution per distinct combination of possible grades
    if width * len(masks) <= 62:
        key = np.zeros(n, np.int64)
        for i, m in enumerate(masks):
            key |= m << (i * width)
        _, first, cls = np.unique(key, return_index=True, return_inverse=True)
    else:
        _, first, cls = np.unique(np.stack(masks, axis=1), axis=0, return_index=True, return_inverse=True)
    cls = cls.reshape(-1)
    u_lo = np.zeros(first.shape[0], np.int64)
    u_hi = np.zeros(first.shape[0], np.int64)
    for j, row in enumerate(first.tolist()):
        possible = tuple(tuple(g for g in range(width) if int(m[row]) >> g & 1) for m in masks)
        u_lo[j], u_hi[j], _ = scale._enumerate(names, possible)
    lo: I64 = u_lo[cls]
    hi: I64 = u_hi[cls]
    complete = np.logical_and.reduce(known)
    assessable = np.logical_or.reduce(known) | np.logical_or.reduce(hits) | (lo == hi)
    return Graded(lo, hi, np.asarray(complete, bool), np.asarray(assessable, bool))
