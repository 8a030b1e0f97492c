"""Triage of a patient's self-report: "call the unit now" or "noted".

The symptoms a patient may report, and which of them mean "call now" for the patient's therapy
class, come from the class's handout file (:mod:`immunotox.handouts`, ``data/handouts/<class>.toml``)
— the same file as the handout that tells the patient when to call, so the two cannot disagree.
The answers shown to the patient are ``service/data/self_report.toml``. The temperature threshold
is the ASTCT fever threshold read from the grading data, not repeated here.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from .. import handouts
from ..scales import astct2019_spec
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


def symptom_labels(therapy_class: str) -> dict[str, dict[str, str]]:
    """Token -> {"en": ..., "fr": ...} of the symptoms the portal offers to ``therapy_class``,
    in the class file's order."""
    return {k: {"en": s.en, "fr": s.fr} for k, s in handouts.handout(therapy_class).symptoms.items()}


def fever_threshold_c() -> float:
    return astct2019_spec.table().crs.fever_min_c


def triage(therapy_class: str, temperature_c: float | None, symptoms: list[str]) -> Triage:
    """Decide "call_now" or "noted" for one report (symptom tokens already checked against the
    class's list; a token the class does not offer is ignored here)."""
    r = rules()
    offered = handouts.handout(therapy_class).symptoms
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
    for token in symptoms:
        spec = offered.get(token)
        if spec is None or spec.urgency != "call_now":
            continue
        reasons.append(f"{spec.en}: {spec.basis}")
        reasons_fr.append(f"{spec.fr} : {spec.basis}")
        priorities.append(spec.priority)
        keys.update(spec.sources)
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
