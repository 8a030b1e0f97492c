"""The typed rule table of the ASCO 2021 irAE organ grades: ``data/scales/asco2021.toml``.

:func:`table` is the one accessor: the scalar grading core (:mod:`immunotox.scales.asco2021`)
and the service's live organ grades (:mod:`immunotox.service.organ_labs`) read the same
:class:`AscoTable`. A misspelt key, a missing key or a wrong type fails when the table is first
read (at import of the scale module), naming the file and the key; so do the structural checks
below: each criterion carries exactly the fields of its kind, names findings of the findings
vocabulary (a reference in the unit of its value), lists its bands from the least to the most
severe with one comparison each, and an enum lists only values its finding allows.

References
----------
Schneider BJ, Naidoo J, Santomasso BD, et al. Management of immune-related adverse events in
patients treated with immune checkpoint inhibitor therapy: ASCO guideline update. J Clin Oncol
2021;39(36):4073-4126. doi:10.1200/JCO.21.01440
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from .. import ruledata
from ..findings import vocabulary
from ..ruledata import TableModel, Text

Comparison = Literal["gt", "ge", "value_gt", "rise_gt"]


class Band(TableModel):
    """One band of a numeric criterion: ``grade`` when its one comparison holds.

    ``gt``/``ge``: the value (or, for a ``multiple``, the value ÷ reference) > / ≥ the bound;
    ``value_gt``: the value itself > the bound (canonical unit); ``rise_gt``: value − reference >
    the bound. ``counts_as``: the grade shown for the band when another criterion decides the
    grade (the rash over 30% BSA).
    """

    grade: int = Field(ge=0, le=4)
    text: str
    text_fr: str | None = None
    gt: float | None = None
    ge: float | None = None
    value_gt: float | None = None
    rise_gt: float | None = None
    counts_as: int | None = Field(default=None, ge=0, le=4)

    @model_validator(mode="after")
    def _one_comparison(self) -> Band:
        given = [k for k in ("gt", "ge", "value_gt", "rise_gt") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"a band takes exactly one of gt, ge, value_gt, rise_gt (got {given or 'none'})")
        return self

    @property
    def comparison(self) -> tuple[Comparison, float]:
        """The band's one comparison and its bound."""
        for k in ("gt", "ge", "value_gt", "rise_gt"):
            x = getattr(self, k)
            if x is not None:
                return k, float(x)
        raise AssertionError("checked at load")  # pragma: no cover

    def holds(self, value: float, ref: float | None) -> bool:
        """Does the band hold for ``value`` (and its reference ``ref``, for a multiple)?

        Differences and multiples are rounded to 9 decimals first, so that binary floating point
        does not move a value printed on a threshold (1.3 − 1.0 is not > 0.3).
        """
        kind, bound = self.comparison
        if kind == "value_gt":
            return round(value, 9) > bound
        if kind == "rise_gt":
            return ref is not None and round(value - ref, 9) > bound
        x = round(value if ref is None else value / ref, 9)
        return x > bound if kind == "gt" else x >= bound


class Value(TableModel):
    """The grade of one value of an enum criterion (or of a true bool); ``only_with``: the
    criterion with which it grades (the rash's symptoms only grade with its BSA)."""

    grade: int = Field(ge=0, le=4)
    text: str
    text_fr: str | None = None
    only_with: str | None = None


class Criterion(TableModel):
    """One domain of an organ grade (see the grammar at the top of the TOML)."""

    text: str
    text_fr: str | None = None
    kind: Literal["multiple", "number", "enum", "bool"]
    finding: str
    ref: str | None = None
    ref_name: Literal["uln", "baseline"] = "uln"
    bands: tuple[Band, ...] = ()
    values: dict[str, Value] = Field(default_factory=dict)
    true: Value | None = None

    @model_validator(mode="after")
    def _fields_of_its_kind(self) -> Criterion:
        vocab = vocabulary()
        if self.finding not in vocab:
            raise ValueError(f"finding {self.finding!r}: not a finding of the findings vocabulary")
        for key, kinds, given in (
            ("bands", ("multiple", "number"), bool(self.bands)),
            ("values", ("enum",), bool(self.values)),
            ("true", ("bool",), self.true is not None),
            ("ref", ("multiple",), self.ref is not None),
        ):
            if (self.kind in kinds) != given:
                needed = "required" if self.kind in kinds else "not allowed"
                raise ValueError(f"kind {self.kind!r}: {key} {needed}")
        if self.ref is not None:
            if self.ref not in vocab:
                raise ValueError(f"ref {self.ref!r}: not a finding of the findings vocabulary")
            if vocab[self.ref].unit != vocab[self.finding].unit:
                raise ValueError(
                    f"ref {self.ref!r} ({vocab[self.ref].unit}) is not in the unit of "
                    f"{self.finding!r} ({vocab[self.finding].unit})"
                )
        elif any(b.comparison[0] != "gt" and b.comparison[0] != "ge" for b in self.bands):
            raise ValueError("a number's bands compare the value itself: gt or ge only")
        grades = [b.grade for b in self.bands]
        if grades != sorted(grades):
            raise ValueError(f"bands must go from the least to the most severe grade, got {grades}")
        allowed = vocab[self.finding].values
        if self.values and allowed is not None and not set(self.values) <= set(allowed):
            raise ValueError(
                f"values {sorted(set(self.values) - set(allowed))} are not values of finding {self.finding!r}"
            )
        return self

    @property
    def reads(self) -> tuple[str, ...]:
        """The findings this criterion reads (its value, then its reference)."""
        return (self.finding,) if self.ref is None else (self.finding, self.ref)

    def grades(self) -> tuple[int, ...]:
        """Every grade this criterion can give (0 included)."""
        given = [b.grade for b in self.bands] + [v.grade for v in self.values.values()]
        if self.true is not None:
            given.append(self.true.grade)
        return tuple(sorted({0, *given}))


class Organ(TableModel):
    """One organ's grade (one scale ``asco2021:<organ>``)."""

    short: str
    short_fr: str | None = None
    organ: str
    organ_fr: str | None = None
    soc: str
    title: str
    title_fr: str | None = None
    table: str
    notes: tuple[str, ...] = ()
    notes_fr: tuple[str, ...] = ()
    criteria: dict[str, Criterion] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Organ:
        if self.notes_fr and len(self.notes_fr) != len(self.notes):
            raise ValueError(f"notes_fr has {len(self.notes_fr)} notes, notes {len(self.notes)}")
        for name, c in self.criteria.items():
            for v in (*c.values.values(), *([c.true] if c.true else [])):
                if v.only_with is not None and v.only_with not in self.criteria:
                    raise ValueError(f"criteria.{name}: only_with {v.only_with!r} is not a criterion")
        return self


class AscoTable(TableModel):
    """``data/scales/asco2021.toml``: the shared sentences, the reference names, and one table
    per organ (every other top-level key)."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, Organ] = Field(init=False)

    messages: dict[str, Text]
    names: dict[str, Text]

    @property
    def organs(self) -> dict[str, Organ]:
        """Every organ's table, in the order of the file."""
        return dict(self.__pydantic_extra__ or {})


def table() -> AscoTable:
    """The validated ASCO 2021 organ-grade table (read once, cached)."""
    return ruledata.typed("asco2021", AscoTable)
