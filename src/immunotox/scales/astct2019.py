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

from .. import ruledata
from ..errors import FindingError
from ..findings import pick
from ..result import RuleHit
from ._base import Domain, Scale, assumed, known, unknown

_T = ruledata.load("astct2019")


def _hit(scale: str, domain: str, key: str, entry: Mapping[str, Any], detail: str = "") -> RuleHit:
    text = entry["text"] + (f" ({detail})" if detail else "")
    return RuleHit(rule=f"{scale}/{domain}/{key}", domain=domain, grade=entry["grade"], text=text)


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
    notes = (
        "Vasopressin alone counts as one vasopressor (grade 3); it is never counted toward "
        "'multiple vasopressors' (grade 4).",
        "Oxygen: the device decides; a nasal cannula delivering > 6 L/min is high-flow (grade 3). "
        "A nasal cannula with unknown flow is at least grade 2.",
        "Hypotension is taken from the `hypotension` finding; when absent, SBP < 90 mmHg counts as "
        "hypotension in adults (>= 18 y) only. Running vasopressors decide grades 3-4 whatever the "
        "blood pressure, so `vasopressors` is needed even when `hypotension` is false.",
        "Features listed in `attribution_other_cause` are excluded; otherwise they are taken as "
        "attributable to CRS.",
        "Fever masking applies only when `fever_masked` is true (therapy given after CRS onset).",
        "Organ toxicities do not influence the CRS grade (grade them with CTCAE v5.0).",
        "Grade 5 requires `death_due_to_crs`; its absence is read as 'patient alive'.",
    )

    def check(self, f: Mapping[str, Any]) -> None:
        flow = f.get("o2_flow_l_min")
        if f.get("oxygen") == "none" and flow is not None and flow > 0:
            raise FindingError(
                "o2_flow_l_min", flow, "oxygen flow given while oxygen = 'none'", "give the device"
            )

    def domains(self, f: Mapping[str, Any]) -> list[Domain]:
        t = _T["crs"]
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
                    reason="Fever masked by antipyretic/anticytokine therapy: fever no longer required"
                    if f["fever_masked"]
                    else None,
                )
            )
        elif organ_possible and not fever_known_true:
            doms.append(unknown("fever_masked", (False, True), "fever_masked"))
        else:
            doms.append(assumed("fever_masked", False))
        doms.append(self._death(f, "death_due_to_crs"))
        return doms

    @staticmethod
    def _fever(f: Mapping[str, Any], t: Mapping[str, Any], other: set[str]) -> Domain:
        if "fever" in other:
            return known("fever", False, reason="Fever attributed to another cause: not counted")
        temp = f.get("temperature_c")
        if temp is None:
            return unknown("fever", (False, True), "temperature_c")
        thr = t["fever_min_c"]
        if temp >= thr:
            hit = RuleHit(
                rule="astct2019:crs/fever/present",
                domain="fever",
                grade=1,
                text=f"Fever: temperature {temp:g} °C >= {thr:g} °C",
            )
            return known("fever", True, hit)
        return known("fever", False, reason=f"No fever: temperature {temp:g} °C < {thr:g} °C")

    @staticmethod
    def _hypotension(f: Mapping[str, Any], t: Mapping[str, Any], other: set[str]) -> Domain:
        rows = t["hypotension"]
        name = "hypotension"
        if "hypotension" in other:
            return known(name, 0, reason="Hypotension attributed to another cause: not counted")
        pressors = f.get("vasopressors")
        if pressors:
            counted = [p for p in pressors if p not in t["not_counted_in_multiple"]]
            key = "multiple_vasopressors" if len(counted) >= 2 else "one_vasopressor"
            e = ruledata.entry(rows, key, "astct2019.crs.hypotension")
            return known(name, e["grade"], _hit("astct2019:crs", name, key, e, ", ".join(pressors)))
        flag = f.get("hypotension")
        if flag is None and "sbp_mmhg" in f:
            age = f.get("age_years")
            if age is not None and age >= t["adult_min_age_years"]:
                flag = f["sbp_mmhg"] < t["sbp_below_mmhg"]
        if pressors is None:
            # whether vasopressors are running decides between grades 2 and 3-4, whatever the flag
            possible = {None: (0, 2, 3, 4), True: (2, 3, 4), False: (0, 3, 4)}[flag]
            need = ["vasopressors"] if flag is not None else ["hypotension", "vasopressors"]
            return unknown(name, possible, *need, reason="Hypotension present" if flag else None)
        if flag is None:
            return unknown(name, (0, 2), "hypotension")
        if not flag:
            return known(name, 0, reason="No hypotension, no vasopressor")
        e = ruledata.entry(rows, "no_vasopressor", "astct2019.crs.hypotension")
        return known(name, e["grade"], _hit("astct2019:crs", name, "no_vasopressor", e))

    @staticmethod
    def _hypoxia(f: Mapping[str, Any], t: Mapping[str, Any], other: set[str]) -> Domain:
        rows = t["oxygen"]
        name = "hypoxia"
        if "hypoxia" in other:
            return known(name, 0, reason="Hypoxia attributed to another cause: not counted")
        device = f.get("oxygen")
        flow = f.get("o2_flow_l_min")
        if device is None:
            if flow is not None and flow > 0:
                return unknown(name, (2, 3, 4), "oxygen", reason=f"Oxygen at {flow:g} L/min")
            return unknown(name, (0, 2, 3, 4), "oxygen")
        e = ruledata.entry(rows, device, "astct2019.crs.oxygen")
        if device == t["flow_dependent_device"]:
            limit = t["low_flow_max_l_min"]
            if flow is None:
                return unknown(
                    name,
                    (e["grade"], t["flow_dependent_high_grade"]),
                    "o2_flow_l_min",
                    reason="Nasal cannula with unknown flow: low-flow if <= 6 L/min, high-flow above",
                )
            if flow > limit:
                hi = ruledata.entry(rows, "high_flow_nasal_cannula", "astct2019.crs.oxygen")
                return known(
                    name,
                    hi["grade"],
                    _hit(
                        "astct2019:crs",
                        name,
                        "high_flow_nasal_cannula",
                        hi,
                        f"nasal cannula at {flow:g} L/min > {limit:g} L/min is high-flow",
                    ),
                )
            return known(name, e["grade"], _hit("astct2019:crs", name, device, e, f"{flow:g} L/min"))
        detail = f"{flow:g} L/min" if flow is not None else ""
        if e["grade"] == 0:
            return known(name, 0, reason=e["text"])
        return known(name, e["grade"], _hit("astct2019:crs", name, device, e, detail))

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

    def summary(self, v: Mapping[str, Any], grade: int) -> str:
        if grade == 5:
            return "Grade 5: death due to CRS"
        if grade == 0:
            if not (v["fever"] or v["fever_masked"]):
                return "Grade 0: no fever (and fever not masked by therapy), so CRS criteria are not met"
            return "Grade 0: no fever, hypotension or hypoxia attributable to CRS"
        parts = f"hypotension {v['hypotension']}, hypoxia {v['hypoxia']}"
        gate = "fever present" if v["fever"] else "fever masked by therapy"
        return f"Grade {grade}: the more severe of {parts}; {gate}"


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
    notes = (
        "Children younger than 12 years (or up to 21 years with developmental delay) are graded "
        "with CAPD instead of ICE (ASCO 2021 footnote: '< 12 years').",
        "Awakening spontaneously with ICE 10 is grade 1, as in the ASTCT table.",
        "Depressed consciousness, seizures and edema are taken as attributable to ICANS; do not "
        "enter consciousness due to sedation.",
        "Tremor, myoclonus and intracranial hemorrhage are not ICANS features (grade them with CTCAE v5.0).",
        "Grade 5 requires `death_due_to_icans`; its absence is read as 'patient alive'.",
    )

    def check(self, f: Mapping[str, Any]) -> None:
        items = f.get("ice_items")
        if items is not None and len(items) == 5 and "ice_score" in f:
            total = sum(items.values())
            if total != f["ice_score"]:
                raise FindingError(
                    "ice_score", f["ice_score"], f"does not match the sum of ice_items ({total})"
                )
        if f.get("global_aphasia") and f.get("ice_score", 0) != 0:
            raise FindingError(
                "global_aphasia", True, f"given with ice_score {f['ice_score']}; it explains ICE 0"
            )

    def _use_capd(self, f: Mapping[str, Any]) -> bool | None:
        t = _T["icans"]
        age = f.get("age_years")
        if age is None:
            if "capd_score" in f and "ice_score" not in f and "ice_items" not in f:
                return True
            return False if ("ice_score" in f or "ice_items" in f) else None
        if age < t["pediatric_below_age_years"]:
            return True
        return bool(
            f.get("developmental_delay")
            and age <= t["developmental_delay_max_age_years"]
            and "capd_score" in f
        )

    def domains(self, f: Mapping[str, Any]) -> list[Domain]:
        t = _T["icans"]
        s = "astct2019:icans"
        doms: list[Domain] = []
        # level of consciousness
        loc = f.get("consciousness")
        if loc is None:
            doms.append(unknown("consciousness", (0, 1, 2, 3, 4), "consciousness"))
        else:
            e = ruledata.entry(t["consciousness"], loc, "astct2019.icans.consciousness")
            hit = _hit(s, "consciousness", loc, e)
            doms.append(
                known("consciousness", e["grade"], hit)
                if e["grade"]
                else known("consciousness", 0, reason=e["text"])
            )
        # encephalopathy tool: ICE or CAPD
        doms.append(self._encephalopathy(f, t, loc == "unarousable"))
        for dom in ("seizure", "motor"):
            val = f.get(dom)
            if val is None:
                grades = sorted({e["grade"] for e in t[dom].values()})
                doms.append(unknown(dom, grades, dom))
            else:
                e = ruledata.entry(t[dom], val, f"astct2019.icans.{dom}")
                doms.append(
                    known(dom, e["grade"], _hit(s, dom, val, e))
                    if e["grade"]
                    else known(dom, 0, reason=e["text"])
                )
        doms.append(self._edema(f, t))
        doms.append(self._death(f, "death_due_to_icans"))
        return doms

    def _encephalopathy(self, f: Mapping[str, Any], t: Mapping[str, Any], unarousable: bool) -> Domain:
        s = "astct2019:icans"
        if unarousable:
            return known(
                "encephalopathy",
                0,
                reason="ICE/CAPD not performable: patient unarousable (graded by consciousness)",
            )
        use_capd = self._use_capd(f)
        if use_capd is None:
            return unknown("encephalopathy", (0, 1, 2, 3), "ice_score", "age_years")
        if use_capd:
            score = f.get("capd_score")
            if score is None:
                return unknown(
                    "encephalopathy",
                    (0, 1, 3),
                    "capd_score",
                    reason="CAPD is the tool for this age; ICE, if given, is not used",
                )
            b = ruledata.band(t["capd_bands"], score, "astct2019.icans.capd_bands")
            hit = RuleHit(
                rule=f"{s}/capd/{b['min']}-{b['max']}",
                domain="capd",
                grade=b["grade"],
                text=f"{b['text']} (CAPD {score})",
            )
            return (
                known("encephalopathy", b["grade"], hit)
                if b["grade"]
                else known("encephalopathy", 0, reason=f"CAPD {score}")
            )
        scores = self._ice_scores(f)
        if scores is None:
            return unknown("encephalopathy", (0, 1, 2, 3), "ice_score")
        if len(scores) > 1:
            grades = {ruledata.band(t["ice_bands"], x, "ice")["grade"] for x in scores}
            return unknown(
                "encephalopathy",
                sorted(grades),
                *[f"ice_items.{k}" for k in self._missing_items(f)],
                reason=f"Partial ICE items: score between {min(scores)} and {max(scores)}",
            )
        score = scores[0]
        b = ruledata.band(t["ice_bands"], score, "astct2019.icans.ice_bands")
        note = ""
        if score == 0 and f.get("global_aphasia"):
            note = "awake with global aphasia"
        if "age_years" not in f:
            note = (note + "; " if note else "") + "age not given: ICE used (tool for >= 12 y)"
        hit = RuleHit(
            rule=f"{s}/ice/{b['min']}-{b['max']}",
            domain="ice",
            grade=b["grade"],
            text=f"{b['text']} (ICE {score}{'; ' + note if note else ''})",
        )
        return (
            known("encephalopathy", b["grade"], hit)
            if b["grade"]
            else known("encephalopathy", 0, reason=f"ICE {score}: no impairment")
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
    def _edema(f: Mapping[str, Any], t: Mapping[str, Any]) -> Domain:
        s = "astct2019:icans"
        name = "cerebral_edema"
        if f.get("raised_icp_signs"):
            e = t["raised_icp_signs"]
            return known(name, e["grade"], _hit(s, name, "raised_icp_signs", e))
        edema = f.get("cerebral_edema")
        if edema is None:
            return unknown(
                name,
                (0, 3, 4),
                "cerebral_edema",
                *([] if "raised_icp_signs" in f else ["raised_icp_signs"]),
            )
        e = ruledata.entry(t["cerebral_edema"], edema, "astct2019.icans.cerebral_edema")
        if "raised_icp_signs" not in f and e["grade"] < 4:
            base = known(name, e["grade"], _hit(s, name, edema, e)) if e["grade"] else None
            d = unknown(name, (e["grade"], 4), "raised_icp_signs")
            if base:
                d.hits = base.hits
            return d
        return (
            known(name, e["grade"], _hit(s, name, edema, e))
            if e["grade"]
            else known(name, 0, reason=e["text"])
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

    def summary(self, v: Mapping[str, Any], grade: int) -> str:
        if grade == 5:
            return "Grade 5: death due to ICANS"
        if grade == 0:
            return "Grade 0: no ICANS criteria met"
        dec = self.deciding(v, grade)
        return f"Grade {grade}: most severe domain {' and '.join(dec)}"


def scales() -> list[Scale]:
    """The scales this module provides (read by the catalogue)."""
    return [AstctCrs(), AstctIcans()]
