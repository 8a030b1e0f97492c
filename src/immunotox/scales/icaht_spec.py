"""The typed rule table of ICAHT (EHA/EBMT 2023): ``data/scales/icaht.toml``, validated at load.

:func:`table` is the one accessor: the scalar grading core (:mod:`immunotox.scales.icaht`) and any
vectorised interpreter read the same :class:`IcahtTable`. A misspelt key, a missing key or a
wrong type fails when the table is first read (at import of the scale module), naming the file
and the key; the structural checks below (contiguous duration bands, a never-recovered threshold
that exists, late bands most severe first) fail the same way.

References
----------
Rejeski K, Subklewe M, Aljurf M, et al. Immune effector cell-associated hematotoxicity: EHA/EBMT
consensus grading and best practice recommendations. Blood 2023;142(10):865-877.
doi:10.1182/blood.2023020578
"""

from __future__ import annotations

from pydantic import Field, model_validator

from .. import ruledata
from ..errors import RuleSpecError
from ..ruledata import TableModel, Text


class DurationBand(TableModel):
    """The longest episode at or below a threshold lasting ``min_days``..``max_days`` (inclusive)."""

    min_days: int = Field(ge=0)
    max_days: int = Field(ge=0)
    grade: int = Field(ge=0, le=4)


class Threshold(TableModel):
    """One early-ICAHT ANC threshold (ANC <= ``max_per_ul`` cells/uL) and its duration bands."""

    key: str
    max_per_ul: float = Field(gt=0)
    text: str
    text_fr: str | None = None
    bands: tuple[DurationBand, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _contiguous(self) -> Threshold:
        expected = 0
        for b in self.bands:
            if b.min_days != expected or b.max_days < b.min_days:
                raise ValueError(
                    f"threshold {self.key!r}: bands must cover the days from 0 without gap or overlap "
                    f"(a band starting at day {expected} expected, got {b.min_days}-{b.max_days})"
                )
            expected = b.max_days + 1
        return self

    def band(self, days: int) -> DurationBand:
        """The band holding an episode of ``days`` days."""
        for b in self.bands:
            if b.min_days <= days <= b.max_days:
                return b
        raise RuleSpecError(
            f"data/scales/icaht.toml: early threshold {self.key!r}: no band holds {days} days"
        )


class Early(TableModel):
    """Early ICAHT (day 0 to +30): window, gap filling, joining, never-recovered override."""

    first_day: int
    last_day: int
    max_filled_gap_days: int = Field(ge=0)
    max_joined_recovery_days: int = Field(ge=0)
    never_recovered_max_start_day: int
    never_recovered_threshold_key: str
    never_recovered_grade: int = Field(ge=0, le=4)
    never_recovered_text: str | None = None  # or [messages.never_recovered]
    never_recovered_text_fr: str | None = None
    thresholds: tuple[Threshold, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_key(self) -> Early:
        keys = [t.key for t in self.thresholds]
        if self.never_recovered_threshold_key not in keys:
            raise ValueError(
                f"never_recovered_threshold_key {self.never_recovered_threshold_key!r} is not one of {keys}"
            )
        if self.last_day < self.first_day:
            raise ValueError(f"last_day {self.last_day} is before first_day {self.first_day}")
        return self


class LateBand(TableModel):
    """A late-ICAHT band: the nadir ANC <= ``max_per_ul`` cells/uL."""

    max_per_ul: float = Field(gt=0)
    grade: int = Field(ge=1, le=4)
    text: str
    text_fr: str | None = None


class Late(TableModel):
    """Late ICAHT (after day +30): window, the non-transient rule and the nadir bands."""

    first_day: int
    last_day: int
    min_values: int = Field(ge=1)
    neutropenia_max_per_ul: float = Field(gt=0)
    bands: tuple[LateBand, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _most_severe_first(self) -> Late:
        caps = [b.max_per_ul for b in self.bands]
        if caps != sorted(caps) or len(set(caps)) != len(caps):
            raise ValueError(f"bands must be listed most severe first (increasing max_per_ul), got {caps}")
        if self.last_day < self.first_day:
            raise ValueError(f"last_day {self.last_day} is before first_day {self.first_day}")
        return self

    def band(self, nadir: float) -> LateBand | None:
        """The most severe band holding ``nadir``; None above every band."""
        return next((b for b in self.bands if nadir <= b.max_per_ul), None)


class ClosedBy(TableModel):
    """What each input that ends follow-up stands for (the field names are the inputs' stems)."""

    last_follow_up: Text
    censor: Text


class Notes(TableModel):
    """Interpretation notes: for the three scales, the combined one only, and each window."""

    common: tuple[Text, ...] = ()
    combined: tuple[Text, ...] = ()
    early: tuple[Text, ...] = ()
    late: tuple[Text, ...] = ()


class IcahtTable(TableModel):
    """``data/scales/icaht.toml``."""

    early: Early
    late: Late
    closed_by: ClosedBy
    messages: dict[str, Text]
    titles: dict[str, Text]
    domains: dict[str, Text]
    notes: Notes = Notes()


def table() -> IcahtTable:
    """The validated ICAHT rule table (read once, cached)."""
    return ruledata.typed("icaht", IcahtTable)
