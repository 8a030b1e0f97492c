"""Grading a CTCAE laboratory term from ``value``, ``uln``, ``lln``, ``baseline`` (and ``mi_level``).

The bands of a lab term (``ctcae_spec.Lab``) compare the value with multiples of its references.
When every input a band compares is known, the grade is the highest band that holds. When one
input is missing the grade is not guessed: the missing number is varied over every region its
critical values delimit (for a missing baseline: at or below ULN, above it, and on each side of
each ``value / k`` threshold), which gives exactly the set of grades still possible, and the
reasons say which assumption gives which grade ("if baseline normal (<= ULN): grade 3; if
baseline abnormal (> ULN): grade 0–3"). With two or more numbers missing the bands are evaluated
three-valued: the grade lies between the highest band that surely holds and the highest band
that may hold.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..findings import FieldSpec
from ..messages import Catalogue, Msg, quote
from ..result import RuleHit
from ._base import and_list
from .ctcae_spec import COMPARATORS, LAB_INPUTS, Bound, Condition, Lab

#: the sentences shared by every CTCAE term (data/scales/ctcae.toml, English and French)
T = Catalogue("scales/ctcae")


def input_name(key: str) -> Msg:
    """A lab input as reasons name it: ``ULN`` (« LSN »), ``baseline`` (« valeur de base »)."""
    msg = _INPUT_NAMES.get(key)
    if msg is None:
        msg = _INPUT_NAMES[key] = T(f"messages.input.{key}")
    return msg


_INPUT_NAMES: dict[str, Msg] = {}  # lab input -> its name (a message without parameters: shared)


def key_msg(key: str) -> Msg:
    """A finding key as code (`` `adl_limitation` ``): an identifier, the same in every language."""
    return T.m("key", key=key)


def missing_msg(keys: Sequence[str]) -> Msg:
    """The inputs left out: lab inputs by name (« LSN »), findings by key."""
    return and_list([input_name(k) if k in _INPUTS else key_msg(k) for k in keys])


_INPUTS = ("value", "uln", "lln", "baseline", "mi_level")

Comparator = Callable[[float, float], bool]


@dataclass
class LabOutcome:
    """The possible grades of a lab term, what fired for sure, what is missing and why."""

    grades: tuple[int, ...]
    hits: list[RuleHit] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    reasons: list[Msg] = field(default_factory=list)

    @property
    def known(self) -> bool:
        return len(self.grades) == 1


def num(x: float) -> str:
    """A number for reasons: up to 6 significant digits (3.00025 stays 3.00025)."""
    return f"{x:.6g}"


def grade_range(grades: Sequence[int]) -> Msg | int:
    """'3', '0–3' for a run of grades, '0, 2 or 3' (« 0, 2 ou 3 ») otherwise.

    >>> from immunotox.messages import render
    >>> render(grade_range([0, 1, 2, 3])), render(grade_range([0, 2, 3]), "fr")
    ('0–3', '0, 2 ou 3')
    """
    gs = sorted(set(grades))
    if len(gs) == 1:
        return gs[0]
    if gs == list(range(gs[0], gs[-1] + 1)):
        return T.m("grade_run", lo=gs[0], hi=gs[-1])
    return T.m("grade_or", grades=", ".join(map(str, gs[:-1])), last=gs[-1])


def candidates(spec: FieldSpec, conds: Sequence[Condition]) -> tuple[Hashable, ...]:
    """Representative values of an unknown finding: one per distinct outcome of ``conds``.

    Numbers: every threshold, the midpoints between consecutive thresholds and the ends of the
    possible range (whole numbers around each threshold for integers), so that every region the
    thresholds delimit is represented. Values are listed from the least to the most severe end
    (none/false/0 first).
    """
    raw: list[Hashable]
    if spec.kind == "bool":
        raw = [False, True]
    elif spec.kind == "enum":
        raw = list(spec.values)
    elif spec.kind == "enum_list":
        counts = sorted({c.count_ge for c in conds if c.count_ge is not None})
        items = [c.lacks for c in conds if c.lacks is not None]
        raw = [(), *(tuple(spec.values[:n]) for n in counts), *((i,) for i in items)]
    else:
        lo, hi = spec.range if spec.range else (float("-inf"), float("inf"))
        ts = sorted({float(c.x) for c in conds if c.x is not None})
        pts = set(ts)
        if spec.kind == "integer":
            pts |= {t + d for t in ts for d in (-1, 1)}
        else:
            pts |= {(a + b) / 2 for a, b in itertools.pairwise(ts)}
            pts |= {ts[0] - 1, ts[-1] + 1} if ts else {0.0}
        pts |= {p for p in (lo, hi) if abs(p) != float("inf")}
        raw = [int(p) if spec.kind == "integer" else p for p in sorted(pts) if lo <= p <= hi]
    out: dict[tuple[bool, ...], Hashable] = {}
    for value in raw:
        out.setdefault(tuple(c.holds(value) for c in conds), value)
    return tuple(out.values())


class LabGrader:
    """Grades one lab term; built once per scale."""

    def __init__(
        self, scale_id: str, lab: Lab, when_specs: Mapping[str, FieldSpec], texts: Catalogue, path: str
    ) -> None:
        self.scale_id = scale_id
        self.lab = lab
        #: the term's own texts: ``texts(f"{path}.analyte")`` (with its ``analyte_fr``)…
        self.texts = texts
        self.path = path
        self.analyte = texts(f"{path}.analyte")
        self.operands = lab.operands()
        self.when_specs = dict(when_specs)
        self.when_conds: dict[str, list[Condition]] = {}
        #: each band's bounds and named conditions (by band index), gathered once: read per grade
        self._bounds: tuple[tuple[Bound, ...], ...] = tuple(lab.band_bounds(b) for b in lab.bands)
        #: the same bounds as :meth:`Bound.evaluate` reads them, (lhs, ref, x, add, comparator),
        #: taken once from the rule objects (no threshold written here), and each band's grade
        self._checks: tuple[tuple[tuple[str, str | None, float, float, Comparator], ...], ...] = tuple(
            tuple((bd.lhs, bd.ref, bd.x, bd.add, COMPARATORS[bd.op]) for bd in bounds)
            for bounds in self._bounds
        )
        self._grades: tuple[int, ...] = tuple(b.grade for b in lab.bands)
        #: what a band's reason shows that depends on the band only (messages are immutable):
        #: its rule id and its quoted NCI text, built once per band
        self._band_rules: tuple[str, ...] = tuple(
            f"{scale_id}/value/grade{b.grade}-{i}" for i, b in enumerate(lab.bands)
        )
        self._band_quotes: tuple[Msg, ...] = tuple(quote(b.text) for b in lab.bands)
        #: the text of each named condition (« normale (<= LSN) »), built once
        self._conditions: dict[str, Msg] = {n: texts(f"{path}.conditions.{n}.text") for n in lab.conditions}
        #: the references each band's bounds compare (by band index), named in its reason
        self._band_refs: tuple[tuple[str, ...], ...] = tuple(
            tuple(dict.fromkeys(bd.ref for bd in b.bounds if bd.ref)) for b in lab.bands
        )
        #: whether a reason shows ``value / ref`` (:meth:`Lab.shows_ratio`), per lab input
        self._ratio: dict[str, bool] = {r: lab.shows_ratio(r) for r in LAB_INPUTS}
        #: whether a band compares with a multiple of the baseline (a zero baseline is then refused)
        self.scaled_baseline = any(bd.ref == "baseline" and bd.x != 1.0 for b in lab.bands for bd in b.bounds)
        for b in lab.bands:
            for c in b.when:
                self.when_conds.setdefault(c.finding, []).append(c)

    # ------------------------------------------------------------------ evaluation
    def _holds(self, i: int, q: Mapping[str, float], w: Mapping[str, Any]) -> bool | None:
        """Three-valued: does band ``i`` of the lab hold for the numbers ``q`` and findings ``w``?

        Each bound as :meth:`Bound.evaluate` (its operands in ``q``, else unknown) with its
        comparator, read from :attr:`_checks` without a call per bound (a grade reads them all).
        """
        result: bool | None = True
        for lhs, ref, x, add, holds in self._checks[i]:
            a = q.get(lhs)
            if ref is None:
                b: float | None = x
            else:
                r = q.get(ref)
                b = None if r is None else r * x + add
            if a is None or b is None:
                result = None
            elif not holds(a, b):
                return False
        for c in self.lab.bands[i].when:
            if c.finding not in w:
                result = None
            elif not c.holds(w[c.finding]):
                return False
        return result

    def _fired(self, q: Mapping[str, float], w: Mapping[str, Any]) -> tuple[int, list[int]]:
        fired = [i for i in range(len(self._checks)) if self._holds(i, q, w)]
        return max((self._grades[i] for i in fired), default=0), fired

    def condition(self, name: str) -> Msg:
        """The text of the named condition ``name`` (« normale (<= LSN) »)."""
        return self._conditions[name]

    def grade(self, q: Mapping[str, float], w: Mapping[str, Any], shown: Mapping[str, Msg]) -> LabOutcome:
        """The possible grades given the known lab numbers ``q`` and findings ``w``."""
        unknown = [k for k in self.operands if k not in q]
        w_unknown = [k for k in self.when_conds if k not in w]
        if len(unknown) >= 2:
            return self._three_valued(q, w, unknown, w_unknown, shown)
        var = unknown[0] if unknown else None
        points: list[float | None] = [None] if var is None else list(self._points(q, var))
        if not points:  # no admissible value of the missing number: grade three-valued instead
            return self._three_valued(q, w, unknown, w_unknown, shown)
        w_choices = [candidates(self.when_specs[k], self.when_conds[k]) for k in w_unknown]
        runs: list[tuple[int, list[int], dict[str, float], dict[str, Any]]] = []
        for p in points:
            qa = dict(q) if var is None or p is None else {**q, var: p}
            for combo in itertools.product(*w_choices):
                wa = {**w, **dict(zip(w_unknown, combo, strict=True))}
                g, fired = self._fired(qa, wa)
                runs.append((g, fired, qa, wa))
        grades = tuple(sorted({r[0] for r in runs}))
        sure = set(runs[0][1]).intersection(*(set(r[1]) for r in runs))
        out = LabOutcome(grades=grades)
        out.hits = [self._hit(i, q, w, shown) for i in sorted(sure)]
        pending = [var] if var else []
        pending += w_unknown
        if len(grades) == 1:
            if pending:
                key = "not_needed_one" if len(pending) == 1 else "not_needed_many"
                out.reasons.append(T.m(key, missing=missing_msg(pending), grade=grades[0]))
            if grades[0] == 0:
                text = self.describe(q, shown, self._refs_known(q))
                for name, nc in self.lab.conditions.items():
                    lhs = q.get(nc.lhs)
                    if lhs is not None and nc.evaluate(q):
                        text = self._with_condition(text, name, lhs)
                out.reasons.append(T.m("no_criterion_met", lab=text))
        else:
            out.missing = [k for k in pending if self._matters(k, runs, var)]
            out.reasons.append(self._scenarios(var, w_unknown, runs))
        if grades[0] > 0 and all(self.lab.bands[i].grade < grades[0] for i in sure):
            msg = T.m(
                "at_least",
                lab=self.describe(q, shown, self._refs_known(q)),
                grade=grades[0],
                missing=missing_msg(out.missing or pending),
            )
            out.hits.append(RuleHit.of(f"{self.scale_id}/value/lower-bound", "value", grades[0], msg))
        return out

    def _three_valued(
        self,
        q: Mapping[str, float],
        w: Mapping[str, Any],
        unknown: list[str],
        w_unknown: list[str],
        shown: Mapping[str, Msg],
    ) -> LabOutcome:
        status = [self._holds(i, q, w) for i in range(len(self.lab.bands))]
        lo = max((b.grade for b, s in zip(self.lab.bands, status, strict=True) if s), default=0)
        hi = max((b.grade for b, s in zip(self.lab.bands, status, strict=True) if s is not False), default=0)
        levels = {0, *(b.grade for b in self.lab.bands)}
        out = LabOutcome(grades=tuple(sorted(g for g in levels if lo <= g <= hi)))
        out.hits = [self._hit(i, q, w, shown) for i, s in enumerate(status) if s]
        if not out.known:
            open_bands = [
                b for b, s in zip(self.lab.bands, status, strict=True) if s is None and b.grade > lo
            ]
            out.missing = [
                k
                for k in unknown
                if any(k in bd.operands() for b in open_bands for bd in self.lab.band_bounds(b))
            ] + [
                k
                for k in w_unknown
                if any(
                    s is None and b.grade > lo and any(c.finding == k for c in b.when)
                    for b, s in zip(self.lab.bands, status, strict=True)
                )
            ]
            out.reasons.append(
                T.m(
                    "three_valued",
                    missing=missing_msg(unknown),
                    analyte=self.analyte,
                    grades=grade_range(out.grades),
                )
            )
        return out

    # ------------------------------------------------------------------ helpers
    def _points(self, q: Mapping[str, float], var: str) -> list[float]:
        """Representative values of the missing number ``var`` (see the module docstring)."""
        crit: set[float] = set()
        bounds = [*(bd for b in self.lab.bands for bd in b.bounds), *self.lab.conditions.values()]
        for bd in bounds:
            c = bd.solve(q, var)
            if c is not None and c > 0:
                crit.add(c)
        # the consistency limits of the references (lln < uln <= mi_level) delimit regions too
        limits = {"uln": ("lln", "mi_level"), "lln": ("uln",), "mi_level": ("uln",)}
        crit |= {q[k] for k in limits.get(var, ()) if k in q and q[k] > 0}
        lo, hi = self.lab.range
        ts = sorted(crit)
        pts = set(ts) | {(a + b) / 2 for a, b in itertools.pairwise(ts)}
        pts |= {ts[0] / 2, ts[-1] * 2, (lo + ts[0]) / 2} if ts else {(lo + hi) / 2}
        # both ends of the possible range: a threshold halved can fall outside it (sodium 148
        # mmol/L with its ULN missing: ULN 74 is impossible, ULN 80-148 still gives grade 1)
        pts |= {lo, hi}
        return [p for p in sorted(pts) if lo <= p <= hi and self._admissible(q, var, p)]

    @staticmethod
    def _admissible(q: Mapping[str, float], var: str, p: float) -> bool:
        """Whether ``var = p`` is consistent with the known references (the checks of the scale)."""
        if var != "value" and p <= 0:
            return False
        if var == "uln" and "lln" in q and p <= q["lln"]:
            return False
        if var == "lln" and "uln" in q and p >= q["uln"]:
            return False
        if var == "mi_level" and "uln" in q and p < q["uln"]:
            return False
        return not (var == "uln" and "mi_level" in q and p > q["mi_level"])

    def _matters(
        self, key: str, runs: list[tuple[int, list[int], dict[str, float], dict[str, Any]]], var: str | None
    ) -> bool:
        """Whether changing ``key`` alone (the rest held) can change the grade."""
        groups: dict[tuple[Any, ...], set[int]] = {}
        for g, _, qa, wa in runs:
            held = [(k, v) for k, v in sorted(wa.items()) if k in self.when_conds and k != key]
            other: tuple[Any, ...] = (*held,) if key == var else (qa.get(var) if var else None, *held)
            groups.setdefault(other, set()).add(g)
        return any(len(gs) > 1 for gs in groups.values())

    def _scenarios(
        self,
        var: str | None,
        w_unknown: list[str],
        runs: list[tuple[int, list[int], dict[str, float], dict[str, Any]]],
    ) -> Msg:
        """'baseline not given — if baseline normal (<= ULN): grade 3; if … : grade 0–3'."""
        named = [(n, c) for n, c in self.lab.conditions.items() if var is not None and var in c.operands()]
        groups: dict[tuple[str, ...], list[int]] = {}
        cases: dict[tuple[str, ...], list[Msg]] = {}
        for g, _, qa, wa in runs:
            label = [n for n, c in named if c.evaluate(qa)]
            label += [f"{k}={_show(wa[k])}" for k in w_unknown]
            groups.setdefault(tuple(label), []).append(g)
            cases[tuple(label)] = [
                *(
                    T.m("case", lhs=input_name(c.lhs), condition=self.condition(n))
                    for n, c in named
                    if c.evaluate(qa)
                ),
                *(T.m("key_value", key=k, value=_show(wa[k])) for k in w_unknown),
            ]
        missing = [var] if var else []
        missing += w_unknown
        head = T.m("not_given", missing=missing_msg(missing))
        parts: list[Msg] = []
        for key, gs in groups.items():
            which = "scenario_varies" if var is not None and len(set(gs)) > 1 else "scenario"
            if key:
                parts.append(T.m(which, cases=cases[key], grades=grade_range(gs)))
        if not parts:
            all_grades = [g for gs in groups.values() for g in gs]
            return T.m("all_scenarios", head=head, grades=grade_range(all_grades))
        joined = parts[0]
        for p in parts[1:]:
            joined = T.m("semi_list", a=joined, b=p)
        return T.m("scenarios", head=head, parts=joined)

    def _refs_known(self, q: Mapping[str, float]) -> list[str]:
        return [k for k in self.operands if k != "value" and k in q]

    def describe(self, q: Mapping[str, float], shown: Mapping[str, Msg], refs: Sequence[str]) -> Msg:
        """'ALT 250 U/L = 6.25 × ULN (40 U/L)' — the value and its relation to ``refs``."""
        lab = self.lab
        if "value" not in q:
            return self.analyte
        v = q["value"]
        text = (
            T.m("lab_value_given", analyte=self.analyte, value=_n(v), unit=lab.unit, given=shown["value"])
            if "value" in shown
            else T.m("lab_value", analyte=self.analyte, value=_n(v), unit=lab.unit)
        )
        for r in refs:
            if r not in q:
                continue
            ref = q[r]
            ref_txt = (
                T.m("ref_value_given", value=_n(ref), unit=lab.unit, given=shown[r])
                if r in shown
                else T.m("ref_value", value=_n(ref), unit=lab.unit)
            )
            if r == "baseline" and lab.direction == "decreased":
                change = (1 - v / ref) * 100
                which = "with_decrease" if change >= 0 else "with_increase"
                text = T.m(which, lab=text, change=_n(abs(change)), ref=ref_txt)
            elif self._ratio[r]:
                text = T.m("with_ratio", lab=text, ratio=_n(v / ref), label=input_name(r), ref=ref_txt)
            else:
                text = T.m("with_ref", lab=text, label=input_name(r), ref=ref_txt)
        return text

    def _with_condition(self, text: Msg, name: str, lhs: float) -> Msg:
        nc = self.lab.conditions[name]
        return T.m(
            "with_condition",
            lab=text,
            lhs=input_name(nc.lhs),
            value=_n(lhs),
            unit=self.lab.unit,
            condition=self.condition(name),
        )

    def _hit(self, i: int, q: Mapping[str, float], w: Mapping[str, Any], shown: Mapping[str, Msg]) -> RuleHit:
        b = self.lab.bands[i]
        text = self.describe(q, shown, self._band_refs[i])
        for name in b.if_:
            lhs = q.get(self.lab.conditions[name].lhs)
            if lhs is not None:
                text = self._with_condition(text, name, lhs)
        for c in b.when:
            if c.finding in w:
                text = T.m(
                    "with_finding",
                    lab=text,
                    finding=T.m("key_value", key=c.finding, value=_show(w[c.finding])),
                )
        msg = T.m("band", lab=text, text=self._band_quotes[i])
        return RuleHit.of(self._band_rules[i], "value", b.grade, msg)


def _n(x: float) -> float:
    """A number for reasons: up to 6 significant digits (written with a decimal comma in French)."""
    return float(num(x))


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, tuple):
        return repr(list(value))
    return num(float(value))
