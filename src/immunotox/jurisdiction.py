"""Jurisdictions: whose product information (label) applies, as data (``data/jurisdictions.toml``).

A jurisdiction is always an explicit setting — ``--jurisdiction`` on the command line,
``IMMUNOTOX_JURISDICTION`` for the service — and never inferred from the interface language.
When none is configured, outputs that depend on a label say so and give no number.

Examples
--------
>>> parse_jurisdiction("eu").code
'EU'
>>> parse_jurisdiction("FR").code   # a country resolves to the jurisdiction whose label applies there
'EU'
>>> parse_jurisdiction("mars")
Traceback (most recent call last):
...
immunotox.errors.FindingError: jurisdiction = 'mars': unknown jurisdiction. Hint: one of EU, US...
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from .errors import FindingError, RuleSpecError
from .messages import error


@dataclass(frozen=True)
class Jurisdiction:
    """One regulatory jurisdiction and what its product information is called."""

    code: str
    name_en: str
    name_fr: str
    authority: str
    document_en: str
    document_fr: str
    countries: tuple[str, ...]

    def name(self, lang: str) -> str:
        return self.name_fr if lang == "fr" else self.name_en

    def document(self, lang: str) -> str:
        return self.document_fr if lang == "fr" else self.document_en


_FIELDS = ("name_en", "name_fr", "authority", "document_en", "document_fr", "countries")


@functools.cache
def jurisdictions() -> dict[str, Jurisdiction]:
    """Every jurisdiction, by code; a malformed file fails naming the key."""
    path = "data/jurisdictions.toml"
    raw: dict[str, Any] = tomllib.loads(resources.files("immunotox").joinpath(path).read_text("utf-8"))
    out: dict[str, Jurisdiction] = {}
    for code, t in raw.items():
        if not isinstance(t, dict) or set(t) != set(_FIELDS):
            got = sorted(t) if isinstance(t, dict) else type(t).__name__
            raise RuleSpecError(f"{path} [{code}]: expected keys {sorted(_FIELDS)}, got {got}")
        out[code] = Jurisdiction(
            code=code, countries=tuple(t["countries"]), **{k: str(t[k]) for k in _FIELDS if k != "countries"}
        )
    return out


def parse_jurisdiction(value: object, field: str = "jurisdiction") -> Jurisdiction:
    """A jurisdiction code (``EU``, ``US``) or an ISO country code (``FR`` -> EU), case-insensitive.

    Anything else is a :class:`~immunotox.errors.FindingError` naming ``field`` — never a default.
    """
    known = jurisdictions()
    hint = error("mg_jurisdiction_hint", codes=", ".join(known))
    if not isinstance(value, str) or not value.strip():
        raise FindingError(field, value, error("mg_jurisdiction_code"), hint)
    code = value.strip().upper()
    if code in known:
        return known[code]
    for j in known.values():
        if code in j.countries:
            return j
    raise FindingError(field, value, error("mg_unknown_jurisdiction"), hint)


def optional_jurisdiction(value: object, field: str = "jurisdiction") -> Jurisdiction | None:
    """``None`` for an absent setting (``None`` or empty string), else :func:`parse_jurisdiction`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_jurisdiction(value, field)
