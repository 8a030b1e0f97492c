"""The result of a risk score: a value (or total) that explains itself."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class UnitConversion(BaseModel):
    """A finding given in another unit, and the value the score used."""

    model_config = ConfigDict(frozen=True)

    finding: str
    given_value: float
    given_unit: str
    value: float
    unit: str


class RiskCall(BaseModel):
    """The category a published cut-off assigns, with the rule, the population and the source."""

    model_config = ConfigDict(frozen=True)

    category: Literal["high", "low"]
    label: str
    rule: str = Field(description="The cut-off as applied, e.g. 'EASIX > 4.67 → high'")
    outcome: str
    population: str
    timing: str
    source: str
    verification: str
    flags: list[str] = Field(description="Unverified elements of the cut-off, printed with the result")


class ScoreResult(BaseModel):
    """A risk score with its inputs, what it could not see, and its sources.

    ``value`` is the score (a ratio, or the total of the points). It is ``None`` whenever an input
    is missing: a missing laboratory value is never read as normal and never scored 0 points.
    ``points`` holds each component's points (``None`` for a component with a missing input) and
    ``total``; ``points_range`` gives the totals still possible when inputs are missing.
    ``risk`` is present only for scores with a published cut-off; it is ``None`` when the score
    could not be computed.
    """

    score: str
    title: str
    version: str
    kind: Literal["ratio", "points"]
    value: int | float | None
    points: dict[str, int | None] | None = None
    points_range: tuple[int, int] | None = None
    has_cutoff: bool = Field(exclude=True)
    risk: RiskCall | None = None
    complete: bool
    missing: list[str]
    reasons: list[str]
    unit_conversions: list[UnitConversion]
    ignored: list[str] = Field(description="Known risk findings given but not read by this score")
    notes: list[str] = Field(description="Interpretation decisions applied to this score")
    flags: list[str] = Field(description="Unverified elements ([M]) that apply to this result")
    sources: list[str]

    def as_json(self) -> dict[str, Any]:
        """The JSON object printed by ``immunotox score``: ``risk`` only where a cut-off exists,
        ``points`` only for point scores."""
        data = self.model_dump(mode="json")
        order = ["score", "value", "points", "points_range", "risk", "complete", "missing", "reasons"]
        order += ["unit_conversions", "sources", "title", "version", "kind", "ignored", "notes", "flags"]
        out = {k: data[k] for k in order}
        if self.kind == "ratio":
            del out["points"], out["points_range"]
        elif self.points_range is None:
            del out["points_range"]
        if not self.has_cutoff:
            del out["risk"]
        return out

    def explain(self) -> str:
        """A readable, multi-line explanation for people."""
        lines = [f"{self.title} ({self.score}, {self.version})"]
        if self.value is None:
            lines.append("Value: not computed (inputs missing: " + ", ".join(self.missing) + ")")
        else:
            lines.append(f"Value: {self.value:g}")
        if self.points is not None:
            parts = [f"{k} {'?' if v is None else v}" for k, v in self.points.items() if k != "total"]
            lines.append("Points: " + ", ".join(parts))
        if self.has_cutoff:
            if self.risk is None:
                lines.append("Risk: not assessable")
            else:
                lines.append(f"Risk: {self.risk.label} ({self.risk.rule}) — {self.risk.outcome}")
        lines.append("Why:")
        lines += [f"  - {r}" for r in self.reasons]
        if self.unit_conversions:
            lines.append("Unit conversions:")
            lines += [
                f"  - {c.finding}: {c.given_value:g} {c.given_unit} = {c.value:g} {c.unit}"
                for c in self.unit_conversions
            ]
        if self.flags:
            lines.append("UNVERIFIED:")
            lines += [f"  - {f}" for f in self.flags]
        if self.notes:
            lines.append("Interpretation choices:")
            lines += [f"  - {n}" for n in self.notes]
        lines.append("Sources:")
        lines += [f"  - {s}" for s in self.sources]
        return "\n".join(lines)
