"""CTCAE terms as scales: ``ctcae5:<term slug>`` (v5.0) and ``ctcae4:cytokine-release-syndrome`` (v4.03).

One :class:`CtcaeScale` per term, built from the rule tables ``data/scales/ctcae5.toml`` and
``ctcae4.toml`` (grammar: :mod:`immunotox.scales.ctcae_spec`). The tables keep the NCI text of every
grade verbatim beside the structured criteria; this module holds only the logic, the same for
every term:

* **grade = the highest grade whose criterion holds** — CTCAE separates the alternatives of a
  grade with semicolons, so any one listed criterion suffices; 0 when none holds;
* lab terms are graded from ``value`` and its references (:mod:`immunotox.scales.ctcae_lab`);
* clinical findings left out are *unknown*, never "no": every finding that could still raise the
  grade is listed in ``missing`` and the grade is a lower bound (``grade_range`` gives the rest).
  A finding that cannot change the grade any more is not requested;
* documented defaults only where the table declares them (``death`` absent = alive), and
  implications that follow from a given finding (``oxygen = "none"`` means FiO2 21 %);
* a *gate* finding (``event_present``, ``hypotension``): false means the event is absent, grade 0;
  any criterion of the term that holds implies the event is present.

References
----------
National Cancer Institute, Cancer Therapy Evaluation Program. Common Terminology Criteria for
Adverse Events (CTCAE) v5.0, published 27 Nov 2017; v4.03, 14 Jun 2010. US Department of Health
and Human Services (public domain; text via the CSV conversion in KohSoonho/CTCAE).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Mapping
from typing import Any

from .. import units
from ..errors import FindingError
from ..findings import FieldSpec, parse_findings, pick
from ..messages import Catalogue, Msg, name, quote, render, verbatim
from ..result import GradeResult, RuleHit
from ..sources import source
from ._base import Domain, Scale, assumed, known, unknown
from .ctcae_lab import LabGrader, LabOutcome, T, _n, candidates, missing_msg, num
from .ctcae_spec import LAB_INPUTS, Condition, Criterion, Lab, Meta, Table, Term, compare, load_table

# Above this many combinations the exact needed-input test is skipped (the criteria-level test
# then stands: it may ask for an input that cannot change the grade, never the reverse).
_MAX_REFINE = 50_000


def _lab_specs(lab: Lab) -> dict[str, FieldSpec]:
    """The lab findings of one term: their unit, molar mass and range are the term's."""
    used = lab.operands()
    out: dict[str, FieldSpec] = {}
    for key in ("value", *lab.refs):
        texts = {
            lang: T(f"messages.input_text.{key}", a=analyte, unit=units.display(lab.unit))
            for lang, analyte in (("en", lab.analyte), ("fr", lab.analyte_fr or lab.analyte))
        }
        if key not in used:
            texts = {lang: T("messages.input_text.reference_only", text=m) for lang, m in texts.items()}
        out[key] = FieldSpec(
            name=key,
            kind="quantity",
            unit=lab.unit,
            unit_required=lab.unit_required,
            molar_mass=lab.molar_mass,
            range=lab.range,
            text=render(texts["en"], "en"),
            text_fr=render(texts["fr"], "fr"),
        )
    return out


def _hashable(value: Any) -> Hashable:
    return tuple(value) if isinstance(value, list) else value


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return repr(list(value))
    return num(float(value))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and not isinstance(a, bool) and isinstance(b, (int, float)):
        return compare(float(a), "<=", float(b)) and compare(float(a), ">=", float(b))
    return bool(_hashable(a) == _hashable(b))


def _notes(texts: Catalogue, path: str, notes: tuple[str, ...], notes_fr: tuple[str, ...]) -> list[Msg]:
    """The notes at ``path`` as messages (``notes``/``notes_fr``; a note not yet translated is
    shown as written, and keeps its table out of the translated scales)."""
    return [texts(f"{path}.notes.{i}") if i < len(notes_fr) else verbatim(n) for i, n in enumerate(notes)]


def translated(table: Table) -> bool:
    """Whether every text of ``table`` for people has its French sibling."""

    def full(en: tuple[str, ...], fr: tuple[str, ...]) -> bool:
        return len(fr) == len(en) and all(x.strip() for x in fr)

    if not full(table.meta.notes, table.meta.notes_fr):
        return False
    for t in table.term.values():
        lab = t.lab
        if not t.term_fr or not full(t.notes, t.notes_fr) or (lab and not lab.analyte_fr):
            return False
        if lab and not all(c.text_fr for c in lab.conditions.values()):
            return False
        if lab and not all(a.name_fr and a.formula_fr for a in lab.adjust):
            return False
        if not all(i.text_fr for i in t.implied):
            return False
    return True


class CtcaeScale(Scale):
    """One CTCAE term, graded from its rule table (see the module docstring)."""

    family = "ctcae"

    def __init__(self, slug: str, term: Term, meta: Meta, table: str = "", complete: bool = False) -> None:
        self.slug = slug
        self.term = term
        self.meta = meta
        self.id = f"{meta.prefix}:{slug}"
        self.title = f"{term.term} — CTCAE v{meta.version}"
        self.version = meta.version
        self.source_keys = (meta.source,)
        self.grades = term.grades
        #: the table's own texts (term name, notes, analyte… with their ``_fr`` siblings)
        self.tt = Catalogue(f"scales/{table or meta.prefix}")
        self.path = f"term.{slug}"
        self.texts = T if complete else None
        self.notes = (
            *_notes(self.tt, "meta", meta.notes, meta.notes_fr),
            *_notes(self.tt, self.path, term.notes, term.notes_fr),
        )
        specs: dict[str, FieldSpec] = _lab_specs(term.lab) if term.lab else {}
        specs.update(pick(*term.reads))
        self.findings = specs
        gate = term.gate
        self._criteria: list[tuple[Criterion, tuple[Condition, ...]]] = []
        for crit in term.criteria:
            conds = crit.when
            if gate and not any(c.finding == gate for c in conds):
                conds = (*conds, Condition(finding=gate, is_=True))
            self._criteria.append((crit, conds))
        self._conds: dict[str, list[Condition]] = {}
        for _, conds in self._criteria:
            for c in conds:
                self._conds.setdefault(c.finding, []).append(c)
        self._lab = (
            LabGrader(
                self.id,
                term.lab,
                {c.finding: specs[c.finding] for b in term.lab.bands for c in b.when},
                self.tt,
                f"{self.path}.lab",
            )
            if term.lab
            else None
        )

    # ------------------------------------------------------------------ texts for people
    def term_msg(self) -> Msg:
        """The term's name (``term`` / ``term_fr``; shown as written until translated), built once
        per scale (a message is immutable)."""
        msg: Msg | None = self.__dict__.get("_term_msg")
        if msg is None:
            msg = self.tt(f"{self.path}.term") if self.term.term_fr else verbatim(self.term.term)
            self.__dict__["_term_msg"] = msg
        return msg

    def title_msg(self) -> Msg:
        return T.m("title", term=self.term_msg(), version=self.version)

    def domain_msg(self, name: str) -> Msg:
        """The value of a lab term (« ALAT (valeur mesurée) »), else the finding's ``[domains]`` name."""
        if name == "value" and self._lab is not None:
            return T.m("domain_value", analyte=self._lab.analyte)
        return T(f"domains.{name}")

    # ------------------------------------------------------------------ input checks
    def check(self, f: Mapping[str, Any]) -> None:
        """Refuse inconsistent references, implications and a contradicted gate."""
        if self._lab is not None:
            self._check_lab(f, self._lab)
        for n, imp in enumerate(self.term.implied):
            src = imp.if_.finding
            if (
                src in f
                and imp.if_.holds(f[src])
                and imp.finding in f
                and not _same(f[imp.finding], imp.value)
            ):
                raise FindingError(
                    imp.finding,
                    f[imp.finding],
                    T.e(
                        "implied_contradiction",
                        src=src,
                        value=_show(f[src]),
                        text=self.tt(f"{self.path}.implied.{n}.text"),
                    ),
                    T.e("implied_hint", key=imp.finding, value=_show(imp.value), src=src),
                )
        gate = self.term.gate
        if gate and f.get(gate) is False:
            for crit, _ in self._criteria:
                own = [c for c in crit.when if c.finding != gate]
                if own and all(c.finding in f and c.holds(f[c.finding]) for c in own):
                    shown = ", ".join(f"{c.finding} = {_show(f[c.finding])}" for c in own)
                    raise FindingError(
                        gate,
                        False,
                        T.e("gate_contradiction", shown=shown, text=quote(crit.text), grade=crit.grade),
                        T.e("gate_hint", gate=gate),
                    )

    def _check_lab(self, f: Mapping[str, Any], grader: LabGrader) -> None:
        lab = grader.lab
        unit = lab.unit
        used = grader.operands  # the term's lab inputs, derived once from its rule table
        analyte = grader.analyte  # the term's lab.analyte text
        for i, a in enumerate(lab.adjust):
            if (
                "value" in f
                and a.when.finding in f
                and a.when.holds(f[a.when.finding])
                and a.finding not in f
            ):
                at = f"{self.path}.lab.adjust.{i}"
                raise FindingError(
                    a.finding,
                    None,
                    T.e(
                        "adjust_required",
                        key=a.when.finding,
                        value=_show(f[a.when.finding]),
                        name=self.tt(f"{at}.name"),
                        formula=self.tt(f"{at}.formula"),
                    ),
                    T.e("adjust_hint", key=a.finding),
                )
        for key in lab.requires:
            if "value" in f and key not in f:
                spec = self.findings[key]
                allowed = T.e("one_of", values=str(list(spec.values))) if spec.values else spec.kind
                raise FindingError(
                    key,
                    None,
                    T.e("required_with_value", analyte=analyte, text=self.domain_msg(key)),
                    T.e("required_hint", key=key, allowed=allowed),
                )
        if "uln" in f and f["uln"] <= 0:
            raise FindingError("uln", f["uln"], T.e("uln_positive"))
        if "lln" in f and f["lln"] <= 0 and "lln" in used:
            raise FindingError("lln", f["lln"], T.e("lln_positive"))
        if "lln" in f and "uln" not in f and f["lln"] >= lab.range[1]:
            raise FindingError(
                "lln",
                f["lln"],
                T.e("lln_leaves_no_uln", analyte=analyte, hi=lab.range[1], unit=unit),
                T.e("check_interval"),
            )
        if "lln" in f and "uln" in f and f["lln"] >= f["uln"]:
            raise FindingError(
                "lln", f["lln"], T.e("lln_not_below_uln", uln=f["uln"], unit=unit), T.e("check_interval")
            )
        # a multiple of a zero baseline means nothing; "> baseline" (eosinophilia) does
        if "baseline" in f and f["baseline"] <= 0 and grader.scaled_baseline:
            raise FindingError("baseline", f["baseline"], T.e("baseline_positive"))
        if "mi_level" in f and "uln" in f and f["mi_level"] < f["uln"]:
            raise FindingError("mi_level", f["mi_level"], T.e("mi_below_uln", uln=f["uln"], unit=unit))

    # ------------------------------------------------------------------ grading
    def grade(self, raw: Mapping[str, Any], *, ignore_unused: bool = False) -> GradeResult:
        """Parse and check ``raw`` findings, then grade them (reasons show the units given)."""
        ignored: list[str] = []
        f = parse_findings(self.id, self.findings, raw, ignored=ignored if ignore_unused else None)
        self.check(f)
        shown: dict[str, Msg] = {}  # values given in another unit than the term's, as given
        unit = self.term.lab.unit if self.term.lab else None
        for key in LAB_INPUTS:  # raw is a mapping: parse_findings refused anything else
            r = raw.get(key)
            if isinstance(r, dict) and r.get("unit") is not None and r["unit"] != unit:
                value = r.get("value")
                shown[key] = T.m(
                    "quantity",
                    value=value if isinstance(value, (int, float)) else str(value),
                    unit=str(r["unit"]),
                )
        return self.resolve(self._domains(f, shown), f, ignored)

    def domains(self, f: Mapping[str, Any]) -> list[Domain]:
        return self._domains(f, {})

    @staticmethod
    def _status(conds: tuple[Condition, ...], ff: Mapping[str, Any]) -> bool | None:
        result: bool | None = True
        for c in conds:
            if c.finding not in ff:
                result = None
            elif not c.holds(ff[c.finding]):
                return False
        return result

    def _complete_findings(self, f: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Msg | str]]:
        """The findings plus declared defaults and implied values, with why each was added."""
        ff = dict(f)
        origin: dict[str, Msg | str] = {}
        for key in self.term.reads:
            if key not in ff and key in self.meta.defaults:
                default = self.meta.defaults[key]
                ff[key] = list(default) if isinstance(default, tuple) else default
                origin[key] = "default"
        for n, imp in enumerate(self.term.implied):
            src = imp.if_.finding
            if imp.finding not in ff and src in ff and imp.if_.holds(ff[src]):
                ff[imp.finding] = imp.value
                origin[imp.finding] = T.m(
                    "implied",
                    key=imp.finding,
                    value=_show(imp.value),
                    text=self.tt(f"{self.path}.implied.{n}.text"),
                )
        gate = self.term.gate
        if gate and gate not in ff:
            for crit, _ in self._criteria:
                own = [c for c in crit.when if c.finding != gate]
                if own and all(c.finding in ff and c.holds(ff[c.finding]) for c in own):
                    ff[gate] = True
                    origin[gate] = T.m("gate_implied", key=gate, text=quote(crit.text))
                    break
        return ff, origin

    def _adjusted(self, f: Mapping[str, Any], shown: dict[str, Msg]) -> Mapping[str, Any]:
        """``f`` with the value corrected by the term's published adjustment, when one applies."""
        lab = self.term.lab
        if lab is None or "value" not in f:
            return f
        for i, a in enumerate(lab.adjust):
            if a.when.finding in f and a.when.holds(f[a.when.finding]) and a.finding in f:
                step = units.convert("value", a.factor, a.factor_unit, lab.unit, lab.molar_mass)
                at = f"{self.path}.lab.adjust.{i}"
                shown["value"] = T.m(
                    "adjusted",
                    given=shown.get("value") or T.m("quantity", value=_n(f["value"]), unit=lab.unit),
                    key=a.finding,
                    value=_n(f[a.finding]),
                    unit=str(self.findings[a.finding].unit),
                    name=self.tt(f"{at}.name"),
                    formula=self.tt(f"{at}.formula"),
                    source=name(source(a.source).citation()),
                )
                return {**f, "value": f["value"] + step * (a.x0 - f[a.finding])}
        return f

    def _domains(self, f: Mapping[str, Any], shown: Mapping[str, Msg]) -> list[Domain]:
        shown = dict(shown)
        f = self._adjusted(f, shown)
        ff, origin = self._complete_findings(f)
        lab_out: LabOutcome | None = None
        if self._lab is not None:
            q = {k: f[k] for k in LAB_INPUTS if k in f}
            w = {k: ff[k] for k in self._lab.when_conds if k in ff}
            lab_out = self._lab.grade(q, w, shown)
        status = [self._status(conds, ff) for _, conds in self._criteria]
        # the grade the known findings establish (criteria that hold, the lab's lowest grade)
        established = [crit.grade for (crit, _), s in zip(self._criteria, status, strict=True) if s]
        lo_known = max([min(lab_out.grades) if lab_out else 0, *established])
        needed = {
            c.finding
            for (crit, conds), s in zip(self._criteria, status, strict=True)
            if s is None and crit.grade > lo_known
            for c in conds
            if c.finding not in ff
        }
        doms: list[Domain] = []
        if lab_out is not None:
            doms.append(self._lab_domain(lab_out, lo_known))
        needed = self._refine(needed, ff, doms[0].possible if doms else (0,))
        hits: dict[str, list[RuleHit]] = {}
        gate = self.term.gate
        for i, ((crit, _), s) in enumerate(zip(self._criteria, status, strict=True)):
            gate_only = all(c.finding == gate for c in crit.when)
            if s and not (gate_only and gate in origin):  # an implied gate is not a finding
                hit = self._hit(i, crit, ff)
                hits.setdefault(hit.domain, []).append(hit)
        for key in self.term.reads:
            if key not in self._conds:
                continue  # read by the lab bands only (e.g. signs_or_symptoms)
            if key in ff:
                how = origin.get(key)
                if isinstance(how, str):  # "default"
                    d = assumed(key, _hashable(ff[key]))
                else:
                    d = known(key, _hashable(ff[key]), reason=how)
                d.hits = hits.get(key, [])
                doms.append(d)
            elif key in needed:
                doms.append(unknown(key, candidates(self.findings[key], self._conds[key]), key))
        return doms

    def _refine(self, needed: set[str], ff: Mapping[str, Any], lab: tuple[Hashable, ...]) -> set[str]:
        """Keep the findings whose value alone can change the grade, the other unknowns varied.

        The criteria-level test above over-asks when one criterion already decides for every
        value of a finding (febrile neutropenia: at 39 °C the duration of fever cannot matter);
        this exact test enumerates the representative values of every unknown finding.
        """
        names = [k for k in self.term.reads if k in needed]
        if not names:
            return needed
        choices = [candidates(self.findings[k], self._conds[k]) for k in names]
        size = len(lab) * math.prod(len(c) for c in choices)
        if size > _MAX_REFINE:
            return needed
        base = {k: _hashable(v) for k, v in ff.items() if k in self._conds}
        outcomes: dict[tuple[Any, ...], set[int]] = {}
        for lab_grade in lab:
            for combo in itertools.product(*choices):
                g = self.combine({**base, **dict(zip(names, combo, strict=True)), "value": lab_grade})
                for i in range(len(names)):
                    outcomes.setdefault((i, lab_grade, combo[:i], combo[i + 1 :]), set()).add(g)
        return {names[key[0]] for key, gs in outcomes.items() if len(gs) > 1}

    def _lab_domain(self, out: LabOutcome, lo_known: int) -> Domain:
        assert self.term.lab is not None
        if out.known:
            d = known("value", out.grades[0], *out.hits)
            d.reasons = list(out.reasons)
        elif max(out.grades) <= lo_known:
            d = known("value", out.grades[0], *out.hits)
            assert self._lab is not None
            d.reasons = [
                T.m(
                    "not_needed_above",
                    missing=missing_msg(out.missing),
                    analyte=self._lab.analyte,
                    grade=lo_known,
                )
            ]
        else:
            d = unknown("value", out.grades, *out.missing)
            d.hits = list(out.hits)
            d.reasons = list(out.reasons)
        return d

    def _own(self, crit: Criterion) -> list[Condition]:
        """The conditions of ``crit`` that describe it (not the gate, not attribution filters)."""
        own = [c for c in crit.when if c.finding != self.term.gate and c.lacks is None]
        return own or list(crit.when)

    def _hit(self, i: int, crit: Criterion, ff: Mapping[str, Any]) -> RuleHit:
        own = self._own(crit)
        items = [T.m("key_value", key=k, value=_show(ff[k])) for k in dict.fromkeys(c.finding for c in own)]
        detail = items[0]
        for item in items[1:]:
            detail = T.m("semi_list", a=detail, b=item)
        msg = T.m("criterion", text=quote(crit.text), detail=detail)
        return RuleHit.of(
            f"{self.id}/{own[0].finding}/grade{crit.grade}-{i}", own[0].finding, crit.grade, msg
        )

    def combine(self, v: Mapping[str, Any]) -> int:
        g = int(v.get("value", 0))
        for crit, conds in self._criteria:
            if crit.grade > g and all(c.finding in v and c.holds(v[c.finding]) for c in conds):
                g = crit.grade
        return g

    def deciding(self, v: Mapping[str, Any], grade: int) -> list[str]:
        if grade == 0:
            return []
        out = ["value"] if v.get("value") == grade else []
        for crit, conds in self._criteria:
            if crit.grade == grade and all(c.finding in v and c.holds(v[c.finding]) for c in conds):
                out += [c.finding for c in self._own(crit)]
        return list(dict.fromkeys(out))

    def summary(self, v: Mapping[str, Any], grade: int) -> Msg:
        if grade == 0:
            return T.m("summary_zero", term=self.term_msg(), version=self.version)
        keys = [T.m("key", key=k) for k in self.deciding(v, grade)]
        return T.m("summary", grade=grade, term=self.term_msg(), version=self.version, keys=keys)


def scales() -> list[Scale]:
    """The scales this module provides (read by the catalogue): every term of both tables."""
    out: list[Scale] = []
    for table_name in ("ctcae5", "ctcae4"):
        table = load_table(table_name)
        complete = translated(table)
        out += [CtcaeScale(slug, term, table.meta, table_name, complete) for slug, term in table.term.items()]
    return out
