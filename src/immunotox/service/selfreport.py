"""Triage of a patient's self-report: "call the unit now" or "noted".

The rule and its texts are data (``service/data/self_report.toml``, verification [D]: the
service's own decision, built on the ASTCT 2019 definitions of CRS and ICANS and the ASCO 2021
checkpoint-inhibitor guideline; see the file header). The temperature threshold is the ASTCT
fever threshold read from the grading data, not repeated here.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from .. import ruledata
from ..sources import source

Decision = Literal["call_now", "noted"]


@dataclass(frozen=True)
class Triage:
    decision: Decision
    priority: str | None
    reasons: list[str]
    reasons_fr: list[str]
    answer: str
    answer_fr: str
    detail: str
    detail_fr: str
    sources: list[str]


@functools.cache
def rules() -> dict[str, Any]:
    text = resources.files("immunotox.service").joinpath("data/self_report.toml").read_text("utf-8")
    data: dict[str, Any] = tomllib.loads(text)
    return data


def symptom_labels() -> dict[str, dict[str, str]]:
    """Token -> {"en": ..., "fr": ...} for the portal's symptom list."""
    return {k: dict(v["text"]) for k, v in rules()["symptom"].items()}


def fever_threshold_c() -> float:
    return float(ruledata.load("astct2019")["crs"]["fever_min_c"])


def triage(therapy_class: str, temperature_c: float | None, symptoms: list[str]) -> Triage:
    """Decide "call_now" or "noted" for one report (symptom tokens already checked)."""
    r = rules()
    reasons: list[str] = []
    reasons_fr: list[str] = []
    priorities: list[str] = []
    keys: set[str] = set()
    thr = fever_threshold_c()
    if temperature_c is not None and temperature_c >= thr:
        reasons.append(f"temperature {temperature_c:g} °C >= {thr:g} °C (fever)")
        reasons_fr.append(f"température {temperature_c:g} °C >= {thr:g} °C (fièvre)")
        priorities.append("high")
        keys.add("astct2019")
    for s in symptoms:
        spec = r["symptom"].get(s)
        if spec is None or therapy_class not in spec["urgent_for"]:
            continue
        reasons.append(f"{spec['text']['en']}: {spec['basis']}")
        reasons_fr.append(f"{spec['text']['fr']} : {spec['basis']}")
        priorities.append(spec["priority"])
        keys.update(k for k in ("astct2019", "schneider2021") if k in spec["basis"])
    decision: Decision = "call_now" if reasons else "noted"
    a = r["answer"][decision]
    priority = None
    if priorities:
        priority = "critical" if "critical" in priorities else "high"
    return Triage(
        decision=decision,
        priority=priority,
        reasons=reasons,
        reasons_fr=reasons_fr,
        answer=a["en"],
        answer_fr=a["fr"],
        detail=a["detail"]["en"],
        detail_fr=a["detail"]["fr"],
        sources=[source(k).citation() for k in sorted(keys)],
    )
