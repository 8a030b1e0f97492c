"""Generation of one chunk of patients: latent course -> observation rows -> Arrow tables.

Grids (vitals, labs, ICE rounds) are built as (patients x slots) arrays; only the sparse events
(administrations, oxygen and vasopressor intervals, imaging) are produced by a short loop per
patient. Times are minutes after the patient's infusion until the final conversion to UTC
timestamps (whole minutes).

This module draws the random numbers and puts the parts together: ``_params`` (schedule,
parameters), ``_vitals`` (vitals grid), ``_labs`` (laboratory grid), ``_ice`` (ICE rounds),
``_events`` (administrations, devices, imaging), ``_irae`` (checkpoint-inhibitor colitis: a
daily bedside round of stools over baseline), ``_rows`` (row blocks -> the contract table) and
``_truth`` (what each patient had).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _irae as irae
from . import _latent as L
from . import _vocab as V
from ._badrows import inject
from ._events import _events, _infusion_dose
from ._ice import _ICE_ITEMS, _ice_rounds
from ._labs import _LABS, _inflammation, _labs
from ._latent import Arr
from ._params import Params, _dense
from ._profiles import Profiles
from ._rows import _assemble, _cid, _Rows, _tid
from ._truth import _resolution, _truth
from ._vitals import vitals


@dataclass(frozen=True)
class Chunk:
    """One generated chunk: observations (file order), truth, bad rows (row = index in chunk)."""

    observations: Any  # pa.Table
    truth: Any  # pa.Table
    bad_rows: Any  # pa.Table


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
    seen = vitals(rows, lat, d, sched, cut, nv, params.loinc_fraction)
    crs_grade, crs_onset_h, crs_peak_h, masked_at_peak = (
        seen.grade,
        seen.onset_h,
        seen.peak_h,
        seen.masked_at_peak,
    )

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

    # ------------------------------------------------------------------ bedside round (ICI colitis)
    col = irae.draw(lat, profiles, params.keys)
    t_bed, keep_bed = irae.rounds(lat, cut, days)
    keep_bed &= col.charted[:, None]
    stools = irae.stools(col, t_bed)
    rows.grid(t_bed * 60.0, stools[:, :, None], ("stools_over_baseline",), keep_bed, None, 0.0)

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
        colitis=col,
        colitis_seen=irae.observed_grade(stools, keep_bed),
        cut=cut,
    )
    if params.bad_rows_fraction > 0:
        obs, bad = inject(obs, row_patient, gens, params.bad_rows_fraction, params.bad_row_kinds)
    else:
        bad = V.BAD_ROWS_SCHEMA.empty_table()
    return Chunk(observations=obs, truth=truth, bad_rows=bad)
