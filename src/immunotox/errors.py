"""Exceptions raised by immunotox.

The tree::

    ImmunotoxError
    ├── UnknownScaleError (KeyError)      an id that is not in the catalogue
    ├── FindingError (ValueError)         a finding with a bad key, type, value or unit
    │   └── UnitError                     a unit that is unknown or of the wrong dimension
    └── RuleSpecError (ValueError)        a rule data file that does not follow its grammar

Each error keeps the offending values as attributes and builds its one-line message from them,
so a command-line front end can print ``str(error)`` and exit with code 2.
"""

from __future__ import annotations

from typing import Any, Protocol


class Text(Protocol):
    """A text for people that can be written in a language (:class:`immunotox.messages.Msg`;
    a protocol, so that this bottom module imports nothing above it)."""

    def text(self, lang: Any = "en") -> str: ...


class ImmunotoxError(Exception):
    """Base class of every error raised on purpose by immunotox."""


class UnknownScaleError(ImmunotoxError, KeyError):
    """A scale id that the catalogue does not hold.

    Examples
    --------
    >>> from immunotox import grade
    >>> grade("astct2018:crs", {})
    Traceback (most recent call last):
    ...
    immunotox.errors.UnknownScaleError: unknown scale 'astct2018:crs'; ...
    """

    def __init__(self, scale_id: str, known: list[str]) -> None:
        super().__init__(scale_id)
        self.scale_id = scale_id
        self.known = known

    @property
    def close(self) -> list[str]:
        """The known scales of the same name under another prefix (``lee2014:crs`` for ``x:crs``)."""
        return [k for k in self.known if k.split(":")[-1] == self.scale_id.split(":")[-1]]

    def __str__(self) -> str:
        close = self.close
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return (
            f"unknown scale {self.scale_id!r}; run `immunotox scales` for the list "
            f"({len(self.known)} scales).{hint}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.scale_id, self.known))


class FindingError(ImmunotoxError, ValueError):
    """A finding that cannot be accepted: unknown key, wrong type, impossible value.

    Examples
    --------
    >>> from immunotox import grade
    >>> grade("astct2019:crs", {"temperature_c": 55})
    Traceback (most recent call last):
    ...
    immunotox.errors.FindingError: temperature_c = 55: ...
    """

    def __init__(self, field: str, value: Any, problem: str | Text, hint: str | Text | None = None) -> None:
        super().__init__(field, value, problem, hint)
        self.field = field
        self.value = value
        #: the problem and the hint as texts for people in French and English (``None``: a text
        #: written in English only, shown as is in every language)
        self.problem_msg = None if isinstance(problem, str) else problem
        self.hint_msg = None if hint is None or isinstance(hint, str) else hint
        self.problem = problem if isinstance(problem, str) else problem.text("en")
        self.hint = hint if hint is None or isinstance(hint, str) else hint.text("en")

    def __str__(self) -> str:
        shown = show_value(self.value)
        msg = f"{self.field} = {shown}: {self.problem}"
        if self.hint:
            msg += f". Hint: {self.hint}"
        return msg

    def texts(self) -> tuple[str | Text, str | Text | None]:
        """(problem, hint) as given: messages when written as data, else English strings — to
        raise the same refusal under another field name without losing its French."""
        return (self.problem_msg or self.problem, self.hint_msg or self.hint)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.value, *self.texts()))


class UnitError(FindingError):
    """A unit that is not a known UCUM code, or not convertible to the finding's unit."""


class RuleSpecError(ImmunotoxError, ValueError):
    """A rule data file that does not follow its grammar (a packaging or editing error)."""


def show_value(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool) or value is None:
        return "true" if value is True else "false" if value is False else "null"
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return str(value) if not isinstance(value, (dict, list)) else _json(value)


def _json(value: Any) -> str:
    import json

    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)
