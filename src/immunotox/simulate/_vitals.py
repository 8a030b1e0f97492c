"""The vitals grid: temperature, blood pressure, heart and respiratory rate, SpO2, oxygen flow and
FiO2 at every vitals round, following the latent CRS course; and the CRS grade the rounds show."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _latent as L
from ._latent import Arr, Latent, u_to_z
from ._params import Schedule, _dense
from ._rows import _Rows

_VITALS = ("temperature", "sbp", "dbp", "map", "heart_rate", "resp_rate", "spo2")


@dataclass(frozen=True)
class CrsSeen:
    """The CRS the vitals rounds show: the realized grade, its onset and peak (hours after infusion)
    and whether fever was masked at the peak."""

    grade: Arr
    onset_h: Arr
    peak_h: Arr
    masked_at_peak: Arr


def vitals(
    rows: _Rows, lat: Latent, d: dict[str, Arr], sched: Schedule, cut: Arr, nv: int, loinc_fraction: float
) -> CrsSeen:
    """Add the vitals rows (and oxygen flow and FiO2 while on oxygen) to ``rows``."""
    every = sched.vitals_every_h
    pidx = np.arange(lat.crs_g.shape[0])
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
    rows.grid(tv_min, vit, _VITALS, keep_v, d["uv"][:, :, 1:8], loinc_fraction)
    # O2 flow / FiO2 charted with each vitals round while on oxygen
    flow_v = np.take_along_axis(lat.flow, np.clip(xl, 0, 4), axis=1)
    flow_v = np.where(xl >= 2, flow_v, np.nan)
    flow_v = np.where(o2x & (xl < 2), 2.0, flow_v)
    fio2_v = np.where(xl >= 2, np.take_along_axis(lat.fio2, np.clip(xl, 0, 4), axis=1), np.nan)
    resp = np.stack([flow_v, fio2_v], axis=2)
    keep_r = keep_v[:, :, None] & ~np.isnan(resp)
    rows.grid(tv_min, np.nan_to_num(resp), ("o2_flow", "fio2"), keep_r, d["uv"][:, :, 1:3], loinc_fraction)

    # realized CRS grade per vitals round: level >= 2 shows the organ support; level 1 the fever
    g_slot = np.where(keep_v, np.where(lv >= 2, lv, np.where(febrile, 1, 0)), 0)
    crs_grade = g_slot.max(axis=1)
    peak_slot = np.argmax(g_slot == np.maximum(crs_grade, 1)[:, None], axis=1)
    onset_slot = np.argmax(g_slot >= 1, axis=1)
    crs_peak_h = np.where(crs_grade >= 1, tv[pidx, peak_slot], np.nan)
    crs_onset_h = np.where(crs_grade >= 1, tv[pidx, onset_slot], np.nan)
    masked_at_peak = temp[pidx, peak_slot] < 38.0
    return CrsSeen(crs_grade, crs_onset_h, crs_peak_h, masked_at_peak)
