"""The result of grading: a grade that explains itself."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RuleHit(BaseModel):
    """One rule that fired: which domain, which criterion, the grade it supports."""

    model_config = ConfigDict(frozen=True)

    rule: str = Field(description="Stable rule id, e.g. 'astct2019:crs/hypoxia/high_flow'")
    domain: str
    grade: int | None = Field(description="Grade this criterion supports (None for gating rules)")
    text: str = Field(description="The criterion and the finding that met it")


Status = Literal["assessed", "incomplete", "not_assessable", "not_applicable"]
"""Every status a grade can have (one vocabulary for the library, service, web and FHIR)."""


class GradeResult(BaseModel):
    """A grade with its reasons, its sources and what it could not see.

    ``grade`` is the grade the known findings establish; 0 means the criteria are not met.
    When inputs that could change the grade are missing, ``complete`` is false, ``grade`` is a
    **lower bound** and ``grade_range`` gives the grades still possible. ``grade`` is ``None``
    when nothing at all can be established (``status = "not_assessable"``, ``grade_range`` the
    grades still possible) or when the scale does not apply (``status = "not_applicable"``: e.g.
    a late ICAHT grade for a patient whose late window never opened). A not-applicable result
    has no grade and no ``grade_range`` (``None``); nothing is missing, so it is complete, and
    its reasons name the input that closed it.
    """

    scale: str
    title: str
    version: str
    grade: int | None
    grade_range: tuple[int, int] | None
    complete: bool
    status: Status
    deciding_domains: list[str]
    missing: list[str]
    ignored: list[str] = Field(
        default_factory=list,
        description="Findings of the shared vocabulary that were given but are not inputs of this scale",
    )
    reasons: list[str]
    fired: list[RuleHit]
    notes: list[str] = Field(description="Interpretation decisions applied to this grading")
    sources: list[str]

    def explain(self) -> str:
        """A readable, multi-line explanation for people."""
        lines = [f"{self.title} ({self.scale}, version {self.version})"]
        if self.grade_range is None:
            lines.append("Grade: not applicable")
        elif self.grade is None:
            lines.append("Grade: not assessable")
        elif self.complete:
            lines.append(f"Grade: {self.grade}")
        else:
            lo, hi = self.grade_range
            rng = "cannot change" if lo == hi else f"could be up to {hi}"
            lines.append(f"Grade: {self.grade} (lower bound: inputs missing; grade {rng})")
        if self.deciding_domains:
            lines.append("Decided by: " + ", ".join(self.deciding_domains))
        lines.append("Why:")
        lines += [f"  - {r}" for r in self.reasons]
        if self.missing:
            lines.append("Missing inputs: " + ", ".join(self.missing))
        if self.notes:
            lines.append("Interpretation choices:")
            lines += [f"  - {n}" for n in self.notes]
        lines.append("Sources:")
        lines += [f"  - {s}" for s in self.sources]
        return "\n".join(lines)
