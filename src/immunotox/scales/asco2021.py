"""ASCO 2021 organ grades of immune-related adverse events of immune checkpoint inhibitors.

The ASCO guideline (Schneider et al., J Clin Oncol 2021) prints, beside each organ's management
table, the grading that table keys on. These are those gradings as explicit scales
(``asco2021:<organ>``), computed from the same findings as the CTCAE terms — not an implicit
mapping from a CTCAE grade:

* **hepatitis** — worst of ALT, AST (× ULN) and total bilirubin (× ULN), and liver dysfunction;
* **colitis** — stools per day over baseline, ostomy output, incontinence, self-care ADL,
  hospitalization, life-threatening consequences (the guideline's rows) and the CTCAE v5.0
  colitis symptoms (abdominal pain, mucus or blood, peritoneal signs; design decision, see notes);
* **pneumonitis** — presence, extent on imaging, symptoms, intervention, ADL, oxygen;
* **rash** — body surface area with symptoms, ADL, hospitalization;
* **nephritis** — creatinine × baseline (the CTCAE v4.03 acute kidney injury criteria);
* **myocarditis** — cardiac biomarkers, symptoms, ECG, decompensation (wording not yet verified);
* **diabetes** (checkpoint-inhibitor-associated diabetes) — fasting glucose (× ULN for grade 1,
  mg/dL above), other evidence of CIADM, ketoacidosis, symptoms, ADL;
* **hypothyroidism** — TSH (mIU/L), TSH persistently above 10 mIU/L, symptoms, ADL;
* **hyperthyroidism** (thyrotoxicosis) — free T4 × ULN, symptoms, ADL;
* **adrenal-insufficiency** and **hypophysitis** — the diagnosis, symptoms, ADL (grades 3 and 4,
  one row in the guideline, split as in the CTCAE v5.0 term of the same name).

Thresholds and texts live in ``data/scales/asco2021.toml`` (grammar at its top), read through
its typed rule table (:mod:`.asco2021_spec`, validated at import: a misspelt key or a wrong type
fails naming the file and the key); this module is the logic. Each domain is one criterion of
the table; a domain whose finding is absent is unknown
(every grade its bands can give), so a missing input gives a lower bound naming it
(:mod:`immunotox.scales._base`); a value given without its reference keeps the bands that
compare the value alone (a glucose above 250 mg/dL is grade 3 whatever the ULN). The grade is
the most severe domain, except for the rash, where a rash over 30% BSA is grade 3 only with
moderate or severe symptoms.

References
----------
Schneider BJ, Naidoo J, Santomasso BD, et al. Management of immune-related adverse events in
patients treated with immune checkpoint inhibitor therapy: ASCO guideline update. J Clin Oncol
2021;39(36):4073-4126. doi:10.1200/JCO.21.01440
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..findings import pick
from ..messages import Catalogue, Msg
from ..result import RuleHit
from ..units import display
from ..vocabulary import vocabulary
from ._base import Domain, Scale, known, unknown
from .asco2021_spec import AscoTable, Criterion, table

_T: AscoTable = table()  # validated at import: a wrong key or type fails here, naming it
T = Catalogue("scales/asco2021")


class AscoScale(Scale):
    """One organ grade of ASCO 2021, built from its table in ``data/scales/asco2021.toml``."""

    version = "2021"
    family = "irae"
    source_keys = ("schneider2021",)
    grades = (0, 1, 2, 3, 4)
    texts = T

    def __init__(self, organ: str) -> None:
        t = _T.organs[organ]
        self.organ = organ
        self.id = f"asco2021:{organ}"
        self.title = t.title
        #: the organ affected (``T(f"{organ}.organ")`` in the reader's language) and its MedDRA
        #: system organ class, as the CTCAE terms give theirs
        self.soc: str = t.soc
        #: the toxicity's short name (a ward badge), in English and French
        self.short = T(f"{organ}.short")
        self.criteria: dict[str, Criterion] = t.criteria
        reads: list[str] = []
        for c in self.criteria.values():
            reads += [k for k in c.reads if k not in reads]
        self.findings = pick(*reads)
        self.notes = tuple(T(f"{organ}.notes.{i}") for i in range(len(t.notes)))

    def domain_msg(self, name: str) -> Msg:
        return T(f"{self.organ}.criteria.{name}")

    # ------------------------------------------------------------------ domains
    def domains(self, f: Mapping[str, Any]) -> list[Domain]:
        return [self._domain(name, c, f) for name, c in self.criteria.items()]

    def _domain(self, name: str, c: Criterion, f: Mapping[str, Any]) -> Domain:
        path = f"{self.organ}.criteria.{name}"
        key = c.finding
        if c.kind in ("multiple", "number"):
            absent = [k for k in c.reads if k not in f]
            if absent == [c.ref]:  # value known: the bands on the value alone still hold
                return self._without_ref(name, path, c, f)
            if absent:
                return unknown(name, c.grades(), *absent)
            return self._banded(name, path, c, f)
        if c.kind == "enum":
            if key not in f:
                return unknown(name, c.grades(), key)
            e = c.values.get(f[key])
            if e is None or e.grade == 0:
                return known(name, 0)
            shown = None if e.only_with else e.grade  # graded with another domain
            return known(name, e.grade, self._hit(name, f"{path}.values.{f[key]}", shown))
        assert c.true is not None  # a bool criterion (checked at load)
        g = c.true.grade
        if key not in f:
            return unknown(name, (0, g), key)
        return known(name, g, self._hit(name, f"{path}.true", g)) if f[key] else known(name, 0)

    def _banded(self, name: str, path: str, c: Criterion, f: Mapping[str, Any]) -> Domain:
        value = float(f[c.finding])
        ref = float(f[c.ref]) if c.ref is not None else None
        unit = display(self.findings[c.finding].unit or "")
        if ref is not None:
            detail = T.m(
                "multiple",
                what=self.domain_name(name),
                value=round(value, 3),
                unit=unit,
                ratio=round(value / ref, 2),
                ref_name=T(f"names.{c.ref_name}"),
                ref=round(ref, 3),
            )
        else:
            shape = "percent" if unit == "%" else "value_unit" if unit else "number"
            detail = T.m(shape, what=self.domain_name(name), value=round(value, 3), unit=unit)
        held = [i for i, b in enumerate(c.bands) if b.holds(value, ref)]
        if not held:
            return known(name, 0, reason=T.m("below_bands", detail=detail))
        top = max(held, key=lambda i: c.bands[i].grade)
        grade = c.bands[top].grade
        msg = T.m("band_hit", text=T(f"{path}.bands.{top}"), detail=detail)
        counts_as = c.bands[top].counts_as
        shown = grade if counts_as is None else counts_as
        hit = RuleHit.of(f"{self.id}/{name}/{top}", name, shown if shown == grade else None, msg)
        return known(name, grade, hit)

    def _without_ref(self, name: str, path: str, c: Criterion, f: Mapping[str, Any]) -> Domain:
        """A value without its reference: the bands on the value alone give a lower bound."""
        assert c.ref is not None
        value = float(f[c.finding])
        alone = [i for i, b in enumerate(c.bands) if b.comparison[0] == "value_gt"]
        held = [i for i in alone if c.bands[i].holds(value, None)]
        floor = max((c.bands[i].grade for i in held), default=0)
        # grades still possible: the floor, and every band on the reference above it (it may hold)
        open_ = {b.grade for i, b in enumerate(c.bands) if i not in alone and b.grade > floor}
        d = unknown(name, sorted({floor, *open_}), c.ref)
        if d.known:  # no band on the reference can raise the grade: the reference is not needed
            d.reasons.append(T.m("ref_not_needed", ref=c.ref, grade=floor))
        if held:
            top = max(held, key=lambda i: c.bands[i].grade)
            unit = display(self.findings[c.finding].unit or "")
            detail = T.m("value_unit", what=self.domain_name(name), value=round(value, 3), unit=unit)
            msg = T.m("band_hit", text=T(f"{path}.bands.{top}"), detail=detail)
            d.hits.append(RuleHit.of(f"{self.id}/{name}/{top}", name, floor, msg))
        return d

    def _hit(self, domain: str, path: str, grade: int | None) -> RuleHit:
        msg = T(path)
        rule = f"{self.id}/{domain}/{path.rsplit('.', 1)[-1]}"
        return RuleHit.of(rule, domain, grade, msg)

    # ------------------------------------------------------------------ grade
    def combine(self, v: Mapping[str, Any]) -> int:
        return max((x for x in v.values() if isinstance(x, int)), default=0)


class AscoRash(AscoScale):
    """Rash: over 30% BSA is grade 3 with moderate or severe symptoms, else grade 2."""

    def _contributions(self, v: Mapping[str, Any]) -> dict[str, int]:
        out = {k: x for k, x in v.items() if k not in ("bsa", "symptoms")}
        bsa, symptoms = v["bsa"], v["symptoms"]
        out["bsa"] = 3 if bsa == 3 and symptoms == 3 else min(bsa, 2)
        return out

    def combine(self, v: Mapping[str, Any]) -> int:
        return max(self._contributions(v).values())

    def deciding(self, v: Mapping[str, Any], grade: int) -> list[str]:
        dec = [k for k, x in self._contributions(v).items() if x == grade and grade > 0]
        return [*dec, "symptoms"] if "bsa" in dec and grade == 3 else dec

    def domains(self, f: Mapping[str, Any]) -> list[Domain]:
        doms = super().domains(f)
        by = {d.name: d for d in doms}
        bsa, sym = by["bsa"], by["symptoms"]
        if bsa.known and bsa.possible[0] == 3 and sym.known:
            key = "rash_over30_symptoms" if sym.possible[0] == 3 else "rash_over30_mild"
            sym.reasons.append(T.m(key))
        return doms


def scales() -> list[Scale]:
    """The scales this module provides (read by the catalogue)."""
    organs = list(_T.organs)
    return [AscoRash(o) if o == "rash" else AscoScale(o) for o in organs]


@dataclass(frozen=True)
class LabCriterion:
    """A criterion of an organ grade comparing a laboratory result with its reference: a
    ``multiple`` of the typed table whose finding the vocabulary derives as the latest result of
    one laboratory quantity (``[derive.<finding>]`` of ``data/observations.toml``)."""

    finding: str  # the value's finding (alt)
    ref: str  # the reference's finding (alt_uln)
    ref_name: str  # uln | baseline: which reference the value is a multiple of
    code: str  # the laboratory code the value is derived from (alt)


@functools.cache
def lab_criteria() -> dict[str, tuple[LabCriterion, ...]]:
    """Scale id -> its laboratory criteria, for the organ grades that read a laboratory result
    (hepatitis, nephritis, diabetes, thyrotoxicosis). One definition, read by the live service
    (:mod:`immunotox.service.organ_labs`) and by both cohort engines (:mod:`immunotox.timeline._labs`)."""
    voc = vocabulary()
    out: dict[str, tuple[LabCriterion, ...]] = {}
    for organ, t in _T.organs.items():
        found = []
        for c in t.criteria.values():
            d = voc.derivations.get(c.finding)
            if c.kind != "multiple" or c.ref is None or d is None or d.method != "last" or len(d.codes) != 1:
                continue
            spec = voc.code(d.codes[0])
            if spec.kind == "quantity" and spec.category == "laboratory":
                found.append(LabCriterion(c.finding, c.ref, c.ref_name, spec.name))
        if found:
            out[f"asco2021:{organ}"] = tuple(found)
    return out
