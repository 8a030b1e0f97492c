"""Latent toxicity courses, drawn for a chunk of patients at once (vectorized over patients).

Every random number of a patient comes from that patient's own generator (seeded by the cohort
seed and the patient number), drawn in a fixed order and a fixed amount: the cohort is the same
whatever the chunking. This module turns the per-patient uniforms/normals into the latent course:
product, age, weight, infusion time, CRS and ICANS step functions, treatments, deaths.

The CRS course is a step function of the latent grade over time: level k (1..G) holds on
``[S[k-1], D[k-1])``; levels nest (S increasing, D decreasing), the peak level G holds on its
plateau ``[S[G-1], D[G-1])`` of at least 10 h (ICANS: 14 h), so that a 4-hourly vitals round
(12-hourly ICE round) always falls inside it. Unused levels have S = D = +inf.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ._profiles import Profiles

Arr = npt.NDArray[Any]
INF = np.inf

N_LAT = 64  # uniforms per patient for the latent course
N_ZLAT = 16  # normals per patient for the latent course

# CRS driver codes
DRIVER_NONE, DRIVER_FEVER, DRIVER_HYPOTENSION, DRIVER_HYPOXIA, DRIVER_BOTH = 0, 1, 2, 3, 4
DRIVER_NAMES = (None, "fever", "hypotension", "hypoxia", "both")

# oxygen device codes per level (tokens in _vocab.DEVICES)
DEV_NONE, DEV_LFNC, DEV_BLOWBY, DEV_HFNC, DEV_FACEMASK, DEV_NRB, DEV_VENTURI, DEV_CPAP, DEV_BIPAP, DEV_MV = (
    range(10)
)

# ICANS subtypes at levels 3 and 4
SUB3_ICE, SUB3_TACTILE, SUB3_SEIZURE, SUB3_EDEMA = 0, 1, 2, 3
SUB4_COMA, SUB4_STATUS, SUB4_EDEMA, SUB4_MOTOR = 0, 1, 2, 3

# death causes (tokens in _vocab.DEATH_CAUSES)
CAUSE_NONE, CAUSE_CRS, CAUSE_ICANS, CAUSE_INFECTION, CAUSE_PROGRESSION = -1, 0, 1, 2, 3


@dataclass
class Latent:
    """The latent course of a chunk of n patients (arrays of length n, hours after infusion)."""

    prof: Arr  # profile index
    product: Arr  # index into profile.infusion
    t0_s: Arr  # infusion time, epoch seconds (int64)
    day_off_h: Arr  # hours from infusion back to 00:00 UTC of the infusion day (<= 0)
    age: Arr
    weight: Arr
    # CRS
    crs_g: Arr
    crs_on: Arr
    crs_S: Arr  # (n, 4)
    crs_D: Arr  # (n, 4)
    driver: Arr
    hypo: Arr  # bool: hypotension domain follows the level
    hypox: Arr  # bool: hypoxia domain follows the level
    toci1: Arr  # first tocilizumab dose (inf = none)
    fever_stop: Arr  # fever stops here (inf = with the CRS course)
    ap_start: Arr  # first antipyretic dose (inf = none)
    ap_drug: Arr  # 0 paracetamol, 1 metamizole
    steroid_start: Arr  # first dexamethasone for CRS grade >= 3 (inf = none)
    dev: Arr  # (n, 5) device code per level (index 2..4 used)
    flow: Arr  # (n, 5) O2 flow L/min per level (nan = none)
    fio2: Arr  # (n, 5) FiO2 % per level (nan = none)
    press_a: Arr  # level-3 vasopressor: 0 norepinephrine, 1 phenylephrine, 2 vasopressin
    press_vaso: Arr  # bool: vasopressin added at level 3
    press_b: Arr  # level-4 second vasopressor: 0 epinephrine, 1 phenylephrine, 2 dopamine
    # ICANS
    icans_g: Arr
    icans_on: Arr
    icans_S: Arr
    icans_D: Arr
    sub3: Arr
    sub4: Arr
    # hepatitis (checkpoint inhibitors)
    hep_g: Arr
    hep_on: Arr
    hep_factor: Arr
    # non-CRS noise
    o2x_start: Arr
    o2x_end: Arr
    px_times: Arr  # (n, 3) paracetamol without CRS (inf = none)
    # deaths
    death_h: Arr
    death_cause: Arr
    # per-patient baselines (normals)
    z: Arr  # (n, N_ZLAT)
    u: Arr  # (n, N_LAT)


def _lognormal(median_days: Arr, sigma: Arr, z: Arr) -> Arr:
    out: Arr = 24.0 * median_days * np.exp(sigma * z)
    return out


def _steps(g: Arr, on: Arr, dur: Arr, u_up: Arr, u_plateau: Arr, min_plateau: float) -> tuple[Arr, Arr, Arr]:
    """Level start/end times (n, 4) for latent grades ``g`` (0 = none) and the resolution time."""
    n = g.shape[0]
    S = np.full((n, 4), INF)
    D = np.full((n, 4), INF)
    gf = np.maximum(g, 1).astype(np.float64)
    up = np.where(g >= 2, (0.15 + 0.25 * u_up) * dur, 0.0)
    step = up / np.maximum(gf - 1, 1)
    plateau = np.maximum(min_plateau, (0.15 + 0.2 * u_plateau) * dur)
    s_peak = on + step * (gf - 1)
    d_peak = s_peak + plateau
    end = np.maximum(on + dur, d_peak + 4.0 * (gf - 1))
    rest = end - d_peak
    for k in range(1, 5):  # level k
        active = g >= k
        s_k = on + step * (k - 1)
        # level k < G ends on the way down; level G ends with its plateau
        d_k = np.where(k == g, d_peak, d_peak + (gf - k) / np.maximum(gf - 1, 1) * rest)
        S[:, k - 1] = np.where(active, s_k, INF)
        D[:, k - 1] = np.where(active, d_k, INF)
    end = np.where(g >= 1, end, INF)
    return S, D, end


def _grade(u_any: Arr, u_hi: Arr, u_split: Arr, p_any: Arr, p_hi: Arr, g4: Arr, g2: Arr) -> Arr:
    has = u_any < p_any
    cond_hi = np.divide(p_hi, p_any, out=np.zeros_like(p_any), where=p_any > 0)
    hi = u_hi < cond_hi
    g = np.where(hi, np.where(u_split < g4, 4, 3), np.where(u_split < g2, 2, 1))
    out: Arr = np.where(has, g, 0).astype(np.int64)
    return out


def draw_latent(u: Arr, z: Arr, profiles: Profiles, keys: tuple[str, ...], start_s: int, days: int) -> Latent:
    """The latent course of a chunk from its uniforms ``u`` (n, N_LAT) and normals ``z``."""
    with np.errstate(invalid="ignore"):  # inf - inf where a toxicity is absent
        return _draw(u, z, profiles, keys, start_s, days)


def _draw(u: Arr, z: Arr, profiles: Profiles, keys: tuple[str, ...], start_s: int, days: int) -> Latent:
    profs = [profiles.profiles[k] for k in keys]
    n = u.shape[0]
    prof = np.minimum((u[:, 0] * len(profs)).astype(np.int64), len(profs) - 1)

    def col(get: Any) -> Arr:
        return np.array([float(get(p)) for p in profs])[prof]

    n_inf = np.array([len(p.infusion) for p in profs])[prof]
    product = np.minimum((u[:, 1] * n_inf).astype(np.int64), n_inf - 1)
    # infusion on one of 365 days after start, 10:00-16:00 UTC, on the minute
    day = (u[:, 2] * 365).astype(np.int64)
    tod_min = 600 + (u[:, 3] * 360).astype(np.int64)
    t0_s = start_s + day * 86400 + tod_min * 60
    day_off_h = -tod_min / 60.0
    age = np.clip(np.rint(col(lambda p: p.age_mean.x) + col(lambda p: p.age_sd.x) * z[:, 0]), 18, 85)
    weight = np.clip(np.round(75.0 + 15.0 * z[:, 1], 1), 40.0, 150.0)

    # ------------------------------------------------------------------ CRS
    crs_g = _grade(
        u[:, 4],
        u[:, 5],
        u[:, 6],
        col(lambda p: p.crs.any.x),
        col(lambda p: p.crs.grade3plus.x),
        col(lambda p: p.crs.grade4_share.x),
        col(lambda p: p.crs.grade2_share.x),
    )
    on = np.clip(
        _lognormal(col(lambda p: p.crs.onset_median_days.x), col(lambda p: p.crs.onset_sigma.x), z[:, 2]),
        2.0,
        14 * 24.0,
    )
    dur = _lognormal(
        col(lambda p: p.crs.duration_median_days.x), col(lambda p: p.crs.duration_sigma.x), z[:, 3]
    )
    dur = np.clip(dur * (1 + 0.1 * (np.maximum(crs_g, 1) - 1)), 6.0, 20 * 24.0)
    crs_S, crs_D, _ = _steps(crs_g, on, dur, u[:, 7], u[:, 8], 10.0)
    crs_on = np.where(crs_g >= 1, on, INF)
    drv = np.where(u[:, 9] < 0.35, DRIVER_HYPOTENSION, np.where(u[:, 9] < 0.7, DRIVER_HYPOXIA, DRIVER_BOTH))
    driver = np.where(crs_g >= 2, drv, np.where(crs_g == 1, DRIVER_FEVER, DRIVER_NONE))
    hypo = (driver == DRIVER_HYPOTENSION) | (driver == DRIVER_BOTH)
    hypox = (driver == DRIVER_HYPOXIA) | (driver == DRIVER_BOTH)

    # tocilizumab: grade >= 2 (at the grade-2 step), or a prolonged grade 1 (24-72 h after onset)
    p_t2 = profiles.p("tocilizumab_if_crs_grade2")
    p_t1 = profiles.p("tocilizumab_if_prolonged_grade1")
    t_g2 = crs_S[:, 1] + 0.5 + 2.5 * u[:, 11]
    t_g1 = crs_on + 24.0 + 48.0 * u[:, 11]
    toci1 = np.where((crs_g >= 3) | ((crs_g == 2) & (u[:, 10] < p_t2)), t_g2, INF)
    g1_toci = (crs_g == 1) & (crs_D[:, 0] - crs_on > 48.0) & (u[:, 10] < p_t1) & (t_g1 < crs_D[:, 0])
    toci1 = np.where(g1_toci, t_g1, toci1)
    lo, hi = profiles.policy["fever_stops_after_tocilizumab_h"].value  # type: ignore[misc]
    fever_stop = toci1 + lo + (hi - lo) * u[:, 12]
    steroid_start = np.where(crs_g >= 3, crs_S[:, 2] + 0.5 + 1.5 * u[:, 13], INF)
    fever_stop = np.minimum(fever_stop, steroid_start + lo + (hi - lo) * u[:, 12])
    ap = (crs_g >= 1) & (u[:, 14] < profiles.p("antipyretic_if_fever"))
    ap_start = np.where(ap, crs_on + 0.5 + 1.5 * u[:, 15], INF)
    ap_drug = (u[:, 16] >= 0.85).astype(np.int64)

    # oxygen devices, flows and FiO2 per level
    dev = np.zeros((n, 5), dtype=np.int64)
    flow = np.full((n, 5), np.nan)
    fio2 = np.full((n, 5), np.nan)
    lf = u[:, 17] < 0.9
    # ASTCT grade 2 hypoxia: "requiring low-flow nasal cannula (<= 6 L/min) or blow-by"
    dev[:, 2] = np.where(lf, DEV_LFNC, DEV_BLOWBY)
    flow[:, 2] = np.where(lf, 1 + np.floor(u[:, 18] * 6), np.nan)  # low flow: 1-6 L/min
    # grade 3: "high-flow nasal cannula, facemask, nonrebreather mask, or Venturi mask"
    c3 = u[:, 19]
    d3 = np.select(
        [c3 < 0.45, c3 < 0.65, c3 < 0.8, c3 < 0.9], [DEV_HFNC, DEV_FACEMASK, DEV_NRB, DEV_VENTURI], DEV_LFNC
    )
    dev[:, 3] = d3
    f3 = u[:, 20]
    flow[:, 3] = np.select(
        [d3 == DEV_HFNC, d3 == DEV_FACEMASK, d3 == DEV_NRB, d3 == DEV_VENTURI],
        [30 + np.floor(f3 * 31), 6 + np.floor(f3 * 5), 10 + np.floor(f3 * 6), 8 + np.floor(f3 * 5)],
        7 + np.floor(f3 * 4),  # nasal cannula above 6 L/min: high flow by ASTCT
    )
    fio2[:, 3] = np.select(
        [d3 == DEV_HFNC, d3 == DEV_VENTURI],
        [40 + np.floor(u[:, 21] * 41), 28 + np.floor(u[:, 21] * 23)],
        np.nan,
    )
    # grade 4: "positive pressure (e.g. CPAP, BiPAP, intubation and mechanical ventilation)"
    c4 = u[:, 22]
    dev[:, 4] = np.select([c4 < 0.3, c4 < 0.6], [DEV_CPAP, DEV_BIPAP], DEV_MV)
    fio2[:, 4] = 40 + np.floor(u[:, 23] * 61)
    # grade 3 hypotension: "requiring a vasopressor with or without vasopressin"
    press_a = np.select([u[:, 24] < 0.9, u[:, 24] < 0.95], [0, 1], 2)
    press_vaso = (press_a == 0) & (u[:, 25] < 0.15)
    # grade 4: "requiring multiple vasopressors (excluding vasopressin)": a second counted drug
    press_b = np.select([u[:, 26] < 0.5, u[:, 26] < 0.8], [0, 1], 2)
    press_b = np.where((press_a == 1) & (press_b == 1), 0, press_b)  # two different drugs

    # ------------------------------------------------------------------ ICANS
    icans_g = _grade(
        u[:, 27],
        u[:, 28],
        u[:, 29],
        col(lambda p: p.icans.any.x),
        col(lambda p: p.icans.grade3plus.x),
        col(lambda p: p.icans.grade4_share.x),
        col(lambda p: p.icans.grade2_share.x),
    )
    ion = np.clip(
        _lognormal(col(lambda p: p.icans.onset_median_days.x), col(lambda p: p.icans.onset_sigma.x), z[:, 4]),
        6.0,
        21 * 24.0,
    )
    # ICANS usually follows CRS: an earlier draw is moved to 12-48 h after CRS onset
    ion = np.where((crs_g >= 1) & (ion < crs_on), crs_on + 12.0 + 36.0 * u[:, 30], ion)
    idur = _lognormal(
        col(lambda p: p.icans.duration_median_days.x), col(lambda p: p.icans.duration_sigma.x), z[:, 5]
    )
    idur = np.clip(idur, 14.0, 25 * 24.0)
    icans_S, icans_D, _ = _steps(icans_g, ion, idur, u[:, 31], u[:, 32], 14.0)
    icans_on = np.where(icans_g >= 1, ion, INF)
    sub3 = np.select(
        [u[:, 33] < 0.6, u[:, 33] < 0.8, u[:, 33] < 0.9], [SUB3_ICE, SUB3_TACTILE, SUB3_SEIZURE], SUB3_EDEMA
    )
    sub4 = np.select(
        [u[:, 34] < 0.6, u[:, 34] < 0.75, u[:, 34] < 0.9], [SUB4_COMA, SUB4_STATUS, SUB4_EDEMA], SUB4_MOTOR
    )

    # ------------------------------------------------------------------ hepatitis (ICI)
    hep_any = np.array([p.hepatitis.any.x if p.hepatitis else 0.0 for p in profs])[prof]
    hep_hi = np.array([p.hepatitis.grade3plus.x if p.hepatitis else 0.0 for p in profs])[prof]
    hep_g = _grade(u[:, 35], u[:, 36], u[:, 37], hep_any, hep_hi, np.full(n, 0.15), np.full(n, 0.4))
    hmin = np.array([p.hepatitis.onset_min_days.x if p.hepatitis else 7.0 for p in profs])[prof]
    hmax = np.array([p.hepatitis.onset_max_days.x if p.hepatitis else 28.0 for p in profs])[prof]
    hep_on = np.where(hep_g >= 1, 24.0 * (hmin + (hmax - hmin) * u[:, 38]), INF)
    # ALT plateau as a multiple of ULN, kept >= 10 % away from the CTCAE v5 cut-offs (3, 5, 20 x ULN)
    lo_f = np.array([0.0, 1.4, 3.4, 6.0, 23.0])[hep_g]
    hi_f = np.array([0.0, 2.6, 4.5, 17.0, 30.0])[hep_g]
    hep_factor = lo_f + (hi_f - lo_f) * u[:, 39]

    # ------------------------------------------------------------------ noise without CRS
    o2x = (crs_g == 0) & (u[:, 40] < profiles.p("noncrs_oxygen"))
    o2x_start = np.where(o2x, 24.0 * (2 + 10 * u[:, 41]), INF)
    o2x_end = o2x_start + 6.0 + 18.0 * u[:, 42]
    px = (crs_g == 0) & (u[:, 43] < profiles.p("noncrs_paracetamol"))
    n_px = 1 + (u[:, 44] * 3).astype(np.int64)
    px_times = np.full((n, 3), INF)
    for k in range(3):
        px_times[:, k] = np.where(px & (k < n_px), 24.0 * (1 + 20 * u[:, 45 + k]), INF)

    # ------------------------------------------------------------------ deaths
    horizon = days * 24.0
    death_h = np.full(n, INF)
    cause = np.full(n, CAUSE_NONE)
    crs_death = (crs_g == 4) & (u[:, 48] < profiles.p("crs_death_if_grade4"))
    death_h = np.where(crs_death, crs_D[:, 3], death_h)
    cause = np.where(crs_death, CAUSE_CRS, cause)
    icans_death = (
        (icans_g == 4) & (u[:, 49] < profiles.p("icans_death_if_grade4")) & (icans_D[:, 3] < death_h)
    )
    death_h = np.where(icans_death, icans_D[:, 3], death_h)
    cause = np.where(icans_death, CAUSE_ICANS, cause)
    other = (u[:, 50] < col(lambda p: p.other_death.x)) & (24.0 * (7 + 23 * u[:, 51]) < death_h)
    death_h = np.where(other, 24.0 * (7 + 23 * u[:, 51]), death_h)
    cause = np.where(other, np.where(u[:, 52] < 0.5, CAUSE_INFECTION, CAUSE_PROGRESSION), cause)
    late = death_h >= horizon
    death_h = np.where(late, INF, death_h)
    cause = np.where(late, CAUSE_NONE, cause)

    return Latent(
        prof=prof,
        product=product,
        t0_s=t0_s.astype(np.int64),
        day_off_h=day_off_h,
        age=age,
        weight=weight,
        crs_g=crs_g,
        crs_on=crs_on,
        crs_S=crs_S,
        crs_D=crs_D,
        driver=driver,
        hypo=hypo,
        hypox=hypox,
        toci1=toci1,
        fever_stop=fever_stop,
        ap_start=ap_start,
        ap_drug=ap_drug,
        steroid_start=steroid_start,
        dev=dev,
        flow=flow,
        fio2=fio2,
        press_a=press_a,
        press_vaso=press_vaso,
        press_b=press_b,
        icans_g=icans_g,
        icans_on=icans_on,
        icans_S=icans_S,
        icans_D=icans_D,
        sub3=sub3,
        sub4=sub4,
        hep_g=hep_g,
        hep_on=hep_on,
        hep_factor=hep_factor,
        o2x_start=o2x_start,
        o2x_end=o2x_end,
        px_times=px_times,
        death_h=death_h,
        death_cause=cause,
        z=z,
        u=u,
    )


def levels(S: Arr, D: Arr, t: Arr) -> Arr:
    """The level (0-4) at times ``t`` (n, m) of step functions ``S``/``D`` (n, 4)."""
    out = np.zeros(t.shape, dtype=np.int64)
    for k in range(4):
        out += (t >= S[:, k, None]) & (t < D[:, k, None])
    return out


def u_to_z(u: Arr) -> Arr:
    """A rough standard normal from a uniform (logit scaled), for a few baselines."""
    uu = np.clip(u, 1e-6, 1 - 1e-6)
    out: Arr = np.log(uu / (1 - uu)) / 1.7
    return out
