"""The recommendation engine: (toxicity, grade, context) -> ordered, cited, dosed actions.

Steps of :func:`recommend`:

1. resolve the toxicity (a toxicity id, one of its terms, a scale id, or a ``GradeResult``) and
   the guideline set (``guideline=`` or the packaged default for that toxicity);
2. check the grade (whole number; grade 5 has no management; 0 gives no action) and the context
   (``context.<field>`` errors; fields a toxicity requires, e.g. ``concurrent_crs_grade`` for
   ICANS, must be given);
3. select the rules for the toxicity and grade whose conditions hold, in file order. A rule whose
   condition reads a context field that was not given is *not evaluated* and a warning says so
   (e.g. product-specific variants when no product is given): missing context is never read as
   "condition false" silently;
4. pass the population gate (``_population``): outside the set's population (or without an age
   when the product may be given to children) no amount of the set is printed — not in a dose,
   not in a text — and a child gets "dose per the unit's paediatric protocol";
5. compute each dose (weight required for weight-based doses); tocilizumab goes through the dose
   rule, its own population and its limits — a refused dose replaces the action by a refusal
   that says why and what next;
6. flag every action resting on unverified ([M]) content or on a project interpretation ([D]).

Every action records the set and version that produced it (``guideline``) and its source,
locator and verification tag.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import FindingError
from ..jurisdiction import Jurisdiction, jurisdictions, optional_jurisdiction
from ..messages import error
from ..result import GradeResult
from ..sources import source
from ._context import Context, parse_context
from ._dose_expr import ComputedDose, compute_dose, dose_from_rule, withheld_dose
from ._dose_rule import SourceRef, check_dose_rule
from ._drugs import drug_data
from ._population import Gate, Licence, PopulationCheck, dose_gate, redact_amounts
from ._spec import Action, GuidelineSet, ResolvedRule, When, load_guideline, registry
from ._steroids import SteroidConversion
from ._steroids import steroid_equivalents as _equivalents
from ._vocab import check_lang, label, message


class Label(BaseModel):
    """A closed-vocabulary value with its label in the requested language."""

    model_config = ConfigDict(frozen=True)

    id: str
    label: str


class RecommendedAction(BaseModel):
    """One action of a recommendation."""

    model_config = ConfigDict(frozen=True)

    order: int
    kind: str
    kind_label: str
    text: str
    dose: ComputedDose | None
    interval_h: float | tuple[float, float] | None
    escalation: str | None
    referral: Label | None
    ici_action: Label | None
    sources: list[SourceRef]
    verification: str = Field(description="V, V2 (verified), M (unverified), D (project interpretation)")
    unverified: bool
    derived: bool
    refused: bool = Field(default=False, description="A dose limit refused the drug of this action")
    withheld: bool = Field(
        default=False,
        description="Amounts withheld: the patient is outside the population of the doses, or the "
        "action rests on a label of another (or no) jurisdiction",
    )
    label: str | None = Field(
        default=None, description="The product label the action rests on, with its jurisdiction"
    )
    rule: str = Field(description="'<set>@<version>/<rule id>' that produced the action")
    guideline: str = Field(description="'<set>@<version>' that wrote the rule")
    condition: str | None = Field(default=None, description="Context condition that selected the rule")


class GuidelineInfo(BaseModel):
    """Which guideline set produced the recommendation."""

    model_config = ConfigDict(frozen=True)

    id: str
    version: str
    title: str
    lifecycle: str
    derives_from: str | None
    chain: list[str]
    institution: str | None
    path: str
    sha256: str
    sources: list[str]


class GradeInput(BaseModel):
    """The grading result the recommendation started from."""

    model_config = ConfigDict(frozen=True)

    scale: str
    version: str
    grade: int | None
    complete: bool
    grade_range: tuple[int, int]
    missing: list[str]
    status: str


class Recommendation(BaseModel):
    """Ordered actions for a toxicity grade, each cited, with warnings and provenance."""

    model_config = ConfigDict(frozen=True)

    toxicity: str
    toxicity_title: str
    grade: int
    guideline: GuidelineInfo
    actions: list[RecommendedAction]
    warnings: list[str]
    unverified_actions: int
    lang: str
    context: dict[str, Any]
    grade_input: GradeInput | None = None
    grading_note: str | None = None
    current_steroid: SteroidConversion | None = Field(
        default=None, description="The current corticosteroid per day and its daily equivalents"
    )
    population: PopulationCheck | None = Field(
        default=None, description="Whom the set's doses are written for, and whether they reach this patient"
    )
    missing: list[str] = Field(
        default_factory=list, description="Context fields whose absence withheld amounts (e.g. age_years)"
    )
    covered: bool = Field(
        default=True,
        description="False: no guideline set written for this product class manages the toxicity",
    )
    jurisdiction: str | None = Field(
        default=None, description="Whose product information applies (None: not set)"
    )
    disclaimer: str

    def explain(self) -> str:
        """A readable, multi-line rendering for people."""
        t = self.lang
        lines = [
            f"{self.toxicity_title} — {message('explain_grade', t, grade=self.grade)}",
            f"{self.guideline.title} ({self.guideline.id} {self.guideline.version}, "
            f"{self.guideline.lifecycle})",
        ]
        for a in self.actions:
            lines.append(f"{a.order}. [{a.kind_label}] {a.text}")
            if a.dose is not None:
                key = "explain_dose_refused" if a.refused else "explain_dose"
                lines.append(f"     {message(key, t)}: {a.dose.expression}")
            if a.escalation:
                lines.append(f"     {message('explain_escalation', t)}: {a.escalation}")
            label = f"; {a.label}" if a.label else ""
            srcs = ", ".join(s.key for s in a.sources)
            lines.append(f"     {message('explain_source', t)}: {srcs} ({a.verification}){label}; {a.rule}")
        if self.warnings:
            lines.append(message("explain_warnings", t) + ":")
            lines += [f"  - {w}" for w in self.warnings]
        lines.append(self.disclaimer)
        return "\n".join(lines)


# ------------------------------------------------------------------------------ resolution
def _check_grade(raw: Any) -> int:
    if raw is None:
        raise FindingError("grade", None, error("mg_grade_missing"))
    if (
        isinstance(raw, bool)
        or not isinstance(raw, (int, float))
        or (isinstance(raw, float) and not raw.is_integer())
    ):
        raise FindingError("grade", raw, error("mg_whole_grade5"))
    g = int(raw)
    if not 0 <= g <= 5:
        raise FindingError("grade", raw, error("mg_grade_range5"))
    if g == 5:
        raise FindingError("grade", raw, error("mg_grade5"))
    return g


def _product_classes(ctx: Context) -> tuple[str, ...] | None:
    """The product classes the patient's sets must be written for: the products', else the
    therapy class's; None when neither is given."""
    if ctx.products:
        return ctx.product_classes
    if ctx.therapy_class is not None:
        return drug_data().therapy_classes[ctx.therapy_class].product_classes
    return None


def _class_sets(reg: Mapping[str, GuidelineSet], classes: Iterable[str]) -> list[GuidelineSet]:
    wanted = set(classes)
    return [gs for gs in reg.values() if gs.default_for and wanted & set(gs.product_classes)]


def _default_set(
    name: str, reg: Mapping[str, GuidelineSet], classes: tuple[str, ...]
) -> tuple[str, GuidelineSet] | None:
    """(toxicity id, set) of the default set for ``name`` and the product classes; None when the
    toxicity is known but no set written for these classes covers it."""
    for gs in _class_sets(reg, classes):
        tid = gs.find_toxicity(name)
        if tid is not None and tid in gs.default_for:
            return tid, gs
    _refuse_scale(name, [gs for gs in reg.values() if gs.default_for])
    if any(gs.find_toxicity(name) is not None for gs in reg.values()):
        return None
    known = sorted({t for gs in reg.values() for t in gs.default_for})
    raise FindingError(
        "toxicity", name, error("mg_unknown_toxicity"), error("mg_known_toxicities", values=", ".join(known))
    )


def _refuse_scale(name: str, sets: Iterable[GuidelineSet]) -> None:
    """A scale id whose term names a managed toxicity but whose scale is not accepted."""
    if ":" not in name:
        return
    term = name.split(":", 1)[1].lower()
    for gs in sets:
        tid = gs.find_toxicity(term)
        if tid is not None:
            tox = gs.toxicities[tid]
            raise FindingError(
                "toxicity",
                name,
                error("mg_wrong_scale", set=gs.ref, toxicity=tid, scales=", ".join(tox.scales), scale=name),
                error("mg_regrade", scale=tox.scales[0]) if tox.scales else None,
            )


def _matches(when: When, ctx: Context) -> tuple[bool | None, str | None]:
    """(True/False, None) when decidable; (None, field) when a needed context field is missing."""
    if when.product_in is not None or when.product_class_in is not None:
        if not ctx.products:
            return None, "product"
        if when.product_in is not None and not set(ctx.product_ids) & set(when.product_in):
            return False, None
        if when.product_class_in is not None and not set(ctx.product_classes) & set(when.product_class_in):
            return False, None
    for fld, lo, hi in (
        ("concurrent_crs_grade", when.concurrent_crs_grade_min, when.concurrent_crs_grade_max),
        ("concurrent_icans_grade", when.concurrent_icans_grade_min, when.concurrent_icans_grade_max),
    ):
        if lo is None and hi is None:
            continue
        value = getattr(ctx, fld)
        if value is None:
            return None, fld
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            return False, None
    return True, None


def licences_of(ctx: Context, jurisdiction: str | None = None) -> tuple[Licence, ...] | None:
    """The licensed populations of the context's products (None: unknown — no product, or one
    without a licensed population on file)."""
    if not ctx.products:
        return None
    out: list[Licence] = []
    for p in ctx.products:
        lic = p.licences(jurisdiction)
        if lic is None:
            return None
        out += lic
    return tuple(out)


def _text(action: Action, lang: str) -> str:
    text = action.text.get(lang)
    if action.verification == "M":
        return message("unverified_prefix", lang) + text
    if action.verification == "D":
        return message("derived_prefix", lang) + text
    return text


def _ref(key: str, locator: str, verification: str) -> SourceRef:
    return SourceRef(key=key, citation=source(key).citation(), locator=locator, verification=verification)


# ------------------------------------------------------------------------------ the engine
def recommend(
    toxicity: str | GradeResult,
    grade: int | None = None,
    context: Mapping[str, Any] | None = None,
    *,
    guideline: str | None = None,
    lang: str = "en",
    verified_only: bool = False,
    guideline_dirs: Iterable[str | Path] = (),
    now: datetime | None = None,
    jurisdiction: str | Jurisdiction | None = None,
) -> Recommendation:
    """Ordered, cited management actions for a toxicity grade in a clinical context.

    Parameters
    ----------
    toxicity
        A toxicity id (``"crs"``, ``"icans"``, ``"iec-hs"``, ``"colitis"``, ``"hepatitis"``…), one of
        its terms (``"diarrhea"``), a scale id (``"astct2019:crs"``, ``"ctcae5:colitis"``), or a
        :class:`~immunotox.result.GradeResult` from :func:`immunotox.grade` (its grade is used).
    grade
        The grade (0–4; 0 gives no action; 5 is refused). Not needed with a GradeResult.
    context
        Product, weight, age, concurrent CRS/ICANS grade, doses given, current steroid, time
        (see :mod:`immunotox.management._context`).
    guideline
        A guideline set id (``"asco2021-cart"``, ``"example-local-fr"``…); default: the packaged
        default set for the toxicity.
    lang
        ``"en"`` or ``"fr"`` for every text of the output.
    verified_only
        Leave out actions resting on unverified ([M]) content or on project interpretation ([D])
        instead of emitting them flagged.
    guideline_dirs
        Extra folders of guideline-set files (an institution's own sets).
    now
        The current time (tests); default the system clock.
    jurisdiction
        ``"EU"``, ``"US"`` or an ISO country code (``"FR"`` -> EU): whose product information
        applies. Never inferred; without it, items resting only on a product label give no
        amount and say so, and no label is named.

    Returns
    -------
    Recommendation
        Ordered actions (kind, text, computed dose, interval, escalation, referral, checkpoint-
        inhibitor action, sources with verification), warnings, and the set that produced them.

    Raises
    ------
    FindingError
        Unknown toxicity, product or guideline id; grade out of range; a missing context field
        the toxicity or a weight-based dose requires; an implausible weight; a dose time in the
        future; any malformed context field. The message names the field.
    RuleSpecError
        A guideline-set file (packaged or from ``guideline_dirs``) that breaks its grammar or
        exceeds a documented maximum dose.

    References
    ----------
    Santomasso BD, Nastoupil LJ, Adkins S, et al. Management of immune-related adverse events in
    patients treated with CAR T-cell therapy: ASCO guideline. J Clin Oncol 2021;39(35):3978-3992.
    doi:10.1200/JCO.21.01992
    Schneider BJ, Naidoo J, Santomasso BD, et al. Management of immune-related adverse events in
    patients treated with immune checkpoint inhibitor therapy: ASCO guideline update. J Clin
    Oncol 2021;39(36):4073-4126. doi:10.1200/JCO.21.01440

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> ctx = {"product": "axi-cel", "weight_kg": 70, "age_years": 54}
    >>> r = recommend("crs", 2, ctx, now=datetime(2025, 3, 1, tzinfo=UTC))
    >>> [(a.kind, a.dose.dose_mg) for a in r.actions if a.dose and a.dose.drug == "tocilizumab"]
    [('drug', 560.0)]
    >>> child = recommend("crs", 3, {"product": "tisa-cel", "weight_kg": 15, "age_years": 4})
    >>> [(a.dose.drug, a.dose.amount) for a in child.actions if a.dose and a.dose.drug == "dexamethasone"]
    [('dexamethasone', None)]
    """
    lang = check_lang(lang)
    juris = jurisdiction if isinstance(jurisdiction, Jurisdiction) else optional_jurisdiction(jurisdiction)
    code = juris.code if juris is not None else None
    name, scale_id, grade, grade_input = _toxicity_input(toxicity, grade)
    g = _check_grade(grade)
    ctx = parse_context(context, now)
    reg = registry(guideline_dirs)
    classes = _product_classes(ctx)
    chosen = _choose_set(name, ctx, classes, reg, guideline, guideline_dirs)
    if chosen is None:
        assert classes is not None
        return _not_covered(name, g, ctx, reg, classes, lang, grade_input)
    warnings: list[str] = []
    gs, tox_id = _follow_deferral(*chosen, g, reg, lang, warnings)
    tox = gs.toxicities[tox_id]
    _check_grade_and_context(gs, tox_id, g, grade, ctx, lang)
    warnings += _input_warnings(gs, tox_id, grade_input, scale_id, lang)

    licences = licences_of(ctx, code)
    gate = dose_gate(
        gs.population,
        age_years=ctx.age_years,
        weight_kg=ctx.weight_kg,
        licences=licences,
        what=gs.ref,
        lang=lang,
    )
    actions: list[RecommendedAction] = []
    unverified = 0
    if g == 0:
        warnings.append(message("grade_zero", lang))
    else:
        kept = _select_actions(gs, tox_id, g, ctx, verified_only, lang, warnings)
        warnings += _dose_warnings(kept, gs, tox_id, g, ctx, gate, code, lang)
        for rr, a in kept:
            actions.append(
                _build_action(len(actions) + 1, rr, a, ctx, gate, licences, code, lang, now, warnings)
            )
        unverified = sum(1 for a in actions if a.unverified)
        if unverified:
            warnings.append(message("unverified_count", lang, n=unverified))
        if not actions:
            warnings.append(message("no_rule", lang, id=gs.id, version=gs.version, toxicity=tox_id, grade=g))

    current = None
    if ctx.current_steroid is not None:
        current = _equivalents(ctx.current_steroid.mg_per_day, ctx.current_steroid.drug, lang=lang)
    return Recommendation(
        toxicity=tox_id,
        toxicity_title=tox.title.get(lang),
        grade=g,
        guideline=_guideline_info(gs, lang),
        actions=actions,
        warnings=list(dict.fromkeys(warnings)),
        unverified_actions=unverified,
        lang=lang,
        context=ctx.echo(),
        grade_input=grade_input,
        grading_note=tox.grading_note.get(lang) if tox.grading_note else None,
        current_steroid=current,
        population=gate.out(),
        jurisdiction=code,
        missing=sorted(
            {m for m in gate.missing}
            | {m for a in actions if a.dose and a.dose.check for m in a.dose.check.population.missing}
        ),
        disclaimer=message("disclaimer", lang),
    )


def _toxicity_input(
    toxicity: str | GradeResult, grade: int | None
) -> tuple[str, str | None, int | None, GradeInput | None]:
    """(the toxicity or scale name, the scale id if one was named, the grade, the grade result
    as an input) from what :func:`recommend` was given."""
    if isinstance(toxicity, GradeResult):
        res = toxicity
        if grade is not None and grade != res.grade:
            raise FindingError(
                "grade", grade, error("mg_grade_differs", scale=res.scale, grade=str(res.grade))
            )
        if res.grade is None:
            raise FindingError(
                "grade",
                None,
                error("mg_result_not_applicable", scale=res.scale)
                if res.status == "not_applicable"
                else error("mg_result_not_assessable", scale=res.scale),
                error("mg_missing_inputs", inputs=", ".join(res.missing)) if res.missing else None,
            )
        grade_input = GradeInput(
            scale=res.scale,
            version=res.version,
            grade=res.grade,
            complete=res.complete,
            grade_range=res.grade_range,
            missing=list(res.missing),
            status=res.status,
        )
        return res.scale, res.scale, res.grade, grade_input
    if isinstance(toxicity, str) and toxicity.strip():
        name = toxicity.strip().lower()
        return name, name if ":" in name else None, grade, None
    raise FindingError("toxicity", toxicity, error("mg_toxicity_type"))


def _choose_set(
    name: str,
    ctx: Context,
    classes: tuple[str, ...] | None,
    reg: Mapping[str, GuidelineSet],
    guideline: str | None,
    guideline_dirs: Iterable[str | Path],
) -> tuple[GuidelineSet, str] | None:
    """The guideline set and the toxicity id in it: the one asked for (checked against the
    product), else the default set of the product's class; None when no set covers it."""
    if guideline is not None:
        gs = load_guideline(guideline, guideline_dirs)
        if classes is not None and not set(classes) & set(gs.product_classes):
            raise FindingError(
                "guideline",
                guideline,
                error(
                    "mg_set_other_class",
                    set=gs.ref,
                    classes=", ".join(gs.product_classes),
                    patient=", ".join(ctx.product_ids) or str(ctx.therapy_class),
                    patient_classes=", ".join(classes),
                ),
                error("mg_set_other_class_hint"),
            )
        found = gs.find_toxicity(name)
        if found is None:
            _refuse_scale(name, [gs])
            raise FindingError(
                "toxicity",
                name,
                error("mg_not_covered", set=gs.ref),
                error("mg_it_covers", values=", ".join(gs.toxicities)),
            )
        return gs, found
    if classes is None:
        raise FindingError(
            "context.therapy_class",
            None,
            error("mg_class_missing"),
            error("mg_class_missing_hint", values=", ".join(drug_data().therapy_classes)),
        )
    chosen = _default_set(name, reg, classes)
    return None if chosen is None else (chosen[1], chosen[0])


def _follow_deferral(
    gs: GuidelineSet, tox_id: str, g: int, reg: Mapping[str, GuidelineSet], lang: str, warnings: list[str]
) -> tuple[GuidelineSet, str]:
    """The set that applies at grade ``g``: the set's own source may send the reader to another
    set for these grades (said and cited in ``warnings``)."""
    deferral = next((d for d in gs.toxicities[tox_id].defer if g in d.grades), None)
    if deferral is None:
        return gs, tox_id
    warnings.append(
        message(
            "deferred",
            lang,
            set=gs.ref,
            toxicity=tox_id,
            grade=g,
            to=reg[deferral.to].ref,
            text=deferral.text.get(lang),
            source=source(deferral.source).citation(),
            locator=deferral.locator,
            verification=deferral.verification,
        )
    )
    to = reg[deferral.to]
    return to, to.find_toxicity(tox_id) or tox_id


def _check_grade_and_context(
    gs: GuidelineSet, tox_id: str, g: int, grade: int | None, ctx: Context, lang: str
) -> None:
    """Refuse a grade outside the toxicity's grades in the set, or a missing required context field."""
    tox = gs.toxicities[tox_id]
    if g != 0 and not tox.grades[0] <= g <= tox.grades[1]:
        raise FindingError(
            "grade",
            grade,
            error("mg_grade_outside_set", toxicity=tox_id, set=gs.ref, lo=tox.grades[0], hi=tox.grades[1]),
        )
    for required in tox.requires if g > 0 else ():
        if required not in ctx.given_fields:
            raise FindingError(
                f"context.{required}",
                None,
                error("mg_required_for", toxicity=tox_id),
                tox.grading_note.get(lang) if tox.grading_note else None,
            )


def _input_warnings(
    gs: GuidelineSet, tox_id: str, grade_input: GradeInput | None, scale_id: str | None, lang: str
) -> list[str]:
    """A set not released, a grade that is a lower bound, a grade on another scale than the set's."""
    tox = gs.toxicities[tox_id]
    warnings: list[str] = []
    if gs.lifecycle != "released":
        warnings.append(message("lifecycle", lang, id=gs.id, version=gs.version, state=gs.lifecycle))
    if grade_input is not None and not grade_input.complete and grade_input.grade is not None:
        warnings.append(
            message(
                "lower_bound",
                lang,
                grade=grade_input.grade,
                missing=", ".join(grade_input.missing),
                high=grade_input.grade_range[1],
            )
        )
    if scale_id is not None and not tox.is_native(scale_id):
        warnings.append(
            message(
                "scale_note",
                lang,
                scale=scale_id,
                toxicity=tox_id,
                expected=", ".join(tox.native_scales if tox.native_scales else ["its own grading"]),
            )
        )
    return warnings


def _select_actions(
    gs: GuidelineSet,
    tox_id: str,
    g: int,
    ctx: Context,
    verified_only: bool,
    lang: str,
    warnings: list[str],
) -> list[tuple[ResolvedRule, Action]]:
    """The actions of the rules that hold for this grade and context, in the set's order; a rule
    whose condition needs a missing context field, and actions left out as unverified, are said."""
    selected: list[ResolvedRule] = []
    pending: dict[str, list[str]] = {}
    for rr in gs.rules:
        r = rr.rule
        if tox_id not in r.toxicities or g not in r.grades:
            continue
        ok, missing_field = _matches(r.when, ctx)
        if ok is None and missing_field is not None:
            pending.setdefault(missing_field, []).append(f"{r.id}: {r.when.describe()}")
        elif ok:
            selected.append(rr)
    for fld, rules in pending.items():
        if fld == "product":
            warnings.append(message("product_unknown", lang, variants="; ".join(rules)))
        else:
            warnings.append(
                message("rule_not_evaluated", lang, field=f"context.{fld}", rules="; ".join(rules))
            )
    kept: list[tuple[ResolvedRule, Action]] = []
    left_out = 0
    for rr in selected:
        for a in rr.rule.action:
            if verified_only and a.verification in ("M", "D"):
                left_out += 1
                continue
            kept.append((rr, a))
    if left_out:
        warnings.append(message("unverified_left_out", lang, n=left_out))
    return kept


def _dose_warnings(
    kept: Sequence[tuple[ResolvedRule, Action]],
    gs: GuidelineSet,
    tox_id: str,
    g: int,
    ctx: Context,
    gate: Gate,
    code: str | None,
    lang: str,
) -> list[str]:
    """Refuse weight-based doses without a weight; say why amounts are withheld and which licensed
    ages that decided it are unverified."""
    need_weight = sorted(
        {
            a.dose.drug
            for _, a in kept
            if a.dose is not None
            and a.dose.per_kg
            and a.dose.weight_basis == "actual"
            and (gate.covered or a.dose.rule is not None)
        }
    )
    if need_weight and ctx.weight_kg is None:
        raise FindingError(
            "context.weight_kg",
            None,
            error("mg_weight_required", toxicity=tox_id, grade=g, set=gs.ref, drugs=", ".join(need_weight)),
            error("mg_weight_required_hint"),
        )
    warnings: list[str] = []
    if not gate.covered and gate.reason and any(_states_amount(a, lang) for _, a in kept):
        warnings.append(gate.reason)
    if ctx.age_years is None and any(a.dose is not None for _, a in kept):
        # the licensed ages decided (or helped decide) the gate: say when they are unverified
        for p in ctx.products:
            for jcode, lic in p.licensed.items():
                if lic.verification == "M" and code in (None, jcode):
                    warnings.append(
                        message(
                            "licence_unverified",
                            lang,
                            product=p.id,
                            jurisdiction=jcode,
                            text=lic.text.get(lang),
                        )
                    )
    return warnings


def _label_of(a: Action, code: str | None, lang: str) -> tuple[str | None, str | None]:
    """(the label named, the reason its amounts are withheld) for an action citing a product label."""
    label_code = drug_data().label_sources.get(a.source)
    if label_code is None:
        return None, None
    known = jurisdictions()
    theirs = known[label_code]
    name = f"{theirs.document(lang)} ({label_code})"
    if code == label_code:
        return name, None
    if code is None:
        return name, message("action_label_none", lang, document=theirs.document(lang), source=a.source)
    ours = known[code]
    reason = message(
        "action_label_other",
        lang,
        document=theirs.document(lang),
        source=a.source,
        jurisdiction=ours.name(lang),
        local_document=ours.document(lang),
    )
    return name, reason


def _states_amount(a: Action, lang: str) -> bool:
    texts = [a.text.get(lang)] + ([a.escalation.get(lang)] if a.escalation else [])
    return a.dose is not None or any(redact_amounts(t, lang) != t for t in texts)


def _guideline_info(gs: GuidelineSet, lang: str) -> GuidelineInfo:
    return GuidelineInfo(
        id=gs.id,
        version=gs.version,
        title=gs.title.get(lang),
        lifecycle=gs.lifecycle,
        derives_from=gs.derives_from,
        chain=list(gs.chain),
        institution=gs.institution,
        path=gs.path,
        sha256=gs.sha256,
        sources=[source(k).citation() for k in gs.sources],
    )


def _not_covered(
    name: str,
    g: int,
    ctx: Context,
    reg: Mapping[str, GuidelineSet],
    classes: tuple[str, ...],
    lang: str,
    grade_input: GradeInput | None,
) -> Recommendation:
    """No set written for the patient's product class manages the toxicity: say so, act on nothing."""
    sets = _class_sets(reg, classes)
    if not sets:
        raise FindingError(
            "context.product" if ctx.products else "context.therapy_class",
            list(ctx.product_ids) or ctx.therapy_class,
            error("mg_no_set_for_class", classes=", ".join(classes)),
        )
    owner = next(gs for gs in reg.values() if gs.find_toxicity(name) is not None)
    tox_id = owner.find_toxicity(name) or name
    others = sorted({gs.ref for gs in reg.values() if gs.default_for and tox_id in gs.default_for})
    data = drug_data()
    therapy = ctx.therapy_class or data.therapy_class_of(classes[0]) or classes[0]
    therapy_name = (
        data.therapy_classes[therapy].name.get(lang) if therapy in data.therapy_classes else therapy
    )
    warning = message(
        "class_not_covered",
        lang,
        toxicity=owner.toxicities[tox_id].title.get(lang),
        therapy=therapy_name,
        sets=", ".join(gs.ref for gs in sets),
        others=", ".join(others) or "-",
    )
    return Recommendation(
        toxicity=tox_id,
        toxicity_title=owner.toxicities[tox_id].title.get(lang),
        grade=g,
        guideline=_guideline_info(sets[0], lang),
        actions=[],
        warnings=[warning],
        unverified_actions=0,
        lang=lang,
        context=ctx.echo(),
        grade_input=grade_input,
        covered=False,
        disclaimer=message("disclaimer", lang),
    )


def _build_action(
    order: int,
    rr: ResolvedRule,
    a: Action,
    ctx: Context,
    gate: Gate,
    licences: tuple[Licence, ...] | None,
    code: str | None,
    lang: str,
    now: datetime | None,
    warnings: list[str],
) -> RecommendedAction:
    dose: ComputedDose | None = None
    kind: str = a.kind
    text = _text(a, lang)
    escalation = a.escalation.get(lang) if a.escalation else None
    label_name, label_reason = _label_of(a, code, lang)
    if label_reason is not None and _states_amount(a, lang):
        warnings.append(label_reason)
    else:
        label_reason = None
    withheld = (not gate.covered and _states_amount(a, lang)) or label_reason is not None
    if withheld:
        # written for another population: no amount of this set reaches the patient
        text = redact_amounts(text, lang)
        escalation = redact_amounts(escalation, lang) if escalation else None
    refused = False
    if a.dose is not None and a.dose.rule is not None:
        decision = check_dose_rule(
            a.dose.rule,
            ctx.weight_kg,
            ctx.doses_of(a.dose.drug),
            ctx.at,
            now=now,
            age_years=ctx.age_years,
            licences=licences,
            jurisdiction=code,
            overrides=a.dose.overrides(),
            override_source=rr.origin,
            lang=lang,
            field_prefix="context.",
        )
        dose = dose_from_rule(decision, a.dose, lang)
        warnings.extend(decision.warnings)
        if not decision.allowed:
            refused = True
            kind = "drug_refused"
            why = " ".join(
                r.split(" — ", 1)[1] for r in decision.reasons if r.startswith(("REFUSED — ", "REFUSÉ — "))
            )
            after = (
                message("refused_next_time", lang, time=decision.next_allowed_at)
                if decision.next_allowed_at
                else message("refused_exhausted", lang)
            )
            text = message("refused_text", lang, drug=dose.drug_name, reasons=why) + " " + after
            warnings.append(text)
    elif a.dose is not None and label_reason is not None:
        dose = withheld_dose(a.dose.drug, label_reason, lang, route=a.dose.route, per=a.dose.per)
    elif a.dose is not None:
        dose = compute_dose(
            a.dose, weight_kg=ctx.weight_kg, ideal_weight_kg=ctx.ideal_body_weight_kg, gate=gate, lang=lang
        )
    return RecommendedAction(
        order=order,
        kind=kind,
        kind_label=label("kind", kind, lang),
        text=text,
        dose=dose,
        interval_h=dose.interval_h if dose is not None else None,
        escalation=escalation,
        referral=Label(id=a.referral, label=label("specialty", a.referral, lang)) if a.referral else None,
        ici_action=Label(id=a.ici_action, label=label("ici_action", a.ici_action, lang))
        if a.ici_action
        else None,
        sources=[_ref(a.source, a.locator, a.verification)],
        verification=a.verification,
        unverified=a.verification == "M",
        derived=a.verification == "D",
        refused=refused,
        withheld=withheld or (dose is not None and dose.withheld),
        label=label_name,
        rule=f"{rr.origin}/{rr.rule.id}",
        guideline=rr.origin,
        condition=rr.rule.when.describe() or None,
    )
