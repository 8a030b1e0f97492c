"""CTCAE laboratory grades in the service: findings from stored results, FHIR reference ranges,
and the alert policy applied to lab grade transitions.

Every CTCAE v5.0 laboratory term of ``data/reference_intervals.toml`` ``[terms]`` (ALT, AST,
bilirubin, creatinine, neutrophils, platelets, haemoglobin, lymphocytes, white cells, fibrinogen)
is a scale of the service for every patient, graded once the patient has a result of its
analyte (no result: no grade, never a normal one). The grading core is the catalogue's
(:mod:`immunotox.scales.ctcae_lab`); this module only reconstructs its findings at the
evaluation time ``t`` (the time of the patient's latest result of the analyte):

==============  ================================================================================
finding         reconstruction
==============  ================================================================================
``value``       the result at ``t`` (several at ``t``: the worst, the vocabulary's ``ties``)
``uln``/``lln`` that result's own reference interval (``ref_high``/``ref_low``) when reported with
                it; otherwise the site's default interval for the patient's sex and age at ``t``
                (:func:`immunotox.labs.default_interval`, cited); otherwise unknown
``baseline``    (terms that read it) the patient's latest result of the analyte before day 0
                (``infusion_at``: infusion or first dose); unknown when none was recorded, when
                day 0 is not recorded, or for a result that is itself before day 0
==============  ================================================================================

An unknown reference or baseline is never assumed: the core then gives the range of grades
still possible and names the input. The inputs of each grade say which interval and which
baseline were used, in English and French (``rule``/``rule_fr``).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import labs, units
from ..catalogue import get_scale
from ..errors import FindingError, UnitError
from ..messages import Msg, name, render
from ..messages import error as E
from ..scales.ctcae_spec import LAB_INPUTS
from ..vocabulary import CodeSpec, vocabulary
from .models import ClinicalEvent, Patient

Key = tuple[str, str]

#: scale id -> the observation code it is graded from
SCALE_CODE: dict[str, str] = {s: code for code, scales in labs.lab_terms().items() for s in scales}
LAB_SCALES: tuple[str, ...] = tuple(SCALE_CODE)
LAB_CODES: frozenset[str] = frozenset(SCALE_CODE.values())
SCALE_CODES: dict[str, frozenset[str]] = {s: frozenset({c}) for s, c in SCALE_CODE.items()}
#: the findings of a lab term, passed to the core as ``{"value": x, "unit": u}`` (the unit is
#: always given: some analytes refuse a bare number, French and US laboratories differ)
QUANTITIES = frozenset(LAB_INPUTS)


def is_lab(scale: str) -> bool:
    return scale in SCALE_CODE


# ----------------------------------------------------------------------------- findings
_COLS = (
    ClinicalEvent.patient_id,
    ClinicalEvent.id,
    ClinicalEvent.code,
    ClinicalEvent.time,
    ClinicalEvent.value_num,
    ClinicalEvent.ref_low,
    ClinicalEvent.ref_high,
)


def _worst(rows: Sequence[Any], spec: CodeSpec) -> Any:
    """The row of ``rows`` (same time) the vocabulary's ``ties`` picks: the worst value."""
    sign = -1.0 if spec.ties == "min" else 1.0
    return max(rows, key=lambda r: (sign * (r.value_num or 0.0), r.id))


def _latest(rows: Sequence[Any], spec: CodeSpec) -> Any:
    top = max(r.time for r in rows)
    return _worst([r for r in rows if r.time == top], spec)


def _when(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def age_at(patient: Patient, t: dt.datetime, age_rows: Sequence[Any]) -> float | None:
    if patient.birth_date is not None:
        bd, d = patient.birth_date, t.date()
        return float(max(d.year - bd.year - ((d.month, d.day) < (bd.month, bd.day)), 0))
    rows = [r for r in age_rows if r.time <= t and r.value_num is not None]
    return float(max(rows, key=lambda r: (r.time, r.id)).value_num) if rows else None


def _use(
    inputs: dict[str, Any], key: str, value: Any, msg: Msg, rows: Sequence[Any] = (), **extra: Any
) -> None:
    inputs[key] = {
        "value": value,
        "rule": render(msg, "en"),
        "rule_fr": render(msg, "fr"),
        "events": [r.id for r in rows],
        **extra,
    }


def lab_findings(
    session: Session, patients: Mapping[str, Patient], times: Mapping[Key, dt.datetime], current: Any
) -> dict[Key, tuple[dict[str, Any], dict[str, Any]]]:
    """(findings, inputs) of each (patient, lab scale) at its time, in three queries
    (``current``: the SQL condition selecting the current version of each event)."""
    if not times:
        return {}
    ids = sorted({pid for pid, _ in times})
    codes = sorted({SCALE_CODE[s] for _, s in times})
    cur = current
    at_t: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for r in session.execute(  # the results at the evaluation times (t is a result's time)
        select(*_COLS).where(
            ClinicalEvent.patient_id.in_(ids),
            ClinicalEvent.code.in_(codes),
            ClinicalEvent.time.in_(sorted(set(times.values()))),
            cur,
        )
    ):
        at_t[(r.patient_id, r.code)].append(r)
    before, ages = before_day0_and_ages(session, patients, ids, codes, cur)
    out: dict[Key, tuple[dict[str, Any], dict[str, Any]]] = {}
    for (pid, scale), t in times.items():
        code = SCALE_CODE[scale]
        rows = [r for r in at_t.get((pid, code), []) if r.time == t]
        if not rows:  # no current result at t: the pair is left out
            continue
        p = patients[pid]
        out[(pid, scale)] = _findings(
            p,
            scale,
            t,
            _worst(rows, vocabulary().code(code)),
            before.get((pid, code), []),
            ages.get(pid, []),
        )
    return out


def before_day0_and_ages(
    session: Session, patients: Mapping[str, Patient], ids: Sequence[str], codes: Sequence[str], current: Any
) -> tuple[dict[tuple[str, str], list[Any]], dict[str, list[Any]]]:
    """The results of ``codes`` before each patient's day 0 (the baselines), by (patient, code),
    and the ``age`` rows of the patients without a birth date (their default intervals): two
    queries at most."""
    before: dict[tuple[str, str], list[Any]] = defaultdict(list)
    if codes:
        for r in session.execute(
            select(*_COLS)
            .join(Patient, Patient.id == ClinicalEvent.patient_id)
            .where(
                ClinicalEvent.patient_id.in_(ids),
                ClinicalEvent.code.in_(codes),
                Patient.infusion_at.is_not(None),
                ClinicalEvent.time < Patient.infusion_at,
                current,
            )
        ):
            before[(r.patient_id, r.code)].append(r)
    no_birth = [pid for pid in ids if patients[pid].birth_date is None]
    ages: dict[str, list[Any]] = defaultdict(list)
    if no_birth:
        for r in session.execute(
            select(*_COLS).where(ClinicalEvent.patient_id.in_(no_birth), ClinicalEvent.code == "age", current)
        ):
            ages[r.patient_id].append(r)
    return before, ages


@functools.cache
def _term_refs(scale: str) -> tuple[str, ...]:
    found = get_scale(scale).findings
    return tuple(k for k in ("uln", "lln", "baseline") if k in found)


def _findings(
    p: Patient, scale: str, t: dt.datetime, row: Any, before: Sequence[Any], age_rows: Sequence[Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    code = SCALE_CODE[scale]
    spec = vocabulary().code(code)
    unit = name(spec.unit)
    f: dict[str, Any] = {"value": row.value_num}
    inputs: dict[str, Any] = {}
    _use(
        inputs,
        "value",
        row.value_num,
        labs.texts.m("value", value=row.value_num, unit=unit, time=_when(row.time)),
        [row],
    )
    age = age_at(p, t, age_rows)
    for ref in _term_refs(scale):
        x = reference(inputs, ref, ref, p, code, row, t, before, age)
        if x is not None:
            f[ref] = x
    return {k: {"value": v, "unit": spec.unit} for k, v in f.items()}, inputs


def reference(
    inputs: dict[str, Any],
    key: str,
    ref: str,
    p: Patient,
    code: str,
    row: Any,
    t: dt.datetime,
    before: Sequence[Any],
    age: float | None,
) -> float | None:
    """The reference ``ref`` (``uln``, ``lln`` or ``baseline``) of result ``row`` of ``code`` at
    ``t``, recorded in ``inputs[key]`` with the rule it came from in English and French (None:
    unknown, and the input says why). ``uln``/``lln``: the result's own interval, else the site's
    default interval for the patient (``age`` in years at ``t``), else unknown; ``baseline``: the
    latest result before day 0 (``before``: the patient's results of ``code`` before day 0)."""
    spec = vocabulary().code(code)
    unit = name(spec.unit)
    if ref == "baseline":
        day0 = p.infusion_at
        if day0 is None:
            _use(inputs, key, None, labs.texts.m("no_day0"))
        elif t < day0:
            _use(inputs, key, None, labs.texts.m("before_day0", day0=_when(day0)))
        elif before:
            b = _latest(before, spec)
            msg = labs.texts.m("baseline", value=b.value_num, unit=unit, day0=_when(day0), time=_when(b.time))
            _use(inputs, key, b.value_num, msg, [b])
            return float(b.value_num)
        else:
            _use(inputs, key, None, labs.texts.m("no_baseline", day0=_when(day0)))
        return None
    own = row.ref_high if ref == "uln" else row.ref_low
    if own is not None:
        msg = labs.texts.m(
            "own_interval",
            ref=labs.ref_name(ref),
            value=own,
            unit=unit,
            low=row.ref_low if row.ref_low is not None else "?",
            high=row.ref_high if row.ref_high is not None else "?",
        )
        _use(inputs, key, own, msg, [row], interval="observation")
        return float(own)
    default = labs.default_interval(code, p.sex, age)
    if default is not None:
        value = default.high if ref == "uln" else default.low
        _use(
            inputs,
            key,
            value,
            labs.interval_msg(ref, default),
            interval="site_default",
            default=default.public(),
        )
        return value
    msg = labs.texts.m("no_interval", ref=labs.ref_name(ref), population=labs.population_msg(p.sex, age))
    _use(inputs, key, None, msg, interval="none")
    return None


# ----------------------------------------------------------------------------- FHIR
def fhir_reference_range(
    res: Any, spec: CodeSpec, unit: str | None, prefix: str, ucum: str
) -> tuple[dict[str, Any], str]:
    """``{"ref_low": x, "ref_high": y}`` from an Observation's ``referenceRange`` (in the value's
    ``unit``; a limit in another UCUM unit of the analyte is converted), and the field prefix of
    the range used (for error messages). The first range without a ``type`` or of type
    ``normal`` is the result's reference interval; a limit without a UCUM unit is refused. The
    ranges of a code that is not a laboratory quantity (a vital sign) are not read, as before."""
    if spec.kind != "quantity" or spec.category != "laboratory":
        return {}, prefix
    ranges = list(getattr(res, "referenceRange", None) or [])
    for i, rr in enumerate(ranges):
        kinds = [c.code for c in (rr.type.coding or [])] if getattr(rr, "type", None) is not None else []
        if kinds and "normal" not in kinds:
            continue
        where = f"{prefix}referenceRange.{i}."
        out: dict[str, Any] = {}
        for side in ("low", "high"):
            q = getattr(rr, side, None)
            if q is None:
                continue
            if q.value is None:
                raise FindingError(f"{where}{side}.value", None, E("fhir.reference_value"))
            if q.system not in (None, ucum):
                raise FindingError(f"{where}{side}.system", q.system, E("fhir.ucum_system", system=ucum))
            code = q.code or q.unit
            if not code:
                raise FindingError(
                    f"{where}{side}.code",
                    None,
                    E("fhir.reference_unit"),
                    E("eg", example=repr(spec.unit)),
                )
            x = float(q.value)
            if unit and code != unit:
                try:
                    x = units.convert(spec.name, x, code, unit, spec.molar_mass)
                except UnitError as exc:
                    raise UnitError(f"{where}{side}.code", code, *exc.texts()) from None
            out[f"ref_{side}"] = x
        return out, where
    return {}, f"{prefix}referenceRange.0."


# ----------------------------------------------------------------------------- alert policy
@functools.cache
def _named_in_policy() -> frozenset[str]:
    """The scales a rule of the alert policy names explicitly."""
    return frozenset(t for r in labs.policy().rules for t in r.terms if t != "*")


def alert_rule(patient: Patient, scale: str, time: dt.datetime) -> labs.AlertRule | None:
    """The policy rule deciding the alerts of a lab grade transition (None: not a lab scale). A
    scale a rule of the policy names (the ASCO 2021 organ grades read from laboratory results,
    :mod:`.organ_labs`) follows the same policy: its grade 1 is a laboratory finding followed by
    monitoring, as the CTCAE term's."""
    if not is_lab(scale) and scale not in _named_in_policy():
        return None
    return labs.alert_rule(patient.therapy_class, labs.phase_of(time, patient.infusion_at), scale)


def should_alert(patient: Patient, scale: str, grade: int | None, time: dt.datetime) -> bool:
    """Whether a grade transition may raise an alert: always for ASTCT scales; for a CTCAE
    laboratory term (or an organ grade read from laboratory results) when the policy's rule for
    the patient's therapy class and phase lets its grade through (``data/lab_alert_policy.toml``)."""
    rule = alert_rule(patient, scale, time)
    return rule is None or rule.alerts(grade)


def with_policy(patient: Patient, spec: Any) -> Any:
    """An alert specification of a lab grade with the policy rule that let it through in its
    parameters, and the term's French name in its French texts."""
    rule = alert_rule(patient, spec.scale, spec.triggered_at) if spec.scale else None
    if rule is None:
        return spec
    phase = labs.phase_of(spec.triggered_at, patient.infusion_at)
    scale = get_scale(spec.scale)
    en, fr = scale.title, render(scale.title_msg(), "fr")
    return replace(
        spec,
        title_fr=spec.title_fr.replace(en, fr),
        message_fr=spec.message_fr.replace(en, fr),
        params={
            **(spec.params or {}),
            "policy": {
                **rule.public(),
                "phase": phase,
                "why": render(rule.why(), "en"),
                "why_fr": render(rule.why(), "fr"),
            },
        },
    )
