"""The laboratory inputs of the ASCO 2021 organ grades in the service: hepatitis (ALT, AST, total
bilirubin × ULN), nephritis (creatinine × baseline), diabetes (fasting glucose × ULN and mg/dL)
and thyrotoxicosis (free T4 × ULN), graded live for a checkpoint-inhibitor patient.

The value of each laboratory criterion is reconstructed like every other finding of a live
grade, by the vocabulary's derivation (``[derive.alt]`` … of ``data/observations.toml``: the
latest result in the window), and its reference is the one the CTCAE laboratory terms use
(:func:`.labs.reference`): the result's own reference interval, else the site's default interval
for the patient's sex and age, else unknown; the baseline is the latest result before day 0.
Which criterion compares which value with which reference comes from the typed rule table
(:mod:`immunotox.scales.asco2021_spec`): a ``multiple`` criterion whose finding is derived from a
laboratory result. An unknown reference is never assumed: the organ grade is then the range the
bands on the value alone leave, naming the reference (Schneider et al., J Clin Oncol
2021;39:4073-4126, doi:10.1200/JCO.21.01440).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from ..scales.asco2021 import lab_criteria
from ..vocabulary import vocabulary
from . import labs
from .models import Patient

#: scale id -> its laboratory criteria: one definition with the cohort engines (the scale's own)
criteria = lab_criteria


@functools.cache
def quantities() -> frozenset[str]:
    """The findings passed to the core as ``{"value": x, "unit": u}``."""
    return frozenset(k for cs in criteria().values() for c in cs for k in (c.finding, c.ref))


def _baseline_codes(scales: Iterable[str]) -> frozenset[str]:
    table_ = criteria()
    return frozenset(c.code for s in scales for c in table_.get(s, ()) if c.ref_name == "baseline")


@dataclass
class Context:
    """What one patient's organ grades need beyond the rows of the window: the results before
    day 0 (baselines) and the ``age`` rows (the default interval, without a birth date)."""

    before: dict[str, list[Any]] = field(default_factory=dict)
    ages: list[Any] = field(default_factory=list)


def contexts(
    session: Session, patients: Mapping[str, Patient], keys: Iterable[tuple[str, str]], current: Any
) -> dict[str, Context]:
    """The :class:`Context` of each patient with an organ grade among ``keys`` (two queries at most;
    ``current``: the SQL condition selecting the current version of each event)."""
    keys = [k for k in keys if k[1] in criteria()]
    ids = sorted({pid for pid, _ in keys})
    if not ids:
        return {}
    codes = sorted(_baseline_codes(s for _, s in keys))
    before, ages = labs.before_day0_and_ages(session, patients, ids, codes, current)
    out = {pid: Context(ages=ages.get(pid, [])) for pid in ids}
    for (pid, code), rows in before.items():
        out[pid].before[code] = rows
    return out


def complete(
    patient: Patient,
    scale_id: str,
    t: dt.datetime,
    findings: dict[str, Any],
    inputs: dict[str, Any],
    rows: Iterable[Any],
    ctx: Context | None,
) -> None:
    """Add to ``findings`` (and ``inputs``) the reference of each laboratory value of the organ
    grade ``scale_id``, and give each value and reference with its canonical unit."""
    lab = criteria().get(scale_id)
    if not lab:
        return
    ctx = ctx or Context()
    by_id = {r.id: r for r in rows}
    age = labs.age_at(patient, t, ctx.ages)
    v = vocabulary()
    for c in lab:
        if c.finding not in findings:
            continue  # no result in the window: the scale names the value as missing
        unit = v.code(c.code).unit
        used = [by_id[i] for i in (inputs.get(c.finding) or {}).get("events", []) if i in by_id]
        findings[c.finding] = {"value": findings[c.finding], "unit": unit}
        if not used:  # pragma: no cover - a derived value always names its row
            continue
        row = used[-1]
        before = ctx.before.get(c.code, [])
        x = labs.reference(inputs, c.ref, c.ref_name, patient, c.code, row, row.time, before, age)
        if x is not None:
            findings[c.ref] = {"value": x, "unit": unit}
