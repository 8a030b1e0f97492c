"""Vectorised interpreter of the ASTCT 2019 CRS and ICANS rule tables (the cohort engine).

Reads the SAME typed rule table as :mod:`immunotox.scales.astct2019` (``astct2019_spec.table()``:
fever threshold, oxygen -> grade map, nasal-cannula flow limit, vasopressor rules and the
vasopressin exception, SBP and adult-age thresholds, ICE and CAPD bands, consciousness, seizure,
motor and edema maps); no threshold is typed here. It mirrors the scale's three-valued logic:
each domain is a set of possible grades (known: one value; unknown: its lowest and highest),
and because both ASTCT combinations are monotone in every domain (CRS: ``max`` gated by fever or
masking; ICANS: ``max``), the lowest and highest possible grades are the combination of the
domains' lowest and highest values. ``complete`` is "every domain known", and a grade is
*not assessable* when nothing at all is known and the bounds differ — exactly as
:meth:`immunotox.scales._base.Scale.resolve` decides.

The scalar grading core is the reference; ``tests/test_timeline_differential.py`` proves the two
equal on every golden case and on random timelines.

References
----------
Lee DW, Santomasso BD, Locke FL, et al. ASTCT consensus grading for cytokine release syndrome and
neurologic toxicity associated with immune effector cells. Biol Blood Marrow Transplant
2019;25(4):625-638. doi:10.1016/j.bbmt.2018.12.758
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..findings import vocabulary as findings_vocabulary
from ..scales.astct2019_spec import Band, Entry
from ..scales.astct2019_spec import table as _table
from ._read import F64, I64, B
from ._state import Features, episodes, range_reduce

SCALES = ("astct2019:crs", "astct2019:icans")
"""The scales this interpreter grades (the others go through the scalar grading core)."""


@dataclass
class Graded:
    """Grades of one scale at every point of a grid."""

    lo: I64
    hi: I64
    complete: B
    assessable: B  # False = not assessable (grade shown as null)


def _tokens(finding: str) -> tuple[str, ...]:
    return findings_vocabulary()[finding].values


def _grades_by_token(entries: Mapping[str, Entry], finding: str) -> I64:
    return np.array([entries[t].grade for t in _tokens(finding)], np.int64)


@functools.cache
def _popcount_table(bits: int) -> I64:
    return np.array([bin(i).count("1") for i in range(1 << bits)], np.int64)


def _popcount(x: I64, bits: int) -> I64:
    """Number of set bits of each value (values below 2**bits)."""
    out: I64 = np.take(_popcount_table(bits), x)
    return out


# ----------------------------------------------------------------------------------------- CRS
@dataclass
class CrsDomains:
    fever_known: B
    fever: B
    hypo_lo: I64
    hypo_hi: I64
    hypo_known: B
    hypox_lo: I64
    hypox_hi: I64
    hypox_known: B


def crs_domains(f: Features) -> CrsDomains:
    """Fever, hypotension and hypoxia domains of ``astct2019:crs`` at every grid point."""
    return f.cached("astct2019:crs/domains", lambda: _crs_domains(f))  # type: ignore[no-any-return]


def _crs_domains(f: Features) -> CrsDomains:
    t = _table().crs
    n = len(f.grid)
    # fever: "Temp >= 38.0 °C" on the highest temperature of the window
    temp: F64 = f.raw("temperature_c")
    fever_known = ~np.isnan(temp)
    fever = fever_known & (temp >= t.fever_min_c)
    # hypotension: vasopressors first; "multiple vasopressors (excluding vasopressin)"
    hyp = t.hypotension
    mask: I64 = f.raw("vasopressors")
    drugs = _tokens("vasopressors")
    counted_bits = sum(1 << i for i, d in enumerate(drugs) if d not in t.not_counted_in_multiple)
    any_p = mask != 0
    counted = _popcount(mask & counted_bits, len(drugs))
    g_one = hyp.one_vasopressor.grade
    g_multi = hyp.multiple_vasopressors.grade
    g_novp = hyp.no_vasopressor.grade
    # no vasopressor: hypotension = SBP < 90 mmHg, in adults only (age >= 18 y); else unknown
    sbp: F64 = f.raw("sbp_mmhg")
    age: F64 = f.raw("age_years")
    flag_known = ~np.isnan(sbp) & ~np.isnan(age) & (age >= t.adult_min_age_years)
    flag = flag_known & (sbp < t.sbp_below_mmhg)
    hypo_known = any_p | flag_known
    hypo_lo = np.where(any_p, np.where(counted >= 2, g_multi, g_one), np.where(flag, g_novp, 0))
    hypo_hi = np.where(hypo_known, hypo_lo, g_novp)
    # hypoxia: the device decides; a nasal cannula above 6 L/min is high-flow
    oxy = t.oxygen
    dev = np.asarray(f.raw("oxygen"), np.int64)
    g_dev = _grades_by_token(oxy, "oxygen")[dev]
    flow: F64 = f.raw("o2_flow_l_min")
    nc = dev == _tokens("oxygen").index(t.flow_dependent_device)
    flow_known = ~np.isnan(flow)
    high = nc & flow_known & (flow > t.low_flow_max_l_min)
    hypox_known = ~nc | flow_known
    hypox_lo = np.where(high, oxy["high_flow_nasal_cannula"].grade, g_dev)
    hypox_hi = np.where(nc & ~flow_known, t.flow_dependent_high_grade, hypox_lo)
    del n
    return CrsDomains(fever_known, fever, hypo_lo, hypo_hi, hypo_known, hypox_lo, hypox_hi, hypox_known)


def _crs_combine(fever: B, masked: B, hypo: I64, hypox: I64, death: B) -> I64:
    # "CRS requires fever at onset" unless masked by therapy; grade = most severe domain
    g = np.maximum(np.maximum(fever.astype(np.int64), hypo), hypox)
    g = np.where(fever | masked, g, 0)
    return np.where(death, 5, g)


def crs_grade(f: Features) -> Graded:
    """``astct2019:crs`` at every grid point."""
    d = crs_domains(f)
    masked: B = f.raw("fever_masked")
    death: B = f.raw("death_due_to_crs")
    lo = _crs_combine(d.fever, masked, d.hypo_lo, d.hypox_lo, death)
    hi = _crs_combine(~d.fever_known | d.fever, masked, d.hypo_hi, d.hypox_hi, death)
    complete = d.fever_known & d.hypo_known & d.hypox_known
    # fever_masked is always given by the timeline, so something is always known
    assessable = np.ones(lo.shape[0], bool)
    return Graded(lo, hi, complete, assessable)


def masking(f: Features) -> B:
    """``fever_masked`` at every grid point (the rule in ``data/observations.toml`` [masking]).

    A CRS course is the ASTCT CRS episode computed as if fever were masked (activity = the
    lower-bound grade under masking >= 1: fever, hypotension or hypoxia); its onset is its first
    fever; fever is masked from the first therapy row at or after that onset until the course ends.
    """
    d = crs_domains(f)
    activity = d.fever | (d.hypo_lo >= 1) | (d.hypox_lo >= 1)
    g = f.grid
    ep = episodes(g.pid, g.t, activity, f.resolution_us)
    n = len(g)
    out = np.zeros(n, bool)
    if ep.start.shape[0] == 0:
        return out
    big = np.iinfo(np.int64).max
    rows = np.arange(n, dtype=np.int64)
    first_fever = range_reduce(np.where(d.fever, rows, big), ep.start, ep.stop, np.minimum, big)
    therapy = f.at_rows_of(f.voc.derivation("fever_masked").codes)
    inside = ep.row_episode >= 0
    ff_row = np.where(inside, first_fever[np.maximum(ep.row_episode, 0)], big)
    cand = np.where(therapy & inside & (rows >= ff_row), rows, big)
    first_therapy = range_reduce(cand, ep.start, ep.stop, np.minimum, big)
    out = inside & (rows >= first_therapy[np.maximum(ep.row_episode, 0)])
    return np.asarray(out, bool)


# derivation methods of the feature layer that follow this rule table (given to ``Features``)
DERIVED: dict[str, Callable[[Features], Any]] = {"masking": masking}


# --------------------------------------------------------------------------------------- ICANS
def _band_lookup(bands: tuple[Band, ...], top: int) -> I64:
    out = np.full(top + 1, -1, np.int64)
    for b in bands:
        out[b.min : b.max + 1] = b.grade
    return out


@functools.cache
def _score_range_grades(grade_of_score: tuple[int, ...]) -> tuple[I64, I64]:
    """For scores ``a <= b``: the lowest and highest grade of the scores ``a..b`` (0 where
    ``b < a``), from the grade of each score (built once per band table, not per partition)."""
    g = np.array(grade_of_score, np.int64)
    top = len(grade_of_score)
    lo = np.array([[g[a : b + 1].min() if b >= a else 0 for b in range(top)] for a in range(top)])
    hi = np.array([[g[a : b + 1].max() if b >= a else 0 for b in range(top)] for a in range(top)])
    lo.flags.writeable = False
    hi.flags.writeable = False
    return lo, hi


def icans_grade(f: Features) -> Graded:
    """``astct2019:icans`` at every grid point."""
    t = _table().icans
    n = len(f.grid)
    fv = findings_vocabulary()
    # level of consciousness
    loc: F64 = f.raw("consciousness")
    loc_known = ~np.isnan(loc)
    g_loc = _grades_by_token(t.consciousness, "consciousness")
    loc_i = np.where(loc_known, loc, 0).astype(np.int64)
    c_lo = np.where(loc_known, g_loc[loc_i], g_loc.min())
    c_hi = np.where(loc_known, g_loc[loc_i], g_loc.max())
    unarousable = loc_known & (loc_i == _tokens("consciousness").index("unarousable"))
    # encephalopathy: ICE (>= 12 y) or CAPD (< 12 y); not performable when unarousable
    age: F64 = f.raw("age_years")
    ice: F64 = f.raw("ice_score")
    capd: F64 = f.raw("capd_score")
    ice_known = ~np.isnan(ice)
    item_specs = fv["ice_items"].fields
    d_items = f.voc.derivation("ice_items")
    base = np.zeros(n, np.int64)
    extra = np.zeros(n, np.int64)
    any_item = np.zeros(n, bool)
    need = np.flatnonzero(~ice_known)  # the items are read only when the ICE score is unknown
    if need.shape[0]:
        items: dict[str, F64] = f.raw("ice_items")  # the latest record's items (record_last)
        for code in d_items.codes:
            item = f.voc.code(code).item
            assert item is not None
            iv = items[code][need]
            k = ~np.isnan(iv)
            any_item[need] |= k
            base[need] += np.where(k, iv, 0).astype(np.int64)
            extra[need] += np.where(k, 0, item_specs[item][1])
    has_ice = ice_known | any_item
    capd_known = ~np.isnan(capd)
    age_known = ~np.isnan(age)
    use_capd = np.where(
        age_known,
        age < t.pediatric_below_age_years,  # developmental delay is never given by a timeline
        capd_known & ~has_ice,
    )
    tool_unknown = ~age_known & ~capd_known & ~has_ice
    ice_g = _band_lookup(t.ice_bands, 10)
    capd_g = _band_lookup(t.capd_bands, 32)
    # ICE: one score, or a range of scores from partial items (lower score = higher grade)
    s_lo = np.where(ice_known, np.nan_to_num(ice), base).astype(np.int64)
    s_hi = np.where(ice_known, np.nan_to_num(ice), np.minimum(base + extra, 10)).astype(np.int64)
    lookup_min, lookup_max = _score_range_grades(tuple(ice_g.tolist()))
    ice_lo = np.where(has_ice, lookup_min[s_lo, s_hi], ice_g.min())
    ice_hi = np.where(has_ice, lookup_max[s_lo, s_hi], ice_g.max())
    capd_i = np.where(capd_known, capd, 0).astype(np.int64)
    cap_lo = np.where(capd_known, capd_g[capd_i], capd_g.min())
    cap_hi = np.where(capd_known, capd_g[capd_i], capd_g.max())
    e_lo = np.where(use_capd, cap_lo, ice_lo)
    e_hi = np.where(use_capd, cap_hi, ice_hi)
    e_lo = np.where(tool_unknown, ice_g.min(), e_lo)
    e_hi = np.where(tool_unknown, ice_g.max(), e_hi)
    e_lo = np.where(unarousable, 0, e_lo)
    e_hi = np.where(unarousable, 0, e_hi)
    doms_lo = [c_lo, e_lo]
    doms_hi = [c_hi, e_hi]
    # seizure, motor: the table's grade; unknown = any grade of the table
    for dom in ("seizure", "motor"):
        v: F64 = f.raw(dom)
        k = ~np.isnan(v)
        g = _grades_by_token(t.entries(dom), dom)
        vi = np.where(k, v, 0).astype(np.int64)
        doms_lo.append(np.where(k, g[vi], g.min()))
        doms_hi.append(np.where(k, g[vi], g.max()))
    # raised ICP signs -> grade 4; cerebral edema focal 3 / diffuse 4; unknown ICP keeps it open
    icp: F64 = f.raw("raised_icp_signs")
    edema: F64 = f.raw("cerebral_edema")
    icp_known = ~np.isnan(icp)
    icp_true = icp_known & (icp == 1)
    g_icp = t.raised_icp_signs.grade
    g_ed = _grades_by_token(t.cerebral_edema, "cerebral_edema")
    ed_known = ~np.isnan(edema)
    ed_i = np.where(ed_known, edema, 0).astype(np.int64)
    ge = g_ed[ed_i]
    open_icp = ed_known & ~icp_known & (ge < g_icp)
    doms_lo.append(np.where(icp_true, g_icp, np.where(ed_known, ge, g_ed.min())))
    doms_hi.append(
        np.where(icp_true, g_icp, np.where(ed_known, np.where(open_icp, g_icp, ge), max(g_ed.max(), g_icp)))
    )
    # a domain is known when one grade remains possible (Domain.known); an edema seen on imaging
    # with the ICP signs unknown still counts as a finding (its rule fired)
    known = [lo_ == hi_ for lo_, hi_ in zip(doms_lo, doms_hi, strict=True)]
    death: B = f.raw("death_due_to_icans")
    lo = np.where(death, 5, np.maximum.reduce(doms_lo))
    hi = np.where(death, 5, np.maximum.reduce(doms_hi))
    known_all = np.logical_and.reduce(known)
    known_any = np.logical_or.reduce(known) | (ed_known & (ge > 0)) | icp_true | death
    assessable = known_any | (lo == hi)
    return Graded(lo.astype(np.int64), hi.astype(np.int64), known_all, assessable)


def grade(scale_id: str, f: Features) -> Graded:
    """Grade ``scale_id`` (one of :data:`SCALES`) at every point of ``f``'s grid."""
    if scale_id == "astct2019:crs":
        return crs_grade(f)
    if scale_id == "astct2019:icans":
        return icans_grade(f)
    raise KeyError(scale_id)
