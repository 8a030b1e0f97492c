"""Generation of one chunk of patients: latent course -> observation rows -> Arrow tables.

Grids (vitals, labs, ICE rounds) are built as (patients x slots) arrays; only the sparse events
(administrations, oxygen and vasopressor intervals, imaging) are produced by a short loop per
patient. Times are minutes after the patient's infusion until the final conversion to UTC
timestamps (whole minutes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _latent as L
from . import _vocab as V
from ._badrows import inject
from ._latent import INF, Arr, Latent
from ._profiles import Profiles


@dataclass(frozen=True)
class Schedule:
    """When observations are made. Inpatient (days 0 to ``inpatient_days``, and around any CRS or
    ICANS episode): vitals every ``vitals_every_h`` hours, labs daily, ICE twice daily.
    Outpatient (after that): vitals every ``outpatient_vitals_every_h`` hours, labs every
    ``outpatient_labs_every_d`` days, ICE ``outpatient_ice_per_day`` times a day (0-2)."""

    vitals_every_h: int = 4
    inpatient_days: int = 14
    outpatient_vitals_every_h: int = 8
    outpatient_labs_every_d: int = 1
    outpatient_ice_per_day: int = 1


@dataclass(frozen=True)
class Params:
    """Resolved, validated generation parameters."""

    days: int
    seed: int
    keys: tuple[str, ...]
    start_s: int
    schedule: Schedule
    loinc_fraction: float
    bad_rows_fraction: float
    bad_row_kinds: tuple[str, ...]


@dataclass(frozen=True)
class Chunk:
    """One generated chunk: observations (file order), truth, bad rows (row = index in chunk)."""

    observations: Any  # pa.Table
    truth: Any  # pa.Table
    bad_rows: Any  # pa.Table


_VITALS = ("temperature", "sbp", "dbp", "map", "heart_rate", "resp_rate", "spo2")
_LABS = (
    "anc",
    "wbc",
    "lymphocytes",
    "platelets",
    "hemoglobin",
    "crp",
    "ferritin",
    "ldh",
    "creatinine",
    "alt",
    "ast",
    "bilirubin",
    "fibrinogen",
    "il6",
)
_ICE_ITEMS = ("ice_orientation", "ice_naming", "ice_commands", "ice_writing", "ice_attention")
# the ten ICE points, by item: orientation 4, naming 3, commands 1, writing 1, attention 1
_ICE_POINT_ITEM = np.array([0, 0, 0, 0, 1, 1, 1, 2, 3, 4])

_CODE_UNIT = np.array(
    [V.UNIT_ID[V.SPEC[V.LOINC_TO_CODE.get(c, c)].unit] for c in V.ALL_CODES], dtype=np.int64
)
_CODE_DEC = np.array([V.SPEC[V.LOINC_TO_CODE.get(c, c)].decimals for c in V.ALL_CODES], dtype=np.int64)
_CODE_IS_NUM = np.array([V.SPEC[V.LOINC_TO_CODE.get(c, c)].kind == "number" for c in V.ALL_CODES])


def _cid(code: str) -> int:
    return V.CODE_ID[code]


def _tid(token: str) -> int:
    return V.TOKEN_ID[token]


_DEVICE_TOK = np.array([_tid(d) for d in V.DEVICES])
_CONS_TOK = np.array([_tid(c) for c in V.CONSCIOUSNESS])
_SEIZ_TOK = np.array([_tid(s) for s in V.SEIZURE])
_MOTOR_TOK = np.array([_tid(m) for m in V.MOTOR])
_ALIAS = {c: [_cid(a) for a in V.LOINC[c]] for c in V.LOINC}


class _Rows:
    """Accumulates row blocks as arrays: patient, minute, code, number/token, end, dose, unit."""

    def __init__(self) -> None:
        self.blocks: list[tuple[Arr, ...]] = []

    def add(
        self,
        p: Arr,
        t: Arr,
        code: Arr,
        num: Arr | None = None,
        tok: Arr | None = None,
        end: Arr | None = None,
        dose: Arr | None = None,
        du: Arr | None = None,
    ) -> None:
        m = p.shape[0]
        self.blocks.append(
            (
                p.astype(np.int64),
                np.rint(t).astype(np.int64),
                np.broadcast_to(code, (m,)).astype(np.int64),
                np.full(m, np.nan) if num is None else num.astype(np.float64),
                np.full(m, -1, dtype=np.int64) if tok is None else tok.astype(np.int64),
                np.full(m, np.nan) if end is None else end.astype(np.float64),
                np.full(m, np.nan) if dose is None else dose.astype(np.float64),
                np.full(m, -1, dtype=np.int64) if du is None else du.astype(np.int64),
            )
        )

    def grid(
        self,
        t_min: Arr,
        values: Arr,
        codes: tuple[str, ...],
        keep: Arr,
        loinc_u: Arr | None,
        loinc_fraction: float,
        tokens: bool = False,
    ) -> None:
        """Rows of a (n, slots, codes) grid where ``keep`` (n, slots[, codes]) is true."""
        for c, code in enumerate(codes):
            k = keep if keep.ndim == 2 else keep[:, :, c]
            idx = np.nonzero(k)
            p = idx[0]
            t = t_min[idx]
            v = values[:, :, c][idx]
            cid = np.full(p.shape[0], _cid(code), dtype=np.int64)
            if loinc_u is not None and loinc_fraction > 0 and code in _ALIAS:
                aliases = _ALIAS[code]
                use = loinc_u[:, :, c][idx] < loinc_fraction
                which = idx[1] % len(aliases)
                cid = np.where(use, np.array(aliases)[which], cid)
            if tokens:
                self.add(p, t, cid, tok=v)
            else:
                self.add(p, t, cid, num=np.round(v, V.SPEC[code].decimals))

    def columns(self) -> list[Arr]:
        """The 8 columns, concatenated; the blocks are released."""
        blocks: list[list[Arr | None]] = [list(b) for b in self.blocks]
        self.blocks = []
        out: list[Arr] = []
        for i in range(8):
            out.append(np.concatenate([b[i] for b in blocks]))
            for b in blocks:
                b[i] = None
        return out


def _draws(gens: list[np.random.Generator], nv: int, nl: int, ni: int) -> dict[str, Arr]:
    """Fixed-size draws of every patient, stacked: same numbers whatever the chunking."""
    cols: dict[str, list[Arr]] = {k: [] for k in ("u", "z", "zv", "uv", "zl", "ul", "ui")}
    for g in gens:
        cols["u"].append(g.random(L.N_LAT))
        cols["z"].append(g.standard_normal(L.N_ZLAT))
        cols["zv"].append(g.standard_normal((nv, 7)))
        cols["uv"].append(g.random((nv, 8)))
        cols["zl"].append(g.standard_normal((nl, 14)))
        cols["ul"].append(g.random((nl, 15)))
        cols["ui"].append(g.random((ni, 13)))
    return {k: np.stack(v) for k, v in cols.items()}


def _dense(lat: Latent, t: Arr, sched: Schedule) -> Arr:
    """True where a slot time (n, m) falls in the inpatient schedule (stay or toxicity episode)."""
    inpatient = t < sched.inpatient_days * 24.0
    crs_end = np.where(lat.crs_g >= 1, lat.crs_D[:, 0], -INF)
    icans_end = np.where(lat.icans_g >= 1, lat.icans_D[:, 0], -INF)
    crs = (t >= lat.crs_on[:, None] - 12.0) & (t < crs_end[:, None] + 24.0)
    icans = (t >= lat.icans_on[:, None] - 12.0) & (t < icans_end[:, None] + 24.0)
    out: Arr = inpatient | crs | icans
    return out


def _inflammation(lat: Latent, t: Arr) -> Arr:
    """0-1 inflammatory activity of the CRS course at times t (n, m) - drives CRP, ferritin, IL-6."""
    g = lat.crs_g
    gi = np.maximum(g, 1) - 1
    s_peak = lat.crs_S[np.arange(g.shape[0]), gi][:, None] + 12.0
    d_peak = lat.crs_D[np.arange(g.shape[0]), gi][:, None]
    on = lat.crs_on[:, None]
    with np.errstate(invalid="ignore"):  # inf - inf where there is no CRS
        rise = np.clip((t - on) / np.maximum(s_peak - on, 1.0), 0.0, 1.0)
        decay = np.exp(-np.clip(t - np.maximum(d_peak, s_peak), 0.0, None) / 36.0)
    out: Arr = np.where((g[:, None] >= 1) & (t >= on), rise * decay, 0.0)
    return out


def generate_chunk(params: Params, profiles: Profiles, numbers: Arr, ids: list[str]) -> Chunk:
    """Generate patients ``numbers`` (1-based, in file order) whose ids are ``ids``."""
    sched = params.schedule
    days = params.days
    horizon = days * 24.0
    every = sched.vitals_every_h
    nv = days * 24 // every
    nl = days + 1
    ni = (days + 1) * 2
    gens = [np.random.default_rng(np.random.SeedSequence(params.seed, spawn_key=(int(i),))) for i in numbers]
    d = _draws(gens, nv, nl, ni)
    lat = L.draw_latent(d["u"], d["z"], profiles, params.keys, params.start_s, days)
    n = len(ids)
    cut = np.minimum(lat.death_h, horizon)  # nothing is observed at or after this time
    rows = _Rows()
    pidx = np.arange(n)

    # ------------------------------------------------------------------ vitals grid
    k = np.arange(nv)
    jit = (d["uv"][:, :, 0] - 0.5) * 0.5
    jit[:, 0] = np.abs(jit[:, 0])
    tv = np.rint((k[None, :] * every + jit) * 60.0) / 60.0  # hours, on the minute
    ratio = max(sched.outpatient_vitals_every_h // every, 1)
    keep_v = (tv < cut[:, None]) & (_dense(lat, tv, sched) | (k[None, :] % ratio == 0))
    lv = L.levels(lat.crs_S, lat.crs_D, tv)
    febrile = (lv >= 1) & (tv < lat.fever_stop[:, None])
    hl = np.where(lat.hypo[:, None] & (lv >= 2), lv, 0)
    xl = np.where(lat.hypox[:, None] & (lv >= 2), lv, 0)
    o2x = (tv >= lat.o2x_start[:, None]) & (tv < lat.o2x_end[:, None])
    dev_v = np.take_along_axis(lat.dev, np.clip(xl, 0, 4), axis=1)
    ventilated = (xl == 4) & (dev_v == L.DEV_MV)
    zv = d["zv"]
    temp = np.where(
        febrile, np.clip(38.5 + 0.6 * zv[:, :, 0], 38.1, 40.8), np.clip(36.9 + 0.3 * zv[:, :, 0], 35.8, 37.7)
    )
    base_sbp = np.clip(122 + 12 * u_to_z(lat.u[:, 53]), 100, 160)[:, None]
    sbp = np.clip(base_sbp + 7 * zv[:, :, 1] - 6 * febrile, 95, 175)
    # ASTCT grade 2: "hypotension not requiring vasopressors" - SBP < 90 mm Hg (adults), fluids only
    sbp = np.where(hl == 2, np.clip(84 + 3 * zv[:, :, 1], 76, 89), sbp)
    sbp = np.where(hl >= 3, np.clip(94 + 5 * zv[:, :, 1], 85, 110), sbp)  # on vasopressors
    sbp = np.rint(sbp)
    dbp = np.rint(np.clip(sbp * 0.6 + 4 * zv[:, :, 2], 40, sbp - 20))
    mapv = np.rint((sbp + 2 * dbp) / 3)
    base_hr = np.clip(75 + 9 * u_to_z(lat.u[:, 54]), 58, 95)[:, None]
    hr = base_hr + 6 * zv[:, :, 3] + febrile * 12 * (temp - 37) + 15 * (hl >= 2) + 8 * (xl >= 2)
    hr = np.clip(hr, 45, 170)
    rr = np.clip(16 + 1.5 * zv[:, :, 4] + (xl >= 2) * (6 + 3 * (xl - 2)) + 2 * febrile, 10, 40)
    rr = np.where(ventilated, np.clip(18 + zv[:, :, 4], 14, 24), rr)
    spo2 = np.clip(97 + zv[:, :, 5], 94, 100)
    spo2 = np.where((xl == 2) | o2x, np.clip(94 + zv[:, :, 5], 91, 97), spo2)
    spo2 = np.where(xl == 3, np.clip(93 + 1.5 * zv[:, :, 5], 89, 97), spo2)
    spo2 = np.where(xl == 4, np.clip(93 + 2 * zv[:, :, 5], 86, 98), spo2)
    vit = np.stack([temp, sbp, dbp, mapv, hr, rr, spo2], axis=2)
    tv_min = tv * 60.0
    rows.grid(tv_min, vit, _VITALS, keep_v, d["uv"][:, :, 1:8], params.loinc_fraction)
    # O2 flow / FiO2 charted with each vitals round while on oxygen
    flow_v = np.take_along_axis(lat.flow, np.clip(xl, 0, 4), axis=1)
    flow_v = np.where(xl >= 2, flow_v, np.nan)
    flow_v = np.where(o2x & (xl < 2), 2.0, flow_v)
    fio2_v = np.where(xl >= 2, np.take_along_axis(lat.fio2, np.clip(xl, 0, 4), axis=1), np.nan)
    resp = np.stack([flow_v, fio2_v], axis=2)
    keep_r = keep_v[:, :, None] & ~np.isnan(resp)
    rows.grid(
        tv_min, np.nan_to_num(resp), ("o2_flow", "fio2"), keep_r, d["uv"][:, :, 1:3], params.loinc_fraction
    )

    # realized CRS grade per vitals round: level >= 2 shows the organ support; level 1 the fever
    g_slot = np.where(keep_v, np.where(lv >= 2, lv, np.where(febrile, 1, 0)), 0)
    crs_grade = g_slot.max(axis=1)
    peak_slot = np.argmax(g_slot == np.maximum(crs_grade, 1)[:, None], axis=1)
    onset_slot = np.argmax(g_slot >= 1, axis=1)
    crs_peak_h = np.where(crs_grade >= 1, tv[pidx, peak_slot], np.nan)
    crs_onset_h = np.where(crs_grade >= 1, tv[pidx, onset_slot], np.nan)
    masked_at_peak = temp[pidx, peak_slot] < 38.0

    # ------------------------------------------------------------------ labs grid
    kd = np.arange(nl)
    tl = lat.day_off_h[:, None] + 24.0 * kd[None, :] + 6.0 + (d["ul"][:, :, 0] - 0.5)
    tl = np.rint(tl * 60.0) / 60.0
    keep_l = (tl < cut[:, None]) & (
        _dense(lat, tl, sched) | (kd[None, :] % max(sched.outpatient_labs_every_d, 1) == 0)
    )
    lab = _labs(lat, tl, d["zl"], profiles, params.keys)
    keep_lab = np.broadcast_to(keep_l[:, :, None], lab.shape).copy()
    infl = _inflammation(lat, tl)
    keep_lab[:, :, 13] &= (infl > 0.02) & (lat.crs_g[:, None] >= 1)  # IL-6 only measured during CRS
    rows.grid(tl * 60.0, lab, _LABS, keep_lab, d["ul"][:, :, 1:15], params.loinc_fraction)
    alt_vals = np.where(keep_lab[:, :, 9], np.round(lab[:, :, 9]), 0.0)
    alt_max = alt_vals.max(axis=1)
    alt_grade = np.select([alt_max > 800, alt_max > 200, alt_max > 120, alt_max > 40], [4, 3, 2, 1], 0)

    # ------------------------------------------------------------------ ICE rounds
    ice = _ice_rounds(lat, d["ui"], sched, cut, days)
    rows.grid(ice["t_min"], ice["num"], ("ice_score", *_ICE_ITEMS), ice["keep_ice"], None, 0.0)
    rows.grid(
        ice["t_min"], ice["tok"], ("consciousness", "seizure", "motor"), ice["keep"], None, 0.0, tokens=True
    )

    # ------------------------------------------------------------------ events (loop per patient)
    n_toci, crs_steroid = _events(rows, lat, gens, profiles, params, ice, cut, horizon)

    # ------------------------------------------------------------------ attributes
    zeros = np.zeros(n)
    infusion_tok = np.array(
        [
            _tid(profiles.profiles[params.keys[p]].infusion[q])
            for p, q in zip(lat.prof, lat.product, strict=True)
        ]
    )
    inf_dose = np.array(
        [
            _infusion_dose(profiles.profiles[params.keys[p]].infusion_dose_mg, q)
            for p, q in zip(lat.prof, lat.product, strict=True)
        ]
    )
    rows.add(
        pidx,
        zeros,
        np.full(n, _cid("infusion")),
        tok=infusion_tok,
        dose=inf_dose,
        du=np.where(np.isnan(inf_dose), -1, V.DOSE_UNIT_ID["mg"]),
    )
    rows.add(pidx, zeros, np.full(n, _cid("age")), num=lat.age)
    rows.add(pidx, zeros, np.full(n, _cid("weight")), num=lat.weight)
    dead = np.isfinite(lat.death_h)
    cause_tok = np.array([_tid(c) for c in V.DEATH_CAUSES])[np.maximum(lat.death_cause, 0)]
    rows.add(
        pidx[dead], lat.death_h[dead] * 60.0, np.full(int(dead.sum()), _cid("death")), tok=cause_tok[dead]
    )

    obs, row_patient = _assemble(rows, lat, ids)

    # ------------------------------------------------------------------ truth
    death_cause = np.where(dead, lat.death_cause, -1)
    crs_g_truth = np.where(death_cause == L.CAUSE_CRS, 5, crs_grade)
    icans_grade = ice["grade"]
    icans_g_truth = np.where(death_cause == L.CAUSE_ICANS, 5, icans_grade)
    crs_res = _resolution(lat, cut)
    truth = _truth(
        lat,
        ids,
        profiles,
        params,
        crs_g=crs_g_truth,
        crs_onset_h=crs_onset_h,
        crs_peak_h=crs_peak_h,
        crs_res_h=np.where(crs_grade >= 1, crs_res, np.nan),
        masked=masked_at_peak,
        n_toci=n_toci,
        crs_steroid=crs_steroid,
        icans_g=icans_g_truth,
        icans_onset_h=ice["onset_h"],
        icans_peak_h=ice["peak_h"],
        icans_res_h=np.where((icans_grade >= 1) & (lat.icans_D[:, 0] < cut), lat.icans_D[:, 0], np.nan),
        alt_grade=alt_grade,
        cut=cut,
    )
    if params.bad_rows_fraction > 0:
        obs, bad = inject(obs, row_patient, gens, params.bad_rows_fraction, params.bad_row_kinds)
    else:
        bad = V.BAD_ROWS_SCHEMA.empty_table()
    return Chunk(observations=obs, truth=truth, bad_rows=bad)


def _infusion_dose(tagged: Any, q: int) -> float:
    if tagged is None:
        return math.nan
    return float(tagged.value[q])


def _labs(lat: Latent, t: Arr, zl: Arr, profiles: Profiles, keys: tuple[str, ...]) -> Arr:
    """Daily labs (n, days, 14) in canonical units: cytopenias after lymphodepletion, inflammatory
    markers following the CRS course, ALT/AST following immune hepatitis."""
    z = lat.z
    ld = np.array([profiles.profiles[k].lymphodepletion for k in keys])[lat.prof][:, None]
    td = t / 24.0
    g = lat.crs_g
    infl = _inflammation(lat, t)

    def noise(col: int, sd: float) -> Arr:
        out: Arr = np.exp(sd * np.clip(zl[:, :, col], -3, 3))
        return out

    f_anc = np.where(ld, 1 - 0.95 * np.exp(-(((td - 8) / 5) ** 2)), 1.0)
    anc = 3.5 * np.exp(0.35 * z[:, 7])[:, None] * f_anc * noise(0, 0.12)
    f_lym = np.where(ld, 0.08 + 0.35 * (1 - np.exp(-np.clip(td - 10, 0, None) / 15)), 1.0)
    lym = 1.2 * np.exp(0.3 * z[:, 8])[:, None] * f_lym * noise(1, 0.12)
    mono = 0.45 * np.exp(0.3 * z[:, 9])[:, None] * f_anc * noise(2, 0.1)
    wbc = anc + lym + mono
    f_plt = np.where(ld, 1 - 0.6 * np.exp(-(((td - 12) / 7) ** 2)), 1.0)
    plt = 200 * np.exp(0.3 * z[:, 10])[:, None] * f_plt * noise(3, 0.08)
    hb = (11.8 + 1.2 * z[:, 11])[:, None] - np.where(ld, 1.2 * np.exp(-(((td - 12) / 10) ** 2)), 0.0)
    hb = hb * noise(4, 0.03)
    gi = np.clip(g, 0, 4)[:, None]
    crp_amp = np.array([0, 60, 120, 200, 260.0])[gi]
    crp = 3 * np.exp(0.7 * z[:, 12])[:, None] * noise(5, 0.2) + crp_amp * infl * noise(6, 0.15)
    fer = (
        400
        * np.exp(0.5 * z[:, 13])[:, None]
        * (1 + np.array([0, 1.5, 4, 10, 20.0])[gi] * infl)
        * noise(7, 0.1)
    )
    ldh = (220 * np.exp(0.2 * z[:, 14])[:, None] + np.array([0, 60, 150, 300, 500.0])[gi] * infl) * noise(
        8, 0.06
    )
    creat = 0.9 * np.exp(0.15 * z[:, 15])[:, None] * (1 + np.array([0, 0, 0.1, 0.6, 1.5])[gi] * infl)
    creat = creat * noise(9, 0.05)
    # immune hepatitis (checkpoint inhibitors): rise over 3 days, plateau 3 days, half-life 5 days
    h_on = lat.hep_on[:, None]
    h = np.clip((t - h_on) / 72.0, 0, 1) * np.exp(-np.clip(t - h_on - 144.0, 0, None) * math.log(2) / 120.0)
    h = np.where(t >= h_on, h, 0.0)
    alt_base = (
        22 * np.exp(0.25 * u_to_z(lat.u[:, 60]))[:, None] * (1 + np.array([0, 0.3, 0.6, 1.2, 2.0])[gi] * infl)
    )
    hep_alt = 40.0 * lat.hep_factor[:, None]
    hep_noise = np.clip(noise(10, 0.04), 0.92, 1.08)
    alt = np.where(
        h > 0,
        np.maximum(alt_base, (hep_alt * h + alt_base * (1 - h)) * hep_noise),
        alt_base * noise(10, 0.08),
    )
    ast = np.where(h > 0, 0.85 * alt, (alt_base * 0.95) * noise(11, 0.08))
    bili = (
        0.6 * np.exp(0.3 * u_to_z(lat.u[:, 55]))[:, None] * (1 + 0.5 * (gi >= 3) * infl)
        + 1.5 * (lat.hep_g[:, None] >= 3) * h
    )
    fib_base = 330 * np.exp(0.15 * u_to_z(lat.u[:, 56]))[:, None]
    fib = np.where(gi >= 3, fib_base * (1 - 0.55 * infl), fib_base * (1 + 0.3 * infl)) * noise(12, 0.05)
    il6 = (4 + np.array([0, 40, 200, 1500, 6000.0])[gi] * infl) * noise(13, 0.2)
    out = np.stack([anc, wbc, lym, plt, hb, crp, fer, ldh, creat, alt, ast, bili, fib, il6], axis=2)
    for c, code in enumerate(_LABS):
        spec = V.SPEC[code]
        out[:, :, c] = np.clip(out[:, :, c], spec.low, spec.high)
    return out


def u_to_z(u: Arr) -> Arr:
    """A rough standard normal from a uniform (logit scaled), for a few baselines."""
    uu = np.clip(u, 1e-6, 1 - 1e-6)
    out: Arr = np.log(uu / (1 - uu)) / 1.7
    return out


def _ice_rounds(lat: Latent, ui: Arr, sched: Schedule, cut: Arr, days: int) -> dict[str, Any]:
    """ICE rounds at 08:00 and 20:00 UTC (one a day, or none, when outpatient): ICE score and items,
    consciousness, seizure, motor, following the latent ICANS level at each round."""
    n = lat.crs_g.shape[0]
    pidx = np.arange(n)
    ni = ui.shape[1]
    slot = np.arange(ni)
    day = slot // 2
    hour = np.where(slot % 2 == 0, 8.0, 20.0)
    t = lat.day_off_h[:, None] + 24.0 * day[None, :] + hour[None, :] + (ui[:, :, 12] - 0.5)
    t = np.rint(t * 60.0) / 60.0
    dense = _dense(lat, t, sched)
    out_ok = (slot[None, :] % 2 == 0) if sched.outpatient_ice_per_day == 1 else np.full((1, ni), False)
    if sched.outpatient_ice_per_day >= 2:
        out_ok = np.full((1, ni), True)
    lv = L.levels(lat.crs_S, lat.crs_D, t)
    xl = np.where(lat.hypox[:, None] & (lv >= 2), lv, 0)
    dev = np.take_along_axis(lat.dev, np.clip(xl, 0, 4), axis=1)
    ventilated = (xl == 4) & (dev == L.DEV_MV)  # sedated: no neuro assessment
    keep = (t < cut[:, None]) & (dense | out_ok) & ~ventilated & (t < days * 24.0)
    il = L.levels(lat.icans_S, lat.icans_D, t)
    il = np.where(keep, il, 0)
    u10 = ui[:, :, 10]
    u11 = ui[:, :, 11]
    # ASTCT ICE bands: 7-9 grade 1, 3-6 grade 2, 0-2 grade 3 (10 = no impairment)
    score = np.select(
        [il == 0, il == 1, il == 2],
        [10, 7 + np.floor(u10 * 3), 3 + np.floor(u10 * 4)],
        np.floor(u10 * 3),
    ).astype(np.int64)
    sub3 = lat.sub3[:, None]
    sub4 = lat.sub4[:, None]
    # consciousness index into V.CONSCIOUSNESS
    cons = np.zeros((n, ni), dtype=np.int64)
    cons = np.where((il == 1) & (u11 < 0.3), 1, cons)
    cons = np.where((il == 2) & (u11 < 0.4), 2, cons)
    cons = np.where((il == 3) & (sub3 == L.SUB3_TACTILE), 3, np.where((il == 3) & (u11 < 0.3), 2, cons))
    # consciousness: "awakens only to tactile stimulus" grade 3; "unarousable" grade 4
    cons = np.where(il == 4, np.where(sub4 == L.SUB4_COMA, 4, 3), cons)
    performed = keep & (cons != 4)  # ICE is not performable when unarousable
    # first round at level >= 3 / at level 4: seizures and imaging happen there
    first3 = np.argmax(il >= 3, axis=1)
    first4 = np.argmax(il >= 4, axis=1)
    has3 = (il >= 3).any(axis=1)
    has4 = (il >= 4).any(axis=1)
    seiz = np.zeros((n, ni), dtype=np.int64)
    s3 = has3 & (lat.sub3 == L.SUB3_SEIZURE)
    seiz[pidx[s3], first3[s3]] = np.where(ui[pidx[s3], first3[s3], 11] < 0.5, 1, 2)
    s4 = has4 & (lat.sub4 == L.SUB4_STATUS)
    seiz[pidx[s4], first4[s4]] = np.where(ui[pidx[s4], first4[s4], 11] < 0.5, 3, 4)
    motor = np.where((il == 4) & (sub4 == L.SUB4_MOTOR), 1, 0)
    # ICE items consistent with the score: remove (10 - score) of the ten points at random
    keys = ui[:, :, :10]
    rank = np.argsort(np.argsort(keys, axis=2), axis=2)
    kept_pt = rank >= (10 - score)[:, :, None]
    items = np.stack([(kept_pt & (j == _ICE_POINT_ITEM)).sum(axis=2) for j in range(5)], axis=2)
    num = np.concatenate([score[:, :, None], items], axis=2).astype(np.float64)
    tok = np.stack([_CONS_TOK[cons], _SEIZ_TOK[seiz], _MOTOR_TOK[motor]], axis=2)
    # realized ICANS grade per round (ASTCT): ICE band, consciousness, seizure, motor, imaging
    ice_g = np.where(performed, np.select([score >= 10, score >= 7, score >= 3], [0, 1, 2], 3), 0)
    cons_g = np.array([0, 1, 2, 3, 4])[cons]
    seiz_g = np.array([0, 3, 3, 4, 4])[seiz]
    img = np.zeros((n, ni), dtype=np.int64)
    e3 = has3 & (lat.sub3 == L.SUB3_EDEMA)
    img[pidx[e3], first3[e3]] = 3
    e4 = has4 & (lat.sub4 == L.SUB4_EDEMA)
    img[pidx[e4], first4[e4]] = 4
    g_round = np.where(keep, np.maximum.reduce([ice_g, cons_g, seiz_g, 4 * motor, img]), 0)
    grade = g_round.max(axis=1)
    peak = np.argmax(g_round == np.maximum(grade, 1)[:, None], axis=1)
    onset = np.argmax(g_round >= 1, axis=1)
    return {
        "t_min": t * 60.0,
        "t": t,
        "num": num,
        "tok": tok,
        "keep": keep,
        "keep_ice": performed,
        "grade": grade,
        "peak_h": np.where(grade >= 1, t[pidx, peak], np.nan),
        "onset_h": np.where(grade >= 1, t[pidx, onset], np.nan),
        "imaging3": np.where(has3 & (lat.icans_g >= 3), t[pidx, first3], np.nan),
        "imaging4": np.where(has4 & (lat.icans_g >= 4), t[pidx, first4], np.nan),
    }


def _resolution(lat: Latent, cut: Arr) -> Arr:
    """End of the last observable CRS feature (fever, hypotension, hypoxia), nan if not before ``cut``."""
    organ_end = np.where(lat.crs_g >= 2, lat.crs_D[:, 1], lat.crs_on)
    fever_end = np.minimum(lat.fever_stop, lat.crs_D[:, 0])
    res = np.maximum(organ_end, fever_end)
    out: Arr = np.where(res < cut, res, np.nan)
    return out


def _events(
    rows: _Rows,
    lat: Latent,
    gens: list[np.random.Generator],
    profiles: Profiles,
    params: Params,
    ice: dict[str, Any],
    cut: Arr,
    horizon: float,
) -> tuple[Arr, Arr]:
    """Administrations, oxygen and vasopressor intervals, imaging: a short loop per patient."""
    pol = profiles.p
    n = lat.crs_g.shape[0]
    ev: list[tuple[int, float, int, float, int, float, float, int]] = []
    nan = math.nan
    mg = V.DOSE_UNIT_ID["mg"]
    ml = V.DOSE_UNIT_ID["mL"]
    ugkg = V.DOSE_UNIT_ID["ug/kg/min"]
    ugmin = V.DOSE_UNIT_ID["ug/min"]
    iumin = V.DOSE_UNIT_ID["[iU]/min"]
    c_ox, c_flow, c_fio2 = _cid("oxygen"), _cid("o2_flow"), _cid("fio2")
    c_vp, c_ap, c_toci = _cid("vasopressor"), _cid("antipyretic"), _cid("tocilizumab")
    c_cs, c_ana, c_fl = _cid("corticosteroid"), _cid("anakinra"), _cid("fluid_bolus")
    c_edema, c_icp = _cid("cerebral_edema"), _cid("raised_icp_signs")
    c_icu, t_icu = _cid("icu"), _tid("icu")
    t_dex, t_mp, t_pred = _tid("dexamethasone"), _tid("methylprednisolone"), _tid("prednisone")
    ap_tok = (_tid("paracetamol"), _tid("metamizole"))
    a_tok = (_tid("norepinephrine"), _tid("phenylephrine"), _tid("vasopressin"))
    b_tok = (_tid("epinephrine"), _tid("phenylephrine"), _tid("dopamine"))
    n_toci = np.zeros(n, dtype=np.int64)
    steroid = np.zeros(n, dtype=bool)
    toci_mgkg, toci_max = pol("tocilizumab_mg_per_kg"), pol("tocilizumab_max_mg")
    p_rep2 = pol("tocilizumab_repeat_if_level2")
    p_dex2 = pol("dexamethasone_if_crs_grade2")
    p_ana = pol("anakinra_if_crs_grade4")
    crs_g = lat.crs_g.tolist()
    icans_g = lat.icans_g.tolist()
    S_all, D_all = lat.crs_S.tolist(), lat.crs_D.tolist()
    iS_all, iD_all = lat.icans_S.tolist(), lat.icans_D.tolist()
    img3, img4 = ice["imaging3"].tolist(), ice["imaging4"].tolist()
    for j in range(n):
        g = gens[j]
        stop = float(cut[j])
        died = math.isfinite(float(lat.death_h[j]))

        def add(
            t: float,
            code: int,
            tok: int = -1,
            num: float = nan,
            end: float = nan,
            dose: float = nan,
            du: int = -1,
            j: int = j,
            stop: float = stop,
            died: bool = died,
        ) -> None:
            if t >= stop:
                return
            if not math.isnan(end) and end >= stop:
                end = stop if died and stop < horizon else nan  # cut by death / still running
            ev.append((j, t * 60.0, code, num, tok, end * 60.0, dose, du))

        w = float(lat.weight[j])
        G = crs_g[j]
        if G >= 1:
            S, D = S_all[j], D_all[j]
            fever_end = min(float(lat.fever_stop[j]), D[0])

            def level(t: float, S: list[float] = S, D: list[float] = D) -> int:
                return sum(1 for k in range(4) if S[k] <= t < D[k])

            # antipyretic every 6 h while febrile
            t = float(lat.ap_start[j])
            while t < fever_end:
                add(t, c_ap, ap_tok[int(lat.ap_drug[j])], dose=1000.0, du=mg)
                t += 6.0
            if lat.hypo[j]:
                add(S[1] + 0.1, c_fl, _tid("crystalloid"), dose=1000.0, du=ml)
                if g.random() < 0.5 and S[1] + 2.5 < D[1]:
                    add(S[1] + 2.5, c_fl, _tid("crystalloid"), dose=500.0, du=ml)
                if G >= 3:
                    pa_ = int(lat.press_a[j])
                    add(S[2] - 0.25, c_fl, _tid("crystalloid"), dose=500.0, du=ml)
                    dose_a, du_a = _pressor_dose(pa_, g.random(), (ugkg, ugmin, iumin), first=True)
                    add(S[2], c_vp, a_tok[pa_], end=D[2], dose=dose_a, du=du_a)
                    if lat.press_vaso[j]:
                        add(S[2] + 0.5, c_vp, a_tok[2], end=D[2], dose=0.03, du=iumin)
                    if G >= 4:
                        pb = int(lat.press_b[j])
                        dose_b, du_b = _pressor_dose(pb, g.random(), (ugkg, ugmin, ugkg), first=False)
                        add(S[3], c_vp, b_tok[pb], end=D[3], dose=dose_b, du=du_b)
                        if pa_ == 2:  # vasopressin alone at level 3: norepinephrine joins at level 4
                            add(
                                S[3],
                                c_vp,
                                a_tok[0],
                                end=D[3],
                                dose=round(0.05 + 0.2 * g.random(), 2),
                                du=ugkg,
                            )
            if lat.hypox[j]:
                for lv in range(2, G + 1):
                    dev = int(lat.dev[j, lv])
                    spans = [(S[lv - 1], S[lv] if lv < G else D[lv - 1])]
                    if lv < G:
                        spans.append((D[lv], D[lv - 1]))
                    for a, b in spans:
                        if b <= a:
                            continue
                        add(a, c_ox, int(_DEVICE_TOK[dev]), end=b)
                        fl, fi = float(lat.flow[j, lv]), float(lat.fio2[j, lv])
                        if not math.isnan(fl):
                            add(a, c_flow, num=fl)
                        if not math.isnan(fi):
                            add(a, c_fio2, num=fi)
            # tocilizumab 8 mg/kg (max 800 mg), >= 8.5 h apart, <= 4 doses
            t = float(lat.toci1[j])
            dose = float(min(round(toci_mgkg * w), toci_max))
            count = 0
            while math.isfinite(t) and count < int(pol("tocilizumab_max_total")) and t < stop:
                lvl = level(t)
                if count > 0 and not (lvl >= 3 or (lvl == 2 and g.random() < p_rep2)):
                    break
                add(t, c_toci, _tid("tocilizumab"), dose=dose, du=mg)
                count += 1
                t += 8.5 + 3.5 * g.random()
            n_toci[j] = count
            # corticosteroids: dexamethasone 10 mg q6h while grade >= 3; methylprednisolone at grade 4
            t = float(lat.steroid_start[j])
            while t < D[2] + 6.0:
                if not S[3] <= t < D[3]:  # replaced by methylprednisolone while grade 4
                    add(t, c_cs, t_dex, dose=pol("dexamethasone_crs_grade3_mg"), du=mg)
                steroid[j] = True
                t += 6.0
            if G == 2 and math.isfinite(float(lat.toci1[j])) and g.random() < p_dex2:
                for dt in (8.0, 20.0):
                    add(float(lat.toci1[j]) + dt, c_cs, t_dex, dose=10.0, du=mg)
                steroid[j] = True
            if G >= 4:
                t, k = S[3] + 0.5 + g.random(), 0
                while t < D[3] and k < 6:
                    add(t, c_cs, t_mp, dose=pol("methylprednisolone_crs_grade4_mg"), du=mg)
                    t, k = t + 12.0, k + 1
                if g.random() < p_ana:
                    t = S[3] + 2.0
                    while t < D[3]:
                        add(t, c_ana, _tid("anakinra"), dose=pol("anakinra_mg"), du=mg)
                        t += 6.0
        IG = icans_g[j]
        if IG >= 2:
            iS, iD = iS_all[j], iD_all[j]
            t = iS[1] + 1.0 + 3.0 * g.random()
            while t < iD[1]:
                add(t, c_cs, t_dex, dose=pol("dexamethasone_icans_grade2_mg"), du=mg)
                t += 6.0
            if IG >= 4:
                t = iS[3] + 1.0 + 2.0 * g.random()
                for _ in range(3):
                    add(t, c_cs, t_mp, dose=pol("methylprednisolone_icans_grade4_mg"), du=mg)
                    t += 24.0
        # ICU stay [D]: admitted when CRS or ICANS reaches grade 3 (ASCO 2021, Santomasso et al.,
        # J Clin Oncol 2021;39:3978-92: grade 3 CRS "admit to ICU", grade 3 ICANS "ICU care");
        # discharged 24 h after the last of them falls below grade 3 (this project's choice)
        if G >= 3 or IG >= 3:
            spans = [(S_all[j][2], D_all[j][2])] if G >= 3 else []
            spans += [(iS_all[j][2], iD_all[j][2])] if IG >= 3 else []
            add(min(a for a, _ in spans), c_icu, t_icu, end=max(b for _, b in spans) + 24.0)
        if not math.isnan(img3[j]):
            e3 = "focal" if lat.sub3[j] == L.SUB3_EDEMA else "none"
            add(img3[j], c_edema, _tid(e3))
            add(img3[j], c_icp, _tid("false"))
        if not math.isnan(img4[j]) and lat.sub4[j] == L.SUB4_EDEMA:
            add(img4[j], c_edema, _tid("diffuse"))
            add(img4[j], c_icp, _tid("true"))
        hg = int(lat.hep_g[j])
        if hg >= 2:  # G2 prednisone, G3-4 methylprednisolone, daily from 3-4 days after onset, 14 days
            drug, per_kg = [
                (t_pred, pol("hepatitis_g2_prednisone_mg_per_kg")),
                (t_mp, pol("hepatitis_g3_methylprednisolone_mg_per_kg")),
                (t_mp, pol("hepatitis_g4_methylprednisolone_mg_per_kg")),
            ][hg - 2]
            t = float(lat.hep_on[j]) + 72.0 + 24.0 * g.random()
            for _ in range(14):
                add(t, c_cs, drug, dose=float(round(per_kg * w)), du=mg)
                t += 24.0
        if math.isfinite(float(lat.o2x_start[j])):
            a, b = float(lat.o2x_start[j]), float(lat.o2x_end[j])
            add(a, c_ox, _tid("low_flow_nasal_cannula"), end=b)
            add(a, c_flow, num=2.0)
        for t in lat.px_times[j].tolist():
            if math.isfinite(t):
                add(t, c_ap, _tid("paracetamol"), dose=1000.0, du=mg)
    if ev:
        cols = list(zip(*ev, strict=True))
        rows.add(
            np.array(cols[0]),
            np.array(cols[1]),
            np.array(cols[2]),
            num=np.array(cols[3]),
            tok=np.array(cols[4]),
            end=np.array(cols[5]),
            dose=np.array(cols[6]),
            du=np.array(cols[7]),
        )
    return n_toci, steroid


def _pressor_dose(which: int, u: float, units: tuple[int, int, int], first: bool) -> tuple[float, int]:
    """Dose and dose-unit id of a vasopressor (index into the level-3 or level-4 drug list)."""
    if first:  # norepinephrine, phenylephrine, vasopressin
        return [
            (round(0.05 + 0.25 * u, 2), units[0]),
            (float(round(50 + 150 * u)), units[1]),
            (0.04, units[2]),
        ][which]
    # epinephrine, phenylephrine, dopamine
    return [
        (round(0.02 + 0.18 * u, 2), units[0]),
        (float(round(50 + 150 * u)), units[1]),
        (float(round(5 + 10 * u)), units[2]),
    ][which]


def _assemble(rows: _Rows, lat: Latent, ids: list[str]) -> tuple[Any, Arr]:
    """Sort the rows by (patient, time, code) and build the contract table."""
    cols = rows.columns()
    cols[1] = lat.t0_s[cols[0]] + cols[1] * 60  # minutes after infusion -> epoch seconds
    base = int(cols[1].min()) if cols[1].size else 0
    order = np.argsort((cols[0] << 41) | ((cols[1] - base) << 8) | cols[2], kind="stable")
    for i in range(8):
        cols[i] = cols[i][order]
    del order
    p, t_s, code, num, tok, end, dose, du = cols
    is_tok = tok >= 0
    dec = _CODE_DEC[code]
    scale = 10.0**dec
    num = np.round(num * scale) / scale
    num_str = pa.array(num).cast(pa.string())
    tok_str = pa.array(V.ALL_TOKENS).take(pa.array(np.maximum(tok, 0)))
    value = pc.if_else(pa.array(is_tok), tok_str, num_str)
    end_ok = ~np.isnan(end)
    end_s = lat.t0_s[p] + np.where(end_ok, np.rint(end), 0).astype(np.int64) * 60
    table = pa.Table.from_arrays(
        [
            pa.array(ids).take(pa.array(p)),
            pa.array(t_s * 1_000_000, type=V.TIMESTAMP),
            pa.array(V.ALL_CODES).take(pa.array(code)),
            value,
            pa.array(V.UNITS).take(pa.array(_CODE_UNIT[code])),
            pa.array(end_s * 1_000_000, type=V.TIMESTAMP, mask=~end_ok),
            pa.array(dose, mask=np.isnan(dose)),
            pa.array(V.DOSE_UNITS).take(pa.array(du, mask=du < 0)),
        ],
        schema=V.OBSERVATION_SCHEMA,
    )
    return table, p


def _ts(lat: Latent, h: Arr) -> Any:
    ok = np.isfinite(h)
    us = (lat.t0_s + np.where(ok, np.rint(h * 60.0), 0).astype(np.int64) * 60) * 1_000_000
    return pa.array(us, type=V.TIMESTAMP, mask=~ok)


def _truth(
    lat: Latent,
    ids: list[str],
    profiles: Profiles,
    params: Params,
    *,
    crs_g: Arr,
    crs_onset_h: Arr,
    crs_peak_h: Arr,
    crs_res_h: Arr,
    masked: Arr,
    n_toci: Arr,
    crs_steroid: Arr,
    icans_g: Arr,
    icans_onset_h: Arr,
    icans_peak_h: Arr,
    icans_res_h: Arr,
    alt_grade: Arr,
    cut: Arr,
) -> Any:
    keys = params.keys
    has_crs = crs_g >= 1
    driver = [
        L.DRIVER_NAMES[d] if h else None for d, h in zip(lat.driver.tolist(), has_crs.tolist(), strict=True)
    ]
    dead = np.isfinite(lat.death_h)
    causes = [
        V.DEATH_CAUSES[c] if d else None for c, d in zip(lat.death_cause.tolist(), dead.tolist(), strict=True)
    ]
    cols = [
        pa.array(ids),
        pa.array([keys[i] for i in lat.prof.tolist()]),
        pa.array(
            [
                profiles.profiles[keys[i]].infusion[q]
                for i, q in zip(lat.prof.tolist(), lat.product.tolist(), strict=True)
            ]
        ),
        pa.array(lat.t0_s * 1_000_000, type=V.TIMESTAMP),
        pa.array(lat.age.astype(np.float64)),
        pa.array(lat.weight.astype(np.float64)),
        pa.array(crs_g.astype(np.int8)),
        pa.array(driver, type=pa.string()),
        _ts(lat, crs_onset_h),
        _ts(lat, crs_peak_h),
        _ts(lat, crs_res_h),
        pa.array(masked, mask=~has_crs),
        pa.array(n_toci.astype(np.int8)),
        pa.array(crs_steroid),
        pa.array(icans_g.astype(np.int8)),
        _ts(lat, icans_onset_h),
        _ts(lat, icans_peak_h),
        _ts(lat, icans_res_h),
        pa.array(lat.hep_g.astype(np.int8)),
        _ts(lat, np.where(lat.hep_on < cut, lat.hep_on, np.nan)),
        pa.array(alt_grade.astype(np.int8)),
        _ts(lat, np.where(dead, lat.death_h, np.nan)),
        pa.array(causes, type=pa.string()),
        _ts(lat, cut),
    ]
    return pa.Table.from_arrays(cols, schema=V.TRUTH_SCHEMA)
