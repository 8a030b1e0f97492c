"""ICE rounds: the ICE score and its items, consciousness, seizure and motor findings following the
latent ICANS course."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _latent as L
from ._latent import Arr, Latent
from ._params import Schedule, _dense
from ._rows import _CONS_TOK, _MOTOR_TOK, _SEIZ_TOK

_ICE_ITEMS = ("ice_orientation", "ice_naming", "ice_commands", "ice_writing", "ice_attention")
# the ten ICE points, by item: orientation 4, naming 3, commands 1, writing 1, attention 1
_ICE_POINT_ITEM = np.array([0, 0, 0, 0, 1, 1, 1, 2, 3, 4])


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
