"""Base machinery shared by every scale: domains, three-valued resolution, the result.

A scale reads checked findings and splits them into **domains** (fever, hypotension, hypoxia…).
Each domain evaluates to a set of *possible* values: one value when its inputs are known, several
when an input is missing (a missing oxygen device could be anything from "none" to "positive
pressure"). The scale's ``combine`` turns one value per domain into a grade. Resolution runs
``combine`` over every combination of possible values, so:

* ``grade`` is the lowest grade still possible — the grade the known findings establish;
* ``grade_range`` is (lowest, highest) possible grade;
* every input a full assessment needed and did not get is listed in ``missing``, and the grade
  is then flagged incomplete (a lower bound), whether or not the input could change it;
  ``grade_range`` says whether it could.

A domain can also be **not applicable** (its window never opened, e.g. late ICAHT after death
on day 20): it is left out of ``combine``, its reasons say why, and a scale whose domains are all
not applicable has no grade (``status = "not_applicable"``, complete, nothing missing).

Missing data is therefore never read as normal. The sets are tiny (a handful of values, a few
domains), so exhaustive enumeration is cheap and exact.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..findings import FieldSpec, parse_findings, vocabulary
from ..messages import Catalogue, Msg, render, verbatim
from ..result import GradeResult, RuleHit, Status, built, input_root, texts
from ..sources import Source, source

_ENUMERATED_MAX = 4096  # memoised enumerations kept per scale (see Scale._enumerate)
_COMMON = Catalogue("messages")


def and_list(items: Sequence[Msg]) -> Msg:
    """``a and b and c`` (« a et b et c ») from one or more messages."""
    out = items[0]
    for item in items[1:]:
        out = _COMMON("and_pair", a=out, b=item)
    return out


def _msg(text: str | Msg) -> Msg:
    return text if isinstance(text, Msg) else verbatim(text)


@dataclass(frozen=True)
class _Fixed:
    """What every result of one scale carries, built once (see :meth:`Scale._fixed`)."""

    title: Msg
    title_en: str
    notes: tuple[Msg, ...]
    notes_en: tuple[str, ...]
    sources: tuple[str, ...]
    domains: dict[str, Msg]  # domain name -> its name for people, filled on first use


@dataclass
class Domain:
    """The outcome of one domain: possible values, the rules that fired, what was missing."""

    name: str
    possible: tuple[Hashable, ...]
    hits: list[RuleHit] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    reasons: list[Any] = field(default_factory=list)  # str or Msg
    assumed: bool = False  # value set by a documented default, not by an input
    applicable: bool = True  # False: the domain does not apply (no value; left out of combine)

    @property
    def known(self) -> bool:
        return len(self.possible) == 1


def known(name: str, value: Hashable, *hits: RuleHit, reason: str | Msg | None = None) -> Domain:
    """A domain whose value is established."""
    return Domain(name, (value,), list(hits), [], [reason] if reason else [])


def assumed(name: str, value: Hashable) -> Domain:
    """A domain set by a documented default (e.g. 'no death recorded' = alive), not by an input."""
    return Domain(name, (value,), assumed=True)


def not_applicable(name: str, reason: str | Msg) -> Domain:
    """A domain that does not apply to this patient (``reason`` names the input that says so)."""
    return Domain(name, (), reasons=[reason], applicable=False)


def unknown(
    name: str, possible: Sequence[Hashable], *missing: str, reason: str | Msg | None = None
) -> Domain:
    """A domain whose value is one of ``possible`` because ``missing`` inputs are absent."""
    return Domain(name, tuple(dict.fromkeys(possible)), [], list(missing), [reason] if reason else [])


class Scale(ABC):
    """A versioned, cited grading scale.

    Subclasses set the class attributes and implement :meth:`domains` and :meth:`combine`.
    """

    id: str
    title: str
    version: str
    source_keys: tuple[str, ...]
    findings: Mapping[str, FieldSpec]
    grades: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    notes: tuple[str | Msg, ...] = ()
    family: str = "other"
    #: the scale's texts (data/scales/<file>.toml): ``title``, ``domains.<name>`` and ``messages``;
    #: None for a scale whose texts are not yet data (they are then shown in English everywhere)
    texts: Catalogue | None = None
    #: the table of the texts file that holds this scale's title and domains (None: the part of
    #: the id after ':', as in ``[crs.title]``; "" for a file of one scale: ``[title]``)
    texts_table: str | None = None

    def _text(self, key: str) -> Msg:
        assert self.texts is not None
        table = self.id.split(":")[-1] if self.texts_table is None else self.texts_table
        return self.texts(f"{table}.{key}" if table else key)

    def title_msg(self) -> Msg:
        """The scale's title as a message (``title`` of its texts, else the English title)."""
        return self._text("title") if self.texts else verbatim(self.title)

    def domain_msg(self, name: str) -> Msg:
        """A domain's name for people (``domains.<name>`` of its texts, else the name)."""
        return self._text(f"domains.{name}") if self.texts else verbatim(name)

    def _fixed(self) -> _Fixed:
        """The texts every result of this scale carries, built and written in English once per
        scale (they depend on its declaration only: title, notes, sources)."""
        fixed: _Fixed | None = self.__dict__.get("_fixed_texts")
        if fixed is None:
            title = self.title_msg()
            notes = tuple(_msg(n) for n in self.notes)
            fixed = _Fixed(
                title=title,
                title_en=render(title),
                notes=notes,
                notes_en=tuple(render(n) for n in notes),
                sources=tuple(s.citation() for s in self.sources),
                domains={},
            )
            self.__dict__["_fixed_texts"] = fixed
        return fixed

    def domain_name(self, name: str) -> Msg:
        """:meth:`domain_msg`, built once per scale and domain (a message is immutable)."""
        domains = self._fixed().domains
        msg = domains.get(name)
        if msg is None:
            msg = domains[name] = self.domain_msg(name)
        return msg

    @property
    def sources(self) -> list[Source]:
        return [source(k) for k in self.source_keys]

    def check(self, f: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """Refuse contradictory findings (raise FindingError). Default: nothing to check."""

    @abstractmethod
    def domains(self, f: Mapping[str, Any]) -> list[Domain]:
        """Evaluate each domain from the checked findings ``f`` (absent key = unknown)."""

    @abstractmethod
    def combine(self, v: Mapping[str, Any]) -> int:
        """The grade for one fully known assignment ``v`` of domain values."""

    def deciding(self, v: Mapping[str, Any], grade: int) -> list[str]:
        """Domains that decide ``grade`` under assignment ``v`` (default: int values equal to it)."""
        return [k for k, x in v.items() if type(x) is int and x == grade and grade > 0]

    def summary(self, v: Mapping[str, Any], grade: int) -> str | Msg:
        """One sentence on how the grade follows from the domain values."""
        dec = self.deciding(v, grade)
        if grade == 0:
            return _COMMON("grade_zero")
        if dec:
            return _COMMON(
                "grade_most_severe", grade=grade, domains=and_list([self.domain_name(d) for d in dec])
            )
        return _COMMON("grade_only", grade=grade)

    @staticmethod
    def _death(f: Mapping[str, Any], key: str) -> Domain:
        """The grade-5 domain: known when ``key`` is given, else assumed 'alive' (documented)."""
        return known("death", f[key]) if key in f else assumed("death", False)

    # ------------------------------------------------------------------ resolution
    def grade(self, raw: Mapping[str, Any], *, ignore_unused: bool = False) -> GradeResult:
        """Parse and check ``raw`` findings, then grade them (texts in English: see
        :meth:`GradeResult.in_lang` for another language).

        With ``ignore_unused`` (regrading mode), findings of the shared vocabulary that this
        scale does not read are checked and listed in ``ignored`` instead of being refused.
        """
        ignored: list[str] = []
        f = parse_findings(self.id, self.findings, raw, ignored=ignored if ignore_unused else None)
        self.check(f)
        return self.resolve(self.domains(f), f, ignored)

    def resolve(self, doms: list[Domain], f: Mapping[str, Any], ignored: Sequence[str] = ()) -> GradeResult:
        # one pass over the domains: the applicable ones in order, their names, values, hits
        # and reasons (the reasons of the not-applicable ones last), the inputs they miss
        names: list[str] = []
        possible: list[tuple[Hashable, ...]] = []
        hits: list[RuleHit] = []
        reasons: list[Any] = []
        closed: list[Any] = []  # reasons of the domains that do not apply
        # every input of a domain left unknown is reported, even when it cannot change the
        # grade (grade_range says whether it could); scales only leave a domain unknown when
        # the input is needed for a full assessment in this case.
        missing: list[str] = []
        nothing_known = True  # no domain known from an input (a documented default is not one)
        for d in doms:
            if not d.applicable:
                closed += d.reasons
                continue
            names.append(d.name)
            possible.append(d.possible)
            hits += d.hits
            reasons += d.reasons
            if not d.known:
                missing += [m for m in d.missing if m not in missing]
            elif not d.assumed:
                nothing_known = False
        if not names:
            return self._not_applicable(doms, ignored)
        lo, hi, low_combo = self._enumerate(tuple(names), tuple(possible))
        low_values = dict(zip(names, low_combo, strict=True))
        reasons += closed
        nothing_known = nothing_known and not hits
        complete = not missing
        status: Status
        if nothing_known and lo != hi:
            status, grade = "not_assessable", None
        else:
            status, grade = ("assessed" if complete else "incomplete"), lo
        summary = _msg(self.summary(low_values, lo))
        if not complete:
            summary = (
                _COMMON("lower_bound_fixed", summary=summary, missing=missing)
                if lo == hi
                else _COMMON("lower_bound_up_to", summary=summary, missing=missing, hi=hi)
            )
        fixed = self._fixed()
        deciding = self.deciding(low_values, lo) if grade is not None else []
        fired = [h.message() for h in hits]
        reasons_msg = [
            *(
                _COMMON("hit_grade", text=m, grade=h.grade) if h.grade is not None else m
                for h, m in zip(hits, fired, strict=True)
            ),
            *(_msg(r) for r in reasons),
            summary,
            *([_COMMON("not_used", keys=list(ignored))] if ignored else []),
        ]
        return built(
            scale=self.id,
            title=fixed.title_en,
            version=self.version,
            grade=grade,
            grade_range=(lo, hi),
            complete=complete,
            status=status,
            deciding_domains=deciding,
            missing=list(missing),  # not the list the lower-bound message holds
            ignored=list(ignored),
            reasons=[render(m) for m in reasons_msg],
            fired=hits,
            notes=list(fixed.notes_en),
            sources=list(fixed.sources),
            texts=texts(
                fixed.title,
                reasons_msg,
                list(fixed.notes),
                [self.domain_name(d) for d in deciding],
                fired,
                self.input_names(missing),
            ),
        )

    def input_names(self, keys: Sequence[str]) -> dict[str, tuple[str, str | None]]:
        """What each input of ``keys`` is, (English, French): this scale's declaration of it,
        else the shared findings vocabulary's (sub-keys are named by their parent)."""
        out: dict[str, tuple[str, str | None]] = {}
        known: dict[str, tuple[str, tuple[str, str | None] | None]] = self.__dict__.setdefault("_inputs", {})
        for key in keys:
            hit = known.get(key)
            if hit is None:  # the declarations never change: each key is looked up once per scale
                root = input_root(key)
                spec = self.findings.get(root) or vocabulary().get(root)
                hit = (root, None if spec is None else (spec.text, spec.text_fr))
                if len(known) < _ENUMERATED_MAX:  # keys come from the input's shape: bounded
                    known[key] = hit
            if hit[1] is not None:
                out[hit[0]] = hit[1]
        return out

    def _enumerate(
        self, names: tuple[str, ...], possible: tuple[tuple[Hashable, ...], ...]
    ) -> tuple[int, int, tuple[Hashable, ...]]:
        """(lowest, highest grade, first assignment giving the lowest) over every combination.

        ``combine`` is a pure function of the assignment, so the outcome is memoised per scale
        on the domain names and possible values (with their types: ``True`` and ``1`` are equal
        keys but not the same finding); the memo is bounded.
        """
        key: Hashable | None = (names, possible, tuple(map(type, itertools.chain.from_iterable(possible))))
        memo = self.__dict__.setdefault("_enumerated", {})
        try:
            hit: tuple[int, int, tuple[Hashable, ...]] | None = memo.get(key)
        except TypeError:  # a value that cannot be a key: enumerate without the memo
            hit, key = None, None
        if hit is not None:
            return hit
        table: list[tuple[tuple[Hashable, ...], int]] = []
        for combo in itertools.product(*possible):
            table.append((combo, self.combine(dict(zip(names, combo, strict=True)))))
        lo = min(g for _, g in table)
        hi = max(g for _, g in table)
        out = (lo, hi, next(c for c, g in table if g == lo))
        if key is not None:
            if len(memo) >= _ENUMERATED_MAX:
                memo.clear()
            memo[key] = out
        return out

    def _not_applicable(self, doms: Sequence[Domain], ignored: Sequence[str]) -> GradeResult:
        """The result when no domain applies: no grade, no range, nothing missing."""
        fixed = self._fixed()
        reasons_msg = [
            *(_msg(r) for d in doms for r in d.reasons),
            _COMMON("not_applicable"),
            *([_COMMON("not_used", keys=list(ignored))] if ignored else []),
        ]
        return built(
            scale=self.id,
            title=fixed.title_en,
            version=self.version,
            grade=None,
            grade_range=None,
            complete=True,
            status="not_applicable",
            deciding_domains=[],
            missing=[],
            ignored=list(ignored),
            reasons=[render(m) for m in reasons_msg],
            fired=[],
            notes=list(fixed.notes_en),
            sources=list(fixed.sources),
            texts=texts(fixed.title, reasons_msg, list(fixed.notes), [], []),
        )
