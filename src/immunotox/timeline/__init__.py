"""The timeline engine: grade observation streams and whole cohorts, hour by hour.

From long-form observations (the observation contract: ``patient_id, time, code, value, unit,
end_time, dose, dose_unit``) to, for every requested scale:

* the grade at every assessment time (``grades``: lower bound, upper bound, complete),
* the daily maximum (``daily_max``, days counted from the infusion),
* the episodes (``episodes``: onset, peak grade and time, resolution, duration),
* a per-patient summary (``patients``) and the cross-tabulation of per-patient maximum grades
  between scales (``crosstab``),
* the rows that could not be used, with file, row, column, value and reason (``rejects``).

Map of the package
------------------
(the vocabulary — codes, units, LOINC aliases, ranges, reconstruction rules — is
:mod:`immunotox.vocabulary`, reading ``data/observations.toml``, shared with the service and
the simulator)
``_read``               input checking and canonicalisation (vectorised over Arrow dictionaries)
``_state``              vectorised state reconstruction (order-aware, packed int64 keys), episodes
``_astct``              vectorised interpreter of the ASTCT 2019 rule table (CRS, ICANS)
``_labcode``           which CTCAE laboratory terms a timeline grades, from which code
``_labs``               CTCAE laboratory terms: inputs at each result, bands on whole columns
``_snapshot``           reconstructed state -> findings -> grading core (shared by both engines)
``_reference``          the scalar reference engine (plain Python, one patient at a time)
``_course``             the episode rule and the fever-masking predicate, one assessment at a time
``live``                the incremental per-patient entry point the service calls (findings at t
                        with their evidence, the episode rule step by step)
``_engine``             one partition through the embedded or scalar engine -> output tables
``_options``            the run's options checked: scales asked for, memory limit, partition size
``_source``             the input (Parquet, CSV, Arrow table) read in batches of about a partition
``_spill``              an input not sorted by patient spilled to hash buckets of whole patients
``_summary``            the run summary (``summary.json``) and the crosstab between scales
``_run``                streaming driver: partitions, threads, carried patients, outputs
``output``              the writers of the output files (Parquet or CSV)
``_spark``              the same partition function on Apache Spark (``groupBy().applyInArrow``)

The rules (windows, masking, episodes) are stated in ``docs/timeline.md``; the vocabulary in
``docs/observations.md``.

>>> import pyarrow as pa
>>> from immunotox.timeline import grade_observations
>>> obs = pa.table({
...     "patient_id": ["P1", "P1", "P1"],
...     "time": ["2024-05-01T10:00Z", "2024-05-01T10:00Z", "2024-05-01T12:00Z"],
...     "code": ["temperature", "age", "8310-5"],
...     "value": ["38.9", "61", "101.5"],
...     "unit": ["Cel", "a", "[degF]"],
... })
>>> r = grade_observations(obs, ["astct2019:crs"])
>>> r.grades.select(["time", "grade", "grade_hi", "complete"]).to_pylist()[0]["grade"]
1
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ..catalogue import get_scale
from ..vocabulary import vocabulary
from ._engine import DEFAULT_RESOLUTION_H, SCHEMAS, Params, grade_partition
from ._read import REASONS, REJECTS_SCHEMA, Normalized, Obs, ObservationFileError, concat_obs, normalize
from ._run import (
    CROSSTAB_SCHEMA,
    NOT_DETERMINABLE,
    OUTPUTS,
    RunSummary,
    TimelineArgumentError,
    _source,
    crosstab,
    label_order,
    raw_batches,
    run_timeline,
    select_scales,
)
from ._snapshot import Grader, codes_read, plan

__all__ = [
    "CROSSTAB_SCHEMA",
    "NOT_DETERMINABLE",
    "OUTPUTS",
    "REASONS",
    "REJECTS_SCHEMA",
    "SCHEMAS",
    "ObservationFileError",
    "RunSummary",
    "TimelineArgumentError",
    "TimelineResult",
    "grade_observations",
    "label_order",
    "read_observations",
    "run_timeline",
    "select_scales",
    "vocabulary",
]


@dataclass
class TimelineResult:
    """In-memory results of :func:`grade_observations` (plain-string Arrow tables)."""

    grades: pa.Table
    daily_max: pa.Table
    episodes: pa.Table
    patients: pa.Table
    crosstab: pa.Table
    rejects: pa.Table
    input_rows: int
    accepted_rows: int

    @property
    def rejected_rows(self) -> int:
        return int(self.rejects.num_rows)


def read_observations(obs: str | Path | pa.Table, *, keep: frozenset[str] | None = None) -> Normalized:
    """Read, check and canonicalise a whole observation file or table (in memory).

    Returns the accepted observations (:class:`~immunotox.timeline._read.Obs`) and the rejects;
    ``accepted + rejected == input rows``.
    """
    src = _source(obs)
    parts: list[Normalized] = []
    for raw, before in raw_batches(src, 1_000_000):
        parts.append(normalize(raw, file=src.label, row0=before, keep=keep))
    rejects = [p.rejects for p in parts if p.rejects.num_rows]
    merged: Obs = concat_obs([p.obs for p in parts])
    return Normalized(
        obs=merged,
        rejects=pa.concat_tables(rejects) if rejects else pa.Table.from_batches([], schema=REJECTS_SCHEMA),
        n_input=sum(p.n_input for p in parts),
    )


def grade_observations(
    obs: str | Path | pa.Table,
    scales: str | Sequence[str],
    *,
    engine: str = "embedded",
    resolution_hours: float = DEFAULT_RESOLUTION_H,
) -> TimelineResult:
    """Grade observations held in memory and return every output table.

    For files too large for memory use :func:`run_timeline`, which streams patient partitions to
    disk. ``engine`` is ``embedded`` (vectorised) or ``scalar`` (the reference).
    """
    if engine not in ("embedded", "scalar"):
        raise TimelineArgumentError("engine", engine, "expected embedded or scalar (spark: use run_timeline)")
    ids = select_scales(scales)
    plans = [plan(get_scale(s)) for s in ids]
    norm = read_observations(obs, keep=codes_read(plans))
    out = grade_partition(norm.obs, plans, Params(resolution_hours=resolution_hours), engine, Grader())
    patients = out.table("patients")
    return TimelineResult(
        grades=out.table("grades"),
        daily_max=out.table("daily_max"),
        episodes=out.table("episodes"),
        patients=patients,
        crosstab=crosstab(patients, ids),
        rejects=norm.rejects,
        input_rows=norm.n_input,
        accepted_rows=norm.n_input - norm.n_rejected,
    )
