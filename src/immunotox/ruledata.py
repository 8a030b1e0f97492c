"""Access to the rule tables shipped in ``data/scales/*.toml`` (read once, cached)."""

from __future__ import annotations

import functools
import tomllib
from importlib import resources
from typing import Any

from .errors import RuleSpecError


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


def entry(table: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    """``table[key]`` as a {grade, text} entry; a missing key is a packaging error."""
    try:
        e = table[key]
    except KeyError:
        raise RuleSpecError(f"{where}: no entry {key!r}") from None
    if not isinstance(e, dict) or "grade" not in e or "text" not in e:
        raise RuleSpecError(f"{where}.{key}: expected a table with grade and text")
    return e


def band(bands: list[dict[str, Any]], value: int, where: str) -> dict[str, Any]:
    """The band (min <= value <= max, both inclusive) holding ``value``."""
    for b in bands:
        if b["min"] <= value <= b["max"]:
            return b
    raise RuleSpecError(f"{where}: no band holds {value}")
