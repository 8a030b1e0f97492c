"""The result of grading: a grade that explains itself."""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, field_serializer

from .messages import Lang, Msg, render, texts_of, trusted, verbatim


class _Unwritten:
    """A text field of a result not written yet: the message(s) it shows and their language.

    A grade builds its texts as messages (:class:`~immunotox.messages.Msg`); writing them out
    in a language costs about a third of a grade, and a live caller often reads only the grade.
    The fields ``GradeResult.reasons`` and ``RuleHit.text`` therefore hold one of these until
    first read (see :class:`_Written`): it keeps its own messages and language, so the text
    written later is the text an eager :func:`~immunotox.messages.render` would have written.
    Never seen outside this module: every way a result is read (attributes, ``model_dump``,
    JSON, ``==``, ``hash``, ``repr``, ``dict()``, pickle, copies) writes it first.
    """

    __slots__ = ("lang", "msgs")

    def __init__(self, msgs: Msg | tuple[Msg | str, ...], lang: Lang) -> None:
        self.msgs = msgs
        self.lang = lang

    def write(self) -> str | list[str]:
        msgs, lang = self.msgs, self.lang
        if isinstance(msgs, Msg):
            return render(msgs, lang)
        return [render(m, lang) for m in msgs]

    def __repr__(self) -> str:
        return f"<unwritten {self.lang} text of {self.msgs!r}>"


_WRITING = threading.Lock()  # one text stored per field, whichever thread wrote it first


class _Written:
    """The field ``name`` of a result, written from its :class:`_Unwritten` on first read.

    A data descriptor set on the class after pydantic built it (pydantic keeps the field as
    declared: validation, schema and assignment are unchanged; assignment writes ``__dict__``
    directly). The text is written outside the lock (rendering is pure) and stored under it only
    if the field still holds the same :class:`_Unwritten`: every thread reading a field gets the
    one object it keeps.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:  # as before: a field is not a class attribute
            raise AttributeError(self.name)
        try:
            value = obj.__dict__[self.name]
        except KeyError:  # not set (model_construct without it): pydantic's own AttributeError
            raise AttributeError(self.name) from None
        return _write(obj.__dict__, self.name, value) if type(value) is _Unwritten else value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.name] = value

    def __delete__(self, obj: Any) -> None:
        try:
            del obj.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None


def _write(values: dict[str, Any], name: str, pending: _Unwritten) -> Any:
    text = pending.write()
    with _WRITING:
        current = values.get(name)
        if current is pending:
            values[name] = text
            return text
    return current if type(current) is not _Unwritten else _write(values, name, current)


_M = TypeVar("_M", bound=BaseModel)


def _copy_with(model: _M, update: dict[str, Any]) -> _M:
    """``model.model_copy(update=update)`` without writing its unwritten texts first: the same
    fields in the same order, every other value shared (a shallow copy), and the fields set
    copied then updated as pydantic does (the same set, down to its pickled order)."""
    m = trusted(type(model), {**model.__dict__, **update}, ())
    given = copy.copy(model.__pydantic_fields_set__)
    given.update(update.keys())
    object.__setattr__(m, "__pydantic_fields_set__", given)
    return m


def _settle(model: BaseModel, name: str) -> None:
    """Write the field ``name`` of ``model`` if it is still unwritten."""
    value = model.__dict__.get(name)
    if type(value) is _Unwritten:
        _write(model.__dict__, name, value)


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
        """The rule ``rule`` that fired, with its text ``msg`` (``text``: written in English
        on first read)."""
        values = {"rule": rule, "domain": domain, "grade": grade, "text": _Unwritten(msg, "en"), "msg": msg}
        return trusted(cls, values, _HIT_FIELDS)

    def _in_lang(self, lang: Lang) -> RuleHit:
        """``model_copy(update={"text": render(self.message(), lang)})``, written on first read."""
        return _copy_with(self, {"text": _Unwritten(self.message(), lang)})

    # ``text`` may be unwritten (see _Unwritten): everything that reads __dict__ writes it first
    @field_serializer("text", mode="wrap")
    def _text_out(self, value: Any, handler: SerializerFunctionWrapHandler) -> str:
        return handler(self.text)  # type: ignore[no-any-return]

    def __eq__(self, other: object) -> bool:
        _settle(self, "text")
        if isinstance(other, RuleHit):
            _settle(other, "text")
        return super().__eq__(other)

    def __iter__(self) -> Any:
        _settle(self, "text")
        return super().__iter__()

    def __repr_args__(self) -> Any:
        _settle(self, "text")
        return super().__repr_args__()

    def __getstate__(self) -> dict[Any, Any]:
        _settle(self, "text")
        return super().__getstate__()

    def __copy__(self) -> RuleHit:
        _settle(self, "text")
        return super().__copy__()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> RuleHit:
        _settle(self, "text")
        return super().__deepcopy__(memo)


_HIT_FIELDS = ("rule", "domain", "grade", "text", "msg")
_frozen_hash = RuleHit.__hash__  # pydantic's hash of a frozen model, over its fields' values


def _hit_hash(self: RuleHit) -> int:
    _settle(self, "text")
    return _frozen_hash(self)


RuleHit.__hash__ = _hit_hash  # type: ignore[method-assign,assignment]
RuleHit.text = _Written("text")  # type: ignore[assignment]


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
        """This result with its title, reasons, notes and fired-rule texts written in ``lang``
        (``reasons`` and the fired texts on first read: see :class:`_Unwritten`)."""
        if self.texts is None or lang == self.lang:
            return self
        t = self.texts
        update = {
            "lang": lang,
            "title": render(t.title, lang),
            "reasons": _Unwritten(tuple(t.reasons), lang),
            "notes": [render(m, lang) for m in t.notes],
            "fired": [h._in_lang(lang) for h in self.fired],
        }
        return _copy_with(self, update)

    # ``reasons`` may be unwritten (see _Unwritten): everything that reads __dict__ writes it first
    @field_serializer("reasons", mode="wrap")
    def _reasons_out(self, value: Any, handler: SerializerFunctionWrapHandler) -> list[str]:
        return handler(self.reasons)  # type: ignore[no-any-return]

    def __eq__(self, other: object) -> bool:
        _settle(self, "reasons")
        if isinstance(other, GradeResult):
            _settle(other, "reasons")
        return super().__eq__(other)

    def __iter__(self) -> Any:
        _settle(self, "reasons")
        return super().__iter__()

    def __repr_args__(self) -> Any:
        _settle(self, "reasons")
        return super().__repr_args__()

    def __getstate__(self) -> dict[Any, Any]:
        _settle(self, "reasons")
        return super().__getstate__()

    def __copy__(self) -> GradeResult:
        _settle(self, "reasons")
        return super().__copy__()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> GradeResult:
        _settle(self, "reasons")
        return super().__deepcopy__(memo)

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
    reasons: Sequence[Msg | str],
    fired: list[RuleHit],
    notes: list[str],
    sources: list[str],
    texts: Texts,
) -> GradeResult:
    """A scale's :class:`GradeResult` (in English) built without validation from the values its
    resolution wrote: what ``GradeResult(...)`` with these arguments builds, field for field,
    with ``reasons`` given as messages (written in English on first read)."""
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
        "reasons": _Unwritten(tuple(reasons), "en"),
        "fired": fired,
        "notes": notes,
        "sources": sources,
        "lang": "en",
        "texts": texts,
    }
    return trusted(GradeResult, values, _BUILT_FIELDS)


_BUILT_FIELDS = tuple(f for f in GradeResult.model_fields if f != "lang")
GradeResult.reasons = _Written("reasons")  # type: ignore[assignment]


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
