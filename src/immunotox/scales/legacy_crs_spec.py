"""The typed rule table of the legacy CRS scales: ``data/scales/legacy_crs.toml``.

Lee 2014 (NCI), Penn (Porter 2018), MSKCC (Park 2018) and CARTOX (Neelapu 2018) share one
grammar: a criterion table per scale (symptoms, hypotension and hypoxia rows, organ-toxicity
maps, flags) chosen by its rules (``symptoms_from``, ``hypotension_rule``, ``hypoxia_rule``), and
the ``[common]`` thresholds. :func:`table` is the one accessor: the scalar grading core
(:mod:`immunotox.scales.legacy_crs`) and the vectorised cohort interpreter
(:mod:`immunotox.timeline._legacy`) read the same :class:`LegacyTable`. A misspelt key, a missing
key, a wrong type, or a rule without the rows it reads fails when the table is first read (at
import of the scale module), naming the file and the key.

References
----------
Lee DW, Gardner R, Porter DL, et al. Current concepts in the diagnosis and management of cytokine
release syndrome. Blood 2014;124(2):188-195. doi:10.1182/blood-2014-05-552729
Porter D, Frey N, Wood PA, et al. Grading of cytokine release syndrome associated with the CAR T
cell therapy tisagenlecleucel. J Hematol Oncol 2018;11:35. doi:10.1186/s13045-018-0571-y
Park JH, Rivière I, Gonen M, et al. Long-term follow-up of CD19 CAR therapy in acute
lymphoblastic leukemia. N Engl J Med 2018;378:449-459. doi:10.1056/NEJMoa1709919
Neelapu SS, Tummala S, Kebriaei P, et al. Chimeric antigen receptor T-cell therapy — assessment
and management of toxicities. Nat Rev Clin Oncol 2018;15(1):47-62. doi:10.1038/nrclinonc.2017.148
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .. import ruledata
from ..errors import RuleSpecError
from ..findings import vocabulary
from ..ruledata import TableModel, Text


class Entry(TableModel):
    """One criterion row: its grade and the criterion as printed (abridged)."""

    grade: int = Field(ge=0, le=5)
    text: str
    text_fr: str | None = None


class OrganMap(TableModel):
    """The scale grade of each CTCAE grade 0-4 of an organ toxicity (``{ctcae}`` in the text)."""

    by_ctcae_grade: tuple[int, ...] = Field(min_length=5, max_length=5)
    text: str
    text_fr: str | None = None

    def grades(self, from_ctcae: int = 0) -> list[int]:
        """The scale grades possible with a CTCAE grade of at least ``from_ctcae``."""
        return sorted(set(self.by_ctcae_grade[from_ctcae:]))


# the rows each rule reads (a scale may add a ``refractory`` hypotension row)
HYPOTENSION_ROWS = {
    "count_and_dose": (
        "no_vasopressor",
        "one_vasopressor_low_dose",
        "high_dose_vasopressor",
        "multiple_vasopressors",
    ),
    "dose": ("fluids", "low_dose_vasopressor", "high_dose_vasopressor"),
    "duration": ("vasopressor_under_24h", "vasopressor_24h_or_more"),
}
HYPOXIA_ROWS = {
    "device": ("supplemental_oxygen", "mechanical_ventilation"),
    "fio2": ("fio2_below_40", "fio2_40_or_more", "ventilator"),
}
FLAGS = ("coagulopathy", "hospitalization", "life_threatening")


class LegacyScale(TableModel):
    """One legacy CRS scale's table (``[lee2014]``, ``[penn]``, ``[mskcc]``, ``[cartox]``)."""

    title: str
    title_fr: str | None = None
    version: str
    source: str
    symptoms_from: Literal["symptoms_or_fever", "fever"]
    hypotension_rule: Literal["count_and_dose", "dose", "duration"]
    hypoxia_rule: Literal["device", "fio2"]
    high_dose_min_hours: float | None = None
    long_vasopressor_min_hours: float | None = None
    reads: tuple[str, ...]
    notes: tuple[str, ...]
    notes_fr: tuple[str, ...] = ()
    symptoms: Entry
    hypotension: dict[str, Entry]
    hypoxia: dict[str, Entry]
    organ: OrganMap | None = None
    transaminitis: OrganMap | None = None
    coagulopathy: Entry | None = None
    hospitalization: Entry | None = None
    life_threatening: Entry | None = None

    @model_validator(mode="after")
    def _rows_of_rules(self) -> LegacyScale:
        need = set(HYPOTENSION_ROWS[self.hypotension_rule])
        if set(self.hypotension) - {"refractory"} != need:
            raise ValueError(
                f"hypotension rule {self.hypotension_rule!r} reads the rows {sorted(need)} "
                f"(and optionally refractory), got {sorted(self.hypotension)}"
            )
        if set(self.hypoxia) != set(HYPOXIA_ROWS[self.hypoxia_rule]):
            rows = sorted(HYPOXIA_ROWS[self.hypoxia_rule])
            raise ValueError(
                f"hypoxia rule {self.hypoxia_rule!r} reads the rows {rows}, got {sorted(self.hypoxia)}"
            )
        if self.hypotension_rule == "duration" and self.long_vasopressor_min_hours is None:
            raise ValueError("hypotension rule 'duration' needs long_vasopressor_min_hours")
        if self.notes_fr and len(self.notes_fr) != len(self.notes):
            raise ValueError(f"notes_fr has {len(self.notes_fr)} notes, notes {len(self.notes)}")
        return self

    def row(self, domain: str, key: str) -> Entry:
        """The row ``key`` of the hypotension or hypoxia table."""
        rows = self.hypotension if domain == "hypotension" else self.hypoxia if domain == "hypoxia" else {}
        try:
            return rows[key]
        except KeyError:
            raise RuleSpecError(
                f"data/scales/legacy_crs.toml: {self.source}: {domain} has no row {key!r}"
            ) from None

    def organ_map(self, name: str) -> OrganMap | None:
        """The organ (``organ``) or transaminitis (``transaminitis``) map, when the scale has it."""
        return self.organ if name == "organ" else self.transaminitis if name == "transaminitis" else None

    def flag(self, name: str) -> Entry | None:
        """The criterion of a yes/no finding (coagulopathy, hospitalization, life_threatening)."""
        entry: Entry | None = getattr(self, name) if name in FLAGS else None
        return entry


class Common(TableModel):
    """``[common]``: the thresholds and device classes shared by the four scales."""

    fever_min_c: float
    room_air_fio2_pct: float = Field(gt=0, le=100)
    fio2_high_min_pct: float = Field(gt=0, le=100)
    oxygen_delivering_devices: tuple[str, ...]
    positive_pressure_devices: tuple[str, ...]
    ventilator_devices: tuple[str, ...]
    domains: dict[str, Text]

    @model_validator(mode="after")
    def _devices(self) -> Common:
        tokens = set(vocabulary()["oxygen"].values)
        for name in ("oxygen_delivering_devices", "positive_pressure_devices", "ventilator_devices"):
            unknown = sorted(set(getattr(self, name)) - tokens)
            if unknown:
                raise ValueError(f"{name}: not oxygen tokens {unknown}")
        return self


class LegacyTable(TableModel):
    """``data/scales/legacy_crs.toml``."""

    common: Common
    lee2014: LegacyScale
    penn: LegacyScale
    mskcc: LegacyScale
    cartox: LegacyScale
    messages: dict[str, Text]
    #: the refusals of contradictory findings (``[errors]``: problem and hint, English and French)
    errors: dict[str, Text]

    def scale(self, key: str) -> LegacyScale:
        """The table of scale ``key`` (lee2014, penn, mskcc, cartox)."""
        if key not in ("lee2014", "penn", "mskcc", "cartox"):
            raise RuleSpecError(f"data/scales/legacy_crs.toml: no scale table {key!r}")
        t: LegacyScale = getattr(self, key)
        return t


def table() -> LegacyTable:
    """The validated legacy CRS rule table (read once, cached)."""
    return ruledata.typed("legacy_crs", LegacyTable)
