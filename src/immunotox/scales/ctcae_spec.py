"""The grammar of the CTCAE rule tables (``data/scales/ctcae5.toml``, ``ctcae4.toml``).

Each table holds, per CTCAE term, the verbatim NCI text of every grade and the executable
criteria as structured data — never code strings. Two kinds of criteria exist:

* **Lab bands** (``[term.<slug>.lab]``): a grade and a conjunction of *bounds*, each comparing the
  measured ``value`` (or the ``baseline``) to ``x`` times a reference — ``uln``, ``lln``,
  ``baseline``, ``mi_level`` — or to an absolute threshold ``x`` in the term's unit. A band may
  also require *named conditions* (``baseline_normal``…) and conditions on findings
  (``signs_or_symptoms``).
* **Criteria** (``[[term.<slug>.criteria]]``): a grade and a conjunction of conditions on
  findings (``stools_over_baseline >= 7``, ``adl_limitation in [self_care]``,
  ``hospitalization_indicated is true``).

A term's grade is the highest grade whose band or criterion holds (CTCAE separates alternatives
in a grade with semicolons), 0 when none does. Comparators are exactly the printed ones (see
:func:`compare`). Loading validates every table against this grammar, the findings vocabulary
and the verbatim text (each criterion's ``text`` must be a fragment of its grade's text), and
raises :class:`~immunotox.errors.RuleSpecError` on any mismatch.

References
----------
National Cancer Institute. Common Terminology Criteria for Adverse Events (CTCAE) v5.0, 27 Nov
2017, and v4.03, 14 Jun 2010. US Department of Health and Human Services.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .. import ruledata, units
from ..errors import RuleSpecError
from ..findings import FieldSpec, vocabulary
from ..sources import source

Op = Literal["<", "<=", ">", ">="]
Ref = Literal["uln", "lln", "baseline", "mi_level"]
LAB_INPUTS: tuple[str, ...] = ("value", "uln", "lln", "baseline", "mi_level")

# Two numbers closer than this relative tolerance are equal, i.e. on the threshold. It absorbs
# binary floating-point and unit-conversion rounding (units.convert keeps 10 significant digits)
# so that 1.8 mg/dL against 1.5 x ULN 1.2 mg/dL, or 1500/uL against 1.5 x 10*9/L, sit exactly on
# the printed boundary. It is far below the precision of any laboratory result.
REL_TOL = 1e-8


def compare(a: float, op: str, b: float) -> bool:
    """``a op b`` with equality within :data:`REL_TOL` (the printed comparator, exactly).

    Examples
    --------
    >>> compare(1.8, "<=", 1.5 * 1.2)  # 1.5 * 1.2 = 1.7999999999999998 in binary floating point
    True
    >>> compare(120.0, ">", 3.0 * 40.0), compare(120.4, ">", 3.0 * 40.0)
    (False, True)
    """
    return COMPARATORS[op](a, b)


#: whether ``a`` is on the threshold ``b``: equal within :data:`REL_TOL`
_on: Callable[[float, float], bool] = functools.partial(math.isclose, rel_tol=REL_TOL, abs_tol=1e-12)


#: each printed comparator as a function of two numbers: on the threshold (:func:`_on`), ``<=``
#: and ``>=`` hold and ``<`` and ``>`` do not; off it, the plain comparison. The one definition
#: :func:`compare` applies, and that a lab term's grader takes once per bound.
COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b and not _on(a, b),
    "<=": lambda a, b: a < b or _on(a, b),
    ">": lambda a, b: a > b and not _on(a, b),
    ">=": lambda a, b: a > b or _on(a, b),
}


def slugify(term: str) -> str:
    """The scale slug of a CTCAE term: lower case, runs of non-alphanumerics as ``-``.

    >>> slugify("Rash maculo-papular"), slugify("Alanine aminotransferase increased")
    ('rash-maculo-papular', 'alanine-aminotransferase-increased')
    """
    return re.sub(r"[^a-z0-9]+", "-", term.lower()).strip("-")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Condition(_Model):
    """One condition on one finding; exactly one form is given.

    ``op``/``x``: number comparison; ``in``: enum membership; ``is``: boolean value;
    ``count_ge``: a list with at least that many items; ``lacks``: a list without that item.
    """

    finding: str
    op: Op | None = None
    x: float | None = None
    in_: tuple[str, ...] | None = Field(default=None, alias="in")
    is_: bool | None = Field(default=None, alias="is")
    count_ge: int | None = None
    lacks: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Condition:
        forms = (self.op, self.in_, self.is_, self.count_ge, self.lacks)
        if sum(f is not None for f in forms) != 1 or (self.op is None) != (self.x is None):
            raise ValueError(
                f"condition on {self.finding!r}: give exactly one of op+x, in, is, count_ge, lacks"
            )
        return self

    def holds(self, value: Any) -> bool:
        """Whether the (known, canonical) finding ``value`` meets this condition."""
        if self.op is not None and self.x is not None:
            return compare(float(value), self.op, self.x)
        if self.in_ is not None:
            return value in self.in_
        if self.is_ is not None:
            return bool(value) is self.is_
        if self.count_ge is not None:
            return len(value) >= self.count_ge
        return self.lacks not in value

    def describe(self) -> str:
        """The condition as a short readable expression."""
        if self.op is not None:
            return f"{self.finding} {self.op} {self.x:g}"
        if self.in_ is not None:
            return f"{self.finding} in {list(self.in_)}"
        if self.is_ is not None:
            return f"{self.finding} = {'true' if self.is_ else 'false'}"
        if self.count_ge is not None:
            return f"at least {self.count_ge} {self.finding}"
        return f"{self.finding} without {self.lacks!r}"


class Bound(_Model):
    """``lhs op x × ref + add`` (``ref`` absent: ``lhs op x`` in the term's unit).

    ``add`` (in the term's unit, with a ``ref`` only) writes an increase by an amount: hemoglobin
    "Increase in >2 - 4 g/dL" above ULN is ``value > 1.0 × uln + 2.0``.
    """

    lhs: Literal["value", "baseline"] = "value"
    op: Op
    x: float = Field(gt=0)
    ref: Ref | None = None
    add: float = 0.0

    @model_validator(mode="after")
    def _add_needs_ref(self) -> Bound:
        if self.add and self.ref is None:
            raise ValueError("add needs a ref (an absolute threshold is written as x alone)")
        return self

    def operands(self) -> tuple[str, ...]:
        return (self.lhs,) if self.ref is None else (self.lhs, self.ref)

    def evaluate(self, q: Mapping[str, float]) -> bool | None:
        """True/False when its operands are in ``q``; None when one is unknown."""
        a = q.get(self.lhs)
        b = self.x if self.ref is None else (q[self.ref] * self.x + self.add if self.ref in q else None)
        if a is None or b is None:
            return None
        return compare(a, self.op, b)

    def solve(self, q: Mapping[str, float], var: str) -> float | None:
        """The value of ``var`` that puts this bound exactly on its threshold, the rest known."""
        if var == self.lhs and var != self.ref:
            if self.ref is None:
                return self.x
            return q[self.ref] * self.x + self.add if self.ref in q else None
        if var == self.ref and self.lhs in q:
            return (q[self.lhs] - self.add) / self.x
        return None


class NamedCondition(Bound):
    """A bound with a name and a text, used to pick a sub-scale (baseline normal / abnormal)."""

    text: str
    text_fr: str = ""


class Band(_Model):
    grade: int = Field(ge=1, le=5)
    text: str
    bounds: tuple[Bound, ...] = Field(min_length=1)
    if_: tuple[str, ...] = Field(default=(), alias="if")
    when: tuple[Condition, ...] = ()


class Adjustment(_Model):
    """A published linear correction of the value, applied when ``when`` holds.

    ``value + factor × (x0 − finding)``, ``factor`` in ``factor_unit`` (converted to the term's
    unit with its molar mass) per unit of ``finding``: Payne 1973's adjusted calcium is
    calcium − albumin + 4.0 (mg/dL, g/dL), i.e. factor 1 mg/dL, x0 4.0 g/dL. ``name``, ``formula``
    and the citation of ``source`` (a ``data/sources.toml`` key) are quoted in the reasons; the
    finding is required when ``when`` holds.
    """

    when: Condition
    finding: str
    x0: float
    factor: float
    factor_unit: str
    name: str
    name_fr: str = ""
    formula: str
    formula_fr: str = ""
    source: str


class Lab(_Model):
    analyte: str
    analyte_fr: str = ""
    substance: str | None = None
    unit: str
    unit_required_: tuple[str, ...] = Field(default=(), alias="unit_required")
    range: tuple[float, float]
    direction: Literal["increased", "decreased"]
    refs: tuple[Ref, ...]
    requires: tuple[str, ...] = ()
    adjust: tuple[Adjustment, ...] = ()
    conditions: dict[str, NamedCondition] = Field(default_factory=dict)
    bands: tuple[Band, ...] = Field(min_length=1)

    @property
    def unit_required(self) -> tuple[str, ...]:
        """Units labs report the analyte in where French and US labs differ (a bare number is then
        refused): the substance's row of ``data/analytes.toml``, else the term's ``unit_required``."""
        if self.substance:
            return units.analyte(self.substance).unit_required
        return self.unit_required_

    @property
    def molar_mass(self) -> float | None:
        """The molar mass of ``substance`` from ``data/analytes.toml`` (None: no molar conversion)."""
        return units.analyte(self.substance).molar_mass if self.substance else None

    def band_bounds(self, b: Band) -> tuple[Bound, ...]:
        """Band ``b``'s bounds and the named conditions it requires (``if``)."""
        return (*b.bounds, *(self.conditions[n] for n in b.if_))

    def operands(self) -> tuple[str, ...]:
        """Lab inputs the bands and their named conditions compare (``value`` first)."""
        seen: dict[str, None] = {"value": None}
        for b in self.bands:
            for bound in self.band_bounds(b):
                seen.update(dict.fromkeys(bound.operands()))
        return tuple(k for k in LAB_INPUTS if k in seen)

    def shows_ratio(self, ref: str) -> bool:
        """Whether a reason shows ``value / ref`` (ref used as a multiple other than 1, or ULN)."""
        return ref == "uln" or any(
            bound.ref == ref and bound.x != 1.0 for b in self.bands for bound in b.bounds
        )


class Criterion(_Model):
    grade: int = Field(ge=1, le=5)
    text: str
    when: tuple[Condition, ...] = Field(min_length=1)


class Implication(_Model):
    """When ``if`` holds and ``finding`` is absent, ``finding`` is ``value`` (and must be, if given)."""

    if_: Condition = Field(alias="if")
    finding: str
    value: bool | int | float | str
    text: str
    text_fr: str = ""


class Verbatim(_Model):
    grade1: str
    grade2: str
    grade3: str
    grade4: str
    grade5: str
    definition: str
    navigational_note: str = ""

    def grade_text(self, grade: int) -> str:
        return str(getattr(self, f"grade{grade}"))


class Term(_Model):
    term: str
    term_fr: str = ""
    meddra: str = Field(pattern=r"^\d{8}$")
    soc: str
    verbatim: Verbatim
    reads: tuple[str, ...] = ()
    gate: str | None = None
    lab: Lab | None = None
    criteria: tuple[Criterion, ...] = ()
    implied: tuple[Implication, ...] = ()
    notes: tuple[str, ...] = ()
    notes_fr: tuple[str, ...] = ()

    @property
    def grades(self) -> tuple[int, ...]:
        """0 and every grade whose CTCAE text is not '-' (a dash: the grade does not exist)."""
        return (0, *(g for g in range(1, 6) if self.verbatim.grade_text(g).strip() != "-"))

    def conditions(self) -> list[Condition]:
        """Every condition on a finding (criteria, lab band conditions, implications)."""
        out = [c for cr in self.criteria for c in cr.when]
        if self.lab:
            out += [c for b in self.lab.bands for c in b.when]
            out += [a.when for a in self.lab.adjust]
        out += [i.if_ for i in self.implied]
        return out


class Meta(_Model):
    version: str
    prefix: str
    source: str
    edition: str
    notes: tuple[str, ...] = ()
    notes_fr: tuple[str, ...] = ()
    defaults: dict[str, bool | tuple[str, ...]] = Field(default_factory=dict)


class Table(_Model):
    meta: Meta
    term: dict[str, Term]


@functools.cache
def load_table(name: str) -> Table:
    """The validated CTCAE table ``data/scales/<name>.toml``."""
    try:
        table = Table.model_validate(ruledata.load(name))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RuleSpecError(f"data/scales/{name}.toml: {where}: {first['msg']}") from None
    for slug, term in table.term.items():
        _validate(f"{name}.term.{slug}", slug, term, table.meta)
    return table


def _validate(where: str, slug: str, t: Term, meta: Meta) -> None:
    vocab = vocabulary()

    def fail(msg: str) -> None:
        raise RuleSpecError(f"{where}: {msg}")

    if slugify(t.term) != slug:
        fail(f"key must be the slug of {t.term!r}: {slugify(t.term)!r}")
    covered: set[int] = set()
    texts = [(c.grade, c.text) for c in t.criteria]
    if t.lab:
        texts += [(b.grade, b.text) for b in t.lab.bands]
        for b in t.lab.bands:
            for name in b.if_:
                if name not in t.lab.conditions:
                    fail(f"band {b.text!r}: unknown condition {name!r}")
        for b in t.lab.bands:
            for bound in t.lab.band_bounds(b):
                for op in bound.operands():
                    if op != "value" and op not in t.lab.refs:
                        fail(f"band {b.text!r} compares {op!r}, which is not in lab.refs")
        lo, hi = t.lab.range
        if not 0 <= lo < hi:
            fail(f"lab.range {t.lab.range} is not an increasing range of non-negative values")
        if t.lab.substance is not None and units.analyte(t.lab.substance).unit != t.lab.unit:
            fail(
                f"lab.unit {t.lab.unit!r} is not the canonical unit of {t.lab.substance!r} in "
                f"data/analytes.toml ({units.analyte(t.lab.substance).unit!r})"
            )
        for key in t.lab.requires:
            if key not in t.reads:
                fail(f"lab.requires {key!r} is not among the findings the term reads")
        for a in t.lab.adjust:
            if vocab.get(a.finding) is None or vocab[a.finding].kind != "quantity":
                fail(f"lab.adjust reads {a.finding!r}, which is not a quantity finding")
            units.convert("lab.adjust.factor", a.factor, a.factor_unit, t.lab.unit, t.lab.molar_mass)
            source(a.source)
    for grade, text in texts:
        if grade not in t.grades:
            fail(f"criterion {text!r} gives grade {grade}, which CTCAE marks '-' for this term")
        if text not in t.verbatim.grade_text(grade):
            fail(f"criterion text {text!r} is not a fragment of the grade {grade} text")
        covered.add(grade)
    uncovered = [g for g in t.grades if g and g not in covered]
    if uncovered:
        fail(f"grades {uncovered} have no criterion")
    used = {c.finding for c in t.conditions()} | {i.finding for i in t.implied}
    used |= {a.finding for a in t.lab.adjust} if t.lab else set()
    if t.gate:
        used.add(t.gate)
    if used != set(t.reads):
        fail(f"reads {sorted(t.reads)} differs from the findings the criteria use {sorted(used)}")
    for key in t.reads:
        spec = vocab.get(key)
        if spec is None:
            fail(f"finding {key!r} is not declared in data/findings*.toml")
    if t.gate and vocab[t.gate].kind != "bool":
        fail(f"gate {t.gate!r} must be a bool finding")
    for c in t.conditions():
        _validate_condition(where, c, vocab[c.finding])
    for key, default in meta.defaults.items():
        if key in t.reads:
            vocab[key].parse(list(default) if isinstance(default, tuple) else default)
    for imp in t.implied:
        vocab[imp.finding].parse(imp.value)


def _validate_condition(where: str, c: Condition, spec: FieldSpec) -> None:
    kinds = {
        "op": ("quantity", "integer"),
        "in_": ("enum",),
        "is_": ("bool",),
        "count_ge": ("enum_list",),
        "lacks": ("enum_list",),
    }
    form = next(k for k in kinds if getattr(c, k) is not None)
    if spec.kind not in kinds[form]:
        raise RuleSpecError(f"{where}: condition {c.describe()!r} does not suit a {spec.kind} finding")
    items = c.in_ or ((c.lacks,) if c.lacks else ())
    bad = [v for v in items if v not in spec.values]
    if bad:
        raise RuleSpecError(f"{where}: condition {c.describe()!r}: {bad} not among {list(spec.values)}")
