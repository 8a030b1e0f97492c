"""Synthetic cohorts of CAR-T and checkpoint-inhibitor patients in the observation contract.

Synthetic data for demos, tests and benchmarks - not a clinical model. Each patient gets a
latent toxicity course (CRS and ICANS grade, onset, duration, treatment response) drawn from a
published product profile (``data/simulation/profiles.toml``: ZUMA-1, JULIET, TRANSCEND,
KarMMa, CARTITUDE-1, an anti-PD-1 arm, optionally CD19 CAR-T in autoimmunity; every number
carries its verification tag). The course drives the observations so that graded by ASTCT 2019 at
its worst moment the patient reaches the latent grade; ``Cohort.truth`` holds that ground truth.

Stable API: :func:`simulate_cohort`, :func:`iter_cohort_batches`, :func:`write_cohort`,
:func:`write_observations`, :class:`Cohort`, :class:`CohortBatch`, :class:`Schedule`,
:func:`expected_rows_per_patient`, :func:`load_profiles`, the schemas ``OBSERVATION_SCHEMA``,
``TRUTH_SCHEMA``, ``BAD_ROWS_SCHEMA`` and ``BAD_ROW_KINDS``. Everything is seeded: the same
arguments give byte-identical output, whatever ``chunk_patients``.

References
----------
Lee DW, Santomasso BD, Locke FL, et al. ASTCT consensus grading for cytokine release syndrome
and neurologic toxicity associated with immune effector cells. Biol Blood Marrow Transplant
2019;25(4):625-638. doi:10.1016/j.bbmt.2018.12.758

Santomasso BD, Nastoupil LJ, Adkins S, et al. Management of immune-related adverse events in
patients treated with chimeric antigen receptor T-cell therapy: ASCO guideline. J Clin Oncol
2021;39(35):3978-3992. doi:10.1200/JCO.21.01992 (tocilizumab and corticosteroid doses)

The trial publications of each profile are listed in ``docs/simulator.md``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._clinical import clinical_table, simulated_sex
from ._errors import SimulationError
from ._generate import generate_chunk
from ._io import TableWriter, file_format, write_table
from ._params import Params, Schedule
from ._profiles import Profile, Profiles, load_profiles
from ._vocab import (
    ALL_CODES,
    BAD_ROW_KINDS,
    BAD_ROWS_SCHEMA,
    LOINC_TO_CODE,
    OBSERVATION_SCHEMA,
    SPEC,
    TRUTH_SCHEMA,
)

__all__ = [
    "ALL_CODES",
    "BAD_ROWS_SCHEMA",
    "BAD_ROW_KINDS",
    "LOINC_TO_CODE",
    "OBSERVATION_SCHEMA",
    "SPEC",
    "TRUTH_SCHEMA",
    "Cohort",
    "CohortBatch",
    "Profile",
    "Profiles",
    "Schedule",
    "SimulationError",
    "WriteSummary",
    "clinical_table",
    "expected_rows_per_patient",
    "iter_cohort_batches",
    "load_profiles",
    "simulate_cohort",
    "simulated_sex",
    "summarize_truth",
    "write_cohort",
    "write_observations",
]

DEFAULT_START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
MAX_DAYS = 366


@dataclass(frozen=True)
class CohortBatch:
    """One chunk of a cohort, as produced by :func:`iter_cohort_batches`.

    Attributes
    ----------
    observations
        ``pyarrow.Table`` with ``OBSERVATION_SCHEMA``, rows sorted by (patient_id, time, code)
        (injected bad rows sit right after the valid row they were copied from).
    truth
        ``pyarrow.Table`` with ``TRUTH_SCHEMA``, one row per patient of the batch.
    bad_rows
        ``pyarrow.Table`` with ``BAD_ROWS_SCHEMA``; ``row`` counts from the start of the cohort.
    first_row
        Index of this batch's first observation row in the whole cohort.
    """

    observations: Any
    truth: Any
    bad_rows: Any
    first_row: int


@dataclass(frozen=True)
class Cohort:
    """A whole simulated cohort held in memory.

    Attributes
    ----------
    observations
        ``pyarrow.Table``, exactly the contract columns (``OBSERVATION_SCHEMA``), sorted by
        (patient_id, time, code).
    truth
        ``pyarrow.Table`` (``TRUTH_SCHEMA``), one row per patient: the latent ground truth.
    bad_rows
        ``pyarrow.Table`` (``BAD_ROWS_SCHEMA``): the injected bad rows (empty by default).
    provenance
        The arguments, the profiles version and the profile numbers that are unverified [M].
    """

    observations: Any
    truth: Any
    bad_rows: Any
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WriteSummary:
    """What :func:`write_cohort` wrote."""

    path: Path
    patients: int
    rows: int
    bad_rows: int
    truth_path: Path | None
    bad_rows_path: Path | None
    truth: Any = None  # the whole truth table (one row per patient), kept in memory


def _positive_int(name: str, value: Any, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise SimulationError(name, value, "must be a positive integer")
    if high is not None and value > high:
        raise SimulationError(name, value, f"must be at most {high}")
    return int(value)


def _fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 0.5:
        raise SimulationError(name, value, "must be a number between 0 and 0.5")
    return float(value)


def _resolve(
    n_patients: Any,
    days: Any,
    seed: Any,
    products: Sequence[str] | None,
    start: dt.datetime | None,
    id_format: str,
    schedule: Schedule | None,
    loinc_fraction: Any,
    bad_rows_fraction: Any,
    bad_row_kinds: Sequence[str] | None,
    chunk_patients: Any,
) -> tuple[Params, list[str], int]:
    n = _positive_int("n_patients", n_patients)
    days_ = _positive_int("days", days, MAX_DAYS)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise SimulationError("seed", seed, "must be an integer >= 0")
    chunk = _positive_int("chunk_patients", chunk_patients, 1 << 20)
    profiles = load_profiles()
    if products is None:
        keys = tuple(k for k, p in profiles.profiles.items() if p.default)
    else:
        if isinstance(products, str) or not products:
            raise SimulationError("products", products, "give a non-empty list of product keys")
        unknown = [k for k in products if k not in profiles.profiles]
        if unknown:
            raise SimulationError(
                "products", ",".join(unknown), f"unknown product; known: {', '.join(profiles.profiles)}"
            )
        keys = tuple(dict.fromkeys(products))
    if start is None:
        start = DEFAULT_START
    if not isinstance(start, dt.datetime):
        raise SimulationError("start", start, "must be a datetime")
    start_utc = start.replace(tzinfo=dt.UTC) if start.tzinfo is None else start.astimezone(dt.UTC)
    start_day = start_utc.replace(hour=0, minute=0, second=0, microsecond=0)
    sched = schedule if schedule is not None else Schedule()
    _check_schedule(sched)
    kinds = tuple(BAD_ROW_KINDS if bad_row_kinds is None else dict.fromkeys(bad_row_kinds))
    wrong = [k for k in kinds if k not in BAD_ROW_KINDS]
    if wrong or not kinds:
        raise SimulationError("bad_row_kinds", ",".join(wrong), f"choose among {', '.join(BAD_ROW_KINDS)}")
    ids = _ids(id_format, n)
    params = Params(
        days=days_,
        seed=int(seed),
        keys=keys,
        start_s=int(start_day.timestamp()),
        schedule=sched,
        loinc_fraction=_fraction("loinc_fraction", loinc_fraction),
        bad_rows_fraction=_fraction("bad_rows_fraction", bad_rows_fraction),
        bad_row_kinds=kinds,
    )
    return params, ids, chunk


def _check_schedule(s: Schedule) -> None:
    if s.vitals_every_h not in (1, 2, 3, 4, 6, 8, 12, 24):
        raise SimulationError("schedule.vitals_every_h", s.vitals_every_h, "must divide 24")
    if s.outpatient_vitals_every_h < s.vitals_every_h or s.outpatient_vitals_every_h % s.vitals_every_h:
        raise SimulationError(
            "schedule.outpatient_vitals_every_h",
            s.outpatient_vitals_every_h,
            "must be a multiple of vitals_every_h",
        )
    if s.inpatient_days < 0:
        raise SimulationError("schedule.inpatient_days", s.inpatient_days, "must be >= 0")
    if s.outpatient_labs_every_d < 1:
        raise SimulationError("schedule.outpatient_labs_every_d", s.outpatient_labs_every_d, "must be >= 1")
    if s.outpatient_ice_per_day not in (0, 1, 2):
        raise SimulationError(
            "schedule.outpatient_ice_per_day", s.outpatient_ice_per_day, "must be 0, 1 or 2"
        )


def _ids(id_format: str, n: int) -> list[str]:
    if not isinstance(id_format, str):
        raise SimulationError("id_format", id_format, "must be a format string such as 'P{:06d}'")
    try:
        ids = [id_format.format(i) for i in range(1, n + 1)]
    except (IndexError, KeyError, ValueError) as exc:
        raise SimulationError("id_format", id_format, f"cannot format a patient number ({exc})") from None
    if len(set(ids)) != n or any(not i for i in ids):
        raise SimulationError("id_format", id_format, "must give a distinct, non-empty id to each patient")
    return ids


def _provenance(params: Params, n: int, id_format: str) -> dict[str, Any]:
    from .. import __version__

    profiles = load_profiles()
    return {
        "generator": "immunotox.simulate",
        "immunotox_version": __version__,
        "profiles_version": profiles.version,
        "n_patients": n,
        "days": params.days,
        "seed": params.seed,
        "products": list(params.keys),
        "start": dt.datetime.fromtimestamp(params.start_s, dt.UTC).isoformat(),
        "id_format": id_format,
        "schedule": asdict(params.schedule),
        "loinc_fraction": params.loinc_fraction,
        "bad_rows_fraction": params.bad_rows_fraction,
        "bad_row_kinds": list(params.bad_row_kinds) if params.bad_rows_fraction > 0 else [],
        "unverified_numbers": profiles.unverified(list(params.keys)),
        "note": profiles.unverified_note,
    }


def iter_cohort_batches(
    n_patients: int,
    *,
    days: int = 30,
    seed: int = 0,
    products: Sequence[str] | None = None,
    start: dt.datetime | None = None,
    id_format: str = "P{:06d}",
    schedule: Schedule | None = None,
    loinc_fraction: float = 0.0,
    bad_rows_fraction: float = 0.0,
    bad_row_kinds: Sequence[str] | None = None,
    chunk_patients: int = 500,
) -> Iterator[CohortBatch]:
    """Generate a cohort chunk by chunk (bounded memory); arguments as :func:`simulate_cohort`.

    Batches come in file order (patient ids sorted as strings); concatenated they equal
    ``simulate_cohort(...)`` with the same arguments, whatever ``chunk_patients``.
    """
    params, ids, chunk = _resolve(
        n_patients,
        days,
        seed,
        products,
        start,
        id_format,
        schedule,
        loinc_fraction,
        bad_rows_fraction,
        bad_row_kinds,
        chunk_patients,
    )
    return _batches(params, ids, chunk)


def _batches(params: Params, ids: list[str], chunk: int) -> Iterator[CohortBatch]:
    profiles = load_profiles()
    order = sorted(range(len(ids)), key=ids.__getitem__)
    first = 0
    for a in range(0, len(order), chunk):
        idx = order[a : a + chunk]
        numbers = np.array(idx, dtype=np.int64) + 1
        c = generate_chunk(params, profiles, numbers, [ids[i] for i in idx])
        bad = c.bad_rows
        if bad.num_rows:
            shift = pa.array(np.full(bad.num_rows, first, dtype=np.int64))
            schema = BAD_ROWS_SCHEMA
            bad = bad.set_column(0, schema.field("row"), pc.add(bad.column("row"), shift))
            bad = bad.set_column(5, schema.field("source_row"), pc.add(bad.column("source_row"), shift))
        yield CohortBatch(observations=c.observations, truth=c.truth, bad_rows=bad, first_row=first)
        first += c.observations.num_rows


def simulate_cohort(
    n_patients: int,
    *,
    days: int = 30,
    seed: int = 0,
    products: Sequence[str] | None = None,
    start: dt.datetime | None = None,
    id_format: str = "P{:06d}",
    schedule: Schedule | None = None,
    loinc_fraction: float = 0.0,
    bad_rows_fraction: float = 0.0,
    bad_row_kinds: Sequence[str] | None = None,
    chunk_patients: int = 500,
) -> Cohort:
    """Simulate ``n_patients`` patients and return observations and ground truth in memory.

    Parameters
    ----------
    n_patients
        Number of patients (>= 1).
    days
        Follow-up after infusion, in days (1-366); observations stop at death.
    seed
        Seed (>= 0). Same arguments -> byte-identical tables.
    products
        Profile keys to draw from with equal probability (``load_profiles().profiles``); default:
        every profile marked ``default`` (axi-cel, tisa-cel, liso-cel, ide-cel, cilta-cel,
        anti-pd1). ``sle-cd19`` is opt-in.
    start
        First possible infusion day (UTC; naive = UTC); infusions fall on one of the 365 days
        from there, between 10:00 and 16:00 UTC. Default 2024-01-01.
    id_format
        ``str.format`` pattern of the patient id, given the patient number 1..n.
    schedule
        Observation schedule (:class:`Schedule`); default inpatient 14 days then outpatient.
    loinc_fraction
        Fraction (0-0.5) of vital-sign and lab rows written with their LOINC code instead of
        the canonical code (to exercise alias resolution). Default 0.
    bad_rows_fraction
        Fraction (0-0.5) of extra, corrupted rows to inject (see ``BAD_ROW_KINDS``). Default 0.
    bad_row_kinds
        The kinds to inject (default all four).
    chunk_patients
        Patients generated at a time (memory only; the output does not depend on it).

    Returns
    -------
    Cohort
        ``observations`` (contract columns, sorted by patient_id, time, code), ``truth`` (one
        row per patient), ``bad_rows`` (ground truth of the injected rows), ``provenance``.

    Raises
    ------
    SimulationError
        An argument out of range, naming it.

    Examples
    --------
    >>> c = simulate_cohort(3, days=5, seed=1)
    >>> c.observations.column_names
    ['patient_id', 'time', 'code', 'value', 'unit', 'end_time', 'dose', 'dose_unit']
    >>> c.truth.num_rows
    3
    """
    params, ids, chunk = _resolve(
        n_patients,
        days,
        seed,
        products,
        start,
        id_format,
        schedule,
        loinc_fraction,
        bad_rows_fraction,
        bad_row_kinds,
        chunk_patients,
    )
    batches = list(_batches(params, ids, chunk))
    return Cohort(
        observations=pa.concat_tables([b.observations for b in batches]).combine_chunks(),
        truth=pa.concat_tables([b.truth for b in batches]).combine_chunks(),
        bad_rows=pa.concat_tables([b.bad_rows for b in batches]).combine_chunks(),
        provenance=_provenance(params, len(ids), id_format),
    )


def write_observations(table: Any, path: str | Path) -> None:
    """Write an observations table to ``path``: Parquet (``.parquet``/``.pq``) or CSV (``.csv``).

    CSV times are ISO 8601 UTC with ``Z``; empty cells are nulls (and the empty unit).

    Raises
    ------
    SimulationError
        The extension is neither Parquet nor CSV, or the table lacks a contract column.
    """
    missing = [f.name for f in OBSERVATION_SCHEMA if f.name not in table.column_names]
    if missing:
        raise SimulationError("table", ",".join(table.column_names), f"missing contract columns {missing}")
    write_table(table, path)


def write_cohort(
    path: str | Path,
    n_patients: int,
    *,
    truth_path: str | Path | None = None,
    bad_rows_path: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    days: int = 30,
    seed: int = 0,
    products: Sequence[str] | None = None,
    start: dt.datetime | None = None,
    id_format: str = "P{:06d}",
    schedule: Schedule | None = None,
    loinc_fraction: float = 0.0,
    bad_rows_fraction: float = 0.0,
    bad_row_kinds: Sequence[str] | None = None,
    chunk_patients: int = 500,
) -> WriteSummary:
    """Generate a cohort and stream it to ``path`` chunk by chunk (bounded memory).

    Parquet gets one row group per chunk and the provenance as file metadata
    (key ``immunotox.simulate``); CSV is written incrementally. ``truth_path`` /
    ``bad_rows_path`` (optional) receive the truth and the bad-row ground truth.
    ``progress(done, total)`` is called after each chunk. Other arguments as
    :func:`simulate_cohort`; the file content equals ``write_observations(simulate_cohort(...))``.
    """
    file_format(path, "path")
    if truth_path is not None:
        file_format(truth_path, "truth_path")
    if bad_rows_path is not None:
        file_format(bad_rows_path, "bad_rows_path")
    params, ids, chunk = _resolve(
        n_patients,
        days,
        seed,
        products,
        start,
        id_format,
        schedule,
        loinc_fraction,
        bad_rows_fraction,
        bad_row_kinds,
        chunk_patients,
    )
    meta = _provenance(params, len(ids), id_format)
    obs_w = TableWriter(path, OBSERVATION_SCHEMA, metadata=meta)
    truth_w = TableWriter(truth_path, TRUTH_SCHEMA, metadata=meta) if truth_path is not None else None
    bad_w = TableWriter(bad_rows_path, BAD_ROWS_SCHEMA, metadata=meta) if bad_rows_path is not None else None
    done = 0
    n_bad = 0
    truths = []
    try:
        for b in _batches(params, ids, chunk):
            truths.append(b.truth)
            obs_w.write(b.observations)
            if truth_w is not None:
                truth_w.write(b.truth)
            if bad_w is not None and b.bad_rows.num_rows:
                bad_w.write(b.bad_rows)
            n_bad += b.bad_rows.num_rows
            done += b.truth.num_rows
            if progress is not None:
                progress(done, len(ids))
    finally:
        for w in (obs_w, truth_w, bad_w):
            if w is not None:
                w.close()
    return WriteSummary(
        path=Path(path),
        patients=len(ids),
        rows=obs_w.rows,
        bad_rows=n_bad,
        truth_path=Path(truth_path) if truth_path is not None else None,
        bad_rows_path=Path(bad_rows_path) if bad_rows_path is not None else None,
        truth=pa.concat_tables(truths).combine_chunks(),
    )


def summarize_truth(truth: Any) -> list[dict[str, Any]]:
    """Per profile: patients, simulated CRS/ICANS rates (any grade, grade >= 3), deaths, and
    the profile's published numbers beside them (``profile_*``)."""
    profiles = load_profiles()
    prof = truth.column("profile").to_numpy(zero_copy_only=False)
    crs = truth.column("crs_grade").to_numpy()
    icans = truth.column("icans_grade").to_numpy()
    dead = truth.column("death_cause").is_valid().to_numpy(zero_copy_only=False)
    out: list[dict[str, Any]] = []
    for key, p in profiles.profiles.items():
        m = prof == key
        k = int(m.sum())
        if not k:
            continue
        out.append(
            {
                "product": key,
                "patients": k,
                "crs_any": float((crs[m] >= 1).mean()),
                "crs_grade3plus": float((crs[m] >= 3).mean()),
                "icans_any": float((icans[m] >= 1).mean()),
                "icans_grade3plus": float((icans[m] >= 3).mean()),
                "deaths": int(dead[m].sum()),
                "profile_crs_any": p.crs.any.x,
                "profile_crs_grade3plus": p.crs.grade3plus.x,
                "profile_icans_any": p.icans.any.x,
                "profile_icans_grade3plus": p.icans.grade3plus.x,
            }
        )
    return out


def expected_rows_per_patient(days: int = 30, schedule: Schedule | None = None) -> float:
    """Approximate observation rows per patient from the schedule alone (vitals, labs, ICE
    rounds for a patient without toxicity); toxicities add rows (denser schedule, events).
    Useful to size a benchmark: ``n_patients = rows / expected_rows_per_patient()``."""
    s = schedule or Schedule()
    inpatient = min(days, s.inpatient_days)
    outpatient = days - inpatient
    per_in = 7 * 24 / s.vitals_every_h + 13 + 9 * 2
    per_out = (
        7 * 24 / s.outpatient_vitals_every_h + 13 / s.outpatient_labs_every_d + 9 * s.outpatient_ice_per_day
    )
    return float(inpatient * per_in + outpatient * per_out + 3)
