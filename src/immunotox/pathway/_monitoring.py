"""The monitoring a phase implies, escalated by the current CRS and ICANS grades."""

from __future__ import annotations

from dataclasses import dataclass

from ..messages import error
from ..sources import source
from ._data import Item, Lang, MonitoringRule, data
from ._errors import PathwayError
from ._machine import check_phase


@dataclass(frozen=True)
class Monitoring:
    """The monitoring in force: the most intensive of the phase baseline and the escalations.

    ``vitals_every_h`` / ``ice_every_h`` are ``None`` when assessments happen at visits only;
    ``level`` is 0 without toxicity and rises with the highest CRS or ICANS grade (1-4).
    """

    phase: str
    crs_grade: int
    icans_grade: int
    level: int
    setting: str
    vitals_every_h: float | None
    ice_every_h: float | None
    items: tuple[Item, ...]
    drivers: tuple[str, ...]

    def setting_title(self, lang: Lang = "en") -> str:
        return data().setting_titles[self.setting].get(lang)

    def source_keys(self) -> list[str]:
        return list(dict.fromkeys(i.source for i in self.items if i.source))

    def citations(self) -> list[str]:
        return [source(k).citation() for k in self.source_keys()]


def check_grade(field: str, grade: object) -> int:
    """``grade`` if it is a whole number 0-4; else :class:`PathwayError` naming ``field``."""
    if isinstance(grade, bool) or not isinstance(grade, int) or not 0 <= grade <= 4:
        raise PathwayError(
            field,
            grade,
            error("pathway.grade_range"),
            error("pathway.grade_first"),
        )
    return grade


def monitoring(phase: str, *, crs_grade: int = 0, icans_grade: int = 0) -> Monitoring:
    """The monitoring that ``phase`` implies, escalated by the current CRS and ICANS grades.

    Parameters
    ----------
    phase
        A pathway phase id (see :func:`immunotox.pathway.phases`).
    crs_grade, icans_grade
        Current ASTCT 2019 grades, 0-4 (0 = none). A grade above 0 before the infusion is refused.

    Returns
    -------
    Monitoring
        Setting, vital-sign and ICE intervals, and the instructions with their basis and source.

    Raises
    ------
    PathwayError
        Unknown phase; a grade outside 0-4; a CRS or ICANS grade for a phase before infusion.

    Notes
    -----
    The result is the most intensive of the phase baseline and the CRS and ICANS escalations:
    the shortest intervals, the most intensive setting and every instruction. Intervals are
    institutional defaults kept in ``data/pathway/monitoring.toml``; ICU admission for grade 3
    CRS or ICANS and the twice-daily neurological assessment come from ASCO 2021.

    References
    ----------
    Santomasso BD, Nastoupil LJ, Adkins S, et al. Management of immune-related adverse events in
    patients treated with chimeric antigen receptor T-cell therapy: ASCO guideline. J Clin Oncol
    2021;39(35):3978-3992. doi:10.1200/JCO.21.01992

    Examples
    --------
    >>> m0 = monitoring("inpatient_observation")
    >>> m3 = monitoring("inpatient_observation", crs_grade=3)
    >>> (m0.setting, m0.vitals_every_h), (m3.setting, m3.vitals_every_h)
    (('ward', 4), ('icu', 1))
    """
    d = data()
    check_phase(phase)
    crs = check_grade("crs_grade", crs_grade)
    icans = check_grade("icans_grade", icans_grade)
    if d.phases[phase].side == "pre":
        for field, g in (("crs_grade", crs), ("icans_grade", icans)):
            if g > 0:
                raise PathwayError(field, g, error("pathway.grade_before_infusion", phase=phase))
    rules: list[tuple[str, MonitoringRule]] = [(f"phase {phase}", d.baseline[phase])]
    for tox, g in (("crs", crs), ("icans", icans)):
        if g > 0:
            rule = next(r for r in d.escalation if r.toxicity == tox and r.grade == g)
            rules.append((f"{tox.upper()} grade {g}", rule))
    order = d.settings
    setting = max((r.setting for _, r in rules), key=order.index)
    vitals = [r.vitals_every_h for _, r in rules if r.vitals_every_h is not None]
    ice = [r.ice_every_h for _, r in rules if r.ice_every_h is not None]
    return Monitoring(
        phase=phase,
        crs_grade=crs,
        icans_grade=icans,
        level=max(r.level for _, r in rules),
        setting=setting,
        vitals_every_h=min(vitals) if vitals else None,
        ice_every_h=min(ice) if ice else None,
        items=tuple(i for _, r in rules for i in r.items),
        drivers=tuple(name for name, _ in rules),
    )
