"""Recommendations for a patient's current grades, from :mod:`immunotox.management`.

The service never writes clinical advice itself: it hands the current grades, the product, the
weight, the age and the doses already recorded to the management module and returns what it
says (ordered, cited actions; the tocilizumab dose for the weight and whether the limits allow
it now). When that module is not installed, or refuses the context, the answer says so
(``available = false`` and a note) instead of inventing anything.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools
import importlib
import tomllib
from importlib import resources
from types import ModuleType
from typing import Any

from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm import Session, aliased

from ..errors import FindingError, ImmunotoxError
from ..jurisdiction import Jurisdiction
from ..management import Licence, check_agreement, parse_therapy_class, resolve_product
from ..management._inputs import parse_weight
from ..management._vocab import message
from ..messages import error as E
from ..result import GradeResult
from . import grading
from .models import ClinicalEvent, CurrentGrade, Patient
from .schemas import RecommendationsOut

SCALE_TOXICITY = {"astct2019:crs": "crs", "astct2019:icans": "icans"}
# the grades a recommendation is attached to: CRS and ICANS (CAR-T, bispecifics) and the ASCO 2021
# organ grades of immune-related adverse events (checkpoint inhibitors), which the asco2021-ici
# management tables key on natively; a single CTCAE term is not (its grade is not the organ's)
RECOMMENDED_SCALES = ("astct2019:crs", "astct2019:icans", "asco2021:*")
THERAPIES_WITH_TOCILIZUMAB = ("car_t", "bispecific")


def _management() -> ModuleType | None:
    try:
        return importlib.import_module("immunotox.management")
    except ImportError:
        return None


@functools.cache
def known_drugs() -> frozenset[str]:
    """Drugs the management module knows (``[drug.*]`` of ``data/drugs.toml``)."""
    path = resources.files("immunotox").joinpath("data/drugs.toml")
    if not path.is_file():
        return frozenset({"tocilizumab"})
    return frozenset(tomllib.loads(path.read_text("utf-8")).get("drug", {}))


def recommendable(scale_id: str, therapy_class: str | None = None) -> bool:
    """True for a scale whose grade the service asks the management module about: CRS, ICANS and
    the ASCO 2021 organ grades; for a patient on a checkpoint inhibitor, also a CTCAE term that a
    checkpoint-inhibitor guideline set accepts (ALT, AST, bilirubin, creatinine: the laboratory
    grade of an immune hepatitis or nephritis, recommended with the set's warning that the
    guideline grades the organ, not one analyte)."""
    if any(fnmatch.fnmatchcase(scale_id, pat) for pat in RECOMMENDED_SCALES):
        return True
    return therapy_class == "checkpoint_inhibitor" and scale_id in _ici_accepted()


@functools.cache
def _ici_accepted() -> frozenset[str]:
    """The catalogue scales a guideline set written for checkpoint inhibitors accepts."""
    mod = _management()
    if mod is None:
        return frozenset()
    from ..catalogue import all_scales

    sets = [gs for gs in mod.list_guidelines() if all(c.startswith("ici-") for c in gs.product_classes)]
    return frozenset(
        s for s in all_scales() for gs in sets for t in gs.toxicities.values() if t.accepts_scale(s)
    )


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@functools.cache
def _doses_statement(since: bool) -> Any:
    """The (built once) query of :func:`doses_given`: building an aliased ORM select costs
    milliseconds, which a write that raises an alert should not pay every time."""
    sup = aliased(ClinicalEvent)
    q = select(ClinicalEvent).where(
        ClinicalEvent.patient_id == bindparam("pid"),
        ClinicalEvent.kind == "administration",
        ClinicalEvent.status == "final",
        ClinicalEvent.time <= bindparam("now"),
        ~exists().where(sup.supersedes_id == ClinicalEvent.id),
    )
    if since:
        q = q.where(ClinicalEvent.time >= bindparam("since"))
    return q.order_by(ClinicalEvent.time, ClinicalEvent.id)


def doses_given(
    session: Session, patient: Patient, now: dt.datetime, known_drugs: frozenset[str]
) -> list[dict[str, Any]]:
    """Recorded doses of drugs the management module knows, for the current course, as its context."""
    params: dict[str, Any] = {"pid": patient.id, "now": now}
    if patient.infusion_at is not None:
        params["since"] = patient.infusion_at
    q = _doses_statement(patient.infusion_at is not None)
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, dt.datetime]] = set()
    for e in session.scalars(q, params):
        if e.value not in known_drugs or (e.value, e.time) in seen:
            continue
        seen.add((e.value, e.time))
        item: dict[str, Any] = {"drug": e.value, "time": _iso(e.time)}
        if e.dose is not None and e.dose_unit == "mg":
            item["mg"] = e.dose
        out.append(item)
    return out


def age_at(patient: Patient, now: dt.datetime) -> float | None:
    """The patient's age in whole years at ``now`` (None without a birth date)."""
    if patient.birth_date is None:
        return None
    bd = patient.birth_date
    d = now.date()
    return float(d.year - bd.year - ((d.month, d.day) < (bd.month, bd.day)))


def check_patient(
    product: str | None,
    therapy_class: str | None,
    weight_kg: float | None,
    birth_date: dt.date | None,
    today: dt.date,
) -> None:
    """Refuse what the management engine would refuse, when a patient is written (FindingError
    naming the field): a product it does not know or of another therapy class, a weight outside
    the plausible range, an age outside 0–120 years. A recommendation is never made for the wrong
    class, and an accepted record never becomes unusable later."""
    if weight_kg is not None:
        parse_weight("weight_kg", weight_kg)
    if birth_date is not None:
        age = today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))
        if not 0 <= age <= 120:
            raise FindingError("birth_date", birth_date.isoformat(), E("service.age_range", age=age))
    if not product:
        return
    p = resolve_product("product", product)
    tc = parse_therapy_class("therapy_class", therapy_class) if therapy_class is not None else None
    check_agreement([p], tc, field="product")


def product_licences(product: str | None, jurisdiction: str | None = None) -> tuple[Licence, ...] | None:
    """The licensed populations of the patient's product (None: no product, or unknown to the
    management module — its population is then unknown and a missing age withholds amounts)."""
    if not product:
        return None
    try:
        return resolve_product("product", product).licences(jurisdiction)
    except ImmunotoxError:
        return None


def context_for(
    session: Session, patient: Patient, grades: dict[str, int | None], now: dt.datetime, mod: ModuleType
) -> dict[str, Any]:
    known = known_drugs()
    ctx: dict[str, Any] = {"at": _iso(now), "doses_given": doses_given(session, patient, now, known)}
    ctx["therapy_class"] = patient.therapy_class
    if patient.product:
        ctx["product"] = patient.product
    if patient.weight_kg is not None:
        ctx["weight_kg"] = patient.weight_kg
    age = age_at(patient, now)
    if age is not None:
        ctx["age_years"] = age
    for scale, key in (
        ("astct2019:crs", "concurrent_crs_grade"),
        ("astct2019:icans", "concurrent_icans_grade"),
    ):
        g = grades.get(scale)
        if g is not None:
            ctx[key] = g
    return ctx


def _recommend(
    mod: ModuleType,
    result: GradeResult,
    ctx: dict[str, Any],
    now: dt.datetime,
    lang: str,
    jurisdiction: Jurisdiction | None,
) -> Any:
    # a product the engine refuses is reported, never dropped to fall back on another set
    return mod.recommend(result, context=ctx, lang=lang, now=now, jurisdiction=jurisdiction)


def for_grade(
    session: Session,
    patient: Patient,
    result: GradeResult,
    *,
    now: dt.datetime,
    jurisdiction: Jurisdiction | None = None,
    current: dict[str, int | None] | None = None,
) -> dict[str, Any] | None:
    """A compact recommendation for one fresh grade (stored with an alert), or None.

    ``current``: the patient's current grades per scale as they will be stored with this one
    (default: read from the database) — the regrader computes recommendations before its write.

    Computed for the site's ``jurisdiction`` (``IMMUNOTOX_JURISDICTION``: the product information
    that applies) and written in English and French, since the readers of a stored alert read it
    later, each in their own language: ``actions``, ``warnings`` (and ``note`` when no
    recommendation is available) in English, the same under ``fr`` in French
    (:func:`in_lang` picks one).
    """
    mod = _management()
    if (
        mod is None
        or result.grade is None
        or result.grade < 1
        or not recommendable(result.scale, patient.therapy_class)
    ):
        return None
    if current is None:
        rows = session.execute(
            select(CurrentGrade.scale, CurrentGrade.grade).where(CurrentGrade.patient_id == patient.id)
        )
        current = {scale: grade for scale, grade in rows}
    grades: dict[str, int | None] = dict(current)
    grades[result.scale] = result.grade
    code = jurisdiction.code if jurisdiction is not None else None
    try:
        ctx = context_for(session, patient, grades, now, mod)
        recs = {lang: _recommend(mod, result, ctx, now, lang, jurisdiction) for lang in ("en", "fr")}
    except ImmunotoxError as exc:
        notes = {lang: {"note": message("svc_no_recommendation", lang, error=exc)} for lang in ("en", "fr")}
        return {"available": False, "jurisdiction": code, **notes["en"], "fr": notes["fr"]}
    rec = recs["en"]
    texts: dict[str, dict[str, Any]] = {
        lang: {
            "actions": [
                {
                    "order": a.order,
                    "text": a.text,
                    "dose": a.dose.expression if a.dose is not None else None,
                    "refused": a.refused,
                    "verification": a.verification,
                }
                for a in r.actions
            ],
            "warnings": list(r.warnings),
        }
        for lang, r in recs.items()
    }
    return {
        "available": True,
        "guideline": f"{rec.guideline.id}@{rec.guideline.version}",
        "jurisdiction": code,
        **texts["en"],
        "fr": texts["fr"],
    }


def in_lang(stored: dict[str, Any], lang: str) -> dict[str, Any]:
    """A recommendation stored by :func:`for_grade` with its texts in ``lang`` (en or fr)."""
    return {**stored, **(stored.get("fr") or {})} if lang == "fr" else stored


def for_patient(
    session: Session,
    patient: Patient,
    *,
    now: dt.datetime,
    lang: str = "en",
    jurisdiction: Jurisdiction | None = None,
) -> RecommendationsOut:
    """Recommendations for every current grade >= 1 of ``patient``, and the tocilizumab dose."""
    mod = _management()
    if mod is None:
        return RecommendationsOut(
            patient_id=patient.id,
            available=False,
            engine=None,
            items=[],
            tocilizumab=None,
            notes=[message("svc_not_installed", lang)],
        )
    live = {g.scale: g.result for g in grading.compute(session, [patient]).get(patient.id, [])}
    notes: list[str] = []
    items: list[dict[str, Any]] = []
    try:
        ctx = context_for(session, patient, {s: r.grade for s, r in live.items()}, now, mod)
    except ImmunotoxError as exc:
        return RecommendationsOut(
            patient_id=patient.id,
            available=False,
            engine="immunotox.management",
            items=[],
            tocilizumab=None,
            notes=[message("svc_context_refused", lang, error=exc)],
        )
    for scale in sorted(live):
        g = live[scale]
        if not recommendable(scale, patient.therapy_class):
            continue
        if g.grade is None:
            if g.status == "not_applicable":  # no grade exists: nothing to recommend, nothing missing
                continue
            notes.append(message("svc_not_assessable", lang, scale=scale, missing=", ".join(g.missing)))
            continue
        if g.grade < 1:
            continue
        try:
            rec = _recommend(mod, g, ctx, now, lang, jurisdiction)
        except ImmunotoxError as exc:
            notes.append(message("svc_scale_refused", lang, scale=scale, error=exc))
            continue
        items.append(rec.model_dump(mode="json"))
    toci: dict[str, Any] | None = None
    if patient.therapy_class in THERAPIES_WITH_TOCILIZUMAB:
        if patient.weight_kg is None:
            notes.append(message("svc_weight_missing", lang))
        else:
            given = [d["time"] for d in ctx["doses_given"] if d["drug"] == "tocilizumab"]
            try:
                toci = mod.tocilizumab_dose(
                    patient.weight_kg,
                    given=given,
                    at=_iso(now),
                    now=now,
                    age_years=age_at(patient, now),
                    licences=product_licences(patient.product, jurisdiction.code if jurisdiction else None),
                    jurisdiction=jurisdiction.code if jurisdiction else None,
                    lang=lang,
                ).model_dump(mode="json")
            except ImmunotoxError as exc:
                notes.append(message("svc_tocilizumab_refused", lang, error=exc))
    if not items and not notes:
        notes.append(message("svc_no_grade", lang))
    return RecommendationsOut(
        patient_id=patient.id,
        available=True,
        engine="immunotox.management",
        items=items,
        tocilizumab=toci,
        notes=notes,
    )
