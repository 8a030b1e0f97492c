"""Vectorised reading of the CTCAE criteria tables (clinical terms such as CRS) in the cohort engine.

A CTCAE term without a lab part (:class:`immunotox.scales.ctcae.CtcaeScale`, tables
``data/scales/ctcae5.toml`` / ``ctcae4.toml``) decides its grade from the outcomes of its own
conditions only: which findings are given, and for each given finding whether each condition of
the table on it holds (``op``/``x`` comparisons with the table's tolerance, ``in``, ``is``,
``count_ge``, ``lacks``), whether each implication's ``if`` holds and whether a given finding
equals its implied value. The defaults, the implications, the gate, the criteria status, the
needed-input test, the enumeration of unknown findings, the hits and the contradiction checks
all read nothing else. So the points of a cohort fall into a handful of *classes* of equal
outcomes, and the grade (lowest, highest, complete, assessable) is a function of the class.

This module evaluates every condition of the table on whole columns (numpy; no Python per row),
numbers the classes, and has the grading core grade ONE representative snapshot per class — a
few dozen calls per partition whatever its size, from the same table, so no threshold is copied
and the result equals the core's by construction. The classes the core refuses (contradictory
findings) are returned so that the engine grades their points snapshot by snapshot, and the run
summary counts and quotes each refusal as before. ``tests/test_timeline_legacy.py`` holds the
engine equal to the scalar reference on random timelines for every ``all-crs`` scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..catalogue import all_scales
from ..scales.ctcae import CtcaeScale
from ..scales.ctcae_spec import REL_TOL, Condition
from ..vocabulary import Vocabulary
from ._astct import Graded, _popcount
from ._read import F64, I64, B
from ._snapshot import ScalePlan, findings_from_raw, grade_findings
from ._state import Features

# derivation method -> how its raw column reads (number / token / set / event / bool)
_NUMERIC = ("window_max", "window_min", "last", "device_last", "active_hours", "patient_last")


def _kind(voc: Vocabulary, finding: str) -> str | None:
    d = voc.derivations[finding]
    if d.method in _NUMERIC:
        return {"quantity": "number", "integer": "number", "token": "token", "bool": "bool"}.get(
            voc.code(d.codes[0]).kind
        )
    return {"device": "token", "active_set": "set", "event_since": "event", "masking": "flag"}.get(d.method)


def _supported(kind: str | None, c: Condition) -> bool:
    if c.op is not None:
        return kind == "number"
    if c.in_ is not None:
        return kind == "token"
    if c.is_ is not None:
        return kind in ("bool", "event", "flag")
    return kind == "set"  # count_ge, lacks


def _conditions(scale: CtcaeScale, finding: str) -> list[Condition]:
    own = list(scale._conds.get(finding, []))
    return own + [imp.if_ for imp in scale.term.implied if imp.if_.finding == finding]


def _implied_values(scale: CtcaeScale, finding: str) -> list[Any]:
    return [imp.value for imp in scale.term.implied if imp.finding == finding]


def handles(p: ScalePlan) -> bool:
    """True when ``p`` is a CTCAE term without a lab part whose every condition reads a column."""
    scale = all_scales().get(p.scale_id)
    if not isinstance(scale, CtcaeScale) or scale.term.lab is not None:
        return False
    from ..vocabulary import vocabulary

    voc = vocabulary()
    for k in p.findings:
        kind = _kind(voc, k)
        if kind is None or not all(_supported(kind, c) for c in _conditions(scale, k)):
            return False
        for v in _implied_values(scale, k):
            ok = (kind == "number" and isinstance(v, (int, float)) and not isinstance(v, bool)) or (
                kind == "token" and isinstance(v, str)
            )
            if not ok:
                return False
    return True


def _close(a: F64, b: float) -> B:
    """``math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12)`` on a column (the table's tolerance)."""
    with np.errstate(invalid="ignore"):
        out: B = np.abs(a - b) <= np.maximum(REL_TOL * np.maximum(np.abs(a), abs(b)), 1e-12)
    return out


def _holds(c: Condition, kind: str, col: Any, tokens: tuple[str, ...], n_bits: int) -> B:
    """``c.holds(value)`` at every point (only meaningful where the finding is given)."""
    if c.op is not None and c.x is not None:
        a = np.asarray(col, np.float64)
        with np.errstate(invalid="ignore"):
            strict = a < c.x if c.op in ("<", "<=") else a > c.x
        return np.where(_close(a, c.x), c.op in ("<=", ">="), strict)
    if c.in_ is not None:
        return np.isin(np.asarray(col, np.float64), [float(tokens.index(t)) for t in c.in_ if t in tokens])
    if c.is_ is not None:
        value = np.ones(len(col), bool) if kind == "event" else np.asarray(col, np.float64) != 0
        return np.asarray(value == c.is_, bool)
    mask = np.asarray(col, np.int64)
    if c.count_ge is not None:
        return np.asarray(_popcount(mask, n_bits) >= c.count_ge, bool)
    assert c.lacks is not None
    if c.lacks not in tokens:
        return np.ones(len(col), bool)
    return np.asarray(mask & (1 << tokens.index(c.lacks)) == 0, bool)


def grade(p: ScalePlan, f: Features) -> tuple[Graded, B]:
    """Grade the CTCAE term of ``p`` at every point of ``f``'s grid; also the points whose class
    the core refuses (graded here as not assessable; the engine regrades them snapshot by snapshot)."""
    scale = all_scales()[p.scale_id]
    assert isinstance(scale, CtcaeScale) and handles(p)
    voc = f.voc
    n = len(f.grid)
    cols: dict[str, Any] = {k: f.raw(k) for k in p.findings}
    bits: list[B] = []
    for k in p.findings:
        kind = _kind(voc, k)
        assert kind is not None
        col = cols[k]
        code = voc.code(voc.derivations[k].codes[0])
        tokens = tuple(code.tokens) if code.tokens else ()
        if kind in ("number", "token", "bool"):
            given: B = ~np.isnan(np.asarray(col, np.float64))
        elif kind == "event":
            given = np.asarray(col, bool)
        else:  # set, flag: always given
            given = np.ones(n, bool)
        bits.append(given)
        for c in _conditions(scale, k):
            bits.append(given & _holds(c, kind, col, tokens, len(tokens)))
        for v in _implied_values(scale, k):
            if kind == "number":
                bits.append(given & _close(np.asarray(col, np.float64), float(v)))
            else:
                idx = float(tokens.index(v)) if v in tokens else -1.0
                bits.append(given & (np.asarray(col, np.float64) == idx))
    if n == 0:
        e = np.zeros(0, np.int64)
        return Graded(e, e, np.zeros(0, bool), np.zeros(0, bool)), np.zeros(0, bool)
    if len(bits) <= 62:  # one int64 key per point
        key = np.zeros(n, np.int64)
        for i, b in enumerate(bits):
            key |= b.astype(np.int64) << i
        _, first, cls = np.unique(key, return_index=True, return_inverse=True)
    else:
        matrix = np.packbits(np.stack(bits, axis=1), axis=1)
        _, first, cls = np.unique(matrix, axis=0, return_index=True, return_inverse=True)
    cls = cls.reshape(-1)
    m = first.shape[0]
    u_lo, u_hi = np.zeros(m, np.int64), np.zeros(m, np.int64)
    u_c, u_a, u_refused = np.zeros(m, bool), np.zeros(m, bool), np.zeros(m, bool)
    for j, row in enumerate(first.tolist()):
        raw_state = {k: np.asarray(cols[k])[row].item() for k in p.findings}
        r = grade_findings(scale, findings_from_raw(p, raw_state, voc, with_units=True))
        u_lo[j], u_hi[j], u_c[j], u_a[j] = r.lo, r.hi, r.complete, r.grade is not None
        u_refused[j] = r.error is not None
    lo: I64 = u_lo[cls]
    hi: I64 = u_hi[cls]
    return Graded(lo, hi, u_c[cls], u_a[cls]), u_refused[cls]
