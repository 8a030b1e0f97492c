"""Errors of the pathway module: bad input named by field, one line each."""

from __future__ import annotations

from typing import Any

from ..errors import FindingError
from ..messages import error


class PathwayError(FindingError):
    """Bad pathway input: an unknown phase, label or language, an impossible date or grade.

    Examples
    --------
    >>> from immunotox.pathway import monitoring
    >>> monitoring("recovery")
    Traceback (most recent call last):
    ...
    immunotox.pathway._errors.PathwayError: phase = 'recovery': unknown phase. Hint: one of ...
    """


class IllegalTransitionError(PathwayError):
    """A transition the pathway does not allow (e.g. screening straight to infusion).

    Examples
    --------
    >>> from immunotox.pathway import check_transition
    >>> check_transition("screening", "infusion")
    Traceback (most recent call last):
    ...
    immunotox.pathway._errors.IllegalTransitionError: ...after screening: leukapheresis, off_pathway
    """

    def __init__(self, from_phase: str, to_phase: str, allowed: tuple[str, ...]) -> None:
        after = (
            error("pathway.allowed_after", frm=from_phase, values=", ".join(allowed))
            if allowed
            else error("pathway.allowed_after_none", frm=from_phase)
        )
        super().__init__(
            "to", to_phase, error("pathway.illegal_transition", frm=from_phase, to=to_phase), after
        )
        self.from_phase = from_phase
        self.to_phase = to_phase
        self.allowed = allowed

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.from_phase, self.to_phase, self.allowed))
