"""The clinical table of a simulated cohort (``immunotox simulate … --clinical-out FILE``).

One row per patient in the clinical-table contract of :mod:`immunotox.analysis`
(``CLINICAL_SCHEMA``). Deaths within the observation horizon are the truth's (same time, same
cause); the rest follows each profile's ``[outcome]`` numbers (best overall response rate,
complete response rate, median duration of response, non-relapse mortality; tagged V/V2/M/D in
``profiles.toml``, the M ones listed as unverified) and the design assumptions below ([D]):

* response assessed at day 28; non-responders split SD/PD one half each; SD progresses after an
  exponential time with a median of 2 months; CR/PR relapse after an exponential time with the
  profile's median duration of response;
* non-relapse death: constant hazard giving ``nrm_1y`` at one year (cause ``infection``); death
  after progression: exponential, median 6 months (cause ``progression``); next therapy 2–6
  weeks after progression; every death after the observation horizon (the patient is alive in
  the observations);
* last follow-up uniform 12–24 months after infusion (administrative censoring); events after it
  are not recorded;
* sex F with probability 0.4; baseline EASIX, m-EASIX and CAR-HEMATOTOX computed with
  :func:`immunotox.risk.score` from the last laboratory values at or before the infusion.

Every patient draws from its own generator seeded by (seed, CRC-32 of its id): the table does not
depend on the chunking, and it leaves the observations untouched.
"""

from __future__ import annotations

import datetime as dt
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from ._profiles import load_profiles

MONTH_H = 30.4375 * 24.0
SCORE_INPUTS = {
    "ldh": "U/L",
    "creatinine": "mg/dL",
    "platelets": "10*9/L",
    "crp": "mg/L",
    "anc": "10*9/L",
    "hemoglobin": "g/dL",
    "ferritin": "ug/L",
}
SCORES = {"easix": "easix", "m_easix": "m-easix", "car_hematotox": "car-hematotox"}
PRODUCT_IDS = {"cd19-car-t": "cart-cd19-other"}  # simulator infusion token -> data/drugs.toml product id


def _minutes(hours: float) -> dt.timedelta:
    return dt.timedelta(minutes=round(float(hours) * 60))


def baseline_labs(observations: str | Path | pa.Table, truth: pa.Table) -> dict[str, dict[str, float]]:
    """Per patient, the last value of each score input at or before the infusion."""
    if isinstance(observations, pa.Table):
        lazy = pl.from_arrow(observations).lazy()  # type: ignore[union-attr]
    elif str(observations).lower().endswith(".csv"):
        lazy = pl.scan_csv(observations, try_parse_dates=True)
    else:
        lazy = pl.scan_parquet(observations)
    t0 = pl.from_arrow(truth.select(["patient_id", "infusion_time"]))
    assert isinstance(t0, pl.DataFrame)
    labs = (
        lazy.filter(pl.col("code").is_in(list(SCORE_INPUTS)))
        .select("patient_id", "time", "code", "value")
        .collect()
        .join(t0, on="patient_id")
        .filter(pl.col("time") <= pl.col("infusion_time"))
        .sort("patient_id", "code", "time")
        .group_by("patient_id", "code", maintain_order=True)
        .last()
    )
    out: dict[str, dict[str, float]] = {}
    for pid, code, value in labs.select("patient_id", "code", "value").iter_rows():
        try:
            out.setdefault(pid, {})[code] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def _uniforms(patient_id: str, seed: int) -> Any:
    """The patient's own 8 uniforms of the clinical table, seeded by (seed, CRC-32 of its id)."""
    return np.random.default_rng([seed, zlib.crc32(patient_id.encode("utf-8")), 0xC11]).random(8)


def _sex(u: Any) -> str:
    return "F" if u[7] < 0.4 else "M"


def simulated_sex(patient_id: str, seed: int) -> str:
    """The sex (``"F"`` or ``"M"``) the clinical table of a cohort of ``seed`` gives ``patient_id``.

    >>> simulated_sex("P000001", 0) in ("F", "M")
    True
    """
    return _sex(_uniforms(patient_id, seed))


def _scores(labs: dict[str, float]) -> dict[str, float | None]:
    from ..risk import score

    findings = {k: {"value": v, "unit": SCORE_INPUTS[k]} for k, v in labs.items()}
    out: dict[str, float | None] = {}
    for column, score_id in SCORES.items():
        try:
            value = score(score_id, findings).value
        except Exception:  # a missing input: the score stays empty, never 0
            value = None
        out[column] = None if value is None else float(value)
    return out


def clinical_table(truth: pa.Table, observations: str | Path | pa.Table, seed: int = 0) -> pa.Table:
    """The clinical table (``CLINICAL_SCHEMA``) of a simulated cohort, from its truth and observations."""
    from ..analysis import CLINICAL_SCHEMA

    profiles = load_profiles()
    labs = baseline_labs(observations, truth)
    rows: list[dict[str, Any]] = []
    for rec in truth.to_pylist():
        pid = rec["patient_id"]
        prof = profiles.profiles[rec["profile"]]
        oc = prof.outcome
        u = _uniforms(pid, seed)
        t0: dt.datetime = rec["infusion_time"]
        horizon: dt.datetime = rec["followup_end"]
        last = t0 + dt.timedelta(minutes=round(MONTH_H * (12 + 12 * u[0]) * 60))

        earliest_death = horizon + dt.timedelta(hours=1)

        response = response_date = progression = death = cause = next_therapy = None
        if rec["death_time"] is not None:
            death, cause = rec["death_time"], rec["death_cause"]
            if cause == "progression":
                progression = death
        else:
            response_date = t0 + _minutes(28 * 24.0)
            if u[1] < oc.cr.x:
                response = "CR"
            elif u[1] < oc.orr.x:
                response = "PR"
            else:
                response = "SD" if u[2] < 0.5 else "PD"
            if response == "PD":
                progression = response_date
            else:
                median_h = (2.0 if response == "SD" else oc.dor_median_months.x) * MONTH_H
                progression = response_date + _minutes(-np.log(u[3]) * median_h / np.log(2))
            rate_h = -np.log(1.0 - oc.nrm_1y.x) / (12 * MONTH_H)
            nrm = t0 + _minutes(-np.log(u[4]) / rate_h) if rate_h > 0 else None
            if nrm is not None and nrm < progression:
                death, cause, progression = max(nrm, earliest_death), "infection", None
            else:
                next_therapy = progression + _minutes((2 + 4 * u[5]) * 7 * 24)
                death = max(progression + _minutes(-np.log(u[6]) * 6 * MONTH_H / np.log(2)), earliest_death)
                cause = "progression"
        if death is not None and death <= last:
            last = death
        else:
            death = cause = None
        if progression is not None and progression > last:
            progression = None
        if next_therapy is not None and next_therapy > last:
            next_therapy = None
        token = rec["product"]
        rows.append(
            {
                "patient_id": pid,
                "product": PRODUCT_IDS.get(token, token),
                "indication": oc.indication,
                "age_years": round(float(rec["age_years"]), 1),
                "sex": _sex(u),
                "infusion_time": t0,
                "lymphodepletion": "fludarabine-cyclophosphamide" if prof.lymphodepletion else "none",
                **_scores(labs.get(pid, {})),
                "best_response": response,
                "response_date": response_date,
                "progression_date": progression,
                "death_date": death,
                "death_cause": cause,
                "next_therapy_date": next_therapy,
                "last_followup": last,
            }
        )
    return pa.Table.from_pylist(rows, schema=CLINICAL_SCHEMA)
