"""The typed rule table of IEC-HS (ASTCT 2023): ``data/scales/iechs.toml``, validated at load.

:func:`table` is the one accessor of :mod:`immunotox.scales.iechs`. The grade is the clinician's
entry; the table lists the supportive features (annotations that never set the grade) and their
thresholds, marked unverified. A misspelt key, a missing key or a wrong type fails when the table
is first read (at import of the scale module), naming the file and the key; every feature must
name a finding of the findings vocabulary and give exactly one form (present, below, above, or
none: not judged).

References
----------
Hines MR, Knight TE, McNerney KO, et al. Immune effector cell-associated hemophagocytic
lymphohistiocytosis-like syndrome. Transplant Cell Ther 2023;29(7):438.e1-438.e16.
doi:10.1016/j.jtct.2023.03.006
"""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from .. import ruledata
from ..findings import vocabulary
from ..ruledata import TableModel, Text


class Feature(TableModel):
    """A supportive feature: a boolean finding (``present``) or a value against a threshold."""

    finding: str
    text: str
    text_fr: str | None = None
    present: bool | None = None
    unit: str | None = None
    unit_label: Text | None = None
    below: float | None = None
    above: float | None = None
    threshold_status: Literal["V", "V2", "M"] | None = None
    threshold: Text | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Feature:
        if self.finding not in vocabulary():
            raise ValueError(f"feature {self.finding!r}: not a finding of the findings vocabulary")
        if self.present is not None:
            if any(x is not None for x in (self.unit, self.below, self.above, self.threshold)):
                raise ValueError(
                    f"feature {self.finding!r}: present takes no unit, threshold, below or above"
                )
            return self
        if self.below is not None and self.above is not None:
            raise ValueError(f"feature {self.finding!r}: give below or above, not both")
        if self.unit is None or self.threshold is None or self.threshold_status is None:
            raise ValueError(
                f"feature {self.finding!r}: a value feature needs unit, threshold and threshold_status"
            )
        return self


class IecHsTable(TableModel):
    """``data/scales/iechs.toml``."""

    unverified_statement: Text
    features: tuple[Feature, ...]
    title: Text
    domains: dict[str, Text]
    notes: tuple[Text, ...]
    messages: dict[str, Text]
    #: the refusals of contradictory findings (``[errors]``: problem and hint, English and French)
    errors: dict[str, Text]


def table() -> IecHsTable:
    """The validated IEC-HS rule table (read once, cached)."""
    return ruledata.typed("iechs", IecHsTable)
