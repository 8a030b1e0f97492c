"""Vectorised interpreter of the legacy CRS rule tables (Lee 2014, Penn, MSKCC, CARTOX).

Reads the SAME rule data as :mod:`immunotox.scales.legacy_crs`: the scale object's own table
(``scale.t``, the typed table of ``legacy_crs_spec.table()``: criterion grades, ``symptoms_from``,
``hypotension_rule``, ``hypoxia_rule``, ``long_vasopressor_min_hours``, ``by_ctcae_grade``) and
the ``[common]`` thresholds (fever, room-air FiO2, the 40 % FiO2 limit, the device lists); no
threshold is typed here. It mirrors the scalar core's three-valued logic domain by domain: each
domain is a set of possible grades, held as its lowest and highest value (every legacy scale
takes the most severe criterion, so the lowest and highest possible grades are the maxima of
the domains' lowest and highest values, death aside); a domain is known when one value remains;
an unknown domain that cannot raise the grade above the one the known domains establish is not
needed (``_prune`` of the scalar core); a snapshot the core refuses (contradictory findings,
``_check``) is not assessable, as in :func:`._snapshot.grade_findings`.

Only the legacy findings a timeline can reconstruct reach the scales (``observations.toml``
[derive]: temperature, the oxygen device and its FiO2 / flow, the running vasopressors and their
hours, death due to CRS); the others (``crs_symptoms``, ``hypotension``, organ grades, Penn's
flags…) are always absent, and the interpreter reads them as absent — missing, never normal.
:func:`handles` refuses a plan that would hand it any other finding (the engine then grades it
through the core, and ``tests/test_timeline_legacy.py`` fails so that this module is extended).

The scalar grading core is the reference; ``tests/test_timeline_legacy.py`` proves the two equal
on random timelines, missing inputs included.

References
----------
Lee DW, Gardner R, Porter DL, et al. Blood 2014;124(2):188-195. doi:10.1182/blood-2014-05-552729
Porter D, Frey N, Wood PA, et al. J Hematol Oncol 2018;11:35. doi:10.1186/s13045-018-0571-y
Park JH, Rivière I, Gonen M, et al. N Engl J Med 2018;378:449-459. doi:10.1056/NEJMoa1709919
Neelapu SS, Tummala S, Kebriaei P, et al. Nat Rev Clin Oncol 2018;15(1):47-62.
doi:10.1038/nrclinonc.2017.148
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..catalogue import all_scales
from ..scales import legacy_crs_spec
from ..scales.legacy_crs import LegacyCrs
from ..scales.legacy_crs_spec import FLAGS
from ._astct import Graded, _popcount
from ._read import F64, I64, B
from ._snapshot import ScalePlan
from ._state import Features

# the legacy findings a timeline reconstructs (observations.toml [derive]); the device and the
# vasopressors are complete records (always given: "none" / [] when nothing runs)
SUPPORTED = frozenset(
    {
        "temperature_c",
        "oxygen",
        "o2_flow_l_min",
        "fio2_pct",
        "vasopressors",
        "vasopressor_hours",
        "death_due_to_crs",
    }
)
_ALWAYS = frozenset({"oxygen", "vasopressors"})


def handles(p: ScalePlan) -> bool:
    """True when ``p`` is a legacy CRS scale fed only findings this interpreter knows."""
    return (
        isinstance(all_scales().get(p.scale_id), LegacyCrs)
        and set(p.findings) <= SUPPORTED
        and set(p.findings) >= _ALWAYS
    )


@dataclass
class _Dom:
    """One domain at every grid point: lowest and highest possible grade, a rule fired."""

    lo: I64
    hi: I64
    hit: B


def _const_dom(n: int, possible: list[int]) -> _Dom:
    """A domain whose inputs a timeline never gives: any of ``possible``."""
    return _Dom(np.full(n, min(possible), np.int64), np.full(n, max(possible), np.int64), np.zeros(n, bool))


def grade(p: ScalePlan, f: Features) -> tuple[Graded, B]:
    """Grade the legacy CRS scale of ``p`` at every point of ``f``'s grid; also the points whose
    findings the core refuses as contradictory (graded there as not assessable)."""
    if not handles(p):
        raise KeyError(p.scale_id)
    scale = all_scales()[p.scale_id]
    assert isinstance(scale, LegacyCrs)
    return _grade(scale, set(p.findings), f)


def _grade(scale: LegacyCrs, findings: set[str], f: Features) -> tuple[Graded, B]:
    t = scale.t
    c = legacy_crs_spec.table().common
    voc = f.voc
    n = len(f.grid)
    nan = np.full(n, np.nan)

    def num(k: str) -> F64:
        return np.asarray(f.raw(k), np.float64) if k in findings else nan

    def g(domain: str, key: str) -> int:
        return t.row(domain, key).grade

    temp, fio2, flow, hours = (
        num("temperature_c"),
        num("fio2_pct"),
        num("o2_flow_l_min"),
        num("vasopressor_hours"),
    )
    dev_tokens = voc.code(voc.derivation("oxygen").codes[0]).tokens
    dev = np.asarray(f.raw("oxygen"), np.float64).astype(np.int64)

    def device_in(names: Sequence[str]) -> B:
        return np.isin(dev, [dev_tokens.index(x) for x in names if x in dev_tokens])

    mask = np.asarray(f.raw("vasopressors"), np.int64)
    n_drugs = len(voc.code(voc.derivation("vasopressors").codes[0]).tokens)
    death: B = (
        np.asarray(f.raw("death_due_to_crs"), bool) if "death_due_to_crs" in findings else np.zeros(n, bool)
    )
    room_air = c.room_air_fio2_pct
    no_device = dev == dev_tokens.index("none")

    # contradictions the core refuses (_check), among the findings a timeline gives
    refused = (
        (no_device & (flow > 0))
        | (no_device & (fio2 > room_air))
        | (device_in(c.oxygen_delivering_devices) & (fio2 <= room_air))
        | ((mask == 0) & (hours > 0))
    )

    doms: list[_Dom] = []
    # symptoms: fever (temperature >= fever_min_c); crs_symptoms is never given by a timeline
    g1 = t.symptoms.grade
    temp_known = ~np.isnan(temp)
    fever = temp_known & (temp >= c.fever_min_c)
    s_lo = np.where(fever, g1, 0).astype(np.int64)
    if t.symptoms_from == "fever":
        s_hi = np.where(temp_known, s_lo, max(g1, 0))
    else:
        s_hi = np.where(fever, g1, max(g1, 0))
    doms.append(_Dom(np.minimum(s_lo, s_hi), s_hi.astype(np.int64), fever))

    # hypotension: the vasopressors are a complete record; 'hypotension' is never given
    rows = t.hypotension
    rule = t.hypotension_rule
    on = (mask != 0) | (hours > 0)
    zero = np.zeros(n, np.int64)
    if rule == "count_and_dose":
        low, high = g("hypotension", "one_vasopressor_low_dose"), g("hypotension", "high_dose_vasopressor")
        multi, fluids = g("hypotension", "multiple_vasopressors"), g("hypotension", "no_vasopressor")
        count = _popcount(mask, n_drugs)
        many = on & (count >= 2)
        one = on & (count == 1)
        h_lo = np.where(
            many, multi, np.where(one, min(low, high), np.where(on, min(low, multi), min(0, fluids)))
        )
        h_hi = np.where(
            many, multi, np.where(one, max(low, high), np.where(on, max(low, multi), max(0, fluids)))
        )
        h_hit = many
    elif rule == "dose":
        low, high = g("hypotension", "low_dose_vasopressor"), g("hypotension", "high_dose_vasopressor")
        fluids = g("hypotension", "fluids")
        h_lo = np.where(on, min(low, high), min(0, fluids))
        h_hi = np.where(on, max(low, high), max(0, fluids))
        h_hit = np.zeros(n, bool)
    elif rule == "duration":
        short, long_ = g("hypotension", "vasopressor_under_24h"), g("hypotension", "vasopressor_24h_or_more")
        h_known = ~np.isnan(hours)
        limit = t.long_vasopressor_min_hours
        assert limit is not None  # required by the duration rule (legacy_crs_spec)
        g_h = np.where(hours >= limit, long_, short)
        h_lo = np.where(on, np.where(h_known, g_h, min(short, long_)), zero)
        h_hi = np.where(on, np.where(h_known, g_h, max(short, long_)), zero)
        h_hit = on & h_known
    else:
        raise KeyError(rule)
    h_lo, h_hi = h_lo.astype(np.int64), h_hi.astype(np.int64)
    if rule != "dose" and "refractory" in rows:
        # hypotension_refractory is never given: it could raise an on-vasopressor grade
        refr = rows["refractory"].grade
        ext = on & (h_hi > 0) & (h_hi < refr)
        h_lo = np.where(ext, np.minimum(h_lo, refr), h_lo)
        h_hi = np.where(ext, refr, h_hi)
    doms.append(_Dom(h_lo, h_hi, h_hit))

    # hypoxia: the device is a complete record ("none" when nothing runs)
    vent_dev = device_in(c.ventilator_devices)
    if t.hypoxia_rule == "device":
        o2, vent = g("hypoxia", "supplemental_oxygen"), g("hypoxia", "mechanical_ventilation")
        x_lo = np.where(no_device, 0, np.where(vent_dev, vent, o2)).astype(np.int64)
        doms.append(_Dom(x_lo, x_lo, ~no_device))
    elif t.hypoxia_rule == "fio2":
        lo_g, hi_g = g("hypoxia", "fio2_below_40"), g("hypoxia", "fio2_40_or_more")
        vent = g("hypoxia", "ventilator")
        fio2_known = ~np.isnan(fio2)
        room = fio2_known & (fio2 <= room_air)
        g_fio2 = np.where(fio2 >= c.fio2_high_min_pct, hi_g, lo_g)
        other = ~no_device & ~vent_dev
        open_ = other & ~fio2_known
        pp = device_in(c.positive_pressure_devices)
        open_lo = np.where(pp, min(0, lo_g, hi_g), min(lo_g, hi_g))
        open_hi = np.where(pp, max(0, lo_g, hi_g), max(lo_g, hi_g))
        x_lo = np.where(
            no_device, 0, np.where(vent_dev, vent, np.where(fio2_known, np.where(room, 0, g_fio2), open_lo))
        )
        x_hi = np.where(open_, open_hi, x_lo)
        doms.append(
            _Dom(x_lo.astype(np.int64), x_hi.astype(np.int64), vent_dev | (other & fio2_known & ~room))
        )
    else:
        raise KeyError(t.hypoxia_rule)

    # criteria whose inputs no timeline gives: any grade their table allows
    for organ in ("organ", "transaminitis"):
        spec = t.organ_map(organ)
        if spec is not None:
            doms.append(_const_dom(n, list(spec.by_ctcae_grade)))
    for flag in FLAGS:
        entry = t.flag(flag)
        if entry is not None:
            doms.append(_const_dom(n, [0, entry.grade]))

    # _prune: an unknown domain that cannot raise the established grade is not needed
    known = [d.lo == d.hi for d in doms]
    floor = np.where(
        death, 5, np.maximum.reduce([np.where(k, d.lo, 0) for d, k in zip(doms, known, strict=True)])
    )
    pruned = [~k & (d.hi <= floor) & (floor > 0) for d, k in zip(doms, known, strict=True)]
    lo = np.where(death, 5, np.maximum.reduce([d.lo for d in doms]))
    hi = np.where(
        death, 5, np.maximum.reduce([np.where(pr, d.lo, d.hi) for d, pr in zip(doms, pruned, strict=True)])
    )
    complete = np.logical_and.reduce([k | pr for k, pr in zip(known, pruned, strict=True)])
    something = death | np.logical_or.reduce(known) | np.logical_or.reduce([d.hit for d in doms])
    assessable = something | (lo == hi)
    g_min, g_max = min(scale.grades), max(scale.grades)
    graded = Graded(
        np.where(refused, g_min, lo).astype(np.int64),
        np.where(refused, g_max, hi).astype(np.int64),
        np.asarray(complete & ~refused, bool),
        np.asarray(assessable & ~refused, bool),
    )
    return graded, np.asarray(refused, bool)
