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

from ..errors import FindingError
from ..findings import pick
from ..messages import Catalogue, Msg, render
from ..result import GradeResult, RuleHit
from ._base import Domain, Scale, known, unknown
from .iechs_spec import IecHsTable, table

_T: IecHsTable = table()
T = Catalogue("scales/iechs")


def supportive_features(f: Mapping[str, Any]) -> list[Msg]:
    """One line per supportive feature given in ``f`` (annotation only, never a grade)."""
    lines: list[Msg] = []
    for i, feat in enumerate(_T.features):
        key = feat.finding
        value = f.get(key)
        if value is None:
            continue
        name = T(f"features.{i}")
        if feat.present:
            lines.append(T.m("feature_present" if value else "feature_absent", feature=name))
            continue
        unit: Msg | str = T(f"features.{i}.unit_label") if feat.unit_label else str(feat.unit)
        shown = {"feature": name, "key": key, "value": value, "unit": unit}
        shown |= {"status": feat.threshold_status, "threshold": T(f"features.{i}.threshold")}
        if feat.below is not None:
            met = value < feat.below
        elif feat.above is not None:
            met = value > feat.above
        else:
            lines.append(T.m("feature_not_judged", **shown))
            continue
        lines.append(T.m("feature_value_met" if met else "feature_value_not_met", **shown))
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
    texts = T
    texts_table = ""
    notes = (T("unverified_statement"), *(T(f"notes.{i}") for i in range(len(_T.notes))))

    def check(self, f: Mapping[str, Any]) -> None:
        if f.get("iec_hs_present") is False and "iec_hs_grade" in f:
            raise FindingError(
                "iec_hs_grade",
                f["iec_hs_grade"],
                T.e("grade_without_present"),
                T.e("grade_without_present_hint"),
            )

    def domains(self, f: Mapping[str, Any]) -> list[Domain]:
        name = "iec_hs"
        present, grade = f.get("iec_hs_present"), f.get("iec_hs_grade")
        features = supportive_features(f)
        if present is False:
            dom = known(name, 0, reason=T.m("not_present"))
        elif grade is not None:
            msg = T.m("manual_grade", grade=grade)
            hit = RuleHit.of(f"{self.id}/manual-grade", name, grade, msg)
            dom = known(name, grade, hit)
        elif present:
            dom = unknown(
                name,
                [g for g in self.grades if g > 0],
                "iec_hs_grade",
                reason=T.m("no_grade"),
            )
        else:
            dom = unknown(name, self.grades, "iec_hs_present", "iec_hs_grade")
        dom.reasons += features
        return [dom]

    def combine(self, v: Mapping[str, Any]) -> int:
        return int(v["iec_hs"])

    def summary(self, v: Mapping[str, Any], grade: int) -> Msg:
        return T.m("grade_zero") if grade == 0 else T.m("grade", grade=grade)

    def resolve(self, doms: list[Domain], f: Mapping[str, Any], ignored: Sequence[str] = ()) -> GradeResult:
        result = super().resolve(doms, f, ignored)
        assert result.texts is not None
        reasons = list(result.texts.reasons)
        if result.status == "not_assessable" and result.grade_range is not None:  # not a grade
            lo, hi = result.grade_range
            reasons[-1 - bool(ignored)] = T.m("not_assessable", lo=lo, hi=hi)
        reasons.insert(0, T("unverified_statement"))
        texts = result.texts.model_copy(update={"reasons": reasons})
        return result.model_copy(update={"texts": texts, "reasons": [render(m) for m in reasons]})


def scales() -> list[Scale]:
    """The scales this module provides (read by the catalogue)."""
    return [IecHs()]
