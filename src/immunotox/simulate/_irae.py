"""Immune-related colitis of checkpoint-inhibitor patients: latent course and bedside rows.

A patient whose profile has a ``[profiles.<key>.colitis]`` table may develop an immune colitis:
a latent ASCO 2021 colitis grade (1-3, from ``any`` and ``grade3plus``), an onset drawn uniformly
between ``onset_min_days`` and ``onset_max_days``, then the number of stools per day over the
patient's baseline, charted once a day at the bedside round (09:00 UTC): it rises over 3 days to
its plateau (grade 1: 1-3, grade 2: 4-6, grade 3: 7-12 stools over baseline, always inside the
ASCO bands), stays there 3 days, then falls by half every 3 days (treatment). Every patient of
such a profile is charted daily (0 stools over baseline outside the episode), so a colitis is
seen rising from a normal baseline.

The draws are the patient's own latent uniforms 57-59 and 61-63 (unused by the other courses),
so adding this course changed no other number of the cohort. Synthetic data: the rates and
shapes are simulation assumptions (profiles.toml says which).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._latent import INF, Arr, Latent
from ._profiles import Profiles

RISE_H = 72.0
PLATEAU_H = 72.0
HALF_LIFE_H = 72.0
ROUND_HOUR_UTC = 9.0
# plateau of stools over baseline per latent grade (ASCO 2021 colitis: < 4, 4-6, >= 7)
_LOW = np.array([0.0, 1.0, 4.0, 7.0])
_HIGH = np.array([0.0, 3.0, 6.0, 12.0])


@dataclass(frozen=True)
class Colitis:
    """The latent colitis of a chunk (arrays of length n; hours after infusion)."""

    charted: Arr  # bool: the profile has a colitis course (its patients are charted daily)
    grade: Arr  # latent ASCO 2021 colitis grade, 0 = none
    onset_h: Arr  # inf when none
    plateau: Arr  # stools over baseline at the plateau (a whole number)


def draw(lat: Latent, profiles: Profiles, keys: tuple[str, ...]) -> Colitis:
    """The latent colitis from the patients' uniforms (vectorised)."""
    profs = [profiles.profiles[k] for k in keys]
    charted = np.array([p.colitis is not None for p in profs])[lat.prof]
    p_any = np.array([p.colitis.any.x if p.colitis else 0.0 for p in profs])[lat.prof]
    p_hi = np.array([p.colitis.grade3plus.x if p.colitis else 0.0 for p in profs])[lat.prof]
    lo = np.array([p.colitis.onset_min_days.x if p.colitis else 7.0 for p in profs])[lat.prof]
    hi = np.array([p.colitis.onset_max_days.x if p.colitis else 28.0 for p in profs])[lat.prof]
    u = lat.u
    has = u[:, 57] < p_any
    cond_hi = np.divide(p_hi, p_any, out=np.zeros_like(p_any), where=p_any > 0)
    grade = np.where(has, np.where(u[:, 58] < cond_hi, 3, np.where(u[:, 59] < 0.4, 2, 1)), 0)
    onset = np.where(grade >= 1, 24.0 * (lo + (hi - lo) * u[:, 61]), INF)
    plateau = np.floor(_LOW[grade] + (_HIGH[grade] - _LOW[grade] + 1) * np.minimum(u[:, 62], 0.999))
    return Colitis(charted, grade.astype(np.int64), onset, np.where(grade >= 1, plateau, 0.0))


def stools(col: Colitis, t: Arr) -> Arr:
    """Stools per day over baseline at times ``t`` (n, m) (hours after infusion), whole numbers."""
    on = col.onset_h[:, None]
    peak = np.where(np.isfinite(on), col.plateau[:, None], 0.0)
    rise = np.clip((t - on) / RISE_H, 0.0, 1.0)
    fall = np.exp2(-np.clip(t - on - RISE_H - PLATEAU_H, 0.0, None) / HALF_LIFE_H)
    level = np.where(t >= on, peak * rise * fall, 0.0)
    # the plateau is reached exactly (rounding up on the way up never overshoots the plateau)
    out: Arr = np.where(t >= on + RISE_H, np.round(level), np.ceil(level))
    return np.minimum(out, peak)


def rounds(lat: Latent, cut: Arr, days: int) -> tuple[Arr, Arr]:
    """The daily bedside round times (n, days + 1) in hours after infusion, and which are kept."""
    k = np.arange(days + 1)
    t = lat.day_off_h[:, None] + 24.0 * k[None, :] + ROUND_HOUR_UTC
    return t, (t > 0) & (t < cut[:, None])


def observed_grade(values: Arr, keep: Arr) -> Arr:
    """The ASCO 2021 colitis grade of the stools charted (the worst round), per patient."""
    worst = np.where(keep, values, 0.0).max(axis=1)
    out: Arr = np.select([worst >= 7, worst >= 4, worst >= 1], [3, 2, 1], 0)
    return out
