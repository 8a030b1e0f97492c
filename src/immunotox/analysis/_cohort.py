"""Cohort analyses on the timeline outputs and the clinical table, as one analysis-results dataset.

:func:`analyze` reads a timeline results folder (``patients``, ``episodes``, ``daily_max`` as
written by ``immunotox timeline``) and a clinical table, and returns a :class:`CohortAnalysis`:
the ARD (``ard``: one row per number, ``ard_id, analysis, group, stratum, category, statistic,
value, n, method``) from which every number of the report is taken, plus the curves and the
per-patient rows the plots draw. Methods and references: ``docs/analysis.md``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from ._clinical import Clinical, read_clinical
from ._errors import AnalysisError
from ._source import Source
from ._stats import (
    aalen_johansen,
    auc_delong,
    clopper_pearson,
    kaplan_meier,
    logistic_regression,
    weighted_kappa,
)

CATEGORIES: tuple[tuple[str, int, int], ...] = (("any", 1, 5), ("1-2", 1, 2), (">=3", 3, 5), ("5", 5, 5))
"""Worst-grade categories: (label, lowest grade, highest grade)."""
AGE_BANDS: tuple[tuple[str, float, float], ...] = (
    ("<40", 0.0, 40.0),
    ("40-64", 40.0, 65.0),
    (">=65", 65.0, 1e9),
)
"""Age bands of the stratified tables, years ([D])."""
NEW_ONSET_DAYS = (7, 14)
CIF_DAYS = (7, 14, 28)
SURVIVAL_MONTHS = (6, 12)
MONTH_DAYS = 30.4375
CP = "Clopper-Pearson exact 95% CI"
AJ = "Aalen-Johansen, death competing; delta-method variance, log(-log) 95% CI"
KM = "Kaplan-Meier, Greenwood variance, log(-log) 95% CI"
WEIGHTS: tuple[Literal["linear", "quadratic"], ...] = ("linear", "quadratic")
US = 1_000_000  # microseconds per second
DOSE_TOLERANCE = 0.01
"""A dose counts as above the label dose when it exceeds it by more than 1 % ([D]: rounding)."""


@dataclass
class CohortAnalysis:
    """The ARD and what the plots draw."""

    ard: pl.DataFrame
    curves: pl.DataFrame  # curve, group, time (days), value, lower, upper, n_at_risk
    swimmer: pl.DataFrame  # patient_id, scale, start_day, end_day, grade, resolved
    meta: dict[str, Any] = field(default_factory=dict)
    clinical_rejects: pl.DataFrame = field(default_factory=pl.DataFrame)


class _Ard:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(
        self,
        analysis: str,
        group: str,
        stratum: str,
        category: str,
        statistic: str,
        value: float | None,
        n: int | None,
        method: str,
    ) -> None:
        v = None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
        self.rows.append(
            {
                "analysis": analysis,
                "group": group,
                "stratum": stratum,
                "category": category,
                "statistic": statistic,
                "value": v,
                "n": n,
                "method": method,
            }
        )

    def frame(self) -> pl.DataFrame:
        df = pl.DataFrame(
            self.rows,
            schema={
                "analysis": pl.String,
                "group": pl.String,
                "stratum": pl.String,
                "category": pl.String,
                "statistic": pl.String,
                "value": pl.Float64,
                "n": pl.Int64,
                "method": pl.String,
            },
        )
        ids = [f"ARD{i:06d}" for i in range(1, df.height + 1)]
        return df.with_columns(pl.Series("ard_id", ids), pl.lit(False).alias("suppressed")).select(
            "ard_id", pl.exclude("ard_id")
        )


def family(scale: str) -> str | None:
    """The toxicity a scale grades (``crs``, ``icans``), from its id; None for other scales."""
    s = scale.lower()
    if "icans" in s:
        return "icans"
    if "crs" in s or "cytokine-release" in s:
        return "crs"
    return None


def _age_band(age: float | None) -> str | None:
    if age is None:
        return None
    for label, lo, hi in AGE_BANDS:
        if lo <= age < hi:
            return label
    return None


def _strata(clin: pl.DataFrame) -> list[tuple[str, pl.Expr]]:
    out: list[tuple[str, pl.Expr]] = [("all", pl.lit(True))]
    for column in ("product", "indication"):
        for level in sorted(v for v in clin[column].unique().to_list() if v is not None):
            out.append((f"{column}={level}", pl.col(column) == level))
    for label, lo, hi in AGE_BANDS:
        out.append((f"age={label}", (pl.col("age_years") >= lo) & (pl.col("age_years") < hi)))
    return out


def _quantiles(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "q1": None, "q3": None, "min": None, "max": None}
    a = np.asarray(values, dtype=np.float64)
    q1, med, q3 = np.quantile(a, [0.25, 0.5, 0.75])
    return {
        "median": float(med),
        "q1": float(q1),
        "q3": float(q3),
        "min": float(a.min()),
        "max": float(a.max()),
    }


def _days(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    return (a - b).dt.total_microseconds().cast(pl.Float64) / (86400.0 * US)


def _per_patient(
    pats: pl.DataFrame, clin: pl.DataFrame, order: Sequence[str] = ()
) -> tuple[pl.DataFrame, list[str]]:
    """One row per clinical patient and scale with its worst grade bounds and status.

    Scales come in ``order`` (the run's requested order, from ``summary.json``), then any other in
    sorted order: the ARD does not depend on the order of the rows read.
    """
    present = set(pats["scale"].to_list())
    scales = [sc for sc in order if sc in present] + sorted(present - set(order))
    if "status" not in pats.columns:
        pats = pats.with_columns(pl.lit(None, dtype=pl.String).alias("status"))
    grid = clin.select("patient_id", "infusion_time", "death_date", "death_cause", "last_followup").join(
        pl.DataFrame({"scale": scales}, schema={"scale": pl.String}), how="cross"
    )
    joined = grid.join(
        pats.select("patient_id", "scale", "max_grade", "max_grade_hi", "complete", "first_onset", "status"),
        on=["patient_id", "scale"],
        how="left",
    )
    fam = pl.col("scale").replace_strict({sc: family(sc) for sc in scales}, return_dtype=pl.String)
    died_of = pl.col("death_cause").is_not_null() & (pl.col("death_cause") == fam)
    not_applicable = (pl.col("status") == "not_applicable") | (
        pl.col("max_grade").is_null() & pl.col("complete").fill_null(False)
    )
    return (
        joined.with_columns(
            fam.alias("family"),
            not_applicable.fill_null(False).alias("not_applicable"),
            pl.when(died_of).then(5).otherwise(pl.col("max_grade").cast(pl.Int64)).alias("g_lo"),
            # alive or dead of another cause (the clinical table knows): grade 5 is ruled out
            pl.when(died_of)
            .then(5)
            .otherwise(pl.min_horizontal(pl.col("max_grade_hi").cast(pl.Int64), pl.lit(4)))
            .alias("g_hi"),
            (pl.col("complete").fill_null(False) | died_of).alias("g_complete"),
        ),
        scales,
    )


def _incidence(ard: _Ard, pp: pl.DataFrame, clin: pl.DataFrame, scales: list[str]) -> None:
    strata = _strata(clin)
    for scale in scales:
        sub = pp.filter(pl.col("scale") == scale).join(
            clin.select("patient_id", "product", "indication", "age_years"), on="patient_id"
        )
        for stratum, cond in strata:
            part = sub.filter(cond)
            na = int(part["not_applicable"].sum())
            rest = part.filter(~pl.col("not_applicable"))
            n = rest.height
            g_lo, g_hi = rest["g_lo"], rest["g_hi"]
            not_det = int(g_lo.is_null().sum())
            lo = g_lo.fill_null(-1).to_numpy()
            hi = g_hi.fill_null(4).to_numpy()
            complete = rest["g_complete"].to_numpy()
            for label, a, b in CATEGORIES:
                if b == 5:  # upward closed: certain if the lower bound is in, possible if the upper is
                    sure = lo >= a
                    possible = hi >= a
                else:
                    sure = (lo >= a) & (lo <= b) & (hi <= b)
                    possible = (hi >= a) & ((lo <= b) | (lo < 0))
                x, x_hi = int(sure.sum()), int(possible.sum())
                x_complete = int((complete & (lo >= a) & (lo <= b)).sum())
                add = ard.add
                add("incidence", scale, stratum, label, "n_patients", n, n, "patients infused, applicable")
                add("incidence", scale, stratum, label, "n_established", x, n, "worst established grade")
                add("incidence", scale, stratum, label, "n_upper_bound", x_hi, n, "worst possible grade")
                add("incidence", scale, stratum, label, "n_complete", x_complete, n, "complete grades only")
                add(
                    "incidence",
                    scale,
                    stratum,
                    label,
                    "n_not_determinable",
                    not_det,
                    n,
                    "no grade established",
                )
                add("incidence", scale, stratum, label, "n_not_applicable", na, part.height, "left out of n")
                for stat, count in (("established", x), ("upper_bound", x_hi)):
                    if n:
                        ci = clopper_pearson(count, n)
                        add("incidence", scale, stratum, label, f"pct_{stat}", 100.0 * count / n, n, CP)
                        add("incidence", scale, stratum, label, f"lower_{stat}", 100.0 * ci[0], n, CP)
                        add("incidence", scale, stratum, label, f"upper_{stat}", 100.0 * ci[1], n, CP)


def _onset(ard: _Ard, pp: pl.DataFrame, episodes: pl.DataFrame, scales: list[str]) -> None:
    for scale in scales:
        sub = pp.filter((pl.col("scale") == scale) & pl.col("first_onset").is_not_null())
        onset_days = sub.select(_days(pl.col("first_onset"), pl.col("infusion_time")))[:, 0].to_list()
        for stat, v in _quantiles(onset_days).items():
            ard.add("onset", scale, "all", "onset_day", stat, v, len(onset_days), "days from infusion")
        eps = episodes.filter(pl.col("scale") == scale)
        resolved = eps.filter(pl.col("resolved"))["duration_h"].drop_nulls().to_list()
        for stat, v in _quantiles([float(h) / 24.0 for h in resolved]).items():
            ard.add("duration", scale, "all", "duration_days", stat, v, len(resolved), "resolved episodes")
        ard.add(
            "duration",
            scale,
            "all",
            "duration_days",
            "n_unresolved",
            int((~eps["resolved"]).sum()),
            eps.height,
            "episodes still open",
        )


def _curve(table: pl.DataFrame, curve: str, group: str, value: str) -> pl.DataFrame:
    """A plotted curve in the common layout: curve, group, time, value, lower, upper, n_at_risk."""
    return table.select(
        pl.lit(curve).alias("curve"),
        pl.lit(group).alias("group"),
        "time",
        pl.col(value).alias("value"),
        "lower",
        "upper",
        "n_at_risk",
    )


def _time_to_onset(
    ard: _Ard, curves: list[pl.DataFrame], pp: pl.DataFrame, last_day: pl.DataFrame, scales: list[str]
) -> None:
    """Cumulative incidence of the first onset (grade >= 1), death competing; new onset after day 7/14."""
    for scale in scales:
        sub = pp.filter(pl.col("scale") == scale).join(last_day, on=["patient_id", "scale"], how="left")
        sub = sub.with_columns(
            _days(pl.col("first_onset"), pl.col("infusion_time")).alias("t_onset"),
            _days(pl.col("death_date"), pl.col("infusion_time")).alias("t_death"),
            pl.min_horizontal(
                pl.col("observed_days").cast(pl.Float64).fill_null(0.0),
                _days(pl.col("last_followup"), pl.col("infusion_time")),
            ).alias("t_end"),
        )
        t_on = sub["t_onset"].to_numpy()
        t_de = sub["t_death"].fill_null(np.inf).to_numpy()
        t_end = sub["t_end"].to_numpy()
        has_on = ~np.isnan(t_on)
        t_on = np.where(has_on, t_on, np.inf)
        time = np.minimum(np.minimum(t_on, t_de), t_end)
        cause = np.where(t_on <= np.minimum(t_de, t_end), 1, np.where(t_de <= t_end, 2, 0))
        time = np.maximum(time, 0.0)
        if (cause > 0).any():
            aj = aalen_johansen(time, cause)
            c1 = aj.filter(pl.col("cause") == 1)
            curves.append(_curve(c1, "onset", scale, "cif"))
            for d in CIF_DAYS:
                row = c1.filter(pl.col("time") <= d).tail(1)
                v = row["cif"][0] if row.height else 0.0
                lo = row["lower"][0] if row.height else None
                up = row["upper"][0] if row.height else None
                ard.add("time_to_onset", scale, "all", f"day {d}", "cif", v, sub.height, AJ)
                ard.add("time_to_onset", scale, "all", f"day {d}", "lower", lo, sub.height, AJ)
                ard.add("time_to_onset", scale, "all", f"day {d}", "upper", up, sub.height, AJ)
        for d in NEW_ONSET_DAYS:
            at_risk = (t_on > d) & (t_de > d) & (t_end > d)
            new = at_risk & (t_on < np.inf) & (t_on <= t_end)
            n, x = int(at_risk.sum()), int(new.sum())
            ard.add(
                "new_onset",
                scale,
                "all",
                f"after day {d}",
                "n_at_risk",
                n,
                n,
                "alive, observed, no onset by then",
            )
            ard.add("new_onset", scale, "all", f"after day {d}", "n_new", x, n, "first onset after that day")
            if n:
                ci = clopper_pearson(x, n)
                ard.add("new_onset", scale, "all", f"after day {d}", "pct", 100.0 * x / n, n, CP)
                ard.add("new_onset", scale, "all", f"after day {d}", "lower", 100.0 * ci[0], n, CP)
                ard.add("new_onset", scale, "all", f"after day {d}", "upper", 100.0 * ci[1], n, CP)


def _agreement(ard: _Ard, pp: pl.DataFrame, scales: list[str]) -> None:
    """Regrading: the first scale of each family against every other of it (as the timeline's crosstab)."""
    by_family: dict[str, list[str]] = {}
    for s in scales:
        f = family(s)
        if f is not None:
            by_family.setdefault(f, []).append(s)
    for members in by_family.values():
        ref = members[0]
        for other in members[1:]:
            a = pp.filter(pl.col("scale") == ref).select(
                "patient_id", pl.col("g_lo").alias("a"), pl.col("g_complete").alias("ca")
            )
            b = pp.filter(pl.col("scale") == other).select(
                "patient_id", pl.col("g_lo").alias("b"), pl.col("g_complete").alias("cb")
            )
            pair = a.join(b, on="patient_id")
            group = f"{ref} vs {other}"
            complete = pair.filter(
                pl.col("ca") & pl.col("cb") & pl.col("a").is_not_null() & pl.col("b").is_not_null()
            )
            not_det = pair.filter(pl.col("a").is_null() | pl.col("b").is_null()).height
            lower = pair.height - complete.height - not_det
            ard.add(
                "agreement",
                group,
                "all",
                "pairs",
                "n_complete_pairs",
                complete.height,
                pair.height,
                "both grades complete",
            )
            ard.add(
                "agreement",
                group,
                "all",
                "pairs",
                "n_lower_bound_pairs",
                lower,
                pair.height,
                "a grade only a lower bound",
            )
            ard.add(
                "agreement",
                group,
                "all",
                "pairs",
                "n_not_determinable_pairs",
                not_det,
                pair.height,
                "a grade not determinable",
            )
            counts = complete.group_by("a", "b").len().sort("a", "b")
            for ga, gb, cnt in counts.iter_rows():
                ard.add(
                    "agreement",
                    group,
                    "all",
                    f"{ga}|{gb}",
                    "n",
                    cnt,
                    complete.height,
                    "cross-tabulation of complete pairs",
                )
            for w in WEIGHTS:
                k = (
                    weighted_kappa(
                        complete["a"].to_list(), complete["b"].to_list(), w, categories=list(range(6))
                    )
                    if complete.height
                    else None
                )
                ard.add(
                    "agreement",
                    group,
                    "all",
                    "kappa",
                    f"kappa_{w}",
                    k,
                    complete.height,
                    f"Cohen's weighted kappa, {w} weights",
                )


def _outcomes(ard: _Ard, curves: list[pl.DataFrame], clin: pl.DataFrame) -> None:
    n = clin.height
    resp = clin["best_response"].to_list()
    for label, members in (("ORR", ("CR", "PR")), ("CR", ("CR",))):
        x = sum(1 for r in resp if r in members)
        lo, hi = clopper_pearson(x, n)
        ard.add("response", label, "all", "rate", "n_responders", x, n, "best overall response, all infused")
        ard.add("response", label, "all", "rate", "pct", 100.0 * x / n, n, CP)
        ard.add("response", label, "all", "rate", "lower", 100.0 * lo, n, CP)
        ard.add("response", label, "all", "rate", "upper", 100.0 * hi, n, CP)
    t0 = pl.col("infusion_time")
    end = _days(pl.col("last_followup"), t0)
    frame = clin.with_columns(
        end.alias("t_end"),
        _days(pl.col("death_date"), t0).alias("t_death"),
        _days(pl.col("progression_date"), t0).alias("t_prog"),
        _days(pl.col("response_date"), t0).alias("t_resp"),
    )
    os_t = frame.select(pl.coalesce("t_death", "t_end"))[:, 0].to_numpy()
    os_e = frame["t_death"].is_not_null().cast(pl.Int64).to_numpy()
    pfs_t = frame.select(pl.min_horizontal(pl.coalesce("t_prog", "t_end"), pl.coalesce("t_death", "t_end")))[
        :, 0
    ].to_numpy()
    pfs_e = (frame["t_prog"].is_not_null() | frame["t_death"].is_not_null()).cast(pl.Int64).to_numpy()
    resp_rows = frame.filter(pl.col("best_response").is_in(["CR", "PR"]))
    dor_t = resp_rows.select(
        pl.min_horizontal(pl.coalesce("t_prog", "t_end"), pl.coalesce("t_death", "t_end")) - pl.col("t_resp")
    )[:, 0].to_numpy()
    dor_e = (resp_rows["t_prog"].is_not_null() | resp_rows["t_death"].is_not_null()).cast(pl.Int64).to_numpy()
    for name, t, e in (("OS", os_t, os_e), ("PFS", pfs_t, pfs_e), ("DOR", dor_t, dor_e)):
        if t.size == 0:
            continue
        km = kaplan_meier(np.maximum(t, 0.0), e)
        curves.append(_curve(km, "survival", name, "survival"))
        below = km.filter(pl.col("survival") <= 0.5)
        median = below["time"][0] / MONTH_DAYS if below.height else None
        ard.add(
            "survival", name, "all", "median", "months", median, t.size, KM + " (median: first time S <= 0.5)"
        )
        for m in SURVIVAL_MONTHS:
            row = km.filter(pl.col("time") <= m * MONTH_DAYS).tail(1)
            for stat in ("survival", "lower", "upper"):
                v = row[stat][0] if row.height else (1.0 if stat == "survival" else None)
                ard.add("survival", name, "all", f"{m} months", stat, v, t.size, KM)
    # non-relapse mortality: death without prior progression, progression competing
    t_p = frame["t_prog"].fill_null(np.inf).to_numpy()
    t_d = frame["t_death"].fill_null(np.inf).to_numpy()
    t_e = frame["t_end"].to_numpy()
    first = np.minimum(np.minimum(t_p, t_d), t_e)
    cause = np.where((t_d <= t_p) & (t_d <= t_e), 1, np.where(t_p <= t_e, 2, 0))
    if (cause > 0).any():
        aj = aalen_johansen(np.maximum(first, 0.0), cause).filter(pl.col("cause") == 1)
        curves.append(_curve(aj, "nrm", "NRM", "cif"))
        for m in SURVIVAL_MONTHS:
            row = aj.filter(pl.col("time") <= m * MONTH_DAYS).tail(1)
            for stat in ("cif", "lower", "upper"):
                v = row[stat][0] if row.height else (0.0 if stat == "cif" else None)
                ard.add("nrm", "NRM", "all", f"{m} months", stat, v, n, "Aalen-Johansen, relapse competing")


def _association(ard: _Ard, pp: pl.DataFrame, clin: pl.DataFrame, scales: list[str]) -> None:
    """Baseline scores against severe toxicity (established grade >= 3) of the first CRS scale."""
    crs = next((s for s in scales if family(s) == "crs"), None)
    if crs is None:
        return
    sub = pp.filter(pl.col("scale") == crs).join(
        clin.select("patient_id", "easix", "m_easix", "car_hematotox"), on="patient_id"
    )
    # a patient whose severe/non-severe status is not settled (lower bound < 3 <= upper) is left out
    settled = sub.filter((pl.col("g_lo") >= 3) | (pl.col("g_hi").fill_null(5) < 3))
    group = f"{crs} >=3"
    for score, transform in (("easix", "log2"), ("m_easix", "log2"), ("car_hematotox", "points")):
        rows = settled.filter(
            pl.col(score).is_not_null() & ((pl.col(score) > 0) if transform == "log2" else pl.lit(True))
        )
        y = (rows["g_lo"] >= 3).cast(pl.Int64).to_numpy()
        x = rows[score].to_numpy().astype(np.float64)
        x = np.log2(x) if transform == "log2" else x
        label = score
        unit = "odds ratio per doubling (log2 score)" if transform == "log2" else "odds ratio per point"
        ard.add(
            "association",
            group,
            "all",
            label,
            "n_patients",
            rows.height,
            rows.height,
            "settled grade, score present",
        )
        ard.add(
            "association",
            group,
            "all",
            label,
            "n_events",
            int(y.sum()),
            rows.height,
            "established grade >= 3",
        )
        try:
            fit = logistic_regression(y, {score: x}).filter(pl.col("term") == score)
            for stat in ("odds_ratio", "lower", "upper", "p_value"):
                ard.add(
                    "association",
                    group,
                    "all",
                    label,
                    stat,
                    fit[stat][0],
                    rows.height,
                    f"logistic regression, {unit}, Wald 95% CI",
                )
        except AnalysisError as exc:
            ard.add(
                "association", group, "all", label, "odds_ratio", None, rows.height, f"not estimable: {exc}"
            )
        try:
            auc = auc_delong(x, y)
            for stat in ("auc", "lower", "upper"):
                ard.add(
                    "association",
                    group,
                    "all",
                    label,
                    f"auc_{stat}" if stat != "auc" else "auc",
                    auc[stat],
                    rows.height,
                    "DeLong 95% CI",
                )
        except AnalysisError as exc:
            ard.add("association", group, "all", label, "auc", None, rows.height, f"not estimable: {exc}")


def _read_observations(path: str | Path, codes: Sequence[str]) -> pl.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise AnalysisError("--observations", str(p), "an existing observation file (.parquet or .csv)")
    if p.suffix.lower() == ".csv":
        lazy = pl.scan_csv(p, schema_overrides={"value": pl.String, "dose": pl.Float64}, try_parse_dates=True)
    elif p.suffix.lower() in (".parquet", ".pq"):
        lazy = pl.scan_parquet(p)
    else:
        raise AnalysisError("--observations", str(p), "a .parquet or .csv file")
    try:
        return (
            lazy.filter(pl.col("code").is_in(list(codes)))
            .select("patient_id", "time", "code", "value", "dose", "dose_unit", "end_time")
            .collect()
        )
    except pl.exceptions.PolarsError as exc:
        raise AnalysisError(
            "--observations", str(p), f"the observation contract ({exc})".replace("\n", " ")
        ) from None


def _management(
    ard: _Ard, source: Source, observations: str | Path, clin: pl.DataFrame, scales: list[str]
) -> None:
    """Tocilizumab timing and label limits, cumulative corticosteroids (dexamethasone-equivalent).

    Limits are those of ``data/drugs.toml`` dose rule ``tocilizumab-crs``, checked dose by dose
    with :func:`immunotox.management._dose_rule.check_dose_rule` (history = the patient's earlier doses);
    the steroid equivalence is :func:`immunotox.management._steroids.convert_steroid`.
    """
    from ..errors import FindingError
    from ..management._dose_rule import check_dose_rule
    from ..management._steroids import convert_steroid

    crs = next((s for s in scales if family(s) == "crs"), None)
    obs = _read_observations(observations, ("tocilizumab", "corticosteroid", "weight", "icu")).join(
        clin.select("patient_id", "infusion_time"), on="patient_id"
    )
    group = crs or "all"
    n_all = clin.height
    # time from the first grade >= 2 of the first CRS scale to the first tocilizumab at or after it
    if crs is not None:
        onset2 = source.first_time_at_least(crs, 2)
        toci = obs.filter(pl.col("code") == "tocilizumab").select("patient_id", "time")
        first = (
            onset2.join(toci, on="patient_id", how="left")
            .filter(pl.col("time").is_null() | (pl.col("time") >= pl.col("g2")))
            .group_by("patient_id", "g2")
            .agg(pl.col("time").min().alias("toci"))
        )
        hours = (
            first.filter(pl.col("toci").is_not_null())
            .select((pl.col("toci") - pl.col("g2")).dt.total_microseconds().cast(pl.Float64) / (3600.0 * US))[
                :, 0
            ]
            .to_list()
        )
        n2 = onset2.height
        ard.add("management", group, "all", "grade >= 2", "n_patients", n2, n2, "established grade >= 2")
        ard.add(
            "management",
            group,
            "all",
            "grade >= 2",
            "n_tocilizumab",
            len(hours),
            n2,
            "tocilizumab at or after",
        )
        for stat, v in _quantiles(hours).items():
            ard.add(
                "management",
                group,
                "all",
                "hours to tocilizumab",
                stat,
                v,
                len(hours),
                "hours from grade >= 2",
            )
    # doses against the label limits
    weights = (
        obs.filter(pl.col("code") == "weight")
        .group_by("patient_id")
        .agg(pl.col("value").first().cast(pl.Float64, strict=False).alias("kg"))
    )
    doses = (
        obs.filter(pl.col("code") == "tocilizumab")
        .join(weights, on="patient_id", how="left")
        .join(clin.select("patient_id", "age_years"), on="patient_id", how="left")
        .sort("patient_id", "time")
    )
    n_doses = n_over = n_limit = 0
    unchecked = 0
    patients_over: set[str] = set()
    for (pid,), part in doses.group_by("patient_id", maintain_order=True):
        history: list[Any] = []
        for t, mg, kg, age in part.select("time", "dose", "kg", "age_years").iter_rows():
            n_doses += 1
            try:
                if kg is None or mg is None:
                    raise FindingError("dose", mg, "a dose and a weight")
                # the age is the population gate of the dose rule: without it no dose is given
                d = check_dose_rule("tocilizumab-crs", kg, given=history, at=t, now=t, age_years=age)
                if d.withheld or d.mg_per_kg is None:
                    raise FindingError("age_years", age, str(d.withheld_reason))
            except FindingError:
                unchecked += 1
                history.append(t)
                continue
            # above the per-kg dose (capped) by more than DOSE_TOLERANCE: weights are written rounded
            over = mg > min(d.mg_per_kg * kg, d.cap_mg) * (1 + DOSE_TOLERANCE)
            n_over += over
            n_limit += not d.allowed
            if over or not d.allowed:
                patients_over.add(str(pid))
            history.append(t)
    label = "tocilizumab-crs (data/drugs.toml)"
    ard.add("management", "tocilizumab", "all", "doses", "n_doses", n_doses, n_doses, label)
    ard.add(
        "management",
        "tocilizumab",
        "all",
        "doses",
        "n_above_dose",
        n_over,
        n_doses,
        "dose above 8 mg/kg capped at 800 mg",
    )
    ard.add(
        "management",
        "tocilizumab",
        "all",
        "doses",
        "n_outside_limits",
        n_limit,
        n_doses,
        "interval, 24 h and total limits",
    )
    ard.add(
        "management",
        "tocilizumab",
        "all",
        "doses",
        "n_unchecked",
        unchecked,
        n_doses,
        "no weight, dose or age",
    )
    ard.add(
        "management", "tocilizumab", "all", "patients", "n_patients_outside", len(patients_over), n_all, label
    )
    # cumulative corticosteroids, dexamethasone-equivalent mg per treated patient
    ster = obs.filter((pl.col("code") == "corticosteroid") & pl.col("dose").is_not_null())
    totals: dict[str, float] = {}
    unknown = 0
    for pid, drug_name, mg, unit in ster.select("patient_id", "value", "dose", "dose_unit").iter_rows():
        try:
            if unit != "mg":
                raise FindingError("dose_unit", unit, "mg")
            totals[pid] = totals.get(pid, 0.0) + convert_steroid(mg, drug_name, "dexamethasone")
        except FindingError:
            unknown += 1
    ard.add(
        "management",
        "corticosteroids",
        "all",
        "patients",
        "n_treated",
        len(totals),
        n_all,
        "any corticosteroid row",
    )
    ard.add(
        "management",
        "corticosteroids",
        "all",
        "patients",
        "n_rows_unconverted",
        unknown,
        ster.height,
        "unknown drug or unit",
    )
    # ICU days (the icu intervals of the observation file)
    icu, n_open = icu_days(obs, clin)
    ard.add("management", "icu", "all", "patients", "n_admitted", len(icu), n_all, "any icu row")
    ard.add("management", "icu", "all", "patients", "n_open_stays", n_open, len(icu), "icu row without end")
    for stat, v in _quantiles(list(icu.values())).items():
        ard.add("management", "icu", "all", "icu days", stat, v, len(icu), "days per admitted patient")
    for stat, v in _quantiles(list(totals.values())).items():
        ard.add(
            "management",
            "corticosteroids",
            "all",
            "dexamethasone mg",
            stat,
            v,
            len(totals),
            "cumulative, dexamethasone-equivalent",
        )


def icu_days(obs: pl.DataFrame, clin: pl.DataFrame) -> tuple[dict[str, float], int]:
    """Days in the ICU per patient with a stay, and the number of stays still open.

    The ``icu`` rows are intervals [time, end_time) clipped to [infusion, end of follow-up] (the
    earlier of death and last follow-up); overlapping stays of a patient are merged (a day is
    counted once); a stay without an end runs to the end of follow-up and is counted as open."""
    stays = obs.filter(pl.col("code") == "icu").join(
        clin.select(
            "patient_id",
            "infusion_time",
            pl.min_horizontal("last_followup", pl.col("death_date").fill_null(pl.col("last_followup"))).alias(
                "_stop"
            ),
        ),
        on="patient_id",
        how="inner",
        suffix="_c",
    )
    n_open = int(stays["end_time"].null_count())
    stays = stays.select(
        "patient_id",
        pl.max_horizontal("time", "infusion_time").alias("a"),
        pl.min_horizontal(pl.col("end_time").fill_null(pl.col("_stop")), "_stop").alias("b"),
    ).sort("patient_id", "a")
    days: dict[str, float] = {}
    for (pid,), part in stays.group_by("patient_id", maintain_order=True):
        total, cur_a, cur_b = 0.0, None, None
        for a, b in part.select("a", "b").iter_rows():
            if cur_b is None or a > cur_b:
                if cur_b is not None and cur_a is not None and cur_b > cur_a:
                    total += (cur_b - cur_a).total_seconds()
                cur_a, cur_b = a, b
            else:
                cur_b = max(cur_b, b)
        if cur_a is not None and cur_b is not None and cur_b > cur_a:
            total += (cur_b - cur_a).total_seconds()
        days[str(pid)] = total / 86400.0
    return days, n_open


def _swimmer(episodes: pl.DataFrame, clin: pl.DataFrame) -> pl.DataFrame:
    e = episodes.join(clin.select("patient_id", "infusion_time"), on="patient_id")
    return e.select(
        "patient_id",
        "scale",
        _days(pl.col("onset"), pl.col("infusion_time")).alias("start_day"),
        _days(pl.coalesce("resolution", "last_positive"), pl.col("infusion_time")).alias("end_day"),
        pl.col("peak_grade").cast(pl.Int64).alias("grade"),
        "resolved",
    )


def suppress(ard: pl.DataFrame, min_cell: int) -> pl.DataFrame:
    """Mask counts 1..min_cell-1 and what derives from them, with complementary suppression.

    A masked cell (analysis, scale, stratum, category) masks every statistic of that cell except
    the denominators. Then, repeated until nothing changes: within each stratum variable
    (product, indication, age) of an incidence (scale, category), when exactly one level is
    masked, the next smallest level is masked too (the levels add up to the total); within a
    stratum, when exactly one of the grade categories ``1-2`` and ``>=3`` is masked, the other is
    masked too (they add up to ``any``). Survival and incidence curves are not masked here (the
    report hides numbers at risk below the threshold).
    """
    if min_cell <= 1:
        return ard
    counts = ard.filter(
        pl.col("statistic").is_in(
            ["n_established", "n_upper_bound", "n_complete", "n_responders", "n_new", "n_events"]
        )
        & (pl.col("value") >= 1)
        & (pl.col("value") < min_cell)
    )
    masked: set[tuple[str, str, str, str]] = {
        (str(a), str(g), str(st), str(c))
        for a, g, st, c in counts.select("analysis", "group", "stratum", "category").unique().iter_rows()
    }
    inc = ard.filter((pl.col("analysis") == "incidence") & (pl.col("statistic") == "n_established"))
    value = {
        (str(g), str(st), str(c)): v
        for g, st, c, v in inc.select("group", "stratum", "category", "value").iter_rows()
    }
    levels: dict[tuple[str, str, str], list[str]] = {}  # (group, category, variable) -> strata
    for g, st, c in value:
        if st != "all":
            levels.setdefault((g, c, st.split("=", 1)[0]), []).append(st)
    strata = {(g, st) for g, st, _c in value}
    changed = True
    while changed:
        changed = False
        for (g, c, _var), members in levels.items():
            hidden = [st for st in members if ("incidence", g, st, c) in masked]
            if len(hidden) == 1:
                rest = sorted(
                    (st for st in members if st not in hidden), key=lambda st: (value[(g, st, c)] or 0, st)
                )
                if rest:
                    masked.add(("incidence", g, rest[0], c))
                    changed = True
        for g, st in strata:
            pair = [("incidence", g, st, c) for c in ("1-2", ">=3") if (g, st, c) in value]
            if len(pair) == 2 and (pair[0] in masked) != (pair[1] in masked):
                masked.update(pair)
                changed = True
    keys = pl.DataFrame(
        [{"analysis": a, "group": g, "stratum": st, "category": c} for a, g, st, c in sorted(masked)],
        schema={"analysis": pl.String, "group": pl.String, "stratum": pl.String, "category": pl.String},
    )
    hit = ard.join(
        keys.with_columns(pl.lit(True).alias("_hit")),
        on=["analysis", "group", "stratum", "category"],
        how="left",
    )
    protected = pl.col("statistic").is_in(["n_patients", "n_not_applicable", "n_at_risk"])
    mask = pl.col("_hit").fill_null(False) & ~protected
    return hit.with_columns(
        pl.when(mask).then(None).otherwise(pl.col("value")).alias("value"),
        (pl.col("suppressed") | mask).alias("suppressed"),
    ).drop("_hit")


def analyze(
    results_dir: str | Path,
    clinical: str | Path | Clinical,
    *,
    min_cell: int | None = None,
    observations: str | Path | None = None,
    engine: str = "embedded",
) -> CohortAnalysis:
    """Every analysis of the report on a timeline results folder and a clinical table.

    With ``observations`` (the observation file the timeline graded), the management analyses too.
    ``engine="spark"`` reads and reduces the timeline outputs with Spark (``_spark.SparkSource``);
    the statistics then run on the driver with the same code, so the ARD is the same.
    """
    folder = Path(results_dir)
    if not folder.is_dir():
        raise AnalysisError("RESULTS_DIR", str(folder), "a folder written by `immunotox timeline`")
    if min_cell is not None and (isinstance(min_cell, bool) or not isinstance(min_cell, int) or min_cell < 1):
        raise AnalysisError("--min-cell", min_cell, "an integer >= 1")
    clin_obj = clinical if isinstance(clinical, Clinical) else read_clinical(clinical)
    clin = clin_obj.table
    if clin.height == 0:
        raise AnalysisError("--clinical", "0 accepted rows", "at least one accepted patient")
    if engine == "embedded":
        source = Source(folder)
    elif engine == "spark":
        from ._spark import SparkSource

        source = SparkSource(folder)
    else:
        raise AnalysisError("--engine", engine, "embedded or spark")
    summary_path = folder / "summary.json"
    timeline_summary = json.loads(summary_path.read_text("utf-8")) if summary_path.is_file() else {}
    pats = source.patients()
    pp, scales = _per_patient(pats, clin, timeline_summary.get("scales") or ())
    episodes = source.episodes()
    last_day = source.last_day()
    timeline_ids = pats.select("patient_id").unique()
    ard = _Ard()
    curves: list[pl.DataFrame] = []
    _incidence(ard, pp, clin, scales)
    _onset(ard, pp, episodes, scales)
    _time_to_onset(ard, curves, pp, last_day, scales)
    _agreement(ard, pp, scales)
    _outcomes(ard, curves, clin)
    _association(ard, pp, clin, scales)
    if observations is not None:
        _management(ard, source, observations, clin, scales)
    table = ard.frame()
    if min_cell:
        table = suppress(table, min_cell)
    meta = {
        "scales": scales,
        "patients": clin.height,
        "clinical_rejects": clin_obj.rejects.height,
        "timeline_only_patients": timeline_ids.join(
            clin.select("patient_id"), on="patient_id", how="anti"
        ).height,
        "min_cell": min_cell,
        "timeline_rejects": timeline_summary.get("rejected"),
    }
    curve_schema = pl.Schema(
        {
            "curve": pl.String,
            "group": pl.String,
            "time": pl.Float64,
            "value": pl.Float64,
            "lower": pl.Float64,
            "upper": pl.Float64,
            "n_at_risk": pl.Int64,
        }
    )
    curve_frame = (
        pl.concat([c.cast(curve_schema) for c in curves]) if curves else pl.DataFrame(schema=curve_schema)
    )
    return CohortAnalysis(
        ard=table,
        curves=curve_frame,
        swimmer=_swimmer(episodes, clin),
        meta=meta,
        clinical_rejects=clin_obj.rejects,
    )


def ard_value(ard: pl.DataFrame, **where: Any) -> float | None:
    """The one value of the ARD matching ``where`` (analysis=, group=, stratum=, category=, statistic=)."""
    cond = pl.lit(True)
    for k, v in where.items():
        cond = cond & (pl.col(k) == v)
    rows = ard.filter(cond)
    if rows.height != 1:
        raise KeyError(f"{rows.height} ARD rows match {where}")
    value = rows["value"][0]
    return None if value is None else float(value)
