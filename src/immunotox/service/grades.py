"""What a grade of the service is: the scales each patient is graded on, one grade of one scale
at one time with its explanation, and the memoised call to the grading core.

:func:`grade_at` is the whole path from stored rows to a grade: the findings come from the
timeline engine's per-patient entry point (:func:`immunotox.timeline.live.derive`, the rules of
``data/observations.toml``), the grade from the grading core
(``immunotox.get_scale(id).grade(findings)``); the explanation keeps, for each finding, its
value, its rule and the events it came from.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..catalogue import all_scales, get_scale
from ..errors import FindingError
from ..messages import error_message
from ..result import GradeResult
from ..timeline import live
from . import labs, organ_labs
from .models import Patient

ENGINE = "service-window-v1"


CRS, ICANS = "astct2019:crs", "astct2019:icans"


SCALES: tuple[str, ...] = (CRS, ICANS)


NO_RANGE = (-1, -1)
"""``grade_lo``/``grade_hi`` stored for a not-applicable grade (no range; the columns are not null)."""


def stored_range(r: GradeResult) -> tuple[int, int]:
    """The (grade_lo, grade_hi) columns of a result: :data:`NO_RANGE` when it has no range."""
    return NO_RANGE if r.grade_range is None else r.grade_range


def range_from_columns(status: str, lo: int, hi: int) -> tuple[int, int] | None:
    """The grade range read back from the columns (``None`` for a not-applicable grade)."""
    return None if status == "not_applicable" else (lo, hi)


# ASTCT 2019 grades toxicities of immune effector cell therapies (CAR-T) and T-cell engagers;
# checkpoint-inhibitor immune-related adverse events are graded with the ASCO 2021 organ scales
# (asco2021:<organ>, the grades the asco2021-ici management tables key on) that the vocabulary
# can reconstruct from the record: those with at least one derivable finding (data decides: a
# scale joins when its findings get a derivation in data/observations.toml). No ASTCT grade is
# computed for a checkpoint-inhibitor patient, no irAE grade for a CAR-T patient.
IRAE_SCALES: tuple[str, ...] = tuple(
    s for s in all_scales() if s.startswith("asco2021:") and live.live_plan(s).reads
)
SCALES_BY_THERAPY: dict[str, tuple[str, ...]] = {
    "car_t": SCALES,
    "bispecific": SCALES,
    "checkpoint_inhibitor": IRAE_SCALES,
}


def scales_of(patient: Patient) -> tuple[str, ...]:
    """The scales ``patient`` is graded on (by therapy class).

    A class without an entry is refused (``KeyError`` naming it), never graded on the CAR-T
    scales by default: the input schema admits only the classes of :data:`SCALES_BY_THERAPY`
    (a test keeps the two equal), so this can only be a record written outside the service."""
    try:
        return SCALES_BY_THERAPY[patient.therapy_class]
    except KeyError:
        raise KeyError(
            f"therapy_class {patient.therapy_class!r} of patient {patient.id!r} has no scales; "
            f"expected one of {sorted(SCALES_BY_THERAPY)}"
        ) from None


def all_scales_of(patient: Patient) -> tuple[str, ...]:
    """:func:`scales_of` and the CTCAE laboratory terms (graded once a result of their analyte
    is recorded, for every therapy class: :mod:`.labs`)."""
    return (*scales_of(patient), *labs.LAB_SCALES)


@dataclass(frozen=True)
class Grade:
    """One grade of one patient on one scale, as of ``time``, with the inputs it used."""

    patient_id: str
    scale: str
    time: dt.datetime
    result: GradeResult
    inputs: dict[str, Any]
    engine: str = ENGINE
    clinical: str = ""  # clinical fingerprint (see :func:`grade_findings`)
    key: str = ""  # fingerprint of everything shown: findings, the events used, the time

    @property
    def grade(self) -> int | None:
        return self.result.grade

    @property
    def result_json(self) -> dict[str, Any]:
        """The result as the grade history stores it, built when a record is written (not kept
        with the memoised result: ~40 dicts and lists per result that every full collection of
        the served process traversed, docs/benchmarks.md, issue 19, lane svcq)."""
        return self.result.model_dump(mode="json")


# ----------------------------------------------------------------------------- grading (memoised)
def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(name: str, value: Any) -> Any:
    if name == "ice_items" or name in labs.QUANTITIES or name in organ_labs.quantities():  # a dict, frozen
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value


@functools.lru_cache(maxsize=16384)
def _graded(scale_id: str, key: tuple[tuple[str, Any], ...]) -> tuple[GradeResult, str]:
    findings = {k: _thaw(k, v) for k, v in key}
    result = get_scale(scale_id).grade(findings)
    r = result
    clinical = json.dumps(
        [r.grade, list(stored_range(r)), r.status, r.missing, r.deciding_domains, [h.rule for h in r.fired]]
    )
    return result, hashlib.sha256(clinical.encode()).hexdigest()


def grade_findings(scale_id: str, findings: dict[str, Any]) -> tuple[GradeResult, str]:
    """(result, clinical fingerprint) for ``findings`` — a pure, memoised function.

    A set of findings that contradicts itself (a stored-data inconsistency) is graded without
    the offending finding, and the problem is reported by the caller.
    """
    return _graded(scale_id, _freeze(findings))


def _age(patient: Patient, t: dt.datetime) -> tuple[float, str] | None:
    """The patient's age at ``t`` from the birth date (None: the timeline's rule, the latest
    ``age`` row, applies)."""
    if patient.birth_date is None:
        return None
    bd, d = patient.birth_date, t.date()
    years = d.year - bd.year - ((d.month, d.day) < (bd.month, bd.day))
    return float(max(years, 0)), "birth_date"


def grade_at(
    patient: Patient,
    scale_id: str,
    t: dt.datetime,
    rows: Iterable[live.Row],
    course_onset: dt.datetime | None,
    lab_context: organ_labs.Context | None = None,
) -> Grade:
    """The grade of ``patient`` on ``scale_id`` at ``t`` from the stored ``rows`` (those the
    scale's live plan names; ``course_onset``: the onset of the patient's CRS course in progress,
    the stored open episode of :data:`immunotox.timeline.live.COURSE_SCALE`). An ASCO 2021 organ
    grade that reads laboratory results gets their references (:mod:`.organ_labs`;
    ``lab_context``: the patient's results before day 0 and age rows)."""
    if scale_id in organ_labs.criteria() and not isinstance(rows, list):
        rows = list(rows)  # read twice: derivation, then the references of its results
    snap = live.derive(
        live.live_plan(scale_id),
        rows,
        t,
        age=_age(patient, t),
        course_onset=course_onset if scale_id == live.COURSE_SCALE else None,
    )
    findings = dict(snap.findings)
    inputs: dict[str, Any] = {
        k: {"value": e.value, "rule": e.rule, "rule_fr": e.rule_fr, "events": list(e.rows)}
        for k, e in snap.evidence.items()
    }
    organ_labs.complete(patient, scale_id, t, findings, inputs, rows, lab_context)
    return grade_from(patient.id, scale_id, t, findings, inputs)


def grade_from(
    patient_id: str, scale_id: str, t: dt.datetime, findings: dict[str, Any], inputs: dict[str, Any]
) -> Grade:
    """Grade reconstructed ``findings`` (memoised) and fingerprint what is shown (the findings,
    the events used, the time)."""
    try:
        result, clinical = grade_findings(scale_id, findings)
    except FindingError as exc:  # stored data contradicting itself: say so, grade without it
        inputs["error"] = str(exc)
        inputs["error_fr"] = error_message(exc, "fr")  # its French twin, for French pages
        findings.pop(exc.field.split(".")[0], None)
        result, clinical = grade_findings(scale_id, findings)
        # a grade computed without part of the record is a new clinical state: a history record
        # of its own, whose stored inputs say what was left out (the page shows it)
        clinical = hashlib.blake2b(repr((clinical, inputs["error"])).encode(), digest_size=16).hexdigest()
    used = sorted({i for item in inputs.values() if isinstance(item, dict) for i in item.get("events", [])})
    key = hashlib.blake2b(
        repr((scale_id, sorted(findings.items()), used, t.isoformat(), ENGINE, inputs.get("error"))).encode(),
        digest_size=16,
    ).hexdigest()
    return Grade(patient_id, scale_id, t, result, inputs, ENGINE, clinical, key)
