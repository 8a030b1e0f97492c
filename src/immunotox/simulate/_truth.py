"""The truth table of a chunk: what each simulated patient had (grades, onset, peak, resolution,
treatments), for the validation of graders against it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from . import _irae as irae
from . import _latent as L
from . import _vocab as V
from ._latent import Arr, Latent
from ._params import Params
from ._profiles import Profiles
from ._rows import _ts


def _resolution(lat: Latent, cut: Arr) -> Arr:
    """End of the last observable CRS feature (fever, hypotension, hypoxia), nan if not before ``cut``."""
    organ_end = np.where(lat.crs_g >= 2, lat.crs_D[:, 1], lat.crs_on)
    fever_end = np.minimum(lat.fever_stop, lat.crs_D[:, 0])
    res = np.maximum(organ_end, fever_end)
    out: Arr = np.where(res < cut, res, np.nan)
    return out


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
    colitis: irae.Colitis,
    colitis_seen: Arr,
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
        pa.array(colitis.grade.astype(np.int8)),
        _ts(lat, np.where(colitis.onset_h < cut, colitis.onset_h, np.nan)),
        pa.array(colitis_seen.astype(np.int8)),
        _ts(lat, np.where(dead, lat.death_h, np.nan)),
        pa.array(causes, type=pa.string()),
        _ts(lat, cut),
    ]
    return pa.Table.from_arrays(cols, schema=V.TRUTH_SCHEMA)
