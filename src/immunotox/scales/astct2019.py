"""ASTCT 2019 consensus grading of CRS and ICANS (Lee et al., BBMT 2019).

Tables live in ``data/scales/astct2019.toml``; this module holds only the logic:

* **CRS**: fever (>= 38.0 °C) is required; once antipyretic or anticytokine therapy has been
  given after CRS onset (``fever_masked``) it is no longer required and the grade is driven by
  hypotension and hypoxia. Grade = the more severe of hypotension and hypoxia, at least 1 with
  fever. Vasopressin does not count toward "multiple vasopressors"; a nasal cannula above
  6 L/min is high-flow.
* **ICANS**: grade = the most severe of five domains (ICE score — or CAPD for children —
  level of consciousness, seizure, motor findings, raised ICP / cerebral edema).

References
----------
Lee DW, Santomasso BD, Locke FL, et al. ASTCT consensus grading for cytokine release syndrome
and neurologic toxicity associated with immune effector cells. Biol Blood Marrow Transplant
2019;25(4):625-638. doi:10.1016/j.bbmt.2018.12.758
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import FindingError
from ..findings import pick
from ..messages import Catalogue, Msg
from ..result import RuleHit
from ._base import Domain, Scale, assumed, known, unknown
from .astct2019_spec import AstctTable, Crs, Entry, Icans, band, table

_T: AstctTable = table()
T = Catalogue("scales/astct2019")


def _hit(scale: str, domain: str, key: str, path: str, entry: Entry, detail: Any = None) -> RuleHit:
    """The rule ``path`` of the table (its grade and text), with an optional detail in brackets."""
    msg = T(path) if detail is None else T.m("with_detail", text=T(path), detail=detail)
    return RuleHit.of(f"{scale}/{domain}/{key}", domain, entry.grade, msg)


def _notes(scale: str) -> tuple[Msg, ...]:
    return tuple(
        T(f"{scale}.notes.{i}") for i in range(len(_T.crs.notes if scale == "crs" else _T.icans.notes))
    )


class AstctCrs(Scale):
    id = "astct2019:crs"
    title = "Cytokine release syndrome — ASTCT consensus grading"
    version = "2019"
    family = "crs"
    source_keys = ("astct2019",)
    grades = (0, 1, 2, 3, 4, 5)
    findings = pick(
        "temperature_c",
        "fever_masked",
        "hypotension",
        "sbp_mmhg",
        "vasopressors",
        "oxygen",
        "o2_flow_l_min",
        "age_years",
        "attribution_other_cause",
        "death_due_to_crs",
    )
    texts = T
    notes = _notes("crs")

    def check(self, f: Mapping[str, Any]) -> None:
        flow = f.get("o2_flow_l_min")
        if f.get("oxygen") == "none" and flow is not None and flow > 0:
            raise FindingError("o2_flow_l_min", flow, T.e("flow_without_device"), T.e("give_device"))

    def domains(self, f: Mapping[str, Any]) -> list[Domain]:
        t = _T.crs
        other = set(f.get("attribution_other_cause", []))
        hypo = self._hypotension(f, t, other)
        hypox = self._hypoxia(f, t, other)
        doms = [hypo, hypox, self._fever(f, t, other)]
        organ_possible = any(isinstance(x, int) and x > 0 for x in (*hypo.possible, *hypox.possible))
        fever_known_true = doms[2].possible == (True,)
        if "fever_masked" in f:
            doms.append(
                known(
                    "fever_masked",
                    f["fever_masked"],
                    reason=T.m("fever_masked") if f["fever_masked"] else None,
                )
            )
        elif organ_possible and not fever_known_true:
            doms.append(unknown("fever_masked", (False, True), "fever_masked"))
        else:
            doms.append(assumed("fever_masked", False))
        doms.append(self._death(f, "death_due_to_crs"))
        return doms

    @staticmethod
    def _fever(f: Mapping[str, Any], t: Crs, other: set[str]) -> Domain:
        if "fever" in other:
            return known("fever", False, reason=T.m("fever_other_cause"))
        temp = f.get("temperature_c")
        if temp is None:
            return unknown("fever", (False, True), "temperature_c")
        thr = t.fever_min_c
        if temp >= thr:
            msg = T.m("fever_present", temp=temp, thr=thr)
            hit = RuleHit.of("astct2019:crs/fever/present", "fever", 1, msg)
            return known("fever", True, hit)
        return known("fever", False, reason=T.m("no_fever", temp=temp, thr=thr))

    @staticmethod
    def _hypotension(f: Mapping[str, Any], t: Crs, other: set[str]) -> Domain:
        rows = t.hypotension
        name = "hypotension"
        if "hypotension" in other:
            return known(name, 0, reason=T.m("hypotension_other_cause"))
        pressors = f.get("vasopressors")
        if pressors:
            counted = [p for p in pressors if p not in t.not_counted_in_multiple]
            key = "multiple_vasopressors" if len(counted) >= 2 else "one_vasopressor"
            e: Entry = getattr(rows, key)
            return known(
                name,
                e.grade,
                _hit("astct2019:crs", name, key, f"crs.hypotension.{key}", e, list(pressors)),
            )
        flag = f.get("hypotension")
        if flag is None and "sbp_mmhg" in f:
            age = f.get("age_years")
            if age is not None and age >= t.adult_min_age_years:
                flag = f["sbp_mmhg"] < t.sbp_below_mmhg
        if pressors is None:
            # whether vasopressors are running decides between grades 2 and 3-4, whatever the flag
            possible = rows.grades(flag, pressors_known=False)
            need = ["vasopressors"] if flag is not None else ["hypotension", "vasopressors"]
            return unknown(name, possible, *need, reason=T.m("hypotension_present") if flag else None)
        if flag is None:
            return unknown(name, rows.grades(None, pressors_known=True), "hypotension")
        if not flag:
            return known(name, 0, reason=T.m("no_hypotension"))
        e = rows.no_vasopressor
        return known(
            name,
            e.grade,
            _hit("astct2019:crs", name, "no_vasopressor", "crs.hypotension.no_vasopressor", e),
        )

    @staticmethod
    def _hypoxia(f: Mapping[str, Any], t: Crs, other: set[str]) -> Domain:
        rows = t.oxygen
        name = "hypoxia"
        if "hypoxia" in other:
            return known(name, 0, reason=T.m("hypoxia_other_cause"))
        device = f.get("oxygen")
        flow = f.get("o2_flow_l_min")
        if device is None:
            if flow is not None and flow > 0:
                return unknown(
                    name,
                    t.oxygen_grades(some_oxygen=True),
                    "oxygen",
                    reason=T.m("oxygen_flow_no_device", flow=flow),
                )
            return unknown(name, t.oxygen_grades(some_oxygen=False), "oxygen")
        e = rows[device]
        if device == t.flow_dependent_device:
            limit = t.low_flow_max_l_min
            if flow is None:
                return unknown(
                    name,
                    (e.grade, t.flow_dependent_high_grade),
                    "o2_flow_l_min",
                    reason=T.m("cannula_unknown_flow", limit=limit),
                )
            if flow > limit:
                hi = rows["high_flow_nasal_cannula"]
                return known(
                    name,
                    hi.grade,
                    _hit(
                        "astct2019:crs",
                        name,
                        "high_flow_nasal_cannula",
                        "crs.oxygen.high_flow_nasal_cannula",
                        hi,
                        T.m("cannula_high_flow", flow=flow, limit=limit),
                    ),
                )
            return known(
                name,
                e.grade,
                _hit("astct2019:crs", name, device, f"crs.oxygen.{device}", e, T.m("flow", flow=flow)),
            )
        detail = T.m("flow", flow=flow) if flow is not None else None
        if e.grade == 0:
            return known(name, 0, reason=T(f"crs.oxygen.{device}"))
        return known(name, e.grade, _hit("astct2019:crs", name, device, f"crs.oxygen.{device}", e, detail))

    def combine(self, v: Mapping[str, Any]) -> int:
        if v["death"]:
            return 5
        if not (v["fever"] or v["fever_masked"]):
            return 0  # CRS requires fever at onset, unless masked by therapy
        return int(max(1 if v["fever"] else 0, v["hypotension"], v["hypoxia"]))

    def deciding(self, v: Mapping[str, Any], grade: int) -> list[str]:
        if grade == 5:
            return ["death"]
        if grade == 0:
            return []
        organ = [k for k in ("hypotension", "hypoxia") if v[k] == grade]
        return organ or (["fever"] if v["fever"] else [])

    def summary(self, v: Mapping[str, Any], grade: int) -> Msg:
        if grade == 5:
            return T.m("crs_grade5")
        if grade == 0:
            if not (v["fever"] or v["fever_masked"]):
                return T.m("crs_grade0_no_fever")
            return T.m("crs_grade0")
        gate = T.m("gate_fever") if v["fever"] else T.m("gate_masked")
        return T.m("crs_grade", grade=grade, hypotension=v["hypotension"], hypoxia=v["hypoxia"], gate=gate)


class AstctIcans(Scale):
    id = "astct2019:icans"
    title = "Immune effector cell-associated neurotoxicity syndrome — ASTCT consensus grading"
    version = "2019"
    family = "icans"
    source_keys = ("astct2019", "traube2014", "santomasso2021")
    findings = pick(
        "age_years",
        "developmental_delay",
        "ice_score",
        "ice_items",
        "capd_score",
        "consciousness",
        "seizure",
        "motor",
        "cerebral_edema",
        "raised_icp_signs",
        "global_aphasia",
        "death_due_to_icans",
    )
    texts = T
    notes = _notes("icans")

    def check(self, f: Mapping[str, Any]) -> None:
        items = f.get("ice_items")
        if items is not None and len(items) == 5 and "ice_score" in f:
            total = sum(items.values())
            if total != f["ice_score"]:
                raise FindingError("ice_score", f["ice_score"], T.e("ice_sum_mismatch", total=total))
        if f.get("global_aphasia") and f.get("ice_score", 0) != 0:
            raise FindingError("global_aphasia", True, T.e("aphasia_with_ice", score=f["ice_score"]))

    def _use_capd(self, f: Mapping[str, Any]) -> bool | None:
        t = _T.icans
        age = f.get("age_years")
        if age is None:
            if "capd_score" in f and "ice_score" not in f and "ice_items" not in f:
                return True
            return False if ("ice_score" in f or "ice_items" in f) else None
        if age < t.pediatric_below_age_years:
            return True
        return bool(
            f.get("developmental_delay") and age <= t.developmental_delay_max_age_years and "capd_score" in f
        )

    def domains(self, f: Mapping[str, Any]) -> list[Domain]:
        t = _T.icans
        s = "astct2019:icans"
        doms: list[Domain] = []
        # level of consciousness
        loc = f.get("consciousness")
        if loc is None:
            doms.append(unknown("consciousness", t.grades("consciousness"), "consciousness"))
        else:
            e = t.consciousness[loc]
            hit = _hit(s, "consciousness", loc, f"icans.consciousness.{loc}", e)
            doms.append(
                known("consciousness", e.grade, hit)
                if e.grade
                else known("consciousness", 0, reason=T(f"icans.consciousness.{loc}"))
            )
        # encephalopathy tool: ICE or CAPD
        doms.append(self._encephalopathy(f, t, loc == "unarousable"))
        for dom in ("seizure", "motor"):
            val = f.get(dom)
            if val is None:
                doms.append(unknown(dom, t.grades(dom), dom))
            else:
                e = t.entries(dom)[val]
                doms.append(
                    known(dom, e.grade, _hit(s, dom, val, f"icans.{dom}.{val}", e))
                    if e.grade
                    else known(dom, 0, reason=T(f"icans.{dom}.{val}"))
                )
        doms.append(self._edema(f, t))
        doms.append(self._death(f, "death_due_to_icans"))
        return doms

    def _encephalopathy(self, f: Mapping[str, Any], t: Icans, unarousable: bool) -> Domain:
        s = "astct2019:icans"
        if unarousable:
            return known(
                "encephalopathy",
                0,
                reason=T.m("unarousable_no_tool"),
            )
        use_capd = self._use_capd(f)
        if use_capd is None:
            return unknown("encephalopathy", t.encephalopathy_grades(), "ice_score", "age_years")
        if use_capd:
            score = f.get("capd_score")
            if score is None:
                return unknown(
                    "encephalopathy",
                    t.capd_grades(),
                    "capd_score",
                    reason=T.m("capd_tool_missing"),
                )
            b = band(t.capd_bands, score, "icans.capd_bands")
            msg = T.m("capd_hit", text=T(f"icans.capd_bands.{t.capd_bands.index(b)}"), score=score)
            hit = RuleHit.of(f"{s}/capd/{b.min}-{b.max}", "capd", b.grade, msg)
            return (
                known("encephalopathy", b.grade, hit)
                if b.grade
                else known("encephalopathy", 0, reason=T.m("capd_score", score=score))
            )
        scores = self._ice_scores(f)
        if scores is None:
            return unknown("encephalopathy", t.ice_grades(), "ice_score")
        if len(scores) > 1:
            grades = {band(t.ice_bands, x, "icans.ice_bands").grade for x in scores}
            return unknown(
                "encephalopathy",
                sorted(grades),
                *[f"ice_items.{k}" for k in self._missing_items(f)],
                reason=T.m("ice_partial", lo=min(scores), hi=max(scores)),
            )
        score = scores[0]
        b = band(t.ice_bands, score, "icans.ice_bands")
        notes = [
            *([T.m("note_aphasia")] if score == 0 and f.get("global_aphasia") else []),
            *([T.m("note_no_age")] if "age_years" not in f else []),
        ]
        text = T(f"icans.ice_bands.{t.ice_bands.index(b)}")
        if not notes:
            msg = T.m("ice_hit", text=text, score=score)
        else:
            note = notes[0] if len(notes) == 1 else T.m("note_pair", a=notes[0], b=notes[1])
            msg = T.m("ice_hit_note", text=text, score=score, note=note)
        hit = RuleHit.of(f"{s}/ice/{b.min}-{b.max}", "ice", b.grade, msg)
        return (
            known("encephalopathy", b.grade, hit)
            if b.grade
            else known("encephalopathy", 0, reason=T.m("ice_no_impairment", score=score))
        )

    @staticmethod
    def _missing_items(f: Mapping[str, Any]) -> list[str]:
        spec = AstctIcans.findings["ice_items"].fields
        return [k for k in spec if k not in f.get("ice_items", {})]

    def _ice_scores(self, f: Mapping[str, Any]) -> list[int] | None:
        if "ice_score" in f:
            return [f["ice_score"]]
        items = f.get("ice_items")
        if not items:
            return None
        spec = self.findings["ice_items"].fields
        base = sum(items.values())
        extra = sum(spec[k][1] for k in self._missing_items(f))
        return list(range(base, base + extra + 1))

    @staticmethod
    def _edema(f: Mapping[str, Any], t: Icans) -> Domain:
        s = "astct2019:icans"
        name = "cerebral_edema"
        if f.get("raised_icp_signs"):
            e = t.raised_icp_signs
            return known(name, e.grade, _hit(s, name, "raised_icp_signs", "icans.raised_icp_signs", e))
        edema = f.get("cerebral_edema")
        if edema is None:
            return unknown(
                name,
                t.edema_grades(),
                "cerebral_edema",
                *([] if "raised_icp_signs" in f else ["raised_icp_signs"]),
            )
        e = t.cerebral_edema[edema]
        icp = t.raised_icp_signs.grade
        if "raised_icp_signs" not in f and e.grade < icp:
            base = (
                known(name, e.grade, _hit(s, name, edema, f"icans.cerebral_edema.{edema}", e))
                if e.grade
                else None
            )
            d = unknown(name, (e.grade, icp), "raised_icp_signs")
            if base:
                d.hits = base.hits
            return d
        return (
            known(name, e.grade, _hit(s, name, edema, f"icans.cerebral_edema.{edema}", e))
            if e.grade
            else known(name, 0, reason=T(f"icans.cerebral_edema.{edema}"))
        )

    def combine(self, v: Mapping[str, Any]) -> int:
        if v["death"]:
            return 5
        worst = max(v["consciousness"], v["encephalopathy"], v["seizure"], v["motor"], v["cerebral_edema"])
        return int(worst)

    def deciding(self, v: Mapping[str, Any], grade: int) -> list[str]:
        if grade == 5:
            return ["death"]
        return [
            k
            for k in ("encephalopathy", "consciousness", "seizure", "motor", "cerebral_edema")
            if v[k] == grade and grade > 0
        ]

    def summary(self, v: Mapping[str, Any], grade: int) -> str | Msg:
        if grade == 5:
            return T.m("icans_grade5")
        if grade == 0:
            return T.m("icans_grade0")
        return super().summary(v, grade)


def scales() -> list[Scale]:
    """The scales this module provides (read by the catalogue)."""
    return [AstctCrs(), AstctIcans()]
