"""The result of a risk score: a value (or total) that explains itself."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..messages import Lang, Msg, render, texts_of


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


class RiskTexts(BaseModel):
    """The texts of a risk category as data (see :mod:`immunotox.messages`)."""

    model_config = ConfigDict(frozen=True)

    label: Msg
    rule: Msg
    outcome: Msg
    population: Msg
    timing: Msg
    flags: list[Msg]


class ScoreTexts(BaseModel):
    """The texts of a score result as data, so that it can be shown in French or English."""

    model_config = ConfigDict(frozen=True)

    title: Msg
    reasons: list[Msg]
    notes: list[Msg]
    flags: list[Msg]
    risk: RiskTexts | None = None


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
    lang: Lang = Field(default="en", description="Language of the texts")
    texts: ScoreTexts | None = Field(default=None, exclude=True, description="The texts as data")

    def rendered(self, lang: Lang) -> ScoreResult:
        """This result with its title, reasons, notes, flags and risk texts written in ``lang``."""
        t = self.texts
        if t is None:
            return self
        risk = self.risk
        if risk is not None and t.risk is not None:
            rt = t.risk
            risk = risk.model_copy(
                update={
                    "label": render(rt.label, lang),
                    "rule": render(rt.rule, lang),
                    "outcome": render(rt.outcome, lang),
                    "population": render(rt.population, lang),
                    "timing": render(rt.timing, lang),
                    "flags": [render(m, lang) for m in rt.flags],
                }
            )
        return self.model_copy(
            update={
                "lang": lang,
                "title": render(t.title, lang),
                "reasons": [render(m, lang) for m in t.reasons],
                "notes": [render(m, lang) for m in t.notes],
                "flags": [render(m, lang) for m in t.flags],
                "risk": risk,
            }
        )

    def in_lang(self, lang: Lang) -> ScoreResult:
        """This result written in ``lang`` (``en`` or ``fr``)."""
        return self if lang == self.lang else self.rendered(lang)

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

    def explain(self, lang: Lang | None = None) -> str:
        """A readable, multi-line explanation for people, in ``lang`` (default: the result's)."""
        r = self.in_lang(lang or self.lang)
        lg = r.lang
        t = texts_of("messages:risk.explain", lg)

        lines = [t("title", title=r.title, score=r.score, version=r.version)]
        if r.value is None:
            lines.append(t("no_value", missing=r.missing))
        else:
            lines.append(t("value", value=r.value))
        if r.points is not None:
            parts = [f"{k} {'?' if v is None else v}" for k, v in r.points.items() if k != "total"]
            lines.append(t("points", points=parts))
        if r.has_cutoff:
            if r.risk is None:
                lines.append(t("no_risk"))
            else:
                lines.append(t("risk", label=r.risk.label, rule=r.risk.rule, outcome=r.risk.outcome))
        lines.append(t("why"))
        lines += [f"  - {x}" for x in r.reasons]
        if r.unit_conversions:
            lines.append(t("conversions"))
            num = "{:g}".format
            for c in r.unit_conversions:
                given, value = num(c.given_value), num(c.value)
                if lg == "fr":
                    given, value = given.replace(".", ","), value.replace(".", ",")
                lines.append(f"  - {c.finding}: {given} {c.given_unit} = {value} {c.unit}")
        if r.flags:
            lines.append(t("unverified"))
            lines += [f"  - {f}" for f in r.flags]
        if r.notes:
            lines.append(t("notes"))
            lines += [f"  - {n}" for n in r.notes]
        lines.append(t("sources"))
        lines += [f"  - {s}" for s in r.sources]
        return "\n".join(lines)
