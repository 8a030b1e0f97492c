"""The error raised for bad input to the analysis layer."""

from __future__ import annotations

from typing import Any

from ..errors import ImmunotoxError


class AnalysisError(ImmunotoxError, ValueError):
    """Input the analysis layer cannot accept: ``str(e)`` is ``"<field> = <value>: <expected>"``.

    Examples
    --------
    >>> from immunotox.analysis import kaplan_meier
    >>> kaplan_meier([1, -2], [1, 0])
    Traceback (most recent call last):
    ...
    immunotox.analysis._errors.AnalysisError: time[1] = -2.0: a finite time >= 0 (from the time origin)
    """

    def __init__(self, field: str, value: Any, expected: str) -> None:
        super().__init__(field, value, expected)
        self.field = field
        self.value = value
        self.expected = expected

    def __str__(self) -> str:
        value = repr(self.value) if isinstance(self.value, str) and " " not in self.value else self.value
        return f"{self.field} = {value}: {self.expected}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.value, self.expected))
