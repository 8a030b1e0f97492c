"""The parameters of a generation: when observations are made (:class:`Schedule`), the resolved
parameters (:class:`Params`) and the inpatient periods the schedule is dense in."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._latent import INF, Arr, Latent


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


def _dense(lat: Latent, t: Arr, sched: Schedule) -> Arr:
    """True where a slot time (n, m) falls in the inpatient schedule (stay or toxicity episode)."""
    inpatient = t < sched.inpatient_days * 24.0
    crs_end = np.where(lat.crs_g >= 1, lat.crs_D[:, 0], -INF)
    icans_end = np.where(lat.icans_g >= 1, lat.icans_D[:, 0], -INF)
    crs = (t >= lat.crs_on[:, None] - 12.0) & (t < crs_end[:, None] + 24.0)
    icans = (t >= lat.icans_on[:, None] - 12.0) & (t < icans_end[:, None] + 24.0)
    out: Arr = inpatient | crs | icans
    return out
