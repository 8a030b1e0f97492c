"""Doses already given, checked against the same dose rule as an intended dose.

:func:`check_dose_rule` answers "may this dose be given now?"; :func:`review_recorded_doses`
answers "did a recorded dose reach or break a limit?" — for the service's ``dose_limit`` alerts.
Both read the limits of ``[dose_rule.<id>]`` in ``data/drugs.toml`` through the same
``_effective_limits`` and the same population gate, so the recommendation, ``immunotox dose``,
the web page and the alerts give one answer.

States: ``reached`` (this dose is the last one a count limit allows), ``exceeded`` (a limit was
broken), ``outside_population`` (the patient's age is outside the rule's population: no amount
of the rule applies — the unit's paediatric protocol does).

>>> from datetime import datetime, timedelta, UTC
>>> t0 = datetime(2025, 3, 1, 8, tzinfo=UTC)
>>> doses = [RecordedDose(str(i), t0 + timedelta(hours=13 * i), 560.0) for i in range(4)]
>>> def review(doses, new, kg):
...     found = review_recorded_doses("tocilizumab-crs", doses, new, weight_kg=kg, age_years=50)
...     return [(f.kind, f.state) for f in found]
>>> review(doses, ["3"], 70)
[('max_total', 'reached')]
>>> review(doses[:1], ["0"], 20)   # 560 mg for 20 kg: above 12 mg/kg
[('max_mg_per_kg', 'exceeded')]
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from ._dose_rule import _effective_limits, rule_gate
from ._drugs import dose_rule
from ._inputs import _floor, _n
from ._population import Licence
from ._vocab import Text, message


class RecordedDose(NamedTuple):
    """A dose given: an id unique for the patient, its time (aware) and its amount in mg if known."""

    key: str
    time: datetime
    mg: float | None


class LimitFinding(BaseModel):
    """A limit a recorded dose reached or broke, in English and French."""

    model_config = ConfigDict(frozen=True)

    kind: str
    state: Literal["reached", "exceeded", "outside_population"]
    dose_key: str
    dedup: str
    value: float | None
    detail: Text
    limit_text: Text
    sources: list[str]


def _both(key: str, **params: object) -> Text:
    """The message ``key`` in English and French; numbers are written in each language's way."""

    def written(lang: str) -> dict[str, object]:
        return {k: _n(lang, v) if isinstance(v, float) else v for k, v in params.items()}

    return Text(en=message(key, "en", **written("en")), fr=message(key, "fr", **written("fr")))


def review_recorded_doses(
    rule_id: str,
    doses: Sequence[RecordedDose],
    new_keys: Sequence[str],
    *,
    weight_kg: float | None,
    age_years: float | None,
    licences: Sequence[Licence] | None = None,
) -> list[LimitFinding]:
    """Every limit of dose rule ``rule_id`` that the doses ``new_keys`` reached or broke.

    ``doses`` is the course's history (every dose counted, the new ones included); counts and
    windows use the same semantics as :func:`check_dose_rule` (window ``(t - W, t]``).
    """
    rule = dose_rule(rule_id)
    eff = _effective_limits(rule, None, f"dose rule {rule_id}")
    ordered = sorted(doses, key=lambda d: (d.time, d.key))
    out: list[LimitFinding] = []
    gate = rule_gate(rule, age_years, weight_kg, licences, "en")
    for new in (d for d in ordered if d.key in set(new_keys)):
        upto = ordered[: ordered.index(new) + 1]
        prev = upto[:-1]
        if age_years is not None and not gate.covered:
            fr = rule_gate(rule, age_years, weight_kg, licences, "fr")
            out.append(
                LimitFinding(
                    kind="population",
                    state="outside_population",
                    dose_key=new.key,
                    dedup=f"population:{new.key}",
                    value=None,
                    detail=Text(en=gate.reason or "", fr=fr.reason or ""),
                    limit_text=rule.population.text,
                    sources=[rule.population.source],
                )
            )
        for lim in rule.limit:
            value = eff[lim.kind][0]
            state: str | None = None
            detail: Text | None = None
            dedup = f"{lim.kind}:{new.key}"
            if lim.kind == "max_total":
                n = len(upto)
                state = "exceeded" if n > value else "reached" if n == value else None
                detail = _both("recorded_total", n=n)
                if state == "reached":
                    dedup = f"{lim.kind}:{n}"
            elif lim.kind == "max_in_window":
                window = eff[lim.kind][1] or 24.0
                n = sum(1 for d in upto if new.time - timedelta(hours=window) < d.time <= new.time)
                state = "exceeded" if n > value else "reached" if n == value else None
                detail = _both("recorded_window", n=n, window=float(window))
            elif lim.kind == "min_interval_h" and prev:
                gap_h = (new.time - prev[-1].time).total_seconds() / 3600
                if gap_h < value:
                    state = "exceeded"
                    detail = _both("recorded_interval", hours=round(gap_h, 1))
            elif lim.kind == "max_per_dose_mg" and new.mg is not None and new.mg > value:
                state = "exceeded"
                detail = _both("recorded_mg", mg=float(new.mg))
            if state is not None and detail is not None:
                out.append(
                    LimitFinding(
                        kind=lim.kind,
                        state=state,
                        dose_key=new.key,
                        dedup=dedup,
                        value=value,
                        detail=detail,
                        limit_text=lim.text,
                        sources=list(lim.sources),
                    )
                )
        if new.mg is not None and weight_kg is not None:
            band = rule.band_for(weight_kg)
            most = min(_floor(band.mg_per_kg * weight_kg, 0.1), eff["max_per_dose_mg"][0])
            if new.mg > most + 0.05:
                out.append(
                    LimitFinding(
                        kind="max_mg_per_kg",
                        state="exceeded",
                        dose_key=new.key,
                        dedup=f"max_mg_per_kg:{new.key}",
                        value=band.mg_per_kg,
                        detail=_both(
                            "recorded_mg_per_kg",
                            mg=float(new.mg),
                            per_kg=float(round(new.mg / weight_kg, 2)),
                            weight=float(weight_kg),
                            most=float(most),
                        ),
                        limit_text=band.text,
                        sources=list(band.sources),
                    )
                )
    return out
