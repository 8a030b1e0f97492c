"""Computation of the risk scores from checked findings (the tables live in ``data/risk``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .. import units
from ..errors import FindingError, ImmunotoxError, RuleSpecError
from ..findings import vocabulary
from ..messages import Catalogue, Msg, error, name
from ._result import RiskCall, RiskTexts, ScoreResult, ScoreTexts, UnitConversion
from ._spec import Component, ScoreSpec, all_specs


class UnknownScoreError(ImmunotoxError, KeyError):
    """A score id that is not in ``data/risk``.

    Examples
    --------
    >>> from immunotox.risk import score
    >>> score("easix2", {})
    Traceback (most recent call last):
    ...
    immunotox.risk._engine.UnknownScoreError: unknown score 'easix2'; known scores: ...
    """

    def __init__(self, score_id: str, known: list[str]) -> None:
        super().__init__(score_id)
        self.score_id = score_id
        self.known = known

    def __str__(self) -> str:
        return f"unknown score {self.score_id!r}; known scores: {', '.join(self.known)}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.score_id, self.known))


def get_spec(score_id: str) -> ScoreSpec:
    """The specification of ``score_id``; raises :class:`UnknownScoreError` if absent."""
    specs = all_specs()
    if not isinstance(score_id, str) or score_id not in specs:
        raise UnknownScoreError(str(score_id), list(specs))
    return specs[score_id]


def risk_findings() -> tuple[str, ...]:
    """Every finding key read by at least one score (the accepted input keys)."""
    return tuple(dict.fromkeys(f for s in all_specs().values() for f in s.inputs))


def _sig(x: float, digits: int = 6) -> float:
    return float(f"{x:.{digits}g}")


def _parse(
    spec: ScoreSpec, raw: Any
) -> tuple[dict[str, Any], dict[str, Any], list[UnitConversion], list[str]]:
    """Check ``raw``: (canonical values read by the score, the raw inputs, conversions, ignored
    keys)."""
    if not isinstance(raw, Mapping):
        raise FindingError("findings", raw, error("findings_object"))
    vocab = vocabulary()
    accepted = risk_findings()
    values: dict[str, Any] = {}
    given_raw: dict[str, Any] = {}
    conversions: list[UnitConversion] = []
    ignored: list[str] = []
    for key, item in raw.items():
        if key not in accepted:
            raise FindingError(
                str(key),
                item,
                error("risk_unknown_finding", score=spec.id),
                error("risk_reads", keys=str(list(spec.inputs))),
            )
        fs = vocab[key]
        if item is None:  # null = not known, like an absent key
            continue
        canon = fs.parse(item)
        if key not in spec.inputs:
            ignored.append(key)
            continue
        values[key] = canon
        given_raw[key] = item
        given, unit = units.as_quantity_input(item)
        if (
            fs.kind == "quantity"
            and isinstance(unit, str)
            and fs.unit is not None
            and units.parse_ucum(unit) != units.parse_ucum(fs.unit)
        ):
            conversions.append(
                UnitConversion(finding=key, given_value=given, given_unit=unit, value=canon, unit=fs.unit)
            )
    return values, given_raw, conversions, ignored


def _in_unit(key: str, canon: float, unit: str) -> float:
    fs = vocabulary()[key]
    assert fs.unit is not None
    return units.convert(key, canon, fs.unit, unit, fs.molar_mass)


_M = Catalogue("messages")


def _m(key: str, **params: Any) -> Msg:
    return _M(f"risk.{key}", **params)


def _unit_text(unit: str) -> str:
    return unit.replace("10*9/L", "×10^9/L").replace("Cel", "°C")


# ------------------------------------------------------------------------------------------ ratio
def _ratio(
    spec: ScoreSpec, values: Mapping[str, Any], given: Mapping[str, Any]
) -> tuple[float | None, list[str], list[Msg]]:
    missing = [f for f in spec.inputs if f not in values]
    if missing:
        return None, missing, [_m("ratio_missing", score=spec.id, missing=missing)]
    x = {f: _in_unit(f, values[f], spec.units[f]) for f in spec.inputs}
    for f in spec.denominator:
        if x[f] <= 0:
            raise FindingError(
                f,
                given[f],
                error("risk_divides_by_zero", score=spec.id, field=f),
                error("risk_check_count"),
            )
    num = math.prod(x[f] for f in spec.numerator)
    den = math.prod(x[f] for f in spec.denominator)
    value = _sig(num / den)
    terms = {f: _m("term", value=x[f], unit=_unit_text(spec.units[f])) for f in spec.inputs}
    shown = terms[spec.numerator[0]]
    for f in spec.numerator[1:]:
        shown = _m("times", a=shown, b=terms[f])
    for f in spec.denominator:
        shown = _m("over", a=shown, b=terms[f])
    reasons = [_m("ratio_value", score=spec.id, formula=spec.text("formula"), shown=shown, value=value)]
    if value > 0:
        reasons.append(_m("log2", score=spec.id, value=_sig(math.log2(value), 4)))
    return value, [], reasons


# ----------------------------------------------------------------------------------------- points
def _component(c: Component, values: Mapping[str, Any]) -> tuple[int | None, tuple[int, int], list[str], Msg]:
    """(points or None, (min, max) possible points, missing inputs, reason)."""
    if c.kind == "bands":
        assert c.finding is not None and c.unit is not None
        if c.finding not in values:
            lo, hi = min(c.possible_points), max(c.possible_points)
            return (
                None,
                (lo, hi),
                [c.finding],
                _m("band_missing", name=c.name, finding=c.finding, lo=lo, hi=hi),
            )
        v = _in_unit(c.finding, values[c.finding], c.unit)
        held = [b for b in c.bands if b.holds(v)]
        if len(held) != 1:
            raise RuleSpecError(f"data/risk: component {c.name!r}: {len(held)} bands hold {v:g}")
        band = held[0]
        reason = _m(
            "band", name=c.name, value=v, unit=_unit_text(c.unit), band=band.msg(), points=band.points
        )
        return band.points, (band.points, band.points), [], reason
    states: list[bool | None] = []
    texts: list[Msg] = []
    for cond in c.conditions:
        if cond.finding not in values:
            states.append(None)
            texts.append(_m("cond_unknown", finding=cond.finding))
            continue
        raw = values[cond.finding]
        if cond.bound is not None:
            assert cond.unit is not None
            v = _in_unit(cond.finding, raw, cond.unit)
            ok = cond.bound.holds(v)
            key = "cond_met" if ok else "cond_not_met"
            texts.append(
                _m(key, finding=cond.finding, value=v, unit=_unit_text(cond.unit), bound=cond.bound.msg())
            )
        else:
            ok = raw is cond.is_
            texts.append(_m("cond_yes" if raw else "cond_no", finding=cond.finding))
        states.append(ok)
    n_true = sum(1 for s in states if s is True)
    n_unknown = sum(1 for s in states if s is None)
    possible = [c.points_by_count[n] for n in range(n_true, n_true + n_unknown + 1)]
    missing = [cond.finding for cond, s in zip(c.conditions, states, strict=True) if s is None]
    detail = texts[0]
    for t in texts[1:]:
        detail = _m("semi_pair", a=detail, b=t)
    if n_unknown:
        lo, hi = min(possible), max(possible)
        return None, (lo, hi), missing, _m("count_range", name=c.name, detail=detail, lo=lo, hi=hi)
    pts = c.points_by_count[n_true]
    return pts, (pts, pts), [], _m("count", name=c.name, detail=detail, points=pts)


def _points(
    spec: ScoreSpec, values: Mapping[str, Any]
) -> tuple[int | None, dict[str, int | None], tuple[int, int], list[str], list[Msg]]:
    points: dict[str, int | None] = {}
    lo = hi = 0
    missing: list[str] = []
    reasons: list[Msg] = []
    for c in spec.components:
        pts, (clo, chi), miss, reason = _component(c, values)
        points[c.name] = pts
        lo, hi = lo + clo, hi + chi
        missing += [m for m in miss if m not in missing]
        reasons.append(reason)
    total = sum(p for p in points.values() if p is not None) if not missing else None
    points["total"] = total
    if total is not None:
        reasons.append(_m("total", total=total))
    else:
        msg = _m("no_total", missing=missing, lo=lo, hi=hi)
        if spec.risk is not None:
            rr = spec.risk
            if rr.is_high(lo):
                msg = _m("all_high", text=msg, label=_label(spec, True), rule=_cut(rr))
            elif not spec.risk.is_high(hi):
                msg = _m("all_low", text=msg, label=_label(spec, False))
            msg = _m("no_total_risk", text=msg)
        reasons.append(msg)
    return total, points, (lo, hi), missing, reasons


def _label(spec: ScoreSpec, high: bool) -> Msg | str:
    """The category's label: the score's own (HT-high, HScore >= 169) or high/low in words."""
    assert spec.risk is not None
    label = spec.risk.label_high if high else spec.risk.label_low
    if label in ("high", "low"):
        return _m(f"label_{label}")
    return label


def _msg(text: Msg | str) -> Msg:
    return text if isinstance(text, Msg) else name(text)


def _cut(rr: Any) -> Msg:
    return _m("bound", op=rr.rule_text().split()[0], x=rr.cutoff)


# ------------------------------------------------------------------------------------------ entry
def score(score_id: str, findings: Mapping[str, Any]) -> ScoreResult:
    """Compute risk score ``score_id`` from ``findings``.

    Parameters
    ----------
    score_id
        ``easix``, ``m-easix``, ``s-easix``, ``car-hematotox`` or ``hscore``
        (see :func:`immunotox.risk.all_scores`).
    findings
        Finding key -> a number in the canonical unit of ``data/findings_risk.toml`` or
        ``{"value": x, "unit": "<UCUM>"}``; ``null`` means not known. Keys read by other risk
        scores are accepted and listed in ``ignored``.

    Returns
    -------
    ScoreResult
        ``value`` (``None`` if an input is missing), ``points`` for point scores, ``risk`` where a
        published cut-off exists, the reasons, the unit conversions applied and the sources.

    Raises
    ------
    UnknownScoreError
        ``score_id`` is not a known score.
    FindingError
        An unknown key, a wrong type, an impossible value, an unknown unit, or a zero denominator.

    Notes
    -----
    A missing input is never read as normal: ratio scores give no value and point scores give no
    total (CAR-HEMATOTOX follows its authors' code, which returns no score when any input is
    missing). The value is rounded to 6 significant digits and cut-offs apply to that value.

    References
    ----------
    Pennisi M, et al. Modified EASIX predicts severe cytokine release syndrome and neurotoxicity
    after chimeric antigen receptor T cells. Blood Adv 2021;5(17):3397-3406.
    doi:10.1182/bloodadvances.2020003885

    Korell F, et al. EASIX and severe endothelial complications after CD19-directed CAR-T cell
    therapy — a cohort study. Front Immunol 2022;13:877477. doi:10.3389/fimmu.2022.877477

    Rejeski K, et al. CAR-HEMATOTOX: a model for CAR T-cell-related hematologic toxicity in
    relapsed/refractory large B-cell lymphoma. Blood 2021;138(24):2499-2513.
    doi:10.1182/blood.2020010543

    Fardet L, et al. Development and validation of the HScore, a score for the diagnosis of
    reactive hemophagocytic syndrome. Arthritis Rheumatol 2014;66(9):2613-2620.
    doi:10.1002/art.38690

    Examples
    --------
    >>> r = score("easix", {"ldh": 250, "creatinine": {"value": 88.4, "unit": "umol/L"},
    ...                     "platelets": {"value": 100, "unit": "10*9/L"}})
    >>> r.value, r.risk.category if r.risk else None
    (2.49995, 'low')
    >>> r = score("car-hematotox", {"platelets": {"value": 175, "unit": "10*9/L"},
    ...                             "anc": {"value": 1500, "unit": "/uL"}, "hemoglobin": 11,
    ...                             "crp": {"value": 30, "unit": "mg/L"}, "ferritin": 400})
    >>> r.points["total"], r.risk.label if r.risk else None
    (2, 'HT-high')
    """
    spec = get_spec(score_id)
    values, given, conversions, ignored = _parse(spec, findings)
    flags: list[Msg] = []
    risk: RiskCall | None = None
    risk_texts: RiskTexts | None = None
    if spec.kind == "ratio":
        value: float | None
        value, missing, reasons = _ratio(spec, values, given)
        points: dict[str, int | None] | None = None
        prange: tuple[int, int] | None = None
    else:
        total, points, prange, missing, reasons = _points(spec, values)
        value = total
        if total is not None:
            prange = None
    if spec.risk is not None:
        rr = spec.risk
        flags += [spec.text(f"risk.flags.{i}") for i in range(len(rr.flags))]
        if value is not None:
            high = rr.is_high(value)
            risk_texts = RiskTexts(
                label=_msg(_label(spec, high)),
                rule=_m("rule", score=spec.id, cut=_cut(rr), high=_label(spec, True)),
                outcome=spec.text("risk.outcome"),
                population=spec.text("risk.population"),
                timing=spec.text("risk.timing"),
                flags=list(flags),
            )
            risk = RiskCall(
                category="high" if high else "low",
                label="",
                rule="",
                outcome="",
                population="",
                timing="",
                source=rr.source,
                verification=rr.verification,
                flags=[],
            )
            key = "cutoff_met" if high else "cutoff_not_met"
            reasons.append(_m(key, value=value, rule=_cut(rr), source=rr.source, label=risk_texts.label))
    elif value is not None:
        reasons.append(_m("no_cutoff"))
    texts = ScoreTexts(
        title=spec.text("title"),
        reasons=reasons,
        notes=[spec.text(f"notes.{i}") for i in range(len(spec.notes))],
        flags=flags,
        risk=risk_texts,
    )
    return ScoreResult(
        score=spec.id,
        title=spec.title,
        version=spec.version,
        kind=spec.kind,
        value=value,
        points=points,
        points_range=prange,
        has_cutoff=spec.risk is not None,
        risk=risk,
        complete=not missing,
        missing=missing,
        reasons=[],
        unit_conversions=conversions,
        ignored=ignored,
        notes=[],
        flags=[],
        sources=spec.citations(),
        texts=texts,
    ).rendered("en")
