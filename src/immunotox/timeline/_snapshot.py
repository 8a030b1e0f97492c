"""From reconstructed state to the findings handed to a scale, and the scale's grade.

Shared by both engines so that a snapshot means the same thing everywhere: each derivation's
*raw* value (a number, a token index, a bitmask, a boolean; ``None`` when unknown) is turned into
the finding the grading core expects (``"high_flow_nasal_cannula"``, ``["norepinephrine"]``,
``{"orientation": 4, ...}``). Unknown findings are left out: the scale then reports its grade as
a lower bound, never as normal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..catalogue import all_scales
from ..errors import FindingError
from ..findings import vocabulary as finding_specs
from ..scales._base import Scale
from ..vocabulary import Derivation, Vocabulary, vocabulary
from ._labcode import lab_code

_NO_GRID = frozenset({"patient_last"})


@dataclass(frozen=True)
class ScalePlan:
    """What the timeline feeds one scale: its derivable findings and its assessment grid."""

    scale_id: str
    findings: tuple[str, ...]
    grid_codes: frozenset[str]
    interval_codes: frozenset[str]
    #: a CTCAE laboratory term: the observation code its results come from (:mod:`._labs`)
    lab: str | None = None

    @property
    def scale(self) -> Scale:
        return all_scales()[self.scale_id]


def plan(scale: Scale, voc: Vocabulary | None = None) -> ScalePlan:
    """The plan of ``scale``: the findings it reads that a timeline can reconstruct.

    The assessment grid is every distinct time of a row of a code those findings read (patient
    attributes such as age excepted), plus the end times of interval rows. A CTCAE laboratory
    term is assessed at every result of its observation code (:mod:`._labs`). A scale that reads
    ``fever_masked`` also gets the rows its masking rule reads (fever, hypotension, hypoxia).
    """
    v = voc or vocabulary()
    code = lab_code(scale.id)
    if code is not None:  # graded at every result of its code (inputs: module _labs)
        return ScalePlan(scale.id, (), frozenset({code}), frozenset(), code)
    findings = tuple(k for k in scale.findings if k in v.derivations)
    codes: set[str] = set()
    for k in findings:
        d = v.derivations[k]
        if d.method in _NO_GRID:
            continue
        codes.update(d.codes)
        if d.method == "masking":
            for extra in ("temperature_c", "sbp_mmhg", "vasopressors", "oxygen"):
                if extra in v.derivations:
                    codes.update(v.derivations[extra].codes)
    intervals = frozenset(c for c in codes if v.code(c).interval)
    return ScalePlan(scale.id, findings, frozenset(codes), intervals)


def codes_read(plans: Sequence[ScalePlan]) -> frozenset[str]:
    """The observation codes the ``plans`` read (and ``infusion``, day 0): the rows worth keeping."""
    voc = vocabulary()
    keep: set[str] = {"infusion"}
    for p in plans:
        keep |= p.grid_codes
        if p.lab is not None:  # the patient's age selects the default reference interval
            keep.add("age")
        for k in p.findings:
            keep.update(voc.derivations[k].codes)
    return frozenset(keep)


def _num(x: Any) -> float | None:
    if x is None:
        return None
    f = float(x)
    return None if math.isnan(f) else f


def finding_value(d: Derivation, raw: Any, voc: Vocabulary, with_units: bool = False) -> Any:
    """The finding value of derivation ``d`` for its raw state ``raw``; None = unknown (omit).

    ``with_units``: a quantity whose finding requires its unit (laboratories report it in
    different units: creatinine, glucose…) is given as ``{"value": x, "unit": <the code's unit>}``,
    as the grading core takes it; otherwise a bare number in the code's unit (the live grades'
    callers add the unit themselves).
    """
    m = d.method
    if m in ("window_max", "window_min", "last", "device_last", "patient_last"):
        x = _num(raw)
        if x is None:
            return None
        spec = voc.code(d.codes[0])
        if spec.kind == "quantity":
            declared = finding_specs().get(d.finding)
            needs_unit = with_units and declared is not None and bool(declared.unit_required)
            return {"value": x, "unit": spec.unit} if needs_unit else x
        if spec.kind == "integer":
            return int(x)
        if spec.kind == "bool":
            return bool(int(x))
        return spec.tokens[int(x)]
    if m == "device":
        return voc.code(d.codes[0]).tokens[int(raw)]
    if m == "active_set":
        tokens = voc.code(d.codes[0]).tokens
        mask = int(raw)
        return [tok for i, tok in enumerate(tokens) if mask >> i & 1]
    if m == "active_hours":
        return _num(raw)
    if m == "masking":
        return bool(raw)
    if m == "event_since":
        return True if raw else None
    if m == "series":
        return series_points(d, raw, voc)
    if m == "record_last":
        out: dict[str, int] = {}
        for code, x in zip(d.codes, raw, strict=True):
            xv = _num(x)
            if xv is not None:
                item = voc.code(code).item
                assert item is not None
                out[item] = int(xv)
        return out or None
    raise AssertionError(m)


def series_points(d: Derivation, raw: Any, voc: Vocabulary) -> list[dict[str, Any]]:
    """The finding of a ``series`` derivation: its raw ``((day, value), ...)`` as points
    ``{"day": d, "value": {"value": x, "unit": <the code's unit>}}`` (the unit always explicit),
    leaving out the points outside the finding's day range (``fields`` of its declaration)."""
    spec = finding_specs()[d.finding]
    (index, (lo, hi)), *_ = spec.fields.items()
    unit = voc.code(d.codes[0]).unit
    return [
        {index: int(day), "value": {"value": float(x), "unit": unit}} for day, x in raw if lo <= day <= hi
    ]


def findings_from_raw(
    p: ScalePlan, raw: Mapping[str, Any], voc: Vocabulary | None = None, *, with_units: bool = False
) -> dict[str, Any]:
    """The findings dict of one assessment from the raw state of each of ``p.findings``
    (``with_units``: see :func:`finding_value`; the cohort engines pass it)."""
    v = voc or vocabulary()
    out: dict[str, Any] = {}
    for k in p.findings:
        d = v.derivations[k]
        if d.unless is not None and raw.get(d.unless) is not None and _num(raw[d.unless]) is not None:
            continue
        val = finding_value(d, raw[k], v, with_units)
        if val is not None:
            out[k] = val
    return out


@dataclass(frozen=True)
class GradeRow:
    """The grade of one assessment: lower bound, upper bound, completeness, assessability."""

    grade: int | None
    lo: int
    hi: int
    complete: bool
    error: str | None = None


def _freeze(x: Any) -> Any:
    if isinstance(x, list):
        return tuple(_freeze(v) for v in x)
    if isinstance(x, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in x.items()))
    return x


class Grader:
    """Calls the grading core for snapshots, memoised (a grade is a pure function of findings)."""

    def __init__(self, memo: bool = True) -> None:
        self.memo = memo
        self._cache: dict[tuple[str, tuple[tuple[str, Any], ...]], GradeRow] = {}
        self.refused: dict[str, int] = {}
        self.first_refusal: dict[str, str] = {}

    def grade(self, scale: Scale, findings: Mapping[str, Any]) -> GradeRow:
        if not self.memo:
            hit = grade_findings(scale, findings)
        else:
            key = (scale.id, tuple(sorted((k, _freeze(v)) for k, v in findings.items())))
            cached = self._cache.get(key)
            if cached is None:
                cached = grade_findings(scale, findings)
                if len(self._cache) > 500_000:
                    self._cache.clear()
                self._cache[key] = cached
            hit = cached
        if hit.error is not None:
            self.refused[scale.id] = self.refused.get(scale.id, 0) + 1
            self.first_refusal.setdefault(scale.id, hit.error)
        return hit


def grade_findings(scale: Scale, findings: Mapping[str, Any]) -> GradeRow:
    """Grade one snapshot with the grading core; a snapshot the scale refuses is not assessable."""
    try:
        r = scale.grade(findings)
    except FindingError as exc:
        return GradeRow(None, min(scale.grades), max(scale.grades), False, str(exc))
    if r.grade_range is None:  # not applicable (late ICAHT without a late window): no grade, never 0
        return GradeRow(None, min(scale.grades), max(scale.grades), True)
    lo, hi = r.grade_range
    return GradeRow(r.grade, int(lo), int(hi), bool(r.complete))
