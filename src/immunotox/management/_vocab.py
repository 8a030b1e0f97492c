"""Bilingual text and the closed vocabularies of ``data/guidelines/_vocabulary.toml``."""

from __future__ import annotations

import functools
import tomllib
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import FindingError, RuleSpecError
from ..messages import error

Lang = Literal["en", "fr"]
LANGS: tuple[str, ...] = ("en", "fr")


class Text(BaseModel):
    """A clinician-facing text in English and French (both required, never empty)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    en: str = Field(min_length=1)
    fr: str = Field(min_length=1)

    def get(self, lang: str) -> str:
        return self.fr if lang == "fr" else self.en


def check_lang(lang: Any) -> Lang:
    """``lang`` if it is ``"en"`` or ``"fr"``; anything else raises FindingError."""
    if lang == "en":
        return "en"
    if lang == "fr":
        return "fr"
    raise FindingError("lang", lang, error("mg_unsupported_lang"), error("mg_use_en_fr"))


@functools.cache
def vocabulary() -> dict[str, dict[str, Text]]:
    """``{section: {id: Text}}`` for the sections kind, ici_action, specialty and message."""
    path = resources.files("immunotox").joinpath("data/guidelines/_vocabulary.toml")
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except (FileNotFoundError, tomllib.TOMLDecodeError) as exc:
        raise RuleSpecError(f"data/guidelines/_vocabulary.toml: {exc}") from None
    out: dict[str, dict[str, Text]] = {}
    for section in ("kind", "ici_action", "specialty", "message"):
        try:
            out[section] = {k: Text(**v) for k, v in raw[section].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise RuleSpecError(f"_vocabulary.toml [{section}]: {exc}") from None
    return out


def label(section: str, key: str, lang: str) -> str:
    """The label of ``key`` in ``section`` (kind, ici_action, specialty)."""
    try:
        return vocabulary()[section][key].get(lang)
    except KeyError:
        raise RuleSpecError(f"_vocabulary.toml: no {section} {key!r}") from None


def message(key: str, lang: str, **params: Any) -> str:
    """The engine message ``key`` in ``lang`` with ``params`` filled in."""
    return label("message", key, lang).format(**params)
