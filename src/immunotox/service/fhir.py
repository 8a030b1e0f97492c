"""FHIR R4 import and export, with the ``fhir.resources`` **R4B** models.

FHIR release
    ``fhir.resources`` (7.0 and later) ships R5, R4B and STU3 models but no R4 package. R4B
    (4.3.0) left Patient, Observation, MedicationAdministration, AdverseEvent and Bundle
    wire-compatible with R4 (4.0.1) for every element used here, so R4 documents parse with the
    R4B models and our R4B output is valid R4. Resources outside that set are reported as
    skipped, never half-read.

Import (:func:`import_bundle`) — a ``Bundle`` (any type) of:

* ``Patient`` -> a patient record (id = the resource id; a new patient needs ``unit_id``);
  birthDate, gender and name are read;
* ``Observation`` -> one contract row per value (LOINC codings of ``data/observations.toml``, or our
  own code system; ``valueQuantity`` in UCUM, converted to the canonical unit); a blood pressure
  panel gives one row per component; ``effectiveDateTime`` / ``effectivePeriod`` /
  ``effectiveInstant`` (a date without time is read as 00:00 UTC and said so);
* ``MedicationAdministration`` -> an administration row (drug from ATC code, coding display or
  text, ``data/fhir.toml``; ``dosage.dose`` or ``dosage.rateQuantity`` as the dose).

The import is all-or-nothing; each problem names its place in the bundle
(``entry.3.resource.valueQuantity.value``). Re-importing a resource already imported (same
resource id, same patient) stores nothing again (``duplicate``). Status ``entered-in-error``,
``cancelled`` and ``not-done`` resources and medications outside ``data/fhir.toml`` are
skipped with their reason.

Export (:func:`export_patient`) — a ``collection`` Bundle with the Patient, one Observation or
MedicationAdministration per current event (round-trips through the import), one Observation per
current grade (our grading-scale code system, ``valueInteger`` = the grade, components for the
possible range, status ``preliminary`` while inputs are missing) and one AdverseEvent per
toxicity episode (grade in an extension, ASTCT-style severity mapped to mild/moderate/severe,
outcome ongoing/resolved).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import pydantic
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import __version__
from ..catalogue import get_scale
from ..errors import FindingError
from ..messages import Catalogue, Lang, Msg, render
from ..messages import error as E
from . import codes, grading, ingest, labs
from .config import Settings
from .db import as_utc
from .grades import Grade
from .models import ClinicalEvent, Episode, Patient
from .problems import Refusal
from .schemas import EventPublic

FHIR_RELEASE = "R4 (4.0.1), read and written with fhir.resources R4B (4.3.0) models"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ATC = "http://www.whocc.no/atc"
BASE = "https://immunotox.org/fhir"
OBS_SYSTEM = f"{BASE}/CodeSystem/observation-code"
SCALE_SYSTEM = f"{BASE}/CodeSystem/grading-scale"
TOKEN_SYSTEM = f"{BASE}/CodeSystem/value"
GRADE_EXT = f"{BASE}/StructureDefinition/toxicity-grade"
SCALE_EXT = f"{BASE}/StructureDefinition/grading-scale"
# the organ of a toxicity: its MedDRA system organ class (the SOC of the CTCAE terms; the ASCO 2021
# organ scales declare theirs), as text
ORGAN_EXT = f"{BASE}/StructureDefinition/organ-class"
PATIENT_ID_SYSTEM = f"{BASE}/sid/patient-id"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
AE_SEVERITY = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
AE_OUTCOME = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"
BP_PANEL = "85354-9"
PATIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ADMINISTRATION_CODES = (
    "tocilizumab",
    "corticosteroid",
    "antipyretic",
    "vasopressor",
    "anakinra",
    "fluid_bolus",
)


class FhirImportError(Exception):
    """Problems found in a bundle (nothing was stored): refused values, or elements and their
    problem, written in French and English (:func:`immunotox.service.problems.refused`)."""

    def __init__(self, problems: list[Refusal]) -> None:
        first = problems[0] if problems else None
        super().__init__(first if isinstance(first, FindingError) or first is None else first[1].text())
        self.problems = problems


@functools.cache
def medications() -> dict[str, dict[str, Any]]:
    text = resources.files("immunotox.service").joinpath("data/fhir.toml").read_text("utf-8")
    meds: dict[str, dict[str, Any]] = tomllib.loads(text)["medication"]
    return meds


@functools.cache
def _med_index() -> tuple[dict[str, str], dict[str, str]]:
    by_atc: dict[str, str] = {}
    by_name: dict[str, str] = {}
    for token, m in medications().items():
        by_atc[m["atc"]] = token
        for n in m["names"]:
            by_name[n.lower()] = token
    return by_atc, by_name


# ----------------------------------------------------------------------------- import
_M = Catalogue("messages")


def _said(_key: str, /, **params: Any) -> Msg:
    """A text of an import report entry, in French and English (``messages:fhir_import.<key>``)."""
    return _M(f"fhir_import.{_key}", **params)


@dataclass
class EntryResult:
    index: int
    resource_type: str
    resource_id: str | None
    outcome: str
    reason: Msg | None = None  # why it was skipped or what to check (``messages:fhir_import.*``)

    def reason_text(self, lang: Lang = "en") -> str | None:
        return None if self.reason is None else render(self.reason, lang)

    event_ids: list[int] = field(default_factory=list)


@dataclass
class ImportReport:
    patients_created: list[str] = field(default_factory=list)
    events: list[EventPublic] = field(default_factory=list)
    entries: list[EntryResult] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.entries:
            out[e.outcome] = out.get(e.outcome, 0) + 1
        return out


def parse_bundle(raw: Any) -> Bundle:
    """Validate ``raw`` against the R4B Bundle model; problems name their path."""
    if not isinstance(raw, dict) or raw.get("resourceType") != "Bundle":
        raise FhirImportError([("resourceType", E("fhir.bundle_expected"))])
    try:
        return Bundle.model_validate(raw)
    except pydantic.ValidationError as exc:
        # the validator's own words, in English (quoted as such in French)
        problems: list[Refusal] = [
            (".".join(str(x) for x in err["loc"]), E("fhir.model", msg=err["msg"]))
            for err in exc.errors()[:50]
        ]
        raise FhirImportError(problems) from None


def _when(res: Any, prefix: str) -> tuple[dt.datetime, dt.datetime | None, str | None]:
    """(time, end_time, note) from effective[x]."""
    note = None
    value = getattr(res, "effectiveDateTime", None) or getattr(res, "effectiveInstant", None)
    end = None
    if value is None and getattr(res, "effectivePeriod", None) is not None:
        value = res.effectivePeriod.start
        end = res.effectivePeriod.end
    if value is None:
        raise FindingError(f"{prefix}effectiveDateTime", None, E("fhir.time_required"))
    start, n1 = _as_datetime(value)
    stop, n2 = _as_datetime(end) if end is not None else (None, None)
    note = n1 or n2
    return start, stop, note


def _as_datetime(value: Any) -> tuple[dt.datetime, str | None]:
    if isinstance(value, dt.datetime):
        return as_utc(value), None
    if isinstance(value, dt.date):
        # the note is stored on the event as written (English); its French twin is data too
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC), _said("notes.date_only").text(
            "en"
        )
    text = str(value)
    if len(text) in (4, 7):  # year or year-month
        parts = [int(x) for x in text.split("-")] + [1, 1]
        return dt.datetime(parts[0], parts[1], 1, tzinfo=dt.UTC), _said("notes.partial_date").text("en")
    return as_utc(dt.datetime.fromisoformat(text)), None


def _obs_code(cc: Any) -> tuple[str | None, str | Msg]:
    """(canonical code or None, what was found) of an Observation.code."""
    found = []
    for coding in (cc.coding or []) if cc is not None else []:
        found.append(f"{coding.system}|{coding.code}")
        if coding.system == LOINC and coding.code in codes.loinc_index():
            return codes.loinc_index()[coding.code], found[-1]
        if coding.system == OBS_SYSTEM and coding.code in codes.vocabulary():
            return coding.code, found[-1]
    return None, ", ".join(found) or _said("no_coding")


def _value(res: Any, prefix: str) -> tuple[Any, str | None, str]:
    """(value, unit, field name) of an Observation or component value[x]."""
    q = getattr(res, "valueQuantity", None)
    if q is not None:
        if q.value is None:
            raise FindingError(f"{prefix}valueQuantity.value", None, E("fhir.quantity_value"))
        if q.system not in (None, UCUM):
            raise FindingError(f"{prefix}valueQuantity.system", q.system, E("fhir.ucum_system", system=UCUM))
        return float(q.value), q.code or q.unit, "valueQuantity.value"
    for name in ("valueInteger", "valueBoolean", "valueString"):
        v = getattr(res, name, None)
        if v is not None:
            return v, None, name
    cc = getattr(res, "valueCodeableConcept", None)
    if cc is not None:
        for coding in cc.coding or []:
            if coding.system == TOKEN_SYSTEM and coding.code:
                return coding.code, None, "valueCodeableConcept"
        if cc.text:
            return cc.text, None, "valueCodeableConcept.text"
    raise FindingError(f"{prefix}value", None, E("fhir.no_value"))


def _subject(res: Any, prefix: str, known: set[str]) -> str:
    ref = getattr(getattr(res, "subject", None), "reference", None)
    if not ref or not ref.startswith("Patient/"):
        raise FindingError(f"{prefix}subject.reference", ref, E("fhir.subject_reference"))
    pid = str(ref.split("/", 1)[1])
    if pid not in known:
        raise FindingError(f"{prefix}subject.reference", ref, E("fhir.no_such_patient"))
    return pid


def _medication(res: Any) -> tuple[str | None, str | Msg]:
    concepts = []
    if getattr(res, "medicationCodeableConcept", None) is not None:
        concepts.append(res.medicationCodeableConcept)
    ref = getattr(getattr(res, "medicationReference", None), "reference", None)
    if ref and ref.startswith("#"):
        for c in res.contained or []:
            if c.get_resource_type() == "Medication" and c.id == ref[1:] and c.code is not None:
                concepts.append(c.code)
    by_atc, by_name = _med_index()
    seen = []
    for cc in concepts:
        for coding in cc.coding or []:
            seen.append(coding.display or coding.code or "")
            if coding.system == ATC and coding.code in by_atc:
                return by_atc[coding.code], seen[-1]
        for text in [cc.text, *(c.display for c in cc.coding or [])]:
            if not text:
                continue
            low = text.lower()
            for name, token in by_name.items():
                if name in low:
                    return token, text
            seen.append(text)
    return None, ", ".join(s for s in seen if s) or _said("no_medication_code")


def import_bundle(
    session: Session,
    raw: Any,
    *,
    unit_id: str | None,
    writable: Any,
    user_id: int | None,
    now: dt.datetime,
    settings: Settings,
) -> ImportReport:
    """Import ``raw`` (a Bundle as JSON) into the event stream; raise FhirImportError on problems.

    ``writable(patient) -> bool`` says whether the caller may write to an existing patient.
    """
    bundle = parse_bundle(raw)
    report = ImportReport()
    problems: list[Refusal] = []
    entries = bundle.entry or []
    # patients first (an Observation may reference a Patient later in the bundle)
    new_patients: dict[str, Patient] = {}
    for i, entry in enumerate(entries):
        res: Any = entry.resource
        if res is None or res.get_resource_type() != "Patient":
            continue
        pfx = f"entry.{i}.resource."
        if not res.id:
            problems.append(FindingError(f"{pfx}id", None, E("fhir.patient_id_needed")))
            continue
        existing = session.get(Patient, res.id)
        if existing is not None:
            if not writable(existing):
                problems.append(FindingError(f"{pfx}id", res.id, E("fhir.not_writable")))
            report.entries.append(EntryResult(i, "Patient", res.id, "exists"))
            continue
        if unit_id is None:
            problems.append(("query.unit_id", E("fhir.unit_needed", patient=repr(res.id))))
            continue
        if not PATIENT_ID.match(res.id):
            problems.append(FindingError(f"{pfx}id", res.id, E("fhir.patient_id_format")))
            continue
        name = ""
        if res.name:
            n = res.name[0]
            name = n.text or " ".join([*(n.given or []), n.family or ""]).strip()
        gender = res.gender if res.gender in ("female", "male", "other", "unknown") else None
        birth = res.birthDate if isinstance(res.birthDate, dt.date) else None
        p = Patient(
            id=res.id,
            unit_id=unit_id,
            display_name=name[:200],
            birth_date=birth,
            sex=gender,
            therapy_class="car_t",
            created_at=now,
            updated_at=now,
        )
        new_patients[res.id] = p
        report.entries.append(EntryResult(i, "Patient", res.id, "created", _said("created_car_t")))
    known_ids = set(new_patients)
    refs = set()
    for entry in entries:
        res = entry.resource
        if res is not None and res.get_resource_type() in ("Observation", "MedicationAdministration"):
            ref = getattr(getattr(res, "subject", None), "reference", None)
            if ref and ref.startswith("Patient/"):
                refs.add(ref.split("/", 1)[1])
    existing_patients = {
        p.id: p for p in session.scalars(select(Patient).where(Patient.id.in_(refs - known_ids)))
    }
    for p in existing_patients.values():
        if writable(p):
            known_ids.add(p.id)
    rows: list[tuple[int, ingest.Row]] = []
    for i, entry in enumerate(entries):
        res = entry.resource
        if res is None:
            continue
        rtype = res.get_resource_type()
        pfx = f"entry.{i}.resource."
        try:
            if rtype == "Patient":
                continue
            if rtype == "Observation":
                rows += [(i, r) for r in _observation_rows(res, pfx, known_ids, now, settings, report, i)]
            elif rtype == "MedicationAdministration":
                rows += [(i, r) for r in _administration_rows(res, pfx, known_ids, now, settings, report, i)]
            else:
                skipped = EntryResult(i, rtype, res.id, "skipped", _said("not_imported", rtype=rtype))
                report.entries.append(skipped)
        except FindingError as exc:
            problems.append(exc)
    if problems:
        raise FhirImportError(problems)
    for p in new_patients.values():
        session.add(p)
        report.patients_created.append(p.id)
    session.flush()
    # duplicates: resources already imported for the same patient
    ext = {(r.patient_id, r.external_id) for _, r in rows if r.external_id}
    done: set[tuple[str, str | None]] = set()
    if ext:
        for pid, eid in session.execute(
            select(ClinicalEvent.patient_id, ClinicalEvent.external_id).where(
                ClinicalEvent.external_id.in_({e for _, e in ext}),
                ClinicalEvent.patient_id.in_({p for p, _ in ext}),
            )
        ):
            done.add((pid, eid))
    fresh = [(i, r) for i, r in rows if (r.patient_id, r.external_id) not in done]
    events = ingest.store(session, [r for _, r in fresh], user_id=user_id, source="fhir", now=now)
    report.events = events
    by_entry: dict[int, list[int]] = {}
    for (i, _), e in zip(fresh, events, strict=True):
        by_entry.setdefault(i, []).append(e.id)
    dup_entries = {i for i, r in rows if (r.patient_id, r.external_id) in done}
    for er in report.entries:
        if er.outcome == "pending":
            if er.index in by_entry:
                er.outcome = "stored"
                er.event_ids = by_entry[er.index]
            elif er.index in dup_entries:
                er.outcome = "duplicate"
                er.reason = _said("duplicate")
    report.entries.sort(key=lambda e: e.index)
    return report


def _status_skip(res: Any, rtype: str, report: ImportReport, i: int) -> bool:
    status = getattr(res, "status", None)
    if status in ("entered-in-error", "cancelled", "not-done", "registered", "unknown"):
        report.entries.append(EntryResult(i, rtype, res.id, "skipped", _said("status", status=repr(status))))
        return True
    return False


def _observation_rows(
    res: Any, pfx: str, known: set[str], now: dt.datetime, settings: Settings, report: ImportReport, i: int
) -> list[ingest.Row]:
    if _status_skip(res, "Observation", report, i):
        return []
    if getattr(res, "dataAbsentReason", None) is not None and not res.component:
        report.entries.append(EntryResult(i, "Observation", res.id, "skipped", _said("data_absent")))
        return []
    pid = _subject(res, pfx, known)
    time, end, note = _when(res, pfx)
    ext_base = f"Observation/{res.id}" if res.id else None
    code, found = _obs_code(res.code)
    parts: list[tuple[str, Any, str]] = []  # (code, element, field prefix)
    if code is not None and not (code in ("sbp", "dbp") and res.component):
        parts.append((code, res, pfx))
    elif res.component:
        for k, comp in enumerate(res.component):
            ccode, _ = _obs_code(comp.code)
            if ccode is not None:
                parts.append((ccode, comp, f"{pfx}component.{k}."))
    if not parts:
        report.entries.append(
            EntryResult(i, "Observation", res.id, "skipped", _said("code_not_monitored", found=found))
        )
        return []
    out = []
    for k, (ccode, element, epfx) in enumerate(parts):
        value, unit, vname = _value(element, epfx)
        spec = codes.vocabulary()[ccode]
        refs, rpfx = labs.fhir_reference_range(element, spec, unit, epfx, UCUM)
        try:
            row = ingest.prepare(
                pid,
                {
                    "code": ccode,
                    "time": time,
                    "value": value,
                    "unit": unit,
                    "end_time": end if spec.interval else None,
                    **refs,
                    "note": note,
                    "external_id": (f"{ext_base}#{k}" if len(parts) > 1 else ext_base) if ext_base else None,
                },
                now=now,
                settings=settings,
            )
        except FindingError as exc:
            name = {
                "value": vname,
                "unit": "valueQuantity.code",
                "time": "effectiveDateTime" if res.effectiveDateTime is not None else "effectivePeriod.start",
                "end_time": "effectivePeriod.end",
                "ref_low": "low.value",
                "ref_high": "high.value",
            }.get(exc.field, exc.field)
            where = pfx if name.startswith("effective") else rpfx if exc.field.startswith("ref_") else epfx
            raise FindingError(f"{where}{name}", exc.value, *exc.texts()) from None
        out.append(row)
    report.entries.append(EntryResult(i, "Observation", res.id, "pending"))
    return out


def _administration_rows(
    res: Any, pfx: str, known: set[str], now: dt.datetime, settings: Settings, report: ImportReport, i: int
) -> list[ingest.Row]:
    if _status_skip(res, "MedicationAdministration", report, i):
        return []
    token, found = _medication(res)
    if token is None:
        report.entries.append(
            EntryResult(
                i,
                "MedicationAdministration",
                res.id,
                "skipped",
                _said("medication_not_monitored", found=found),
            )
        )
        return []
    pid = _subject(res, pfx, known)
    time, end, note = _when(res, pfx)
    code = medications()[token]["code"]
    dose = unit = None
    dosage = getattr(res, "dosage", None)
    if dosage is not None:
        q = dosage.dose or getattr(dosage, "rateQuantity", None)
        if q is not None and q.value is not None:
            dose, unit = float(q.value), q.code or q.unit
    try:
        row = ingest.prepare(
            pid,
            {
                "code": code,
                "time": time,
                "value": token,
                "end_time": end if codes.vocabulary()[code].interval else None,
                "dose": dose,
                "dose_unit": unit,
                "note": note,
                "external_id": f"MedicationAdministration/{res.id}" if res.id else None,
            },
            now=now,
            settings=settings,
        )
    except FindingError as exc:
        name = {
            "dose": "dosage.dose.value",
            "dose_unit": "dosage.dose.code",
            "time": "effectiveDateTime" if res.effectiveDateTime is not None else "effectivePeriod.start",
            "end_time": "effectivePeriod.end",
        }.get(exc.field, exc.field)
        raise FindingError(f"{pfx}{name}", exc.value, *exc.texts()) from None
    report.entries.append(EntryResult(i, "MedicationAdministration", res.id, "pending"))
    return [row]


# ----------------------------------------------------------------------------- export
def _iso(t: dt.datetime) -> str:
    return as_utc(t).isoformat().replace("+00:00", "Z")


def _quantity(value: float, code: str) -> dict[str, Any]:
    return {"value": value, "unit": code, "system": UCUM, "code": code}


def _observation_resource(e: ClinicalEvent, spec: codes.CodeSpec) -> dict[str, Any]:
    coding = [{"system": OBS_SYSTEM, "code": spec.name, "display": spec.text}]
    if spec.loinc:
        coding.insert(0, {"system": LOINC, "code": spec.loinc[0], "display": spec.text})
    cat = spec.category
    res: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"ev-{e.id}",
        "status": "final" if e.supersedes_id is None else "amended",
        "category": [{"coding": [{"system": CATEGORY, "code": cat}]}],
        "code": {"coding": coding, "text": spec.text},
        "subject": {"reference": f"Patient/{e.patient_id}"},
    }
    if e.end_time is not None:
        res["effectivePeriod"] = {"start": _iso(e.time), "end": _iso(e.end_time)}
    elif spec.interval:
        res["effectivePeriod"] = {"start": _iso(e.time)}
    else:
        res["effectiveDateTime"] = _iso(e.time)
    if spec.kind == "quantity" and e.value_num is not None:
        res["valueQuantity"] = _quantity(e.value_num, spec.unit)
    elif spec.kind == "integer" and e.value_num is not None:
        res["valueInteger"] = int(e.value_num)
    elif spec.kind == "bool":
        res["valueBoolean"] = e.value == "true"
    else:
        res["valueCodeableConcept"] = {"coding": [{"system": TOKEN_SYSTEM, "code": e.value}], "text": e.value}
    refs = (("low", e.ref_low), ("high", e.ref_high))
    if any(v is not None for _, v in refs):
        res["referenceRange"] = [{k: _quantity(v, spec.unit) for k, v in refs if v is not None}]
    if e.note:
        res["note"] = [{"text": e.note}]
    return res


def _administration_resource(e: ClinicalEvent) -> dict[str, Any]:
    med = medications().get(e.value)
    coding = [{"system": ATC, "code": med["atc"], "display": e.value}] if med else []
    res: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "id": f"ev-{e.id}",
        "status": "in-progress" if e.end_time is None and e.code == "vasopressor" else "completed",
        "medicationCodeableConcept": {"coding": coding, "text": e.value},
        "subject": {"reference": f"Patient/{e.patient_id}"},
    }
    if e.end_time is not None:
        res["effectivePeriod"] = {"start": _iso(e.time), "end": _iso(e.end_time)}
    elif e.code == "vasopressor":
        res["effectivePeriod"] = {"start": _iso(e.time)}
    else:
        res["effectiveDateTime"] = _iso(e.time)
    if e.dose is not None and e.dose_unit:
        res["dosage"] = {"dose": _quantity(e.dose, e.dose_unit)}
    return res


DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"


def _grade_resource(g: Grade, issued: dt.datetime, derived: list[str]) -> dict[str, Any]:
    r = g.result
    res: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"grade-{g.patient_id}-{g.scale.replace(':', '-')}",
        "status": "final" if r.complete else "preliminary",
        "category": [{"coding": [{"system": CATEGORY, "code": "survey"}]}],
        "code": {
            "coding": [{"system": SCALE_SYSTEM, "code": g.scale, "display": r.title}],
            "text": r.title,
        },
        "subject": {"reference": f"Patient/{g.patient_id}"},
        "effectiveDateTime": _iso(g.time),
        "issued": _iso(issued),
        "method": {"text": f"{g.scale} version {r.version}, immunotox {__version__} ({g.engine})"},
        "component": []
        if r.grade_range is None
        else [
            {"code": {"text": "lowest possible grade"}, "valueInteger": r.grade_range[0]},
            {"code": {"text": "highest possible grade"}, "valueInteger": r.grade_range[1]},
        ],
        "note": [{"text": t} for t in r.reasons]
        + ([{"text": "Missing inputs: " + ", ".join(r.missing)}] if r.missing else [])
        + [{"text": "Source: " + s} for s in r.sources],
    }
    if r.status == "not_applicable":  # no grade exists (e.g. no late ICAHT window): not "unknown"
        del res["component"]
        res["dataAbsentReason"] = {
            "coding": [{"system": DATA_ABSENT_REASON, "code": "not-applicable"}],
            "text": "not applicable: the scale does not apply to this patient (the notes say why)",
        }
    elif r.grade is None:
        res["dataAbsentReason"] = {
            "coding": [{"system": DATA_ABSENT_REASON, "code": "unknown"}],
            "text": "not assessable: inputs missing",
        }
    else:
        res["valueInteger"] = r.grade
    if derived:
        res["derivedFrom"] = [{"reference": ref} for ref in derived]
    return res


def organ_class(scale: Any) -> str | None:
    """The MedDRA system organ class of a scale's toxicity: a CTCAE term's SOC, or the one an
    ASCO 2021 organ scale declares; None for a syndrome without one organ (CRS, ICANS)."""
    soc = getattr(scale, "soc", None)
    if soc is None and getattr(scale, "term", None) is not None:
        soc = getattr(scale.term, "soc", None)
    return soc if isinstance(soc, str) and soc else None


def _adverse_event(ep: Episode, patient: Patient) -> dict[str, Any]:
    scale = get_scale(ep.scale)
    severity = "mild" if ep.peak_grade <= 1 else "moderate" if ep.peak_grade == 2 else "severe"
    extension: list[dict[str, Any]] = [
        {"url": GRADE_EXT, "valueInteger": ep.peak_grade},
        {"url": SCALE_EXT, "valueString": ep.scale},
    ]
    soc = organ_class(scale)
    if soc is not None:
        extension.append({"url": ORGAN_EXT, "valueCodeableConcept": {"text": soc}})
    res: dict[str, Any] = {
        "resourceType": "AdverseEvent",
        "id": f"episode-{ep.id}",
        "extension": extension,
        "actuality": "actual",
        "event": {
            "coding": [{"system": SCALE_SYSTEM, "code": ep.scale, "display": scale.title}],
            "text": scale.title,
        },
        "subject": {"reference": f"Patient/{ep.patient_id}"},
        "date": _iso(ep.onset_at),
        "recordedDate": _iso(ep.updated_at),
        "severity": {"coding": [{"system": AE_SEVERITY, "code": severity}]},
        "outcome": {
            "coding": [
                {"system": AE_OUTCOME, "code": "resolved" if ep.resolved_at is not None else "ongoing"}
            ]
        },
    }
    if patient.product:
        res["contained"] = [
            {"resourceType": "Medication", "id": "product", "code": {"text": patient.product}}
        ]
        res["suspectEntity"] = [{"instance": {"reference": "#product"}}]
    return res


def export_patient(session: Session, patient: Patient, *, now: dt.datetime) -> dict[str, Any]:
    """A FHIR R4 ``collection`` Bundle of the patient's record, grades and toxicity episodes."""
    entries: list[dict[str, Any]] = []
    pres: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient.id,
        "identifier": [{"system": PATIENT_ID_SYSTEM, "value": patient.id}],
    }
    if patient.display_name:
        pres["name"] = [{"text": patient.display_name}]
    if patient.sex:
        pres["gender"] = patient.sex
    if patient.birth_date:
        pres["birthDate"] = patient.birth_date.isoformat()
    entries.append(pres)
    events = list(
        session.scalars(
            select(ClinicalEvent)
            .where(ClinicalEvent.patient_id == patient.id, ClinicalEvent.status == "final")
            .order_by(ClinicalEvent.time, ClinicalEvent.id)
        )
    )
    superseded = {e.supersedes_id for e in events if e.supersedes_id is not None}
    vocab = codes.vocabulary()
    refs_by_code: dict[str, list[str]] = {}
    for e in events:
        if e.id in superseded or e.code == "symptom":
            continue
        spec = vocab[e.code]
        if e.code in ADMINISTRATION_CODES:
            entries.append(_administration_resource(e))
            kind = "MedicationAdministration"
        else:
            entries.append(_observation_resource(e, spec))
            kind = "Observation"
        if kind == "Observation":
            refs_by_code.setdefault(e.code, []).append(f"Observation/ev-{e.id}")
    for g in grading.compute(session, [patient]).get(patient.id, []):
        used = [ev for item in g.inputs.values() if isinstance(item, dict) for ev in item.get("events", [])]
        derived = [f"Observation/ev-{i}" for i in sorted(set(used)) if i not in superseded]
        derived = [d for d in derived if any(d in refs for refs in refs_by_code.values())]
        entries.append(_grade_resource(g, now, derived))
    for ep in session.scalars(select(Episode).where(Episode.patient_id == patient.id).order_by(Episode.id)):
        entries.append(_adverse_event(ep, patient))
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _iso(now),
        "meta": {"tag": [{"system": f"{BASE}/CodeSystem/release", "code": "R4"}]},
        "entry": [{"resource": r} for r in entries],
    }
    model = Bundle.model_validate(bundle)  # our own output must be valid FHIR
    out: dict[str, Any] = json.loads(model.model_dump_json())
    return out
