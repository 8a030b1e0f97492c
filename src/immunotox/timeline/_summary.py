"""What a timeline run reports: its summary (``summary.json``: rows read, accepted, rejected by
reason, assessments, episodes, grade distributions) and the cross-tabulation of per-patient
maximum grades between the scales of a family (``crosstab``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa

from ..catalogue import all_scales
from ._engine import SCHEMAS
from ._options import is_crs
from ._read import REASONS, Normalized
from .output import OutputWriter

NOT_DETERMINABLE = "not determinable"
CROSSTAB_SCHEMA = pa.schema(
    [
        ("scale_a", pa.string()),
        ("scale_b", pa.string()),
        ("grade_a", pa.string()),
        ("grade_b", pa.string()),
        ("n_patients", pa.int64()),
    ]
)


@dataclass
class RunSummary:
    """What a run read, rejected, graded and wrote."""

    input: str
    engine: str
    scales: list[str]
    resolution_hours: float
    input_rows: int = 0
    accepted_rows: int = 0
    rejected_rows: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    patients: int = 0
    partitions: int = 0
    assessments: dict[str, int] = field(default_factory=dict)
    episodes: dict[str, int] = field(default_factory=dict)
    max_grade_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    incomplete_max_grades: dict[str, int] = field(default_factory=dict)
    snapshots_refused: dict[str, int] = field(default_factory=dict)
    first_refusal: dict[str, str] = field(default_factory=dict)
    unsorted_input: bool = False
    split_patient_ids: list[list[str]] = field(default_factory=list)
    seconds: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, ensure_ascii=False)


def count_rejects(summary: RunSummary, n: Normalized) -> None:
    """Add the rows of one normalised batch to the counts of ``summary``."""
    summary.input_rows += n.n_input
    summary.rejected_rows += n.n_rejected
    summary.accepted_rows += n.n_input - n.n_rejected
    if n.n_rejected:
        reasons = n.rejects.column("reason").to_pylist()
        for r in reasons:
            summary.rejected_by_reason[r] = summary.rejected_by_reason.get(r, 0) + 1


def grade_label(max_grade: int | None, complete: bool | None = True) -> str:
    """The crosstab label of a per-patient max grade: ``"2"``; ``"≥2"`` when the maximum is a
    lower bound (an input the scale needs was missing: the grade could be higher); ``not
    determinable`` when no grade could be established."""
    if max_grade is None:
        return NOT_DETERMINABLE
    return str(max_grade) if complete else f"≥{max_grade}"


def _family(scale_id: str) -> str:
    """The crosstab family of a scale that is not a CRS scale: a CTCAE term's own name (its v5.0
    and v4.03 versions), else the scale's family."""
    family = all_scales()[scale_id].family
    return f"{family}:{scale_id.split(':', 1)[1]}" if family == "ctcae" else family


def crosstab(patients: pa.Table, ids: Sequence[str]) -> pa.Table:
    """Per-patient max grade of the first scale of each family against every other scale of it.

    The CRS scales are one family; every other CTCAE term is a family of its own versions
    (``ctcae5:anemia`` against ``ctcae4:anemia``, never against another term).

    A patient whose grade under a scale could never be established (no assessment, or inputs
    absent) is counted under ``not determinable``; a maximum that is only a lower bound is
    labelled ``≥N`` (missing data is never read as normal).
    """
    by_scale: dict[str, dict[str, str]] = {s: {} for s in ids}
    for pid, scale, mg, comp in zip(
        patients.column("patient_id").to_pylist(),
        patients.column("scale").to_pylist(),
        patients.column("max_grade").to_pylist(),
        patients.column("complete").to_pylist(),
        strict=True,
    ):
        by_scale[scale][pid] = grade_label(mg, comp)
    rows: dict[tuple[str, str, str, str], int] = {}
    families: dict[str, list[str]] = {}
    for s in ids:
        fam = "crs" if is_crs(s) else _family(s)
        families.setdefault(fam, []).append(s)
    for group in families.values():
        if len(group) < 2:
            continue
        a = group[0]
        for b in group[1:]:
            for pid, ga in by_scale[a].items():
                gb = by_scale[b].get(pid, NOT_DETERMINABLE)
                rows[(a, b, ga, gb)] = rows.get((a, b, ga, gb), 0) + 1
    keys = sorted(rows, key=lambda k: (k[0], k[1], label_order(k[2]), label_order(k[3])))
    frame = pl.DataFrame(
        {
            "scale_a": [k[0] for k in keys],
            "scale_b": [k[1] for k in keys],
            "grade_a": [k[2] for k in keys],
            "grade_b": [k[3] for k in keys],
            "n_patients": [rows[k] for k in keys],
        },
        schema={
            "scale_a": pl.String,
            "scale_b": pl.String,
            "grade_a": pl.String,
            "grade_b": pl.String,
            "n_patients": pl.Int64,
        },
    )
    return frame.to_arrow().cast(CROSSTAB_SCHEMA)


def split_patient_ids(ids: Iterable[str]) -> list[list[str]]:
    """Groups of patient ids that differ only by surrounding spaces (``"P2"``, ``" P2 "``).

    Ids are taken exactly as written, so such rows are graded as different patients; the usual
    cause is a padded export, which splits one patient's record in two. The run reports them.

    >>> split_patient_ids(["P1", " P2 ", "P2", "P3", "P3 "])
    [[' P2 ', 'P2'], ['P3', 'P3 ']]
    """
    groups: dict[str, list[str]] = {}
    for pid in ids:
        groups.setdefault(pid.strip(), []).append(pid)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def label_order(label: str) -> int:
    """Sort key of crosstab labels: 0, ≥0, 1, ≥1, … , not determinable."""
    if label == NOT_DETERMINABLE:
        return 999
    if label.startswith("≥"):
        return 2 * int(label[1:]) + 1
    return 2 * int(label)


def finish(patients: pa.Table, ids: Sequence[str], out: Path, fmt: str, summary: RunSummary) -> None:
    """Write the crosstab and complete ``summary`` from the per-patient table of every partition."""
    if patients.num_rows:
        patients = patients.cast(SCHEMAS["patients"])
    ct = crosstab(patients, ids)
    ext = "parquet" if fmt == "parquet" else "csv"
    w = OutputWriter(out / f"crosstab.{ext}", CROSSTAB_SCHEMA, fmt)
    w.write(ct)
    w.close()
    summary.outputs["crosstab"] = str(w.path)
    patient_ids = set(patients.column("patient_id").to_pylist()) if patients.num_rows else set()
    summary.patients = len(patient_ids)
    summary.split_patient_ids = split_patient_ids(patient_ids)
    for s in ids:
        summary.max_grade_counts[s] = {}
        summary.episodes.setdefault(s, 0)
    for scale, mg, comp, n_ep in zip(
        patients.column("scale").to_pylist(),
        patients.column("max_grade").to_pylist(),
        patients.column("complete").to_pylist(),
        patients.column("n_episodes").to_pylist(),
        strict=True,
    ):
        label = grade_label(mg)
        counts = summary.max_grade_counts[scale]
        counts[label] = counts.get(label, 0) + 1
        summary.episodes[scale] += int(n_ep)
        if mg is not None and not comp:
            summary.incomplete_max_grades[scale] = summary.incomplete_max_grades.get(scale, 0) + 1
    for s in ids:
        summary.max_grade_counts[s] = dict(
            sorted(summary.max_grade_counts[s].items(), key=lambda kv: label_order(kv[0]))
        )
    summary.rejected_by_reason = {
        r: summary.rejected_by_reason[r] for r in REASONS if r in summary.rejected_by_reason
    }
