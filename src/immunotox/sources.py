"""Bibliographic sources, loaded once from ``data/sources.toml``."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources

from .errors import RuleSpecError


@dataclass(frozen=True)
class Source:
    """One cited source; ``verification`` is V, V2 or M (see ``data/sources.toml``)."""

    key: str
    authors: str
    title: str
    journal: str
    year: int
    verification: str
    doi: str | None = None
    pmid: str | None = None
    note: str | None = None

    def citation(self) -> str:
        """A one-line citation: authors. title. journal. doi."""
        text = f"{self.authors} {self.title}. {self.journal}."
        if self.doi:
            text += f" doi:{self.doi}"
        if self.pmid:
            text += f" PMID {self.pmid}"
        if self.verification == "M":
            text += " [content unverified against the primary text]"
        return text


@functools.cache
def all_sources() -> dict[str, Source]:
    """Every source, by key."""
    text = resources.files("immunotox").joinpath("data/sources.toml").read_text("utf-8")
    out: dict[str, Source] = {}
    for key, t in tomllib.loads(text).items():
        if t.get("verification") not in ("V", "V2", "M"):
            raise RuleSpecError(f"source {key!r}: verification must be V, V2 or M")
        out[key] = Source(key=key, **t)
    return out


def source(key: str) -> Source:
    """The source ``key``; a missing key is a packaging error."""
    try:
        return all_sources()[key]
    except KeyError:
        raise RuleSpecError(f"source {key!r} is not in data/sources.toml") from None
