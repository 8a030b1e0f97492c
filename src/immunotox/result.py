"""The result of grading: a grade that explains itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .messages import Lang, Msg, render, texts_of, trusted, verbatim


class RuleHit(BaseModel):
    """One rule that fired: which domain, which criterion, the grade it supports."""

    model_config = ConfigDict(frozen=True)

    rule: str = Field(description="Stable rule id, e.g. 'astct2019:crs/hypoxia/high_flow'")
    domain: str
    grade: int | None = Field(description="Grade this criterion supports (None for gating rules)")
    text: str = Field(description="The criterion and the finding that met it, in the result's language")
    msg: Msg | None = Field(default=None, description="The same text as data (id and parameters)")

    def message(self) -> Msg:
        """The text as a message (a text built without one is shown as is in every language)."""
        return self.msg if self.msg is not None else verbatim(self.text)

    @classmethod
    def of(cls, rule: str, domain: str, grade: int | None, msg: Msg) -> RuleHit:
        """The rule ``rule`` that fired, with its text ``msg`` (written in English in ``text``)."""
        values = {"rule": rule, "domain": domain, "grade": grade, "text": render(msg), "msg": msg}
        return trusted(cls, values, _HIT_FIELDS)


_HIT_FIELDS = ("rule", "domain", "grade", "text", "msg")


class Texts(BaseModel):
    """The texts of a result as data, so that it can be shown again in another language."""

    model_config = ConfigDict(frozen=True)

    title: Msg
    reasons: list[Msg]
    notes: list[Msg]
    deciding: list[Msg] = Field(default_factory=list, description="Names of the deciding domains")
    fired: list[Msg] = Field(default_factory=list, description="Texts of the rules that fired")
    inputs: dict[str, tuple[str, str | None]] = Field(
        default_factory=dict,
        description="What each missing input is, (English, French), from the scale's own declaration",
    )


def texts(
    title: Msg,
    reasons: list[Msg],
    notes: list[Msg],
    deciding: list[Msg],
    fired: list[Msg],
    inputs: dict[str, tuple[str, str | None]] | None = None,
) -> Texts:
    """:class:`Texts` built without validation from messages this package wrote (``inputs``
    left out is left unset, as ``Texts(...)`` without it)."""
    values = {
        "title": title,
        "reasons": reasons,
        "notes": notes,
        "deciding": deciding,
        "fired": fired,
        "inputs": {} if inputs is None else inputs,
    }
    return trusted(Texts, values, _TEXTS_FIELDS if inputs is not None else _TEXTS_FIELDS[:-1])


_TEXTS_FIELDS = ("title", "reasons", "notes", "deciding", "fired", "inputs")

Status = Literal["assessed", "incomplete", "not_assessable", "not_applicable"]
"""Every status a grade can have (one vocabulary for the library, service, web and FHIR)."""


class GradeResult(BaseModel):
    """A grade with its reasons, its sources and what it could not see.

    ``grade`` is the grade the known findings establish; 0 means the criteria are not met.
    When inputs that could change the grade are missing, ``complete`` is false, ``grade`` is a
    **lower bound** and ``grade_range`` gives the grades still possible. ``grade`` is ``None``
    when nothing at all can be established (``status = "not_assessable"``, ``grade_range`` the
    grades still possible) or when the scale does not apply (``status = "not_applicable"``: e.g.
    a late ICAHT grade for a patient whose late window never opened). A not-applicable result
    has no grade and no ``grade_range`` (``None``); nothing is missing, so it is complete, and
    its reasons name the input that closed it.
    """

    scale: str
    title: str
    version: str
    grade: int | None
    grade_range: tuple[int, int] | None
    complete: bool
    status: Status
    deciding_domains: list[str]
    missing: list[str]
    ignored: list[str] = Field(
        default_factory=list,
        description="Findings of the shared vocabulary that were given but are not inputs of this scale",
    )
    reasons: list[str]
    fired: list[RuleHit]
    notes: list[str] = Field(description="Interpretation decisions applied to this grading")
    sources: list[str]
    lang: Lang = Field(default="en", description="Language of title, reasons, notes and fired texts")
    texts: Texts | None = Field(default=None, description="The same texts as data, for other languages")

    def in_lang(self, lang: Lang) -> GradeResult:
        """This result with its title, reasons, notes and fired-rule texts written in ``lang``."""
        if self.texts is None or lang == self.lang:
            return self
        t = self.texts
        return self.model_copy(
            update={
                "lang": lang,
                "title": render(t.title, lang),
                "reasons": [render(m, lang) for m in t.reasons],
                "notes": [render(m, lang) for m in t.notes],
                "fired": [h.model_copy(update={"text": render(h.message(), lang)}) for h in self.fired],
            }
        )

    def explain(self, lang: Lang | None = None) -> str:
        """A readable, multi-line explanation for people, in ``lang`` (default: the result's)."""
        r = self.in_lang(lang or self.lang)
        lg = r.lang
        t = texts_of("messages:explain", lg)

        lines = [t("title", title=r.title, scale=r.scale, version=r.version)]
        if r.grade_range is None:
            lines.append(t("not_applicable"))
        elif r.grade is None:
            lines.append(t("not_assessable"))
        elif r.complete:
            lines.append(t("grade", grade=r.grade))
        else:
            lo, hi = r.grade_range
            lines.append(
                t("lower_bound_fixed", grade=r.grade)
                if lo == hi
                else t("lower_bound_up_to", grade=r.grade, hi=hi)
            )
        if r.deciding_domains:
            names = r.texts.deciding if r.texts and r.texts.deciding else r.deciding_domains
            lines.append(t("decided_by", domains=names))
        lines.append(t("why"))
        lines += [f"  - {x}" for x in r.reasons]
        if r.missing:
            lines.append(t("missing", keys=r.missing))
            inputs = r.texts.inputs if r.texts else {}
            lines += [f"  - {t('missing_item', key=k, name=finding_name(k, lg, inputs))}" for k in r.missing]
        if r.notes:
            lines.append(t("notes"))
            lines += [f"  - {n}" for n in r.notes]
        lines.append(t("sources"))
        lines += [f"  - {s}" for s in r.sources]
        return "\n".join(lines)


def built(
    *,
    scale: str,
    title: str,
    version: str,
    grade: int | None,
    grade_range: tuple[int, int] | None,
    complete: bool,
    status: Status,
    deciding_domains: list[str],
    missing: list[str],
    ignored: list[str],
    reasons: list[str],
    fired: list[RuleHit],
    notes: list[str],
    sources: list[str],
    texts: Texts,
) -> GradeResult:
    """A scale's :class:`GradeResult` (in English) built without validation from the values its
    resolution wrote: what ``GradeResult(...)`` with these arguments builds, field for field."""
    values = {
        "scale": scale,
        "title": title,
        "version": version,
        "grade": grade,
        "grade_range": grade_range,
        "complete": complete,
        "status": status,
        "deciding_domains": deciding_domains,
        "missing": missing,
        "ignored": ignored,
        "reasons": reasons,
        "fired": fired,
        "notes": notes,
        "sources": sources,
        "lang": "en",
        "texts": texts,
    }
    return trusted(GradeResult, values, _BUILT_FIELDS)


_BUILT_FIELDS = tuple(f for f in GradeResult.model_fields if f != "lang")


def input_root(key: str) -> str:
    """The input a missing key belongs to (``ice_items.orientation`` → ``ice_items``,
    ``anc_series[2].value`` → ``anc_series``): the key :attr:`Texts.inputs` is indexed by."""
    return key.split(".")[0].split("[")[0]


def finding_name(key: str, lang: Lang, inputs: Mapping[str, tuple[str, str | None]]) -> str:
    """What the input ``key`` is, in ``lang``: the text of the scale's own declaration of it (a
    CTCAE lab term's ``uln`` is the ULN of its analyte, in its unit), carried by the result's
    :class:`Texts` (``inputs``); sub-keys such as ``ice_items.orientation`` are named by their
    parent; the key itself when the scale does not declare it."""
    names = inputs.get(input_root(key))
    if names is None:
        return key
    en, fr = names
    return fr if lang == "fr" and fr else en
