"""The daily laboratory grid: blood counts, inflammation markers and organ labs following the
latent CRS course, lymphodepletion and hepatotoxicity."""

from __future__ import annotations

import math

import numpy as np

from . import _vocab as V
from ._latent import Arr, Latent, u_to_z
from ._profiles import Profiles

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
