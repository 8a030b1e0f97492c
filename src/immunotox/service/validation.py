"""Pydantic's own validation messages in the reader's language (issue 11: no English sentence on a
French page).

Every pydantic error has a ``type`` (``missing``, ``greater_than``, ``literal_error`` …) and its
``ctx`` values; :func:`pydantic_msg` writes it as the message ``errors.validation.<type>`` of
``data/messages.toml`` with those values as parameters. The English the API answers stays
pydantic's own words (:func:`error_text`); the French is the data's. A type the data does not
name falls back to a French generic text naming the field (``errors.validation.other``:
« valeur refusée »), never to an English sentence.

A validator of the project's models raises :class:`~immunotox.messages.Refused` (its message
written as data) or a :class:`~immunotox.errors.FindingError`; either is written in the reader's
language. Any other ``ValueError`` is quoted in « » after a French lead-in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import FindingError, RuleSpecError
from ..messages import Lang, Msg, Refused, entry, error_message, render
from ..messages import error as E

_OR = re.compile(r"(?<=['\d]) or (?=['\d])")  # "'a', 'b' or 'c'" as pydantic lists expected values


def known(kind: str) -> bool:
    """Whether ``errors.validation.<kind>`` is written as data."""
    try:
        entry(f"messages:errors.validation.{kind}")
    except RuleSpecError:
        return False
    return True


def _param(value: Any) -> bool | int | float | str:
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def pydantic_msg(err: Mapping[str, Any], field: str) -> Msg | str:
    """The text of one pydantic error (an item of ``ValidationError.errors()``) as a message; a
    refusal the project's validator wrote as data is that message."""
    kind = str(err.get("type", ""))
    ctx: Mapping[str, Any] = err.get("ctx") or {}
    cause = ctx.get("error")
    if kind == "value_error" and isinstance(cause, Refused):
        return cause.msg
    if not known(kind):
        return E("validation.other", field=field, type=kind)
    params = {k: _param(v) for k, v in ctx.items()}
    return E(f"validation.{kind}", **params)


def error_text(err: Mapping[str, Any], field: str, lang: Lang) -> str:
    """One pydantic error in ``lang``: pydantic's own message in English, the data's in French."""
    if lang == "en":
        return str(err.get("msg", "invalid"))
    cause = (err.get("ctx") or {}).get("error")
    if err.get("type") == "value_error" and isinstance(cause, FindingError):
        return error_message(cause, lang)
    text = render(pydantic_msg(err, field), lang)
    if err.get("type") in ("literal_error", "enum"):
        text = _OR.sub(" ou ", text)
    return text


def with_value(text: str, shown: str | None, lang: Lang) -> str:
    """``text`` followed by the value received (already quoted for the reader, or None: not shown)."""
    return text if shown is None else render(E("validation.got", msg=text, value=shown), lang)
