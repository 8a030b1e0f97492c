"""Access to the rule tables shipped in ``data/scales/*.toml`` (read once, cached).

:func:`load` gives the parsed TOML; :func:`typed` gives it validated against the pydantic model
of its scale family (``scales/*_spec.py``), so that a misspelt key or a wrong type fails when the
scale module is imported, naming the file and the key, instead of surfacing as a wrong grade.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from importlib import resources
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import RuleSpecError

M = TypeVar("M", bound=BaseModel)


@functools.cache
def load(name: str) -> dict[str, Any]:
    """The parsed rule table ``data/scales/<name>.toml``."""
    path = resources.files("immunotox").joinpath(f"data/scales/{name}.toml")
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise RuleSpecError(f"rule table data/scales/{name}.toml is missing") from None
    except tomllib.TOMLDecodeError as exc:
        raise RuleSpecError(f"rule table data/scales/{name}.toml: {exc}") from None


class TableModel(BaseModel):
    """Base of every typed rule table: an unknown key or a wrong type is an error, never ignored.

    Strict: a string is never read as a number nor a number as a string (TOML arrays arrive as
    tuples, see :func:`validate`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Text(TableModel):
    """A text for people, in English and (when converted, issue 11) in French."""

    text: str
    text_fr: str | None = None


def _where(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a TOML key path: ``early.thresholds[0].bands[1].grade``."""
    out = ""
    for step in loc:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out or "(top level)"


def _frozen(node: Any) -> Any:
    """TOML arrays as tuples (the tables are immutable), recursively."""
    if isinstance(node, list):
        return tuple(_frozen(v) for v in node)
    if isinstance(node, dict):
        return {k: _frozen(v) for k, v in node.items()}
    return node


def validate(name: str, model: type[M], doc: Mapping[str, Any]) -> M:
    """``doc`` (the parsed ``data/scales/<name>.toml``) validated against ``model``.

    Raises
    ------
    RuleSpecError
        Naming the file, the key path and what was expected, for every error found (an unknown
        key, a missing key, a wrong type).
    """
    try:
        return model.model_validate(_frozen(doc))
    except ValidationError as exc:
        errors = "; ".join(
            f"{_where(e['loc'])}: {'unknown key' if e['type'] == 'extra_forbidden' else e['msg']}"
            f" (got {e['input']!r})"
            if e["type"] != "missing"
            else f"{_where(e['loc'])}: missing key"
            for e in exc.errors()
        )
        raise RuleSpecError(f"data/scales/{name}.toml: {errors}") from None


def typed(name: str, model: type[M]) -> M:
    """The rule table ``data/scales/<name>.toml`` as a validated ``model`` (read once, cached)."""
    table = _typed(name, model)
    assert isinstance(table, model)
    return table


@functools.cache
def _typed(name: str, model: type[BaseModel]) -> BaseModel:
    return validate(name, model, load(name))
