"""IEC-HS — immune effector cell-associated HLH-like syndrome: a flag with a clinician-entered grade.

The ASTCT 2023 definition and grading table (Hines et al.) could not be verified against the
primary text, so immunotox does not compute this grade. The scale returns the grade the clinician
entered (``iec_hs_grade``, 1-5), or 0 when the clinician states IEC-HS is absent; with no grade
entered it is *not assessable* (never 0 by default). Supportive features (marrow hemophagocytosis,
cytopenias, ferritin, fibrinogen, transaminases) are listed in the reasons to document the
diagnosis; they never set the grade. Every result starts with a statement that the table is
unverified, and the source is cited with its verification status M.

References
----------
Hines MR, Knight TE, McNerney KO, et al. Immune effector cell-associated hemophagocytic
lymphohistiocytosis-like syndrome. Transplant Cell Ther 2023;29(7):438.e1-438.e16.
doi:10.1016/j.jtct.2023.03.006 (PMID 36906275)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .. import ruledata
from ..errors import FindingError
from ..findings import pick
from ..result import GradeResult, RuleHit
from ._base import Domain, Scale, known, unknown

_T = ruledata.load("iechs")


def supportive_features(f: Mapping[str, Any]) -> list[str]:
    """One line per supportive feature given in ``f`` (annotation only, never a grade)."""
    lines: list[str] = []
    for feat in _T["features"]:
        key = feat["finding"]
        value = f.get(key)
        if value is None:
            continue
        if feat.get("present"):
            state = "present" if value else "absent"
            lines.append(f"Supportive feature {state}: {feat['text']}")
            continue
        shown = f"{key} = {value:g} {feat['unit']}"
        unverified = (
            f"threshold from memory, unverified [{feat['threshold_status']}]: {feat['threshold_text']}"
        )
        if "below" in feat:
            met = value < feat["below"]
        elif "above" in feat:
            met = value > feat["above"]
        else:
            lines.append(f"{feat['text']}: {shown} — not judged ({unverified})")
            continue
        state = "present" if met else "not met"
        lines.append(f"Supportive feature {state}: {feat['text']}, {shown} ({unverified})")
    return lines


class IecHs(Scale):
    id = "astct2023:iec-hs"
    title = (
        "IEC-associated HLH-like syndrome (IEC-HS) — clinician-entered grade (ASTCT 2023 table UNVERIFIED)"
    )
    version = "2023"
    family = "iec-hs"
    source_keys = ("hines2023",)
    grades = (0, 1, 2, 3, 4, 5)
    findings = pick(
        "iec_hs_present",
        "iec_hs_grade",
        "marrow_hemophagocytosis",
        "new_or_worsening_cytopenias",
        "ferritin",
        "fibrinogen",
        "alt_x_uln",
        "ast_x_uln",
    )
    notes = (
        _T["unverified_statement"],
        "The grade is iec_hs_grade (1-5) as entered by the clinician; iec_hs_present = false gives "
        "grade 0. With no grade entered the result is not assessable, never grade 0.",
        "Supportive features are listed to document the diagnosis; they never set or change the "
        "grade. Their thresholds are from memory [M] and are shown as such.",
        "IEC-HS is distinct from CRS and from the SFGM-TC post-CRS MAS trigger (ferritin > 10,000 "
        "ng/mL with steroid/tocilizumab-refractory CRS); do not merge the definitions.",
    )

    def check(self, f: Mapping[str, Any]) -> None:
        if f.get("iec_hs_present") is False and "iec_hs_grade" in f:
            raise FindingError(
                "iec_hs_grade",
                f["iec_hs_grade"],
                "given with iec_hs_present = false",
                "leave the grade out, or set iec_hs_present to true",
            )

    def domains(self, f: Mapping[str, Any]) -> list[Domain]:
        name = "iec_hs"
        present, grade = f.get("iec_hs_present"), f.get("iec_hs_grade")
        features = supportive_features(f)
        if present is False:
            dom = known(name, 0, reason="IEC-HS not present (clinician)")
        elif grade is not None:
            hit = RuleHit(
                rule=f"{self.id}/manual-grade",
                domain=name,
                grade=grade,
                text=f"IEC-HS grade {grade} entered by the clinician (grading table unverified)",
            )
            dom = known(name, grade, hit)
        elif present:
            dom = unknown(
                name,
                range(1, 6),
                "iec_hs_grade",
                reason="IEC-HS diagnosed by the clinician; grade not entered: not assessable",
            )
        else:
            dom = unknown(name, range(6), "iec_hs_present", "iec_hs_grade")
        dom.reasons += features
        return [dom]

    def combine(self, v: Mapping[str, Any]) -> int:
        return int(v["iec_hs"])

    def summary(self, v: Mapping[str, Any], grade: int) -> str:
        return (
            "Grade 0: IEC-HS not present" if grade == 0 else f"Grade {grade}: clinician-entered IEC-HS grade"
        )

    def resolve(self, doms: list[Domain], f: Mapping[str, Any], ignored: Sequence[str] = ()) -> GradeResult:
        result = super().resolve(doms, f, ignored)
        if result.status == "not_assessable" and result.grade_range is not None:  # not a grade
            lo, hi = result.grade_range
            text = f"Not assessable: no IEC-HS grade entered (possible grades {lo}–{hi})"
            result.reasons[-1 - bool(ignored)] = text
        result.reasons.insert(0, _T["unverified_statement"])
        return result


def scales() -> list[Scale]:
    """The scales this module provides (read by the catalogue)."""
    return [IecHs()]
