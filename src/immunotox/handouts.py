"""Patient handouts and self-report symptoms, one data file per therapy class.

``data/handouts/<class>.toml`` (``car_t``, ``bispecific``, ``checkpoint_inhibitor``) holds, for
one therapy class, the handout that tells patients when to call the unit at once (French and
English, each line with its sources), the instruction not to take an antipyretic before calling,
and the symptoms the patient portal offers with their urgency (``call_now`` | ``noted``). The
words of each symptom are in ``data/handouts/symptoms.toml``, the vocabulary of the service's
``symptom`` code.

Loading refuses a file where the handout and the triage disagree: every symptom a handout line
asks patients to call for must be a ``call_now`` symptom of the same class, and every
``call_now`` symptom must be covered by a handout line — so the portal never answers "noted" to
what the handout calls urgent.

Examples
--------
>>> h = handout("car_t")
>>> h.symptoms["tremor"].urgency, h.symptoms["tremor"].priority
('call_now', 'high')
>>> handout("checkpoint_inhibitor").symptoms["chest_pain"].urgency
'call_now'
>>> print(h.render("fr").splitlines()[0])
Appelez immédiatement l'équipe (numéro joignable 24 h/24) si vous avez, ou si votre aidant remarque :
>>> handout("car-t")
Traceback (most recent call last):
...
immunotox.errors.FindingError: therapy_class = 'car-t': unknown therapy class. Hint: one of car_t, ...
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from .errors import FindingError, RuleSpecError
from .messages import error
from .sources import source

THERAPY_CLASSES: tuple[str, ...] = ("car_t", "bispecific", "checkpoint_inhibitor")
Urgency = Literal["call_now", "noted"]
_BASES = ("V", "V2", "M", "D")


@dataclass(frozen=True)
class Line:
    """One "call at once" line of a handout."""

    symptoms: tuple[str, ...]
    fr: str
    en: str
    basis: str
    sources: tuple[str, ...]

    def text(self, lang: str) -> str:
        return self.fr if lang == "fr" else self.en


@dataclass(frozen=True)
class Symptom:
    """A symptom the portal offers to a patient of one class, with its urgency."""

    token: str
    fr: str
    en: str
    urgency: Urgency
    priority: Literal["high", "critical"]
    basis: str
    sources: tuple[str, ...]

    def text(self, lang: str) -> str:
        return self.fr if lang == "fr" else self.en


@dataclass(frozen=True)
class Handout:
    """The handout and portal symptoms of one therapy class."""

    therapy_class: str
    title_fr: str
    title_en: str
    before_calling_fr: str
    before_calling_en: str
    before_calling_basis: str
    before_calling_sources: tuple[str, ...]
    emergency_fr: str
    emergency_en: str
    lines: tuple[Line, ...]
    symptoms: Mapping[str, Symptom]

    def title(self, lang: str) -> str:
        return self.title_fr if lang == "fr" else self.title_en

    def before_calling(self, lang: str) -> str:
        return self.before_calling_fr if lang == "fr" else self.before_calling_en

    def emergency(self, lang: str) -> str:
        return self.emergency_fr if lang == "fr" else self.emergency_en

    def call(self, lang: str) -> tuple[str, ...]:
        """The "call at once" lines in ``lang``."""
        return tuple(line.text(lang) for line in self.lines)

    def call_now(self) -> frozenset[str]:
        """Tokens the portal triages as "call the unit now" for this class."""
        return frozenset(k for k, s in self.symptoms.items() if s.urgency == "call_now")

    def render(self, lang: str) -> str:
        """Plain text: title, lines, the antipyretic instruction, the emergency line."""
        return "\n".join(
            [
                self.title(lang),
                *(f"- {c}" for c in self.call(lang)),
                "",
                self.before_calling(lang),
                "",
                self.emergency(lang),
            ]
        )


def _load(name: str) -> dict[str, Any]:
    path = f"data/handouts/{name}.toml"
    try:
        doc: dict[str, Any] = tomllib.loads(resources.files("immunotox").joinpath(path).read_text("utf-8"))
    except FileNotFoundError:
        raise RuleSpecError(f"{path} is missing") from None
    except tomllib.TOMLDecodeError as exc:
        raise RuleSpecError(f"{path}: {exc}") from None
    return doc


def _str(where: str, t: Mapping[str, Any], key: str) -> str:
    v = t.get(key)
    if not isinstance(v, str) or not v.strip():
        raise RuleSpecError(f"{where}: {key} is required (French and English)")
    return v


def _sources(where: str, keys: Any) -> tuple[str, ...]:
    if not isinstance(keys, list):
        raise RuleSpecError(f"{where}: sources must be a list of sources.toml keys")
    for k in keys:
        source(k)
    return tuple(keys)


@functools.cache
def vocabulary() -> dict[str, tuple[str, str]]:
    """Every symptom token -> (French, English) words (``data/handouts/symptoms.toml``)."""
    out: dict[str, tuple[str, str]] = {}
    for token, t in _load("symptoms").items():
        where = f"data/handouts/symptoms.toml [{token}]"
        out[token] = (_str(where, t, "fr"), _str(where, t, "en"))
    return out


def parse_handout(therapy_class: str, doc: Mapping[str, Any]) -> Handout:
    """Check one class file (grammar, sources, handout/triage agreement) and build it."""
    f = f"data/handouts/{therapy_class}.toml"
    words = vocabulary()
    h = doc.get("handout")
    if not isinstance(h, dict):
        raise RuleSpecError(f"{f}: [handout] is required")
    if h.get("before_calling_basis") not in _BASES:
        raise RuleSpecError(f"{f} [handout]: before_calling_basis must be one of {_BASES}")
    symptoms: dict[str, Symptom] = {}
    for token, t in doc.get("symptom", {}).items():
        where = f"{f} [symptom.{token}]"
        if token not in words:
            raise RuleSpecError(f"{where}: not a token of data/handouts/symptoms.toml")
        if t.get("urgency") not in ("call_now", "noted") or t.get("priority") not in ("high", "critical"):
            raise RuleSpecError(f"{where}: urgency must be call_now or noted, priority high or critical")
        symptoms[token] = Symptom(
            token=token,
            fr=words[token][0],
            en=words[token][1],
            urgency=t["urgency"],
            priority=t["priority"],
            basis=_str(where, t, "basis"),
            sources=_sources(where, t.get("sources")),
        )
    if "other" not in symptoms:
        raise RuleSpecError(f"{f}: the portal needs the symptom 'other' (free text)")
    lines: list[Line] = []
    for i, t in enumerate(h.get("item", ())):
        where = f"{f} [[handout.item]] #{i}"
        toks = tuple(t.get("symptoms", ()))
        if not toks:
            raise RuleSpecError(f"{where}: symptoms must name the portal symptoms the line covers")
        for tok in toks:
            s = symptoms.get(tok)
            if s is None or s.urgency != "call_now":
                raise RuleSpecError(
                    f"{where}: the handout tells patients to call for {tok!r}, which is not a "
                    "call_now symptom of the portal for this class"
                )
        if t.get("basis") not in _BASES:
            raise RuleSpecError(f"{where}: basis must be one of {_BASES}")
        lines.append(
            Line(
                toks,
                _str(where, t, "fr"),
                _str(where, t, "en"),
                t["basis"],
                _sources(where, t.get("sources")),
            )
        )
    covered = {tok for line in lines for tok in line.symptoms}
    uncovered = sorted(k for k, s in symptoms.items() if s.urgency == "call_now" and k not in covered)
    if uncovered:
        raise RuleSpecError(f"{f}: call_now symptoms {uncovered} are not in the handout's when-to-call list")
    return Handout(
        therapy_class=therapy_class,
        title_fr=_str(f, h, "title_fr"),
        title_en=_str(f, h, "title_en"),
        before_calling_fr=_str(f, h, "before_calling_fr"),
        before_calling_en=_str(f, h, "before_calling_en"),
        before_calling_basis=h["before_calling_basis"],
        before_calling_sources=_sources(f, h.get("before_calling_sources")),
        emergency_fr=_str(f, h, "emergency_fr"),
        emergency_en=_str(f, h, "emergency_en"),
        lines=tuple(lines),
        symptoms=symptoms,
    )


@functools.cache
def _handouts() -> dict[str, Handout]:
    out = {c: parse_handout(c, _load(c)) for c in THERAPY_CLASSES}
    used = {tok for h in out.values() for tok in h.symptoms}
    unused = sorted(set(vocabulary()) - used)
    if unused:
        raise RuleSpecError(f"data/handouts/symptoms.toml: tokens {unused} are used by no therapy class")
    return out


def check_therapy_class(value: object, field: str = "therapy_class") -> str:
    """``value`` if it is a therapy class with a handout, else FindingError naming ``field``."""
    if not isinstance(value, str) or value not in THERAPY_CLASSES:
        raise FindingError(
            field, value, error("mg_unknown_class"), error("mg_one_of", values=list(THERAPY_CLASSES))
        )
    return value


def handout(therapy_class: str) -> Handout:
    """The handout and portal symptoms of ``therapy_class``."""
    return _handouts()[check_therapy_class(therapy_class)]


def symptom_tokens() -> tuple[str, ...]:
    """Every symptom token, in vocabulary order (the values of the service's ``symptom`` code)."""
    _handouts()
    return tuple(vocabulary())
