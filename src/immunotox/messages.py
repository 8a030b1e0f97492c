"""Texts for people, in French and English, as data beside the rules.

Every sentence a result shows — a reason, a fired rule, an interpretation note, a summary — is a
:class:`Msg`: the id of a text in a data file and its named parameters. The text itself is data,
next to the rule it explains, written twice: ``text`` (English) and ``text_fr`` (French), with
``{named}`` parameters::

    [crs.oxygen.cpap]                                   # a rule entry of data/scales/astct2019.toml
    grade = 4
    text = "Hypoxia requiring positive pressure (CPAP)"
    text_fr = "Hypoxie nécessitant une pression positive (CPAP)"

    [messages.no_fever]                                 # a sentence the scale's logic builds
    text = "No fever: temperature {temp} °C < {thr} °C"
    text_fr = "Pas de fièvre : température {temp} °C < {thr} °C"

A message id is ``<file>:<dotted.path>``: the data file relative to ``immunotox/data`` without
``.toml`` (``scales/astct2019``, ``risk/easix``, ``messages`` for the texts shared by every
result) and the path of the table inside it (an integer step indexes an array of tables:
``scales/astct2019:icans.ice_bands.2``). A result keeps its messages, so it can be shown again in
the other language (:meth:`immunotox.result.GradeResult.in_lang`).

Parameters are numbers (written with a decimal comma in French), strings (identifiers and values
shown as given), lists (joined with ", ") or other messages (rendered in the same language).
Three ids are special: ``verbatim`` (a text not yet translated: the same in every language, and
the translation test fails on it), ``name`` (a proper name, the same in every language) and
``quote`` (a verbatim quotation of an English source such as the NCI CTCAE wording: it stays in
English in every language and is marked as a quotation; in HTML it carries ``lang="en"``).

>>> m = Msg(id="scales/astct2019:messages.no_fever", params={"temp": 37.5, "thr": 38.0})
>>> render(m, "en")
'No fever: temperature 37.5 °C < 38 °C'
>>> render(m, "fr")
'Pas de fièvre : température 37,5 °C < 38 °C'
"""

from __future__ import annotations

import copy
import functools
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from html import escape as html_escape
from importlib import resources
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, TypeAdapter, ValidatorFunctionWrapHandler
from pydantic_core import CoreSchema, PydanticSerializationUnexpectedValue, core_schema

from .errors import FindingError, ImmunotoxError, RuleSpecError, UnknownScaleError, show_value

Lang = Literal["en", "fr"]
LANGS: tuple[Lang, ...] = ("en", "fr")
_FIELD = {"en": "text", "fr": "text_fr"}


class Msg:
    """A text for people: the id of a text in the data files and its named parameters."""

    # A plain class, not a pydantic model: a grade builds a dozen messages, and building a model
    # costs several times building this. Pydantic sees it through ``_Schema.Msg``, a model with
    # the same name, fields and docstring: the JSON, the JSON schema (OpenAPI) and validation are
    # that model's (see ``__get_pydantic_core_schema__``). A message is immutable (its params are
    # never changed once built), so its plain text in each language is written once, on first
    # read, and kept in ``_en`` / ``_fr``: neither serialised, nor compared, nor copied.
    __slots__ = ("_en", "_fr", "_given", "id", "params")
    id: str
    params: dict[str, Param]
    _given: frozenset[str]  # the fields given, as pydantic's ``model_fields_set``
    _en: str | None
    _fr: str | None

    def __init__(self, /, **data: Any) -> None:
        """Validated, as the pydantic model ``Msg(id=..., params=...)`` (``ValidationError``)."""
        m = _adapter().validate_python(data)
        for k in Msg.__slots__:
            _set(self, k, getattr(m, k))

    def text(self, lang: Lang = "en") -> str:
        """This text written in ``lang`` (see :func:`render`)."""
        return render(self, lang)

    # ------------------------------------------------------------ what the pydantic model offered
    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        model = handler.generate_schema(_Schema.Msg)

        def validate(value: Any, inner: ValidatorFunctionWrapHandler) -> Msg:
            return value if type(value) is Msg else _from_model(inner(value))

        return core_schema.no_info_wrap_validator_function(
            validate,
            model,
            serialization=core_schema.plain_serializer_function_ser_schema(_to_model, return_schema=model),
        )

    @classmethod
    def model_validate(cls, obj: Any) -> Msg:
        return _adapter().validate_python(obj)

    @classmethod
    def model_validate_json(cls, data: str | bytes) -> Msg:
        return _adapter().validate_json(data)

    @classmethod
    def model_json_schema(cls, **kwargs: Any) -> dict[str, Any]:
        return _adapter().json_schema(**kwargs)

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        out: dict[str, Any] = _adapter().dump_python(self, **kwargs)
        return out

    def model_dump_json(self, **kwargs: Any) -> str:
        return _adapter().dump_json(self, **kwargs).decode()

    @property
    def model_fields_set(self) -> set[str]:
        return set(self._given)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Msg:
        """A copy (``update`` not validated, as pydantic's); its texts are written again."""
        values = {"id": self.id, "params": self.params, **(update or {})}
        if deep:
            values = copy.deepcopy(values)
        return make(values["id"], values["params"], self._given | frozenset(update or ()))

    def __eq__(self, other: object) -> bool:
        if type(other) is not Msg:
            return NotImplemented
        return self.id == other.id and self.params == other.params

    def __hash__(self) -> int:
        return hash((Msg, self.id, self.params))  # unhashable (a dict), as the frozen model was

    def __repr__(self) -> str:
        return f"Msg(id={self.id!r}, params={self.params!r})"

    def __str__(self) -> str:
        return f"id={self.id!r} params={self.params!r}"

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        yield "id", self.id
        yield "params", self.params

    def __setattr__(self, key: str, value: Any) -> None:
        raise TypeError(f"a message is immutable: {key!r} cannot be set")

    def __delattr__(self, key: str) -> None:
        raise TypeError(f"a message is immutable: {key!r} cannot be deleted")

    def __reduce__(self) -> tuple[Any, ...]:
        return make, (self.id, self.params, self._given)


Param = Msg | bool | int | float | str | list[Msg | bool | int | float | str]
_BOTH = frozenset(("id", "params"))


class _Schema:
    """What pydantic sees of :class:`Msg` (a namespace: the model is named ``Msg`` too)."""

    class Msg(BaseModel):
        """A text for people: the id of a text in the data files and its named parameters."""

        model_config = ConfigDict(frozen=True, defer_build=True)

        id: str
        params: dict[str, Param] = {}


_M = TypeVar("_M", bound=BaseModel)
_new = object.__new__
_set = object.__setattr__


@functools.cache
def _adapter() -> TypeAdapter[Msg]:
    return TypeAdapter(Msg)


def _from_model(m: _Schema.Msg) -> Msg:
    return make(m.id, m.params, frozenset(m.model_fields_set))


def _to_model(m: Any) -> _Schema.Msg:
    if type(m) is not Msg:
        raise PydanticSerializationUnexpectedValue(f"expected a Msg, got {type(m).__name__}")
    return trusted(_Schema.Msg, {"id": m.id, "params": m.params}, m._given)


def trusted(cls: type[_M], values: dict[str, Any], given: Iterable[str]) -> _M:
    """``cls`` holding ``values`` (every field, in declaration order) without validation: what
    ``cls(**given values)`` builds (same fields, same fields set) for values this package wrote
    itself and that are already of their field's type. A grade builds a few rule hits and one
    result: validating them again costs more than building them."""
    m = _new(cls)
    _set(m, "__dict__", values)
    _set(m, "__pydantic_fields_set__", set(given))
    _set(m, "__pydantic_extra__", None)
    _set(m, "__pydantic_private__", None)
    return m


def make(msg_id: str, params: dict[str, Any], given: frozenset[str] = _BOTH) -> Msg:
    """The message ``msg_id`` with ``params``, built without validation, for ids and parameters
    this package writes itself: what ``Msg(id=..., params=...)`` builds (``given``: the fields
    given), with its texts not yet written."""
    m = _new(Msg)
    _set_id(m, msg_id)
    _set_params(m, params)
    _set_given(m, given)
    _set_en(m, None)
    _set_fr(m, None)
    return m


# the slots of a message, written through their descriptors (one call each, without the
# attribute lookup of ``object.__setattr__``): ``make`` runs a dozen times per grade
_slots: dict[str, Any] = dict(Msg.__dict__)
_set_id = _slots["id"].__set__
_set_params = _slots["params"].__set__
_set_given = _slots["_given"].__set__
_set_en = _slots["_en"].__set__
_set_fr = _slots["_fr"].__set__


def verbatim(text: str) -> Msg:
    """A text not translated yet: shown as is in every language (the translation test fails on it)."""
    return make("verbatim", {"text": text})


def quote(text: str) -> Msg:
    """A verbatim quotation of an English source (e.g. the NCI CTCAE wording), kept in English."""
    return make("quote", {"text": text})


def name(text: str) -> Msg:
    """A proper name (a category label such as ``HT-high``, a score id): the same in every language."""
    return make("name", {"text": text})


def parse_lang(value: Any, field: str = "lang") -> Lang:
    """``value`` as a language code (``en`` or ``fr``); anything else is refused, never defaulted."""
    if value in LANGS:
        return value  # type: ignore[no-any-return]
    raise FindingError(field, value, error("language", langs=str(list(LANGS))))


def error(_key: str, /, **params: Any) -> Msg:
    """The text ``errors.<key>`` of ``data/messages.toml`` (a refused input's problem or hint)."""
    return make(f"messages:errors.{_key}", params)


class Refused(ValueError):
    """A validator's refusal written as data: ``str()`` is its English text (what pydantic shows
    after "Value error, "), :attr:`msg` the message to write in any language."""

    def __init__(self, msg: Msg) -> None:
        super().__init__(render(msg, "en"))
        self.msg = msg


def or_list(items: list[str], *, commas: bool = False) -> Msg | str:
    """``a or b or c`` (« a ou b ou c »), or with ``commas`` ``a, b or c`` (« a, b ou c »)."""
    if len(items) == 1:
        return items[0]
    if commas:
        head: Msg | str = items[0]
        for item in items[1:-1]:
            head = error("list_last", a=head, b=item)
        return error("or_pair", a=head, b=items[-1])
    out: Msg | str = items[0]
    for item in items[1:]:
        out = error("or_pair", a=out, b=item)
    return out


@functools.cache
def _file(name: str) -> dict[str, Any]:
    path = resources.files("immunotox").joinpath(f"data/{name}.toml")
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise RuleSpecError(f"message file data/{name}.toml is missing") from None


@functools.cache
def entry(msg_id: str) -> Mapping[str, Any]:
    """The texts of ``msg_id``: ``{"text": English, "text_fr": French}`` (``RuleSpecError`` if the
    id names nothing).

    The path ends at a table with ``text`` (and ``text_fr``), or at a string field ``k`` of a table
    — an item ``k.N`` of a list of strings — whose French is the sibling ``k_fr`` (item N):
    ``title``/``title_fr``, ``notes``/``notes_fr`` in the risk-score files.
    """
    name, _, path = msg_id.partition(":")
    node: Any = _file(name)
    parent: Any = None  # the table holding the field the path went through last
    key: str | None = None  # that field
    index: int | None = None  # the item of that field, when it is a list
    for step in path.split("."):
        if isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node, index = node[int(step)], int(step)
        elif isinstance(node, dict) and step in node:
            parent, key, index, node = node, step, None, node[step]
        else:
            raise RuleSpecError(f"message {msg_id!r}: no table {step!r} in data/{name}.toml")
    if isinstance(node, str) and isinstance(parent, dict):
        fr: Any = parent.get(f"{key}_fr")
        if index is not None:
            fr = fr[index] if isinstance(fr, list) and index < len(fr) else None
        return {"text": node, "text_fr": fr}
    if not isinstance(node, dict) or not isinstance(node.get("text"), str):
        raise RuleSpecError(f"message {msg_id!r}: expected a table with text and text_fr")
    return node


@functools.cache
def template(msg_id: str, lang: Lang) -> str:
    """The text of ``msg_id`` in ``lang``; a missing translation is a packaging error."""
    text = entry(msg_id).get(_FIELD[lang])
    if not isinstance(text, str) or not text.strip():
        raise RuleSpecError(f"message {msg_id!r}: no {_FIELD[lang]} (translation missing)")
    return text


def _param(value: Any, lang: Lang, as_html: bool) -> str:
    if isinstance(value, Msg):
        return _render(value, lang, as_html)
    if isinstance(value, list):
        return ", ".join(_param(v, lang, as_html) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _number(value, lang)
    return _escape(str(value), as_html)


def _number(value: float, lang: Lang) -> str:
    """A number in a sentence: ``:g``, with a decimal comma in French."""
    out = f"{value:g}"
    return out.replace(".", ",") if lang == "fr" else out


def _escape(text: str, as_html: bool) -> str:
    return html_escape(text, quote=False) if as_html else text


@functools.cache
def _plain(msg_id: str, lang: Lang, as_html: bool) -> str:
    """A text without parameters (a note, a title), written once per language."""
    return _escape(template(msg_id, lang), as_html).replace("{{", "{").replace("}}", "}")


_SPECIAL = frozenset(("verbatim", "name", "quote"))  # ids written from their "text" parameter


def _render(msg: Msg, lang: Lang, as_html: bool) -> str:
    if as_html:
        return _write(msg, lang, True)
    text = msg._en if lang == "en" else msg._fr
    if text is None:
        text = _write(msg, lang, False)
        _set(msg, "_en" if lang == "en" else "_fr", text)
    return text


def _write(msg: Msg, lang: Lang, as_html: bool) -> str:
    params: dict[str, Any] = msg.params
    if msg.id in _SPECIAL:
        text = _escape(str(params["text"]), as_html)
        if msg.id != "quote":
            return text
        return f'<q lang="en">{text}</q>' if as_html else f"“{text}”"
    if not params:
        return _plain(msg.id, lang, as_html)
    text = template(msg.id, lang)
    if as_html:
        text = html_escape(text, quote=False)
    values: dict[str, str] = {}
    en = lang == "en"
    for k, v in params.items():  # _param, with the common cases inline (a grade writes dozens)
        t = type(v)
        if t is str and not as_html:
            values[k] = v
        elif t is Msg:
            kept = None if as_html else v._en if en else v._fr  # _render's kept text, read inline
            values[k] = kept if kept is not None else _render(v, lang, as_html)
        elif t is float or t is int:
            values[k] = f"{v:g}" if en else _number(v, lang)
        elif t is list and not as_html and all(type(x) is Msg or type(x) is str for x in v):
            values[k] = ", ".join(x if type(x) is str else _render(x, lang, False) for x in v)
        else:
            values[k] = _param(v, lang, as_html)
    try:
        return text.format_map(values)
    except (KeyError, IndexError) as exc:
        raise RuleSpecError(f"message {msg.id!r} ({lang}): parameter {exc} not given") from None


def render(msg: Msg | str, lang: Lang = "en") -> str:
    """``msg`` written in ``lang`` (a plain string is returned as is: it is not translated)."""
    return msg if isinstance(msg, str) else _render(msg, lang, False)


def texts_of(prefix: str, lang: Lang) -> Callable[..., str]:
    """A function writing the texts ``<prefix>.<key>`` in ``lang``: ``t("why")``, ``t("value", value=2)``."""

    def t(_key: str, /, **params: Any) -> str:
        return _render(Msg(id=f"{prefix}.{_key}", params=params), lang, False)

    return t


def html(msg: Msg | str, lang: Lang) -> str:
    """``msg`` in ``lang`` as escaped HTML; quotations of English sources are ``<q lang="en">``."""
    return html_escape(msg, quote=False) if isinstance(msg, str) else _render(msg, lang, True)


def walk(msg: Msg) -> Iterator[Msg]:
    """``msg`` and every message among its parameters (depth first)."""
    yield msg
    for v in msg.params.values():
        for item in v if isinstance(v, list) else [v]:
            if isinstance(item, Msg):
                yield from walk(item)


class Catalogue:
    """The texts of one data file, for the module that builds messages from it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._ids: dict[str, str] = {}  # path -> its message id, checked to exist
        self._bare: dict[str, Msg] = {}  # path -> its message without parameters (immutable: shared)
        self._m_ids: dict[str, str] = {}  # key of [messages] -> its message id, checked to exist

    def __call__(self, _path: str, /, **params: Any) -> Msg:
        """The message at ``_path`` of this file (checked to exist), with ``params``."""
        if not params:
            msg = self._bare.get(_path)
            if msg is None:
                msg = self._bare[_path] = make(self._id(_path), {})
            return msg
        return make(self._id(_path), params)  # built from checked data: no re-validation

    def _id(self, path: str) -> str:
        msg_id = self._ids.get(path)
        if msg_id is None:
            msg_id = f"{self.name}:{path}"
            entry(msg_id)
            self._ids[path] = msg_id
        return msg_id

    def m(self, _key: str, /, **params: Any) -> Msg:
        """A sentence of the file's ``[messages]`` table."""
        if params:  # the common case, without the path built again (a grade builds dozens)
            msg_id = self._m_ids.get(_key)
            if msg_id is None:
                msg_id = self._m_ids[_key] = self._id(f"messages.{_key}")
            return make(msg_id, params)
        return self(f"messages.{_key}")

    def e(self, _key: str, /, **params: Any) -> Msg:
        """A refusal's problem or hint: the file's ``[errors]`` table (field, value and expectation
        stay in the :class:`~immunotox.errors.FindingError`; see :func:`error_message`)."""
        return self(f"errors.{_key}", **params)


def error_message(exc: FindingError, lang: Lang = "en") -> str:
    """A refused finding's one-line message in ``lang``: the field and the value as given, the
    problem and the hint in that language (English for a text not yet written as data)."""
    if lang == "en":
        return str(exc)
    problem, hint = exc.texts()
    params: dict[str, Any] = {"field": exc.field, "value": show_value(exc.value), "problem": problem}
    if hint:
        params["hint"] = hint
    frame = "messages:errors.frame_hint" if hint else "messages:errors.frame"
    return render(Msg(id=frame, params=params), lang)


def exc_message(exc: ImmunotoxError, lang: Lang = "en") -> str:
    """An error raised on purpose, as one line in ``lang``: a refused finding
    (:func:`error_message`), an unknown scale id; another error (a packaging error) as written."""
    if isinstance(exc, FindingError):
        return error_message(exc, lang)
    if isinstance(exc, UnknownScaleError):
        if lang == "en":
            return str(exc)
        close = exc.close
        key, params = "unknown_scale", {"scale": repr(exc.scale_id), "n": len(exc.known)}
        if close:
            key, params["close"] = "unknown_scale_close", ", ".join(repr(c) for c in close)
        return render(error(f"cli.{key}", **params), lang)
    return str(exc)
