"""The typed rule table of the ASTCT 2019 CRS and ICANS grading: ``data/scales/astct2019.toml``.

:func:`table` is the one accessor: the scalar grading core (:mod:`immunotox.scales.astct2019`),
the vectorised cohort interpreter (:mod:`immunotox.timeline._astct`), the service and the web UI
read the same :class:`AstctTable`. A misspelt key, a missing key or a wrong type fails when the
table is first read (at import of the scale module), naming the file and the key. Every map from
a finding's token to a grade must name exactly the tokens of that finding in the findings
vocabulary, and the ICE and CAPD bands must cover the score range without gap or overlap.

The sets of grades still possible when an input is missing are derived here from the table
(``*_grades`` methods), never written as literals in the scale.

References
----------
Lee DW, Santomasso BD, Locke FL, et al. ASTCT consensus grading for cytokine release syndrome and
neurologic toxicity associated with immune effector cells. Biol Blood Marrow Transplant
2019;25(4):625-638. doi:10.1016/j.bbmt.2018.12.758
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import Field, model_validator

from .. import ruledata
from ..errors import RuleSpecError
from ..findings import vocabulary
from ..ruledata import TableModel, Text


def _grades(entries: Iterable[Entry | Band]) -> tuple[int, ...]:
    return tuple(sorted({e.grade for e in entries}))


class Entry(TableModel):
    """One row of a criterion table: its grade and the criterion as printed (abridged)."""

    grade: int = Field(ge=0, le=5)
    text: str
    text_fr: str | None = None


class Band(Entry):
    """A band of a score: ``min <= score <= max`` (both inclusive) gives ``grade``."""

    min: int = Field(ge=0)
    max: int = Field(ge=0)


def _check_tokens(where: str, entries: Mapping[str, Entry], finding: str) -> None:
    tokens = vocabulary()[finding].values
    if set(entries) != set(tokens):
        raise ValueError(
            f"{where}: the rows must be exactly the tokens of finding {finding!r}: "
            f"missing {sorted(set(tokens) - set(entries))}, unknown {sorted(set(entries) - set(tokens))}"
        )


def _check_bands(where: str, bands: tuple[Band, ...], top: int) -> None:
    covered = sorted((b.min, b.max) for b in bands)
    expected = 0
    for lo, hi in covered:
        if lo != expected or hi < lo:
            raise ValueError(f"{where}: bands must cover 0-{top} without gap or overlap (at {lo}-{hi})")
        expected = hi + 1
    if expected != top + 1:
        raise ValueError(f"{where}: bands must cover 0-{top} without gap or overlap (end at {expected - 1})")


def band(bands: tuple[Band, ...], score: int, where: str) -> Band:
    """The band holding ``score``."""
    for b in bands:
        if b.min <= score <= b.max:
            return b
    raise RuleSpecError(f"data/scales/astct2019.toml: {where}: no band holds {score}")


class Hypotension(TableModel):
    """The CRS hypotension rows (vasopressors decide grades 3-4 whatever the blood pressure)."""

    none: Entry
    no_vasopressor: Entry
    one_vasopressor: Entry
    multiple_vasopressors: Entry

    def grades(self, flag: bool | None, pressors_known: bool) -> tuple[int, ...]:
        """The grades possible with hypotension ``flag`` (None: unknown) and vasopressors unknown
        (``pressors_known`` false) or known to be none."""
        rows = [self.no_vasopressor] if flag is not False else []
        rows += [self.none] if flag is not True else []
        if not pressors_known:
            rows += [self.one_vasopressor, self.multiple_vasopressors]
        return _grades(rows)


class _ScaleTexts(TableModel):
    """The texts for people of one scale of the table (title, domain names, notes)."""

    title: Text
    domains: dict[str, Text]
    notes: tuple[Text, ...]


class Crs(_ScaleTexts):
    fever_min_c: float
    low_flow_max_l_min: float = Field(gt=0)
    flow_dependent_device: str
    flow_dependent_high_grade: int = Field(ge=0, le=4)
    not_counted_in_multiple: tuple[str, ...]
    sbp_below_mmhg: float = Field(gt=0)
    adult_min_age_years: float = Field(ge=0)
    oxygen: dict[str, Entry]
    hypotension: Hypotension

    @model_validator(mode="after")
    def _check(self) -> Crs:
        _check_tokens("crs.oxygen", self.oxygen, "oxygen")
        if self.flow_dependent_device not in self.oxygen:
            raise ValueError(f"crs.flow_dependent_device {self.flow_dependent_device!r} is not an oxygen row")
        unknown = set(self.not_counted_in_multiple) - set(vocabulary()["vasopressors"].values)
        if unknown:
            raise ValueError(f"crs.not_counted_in_multiple: unknown vasopressors {sorted(unknown)}")
        return self

    def oxygen_grades(self, *, some_oxygen: bool) -> tuple[int, ...]:
        """The hypoxia grades possible with the device unknown (``some_oxygen``: a flow is given,
        so the device is not ``none``)."""
        return _grades(e for k, e in self.oxygen.items() if not (some_oxygen and k == "none"))


class Icans(_ScaleTexts):
    pediatric_below_age_years: float = Field(gt=0)
    developmental_delay_max_age_years: float = Field(gt=0)
    capd_delirium_min: int = Field(ge=0)
    ice_bands: tuple[Band, ...]
    capd_bands: tuple[Band, ...]
    consciousness: dict[str, Entry]
    seizure: dict[str, Entry]
    motor: dict[str, Entry]
    cerebral_edema: dict[str, Entry]
    raised_icp_signs: Entry
    global_aphasia: Entry

    @model_validator(mode="after")
    def _check(self) -> Icans:
        for dom in ("consciousness", "seizure", "motor", "cerebral_edema"):
            _check_tokens(f"icans.{dom}", getattr(self, dom), dom)
        _check_bands("icans.ice_bands", self.ice_bands, 10)
        _check_bands("icans.capd_bands", self.capd_bands, 32)
        return self

    def entries(self, domain: str) -> dict[str, Entry]:
        """The rows of a token-valued domain (consciousness, seizure, motor, cerebral_edema)."""
        rows: dict[str, Entry] = getattr(self, domain)
        return rows

    def grades(self, domain: str) -> tuple[int, ...]:
        """The grades of a token-valued domain (all possible when its input is missing)."""
        return _grades(self.entries(domain).values())

    def ice_grades(self) -> tuple[int, ...]:
        return _grades(self.ice_bands)

    def capd_grades(self) -> tuple[int, ...]:
        return _grades(self.capd_bands)

    def encephalopathy_grades(self) -> tuple[int, ...]:
        """With the tool (ICE or CAPD) unknown: any grade of either."""
        return _grades((*self.ice_bands, *self.capd_bands))

    def edema_grades(self) -> tuple[int, ...]:
        """Cerebral edema and raised-ICP signs both unknown."""
        return _grades((*self.cerebral_edema.values(), self.raised_icp_signs))


class AstctTable(TableModel):
    """``data/scales/astct2019.toml``."""

    crs: Crs
    icans: Icans
    messages: dict[str, Text]
    #: the refusals of contradictory findings (``[errors]``: problem and hint, English and French)
    errors: dict[str, Text]


def table() -> AstctTable:
    """The validated ASTCT 2019 rule table (read once, cached)."""
    return ruledata.typed("astct2019", AstctTable)
