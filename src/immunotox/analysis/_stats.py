"""The statistics of the analysis layer: exact binomial intervals, Kaplan–Meier, Aalen–Johansen,
logistic regression (odds ratios with Wald intervals), AUC with DeLong's interval and weighted kappa.

Every function checks its input and raises :class:`AnalysisError` (one line naming the argument,
the value and the expectation); nothing is dropped silently. Methods and references are in
``docs/analysis.md``; each function names its oracle in the tests.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import special, stats

from ._errors import AnalysisError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _level(level: Any) -> float:
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0.0 < float(level) < 1.0:
        raise AnalysisError("level", level, "a confidence level strictly between 0 and 1")
    return float(level)


def _z(level: float) -> float:
    return float(special.ndtri(0.5 + level / 2.0))


def clopper_pearson(x: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper–Pearson) interval of a binomial proportion ``x / n``.

    Clopper CJ, Pearson ES. Biometrika 1934;26(4):404-413. doi:10.1093/biomet/26.4.404

    >>> [round(v, 10) for v in clopper_pearson(7, 50)]
    [0.0581917003, 0.2673960025]
    >>> round(clopper_pearson(0, 10)[1], 10)
    0.3084971078
    >>> clopper_pearson(3, 2)
    Traceback (most recent call last):
    ...
    immunotox.analysis._errors.AnalysisError: x = 3: an integer count between 0 and n = 2
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise AnalysisError("n", n, "a positive integer count")
    if isinstance(x, bool) or not isinstance(x, int | np.integer) or not 0 <= x <= n:
        raise AnalysisError("x", x, f"an integer count between 0 and n = {n}")
    alpha = 1.0 - _level(level)
    lower = 0.0 if x == 0 else float(stats.beta.ppf(alpha / 2.0, x, n - x + 1))
    upper = 1.0 if x == n else float(stats.beta.ppf(1.0 - alpha / 2.0, x + 1, n - x))
    return lower, upper


def _times(time: Any, name: str = "time") -> FloatArray:
    t = np.asarray(time, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise AnalysisError(name, f"{t.size} values", "a non-empty one-dimensional sequence")
    bad = np.flatnonzero(~np.isfinite(t) | (t < 0))
    if bad.size:
        i = int(bad[0])
        raise AnalysisError(f"{name}[{i}]", float(t[i]), "a finite time >= 0 (from the time origin)")
    return t


def _codes(values: Any, size: int, name: str, high: int | None = None) -> IntArray:
    raw = np.asarray(values)
    if raw.ndim != 1 or raw.size != size:
        raise AnalysisError(name, f"{raw.size} values", f"one value per time ({size})")
    as_float = raw.astype(np.float64)
    bad = np.flatnonzero(
        ~np.isfinite(as_float)
        | (as_float != np.round(as_float))
        | (as_float < 0)
        | (as_float > (high if high is not None else np.inf))
    )
    if bad.size:
        i = int(bad[0])
        want = "0 (censored) or 1 (event)" if high == 1 else "0 (censored) or a cause 1, 2, …"
        raise AnalysisError(f"{name}[{i}]", raw[i].item(), want)
    return as_float.astype(np.int64)


def _risk_sets(t: FloatArray, cause: IntArray, k: int) -> tuple[FloatArray, IntArray, IntArray]:
    """Distinct times, number at risk just before each, and events per cause (n_times, k)."""
    utime, inv = np.unique(t, return_inverse=True)
    leaving = np.bincount(inv, minlength=utime.size)
    n_at_risk = t.size - np.concatenate(([0], np.cumsum(leaving)[:-1]))
    events = np.zeros((utime.size, k), dtype=np.int64)
    for c in range(1, k + 1):
        events[:, c - 1] = np.bincount(inv, weights=(cause == c), minlength=utime.size).astype(np.int64)
    return utime, n_at_risk.astype(np.int64), events


def _null_nan(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.col(pl.Float64).fill_nan(None))


def kaplan_meier(
    time: Sequence[float] | Any, event: Sequence[int] | Any, level: float = 0.95
) -> pl.DataFrame:
    """Kaplan–Meier estimate with Greenwood's variance and the log(−log) interval.

    One row per distinct time (censoring times included): ``time``, ``survival`` (just after
    ``time``), ``n_at_risk`` (just before), ``n_events``, ``lower``, ``upper``. Events at a time
    are counted before the censorings at that time. The interval is the "exponential Greenwood"
    one, ``exp(−exp(log(−log S) ± z·se))`` with ``se² = Σ d/(n(n−d)) / log(S)²``, exactly as
    ``scipy.stats.ecdf(...).sf.confidence_interval(method='log-log')``; where it is undefined
    (S = 1 before the first event, S = 0, or n = d) the bounds are null.

    Kaplan EL, Meier P. J Am Stat Assoc 1958;53(282):457-481. doi:10.1080/01621459.1958.10501452

    >>> km = kaplan_meier([1, 2, 2, 3, 4], [1, 1, 0, 1, 0])
    >>> km.select("time", "n_at_risk", "n_events", pl.col("survival").round(6)).rows()
    [(1.0, 5, 1, 0.8), (2.0, 4, 1, 0.6), (3.0, 2, 1, 0.3), (4.0, 1, 0, 0.3)]
    """
    t = _times(time)
    e = _codes(event, t.size, "event", high=1)
    z = _z(_level(level))
    utime, n, d2 = _risk_sets(t, e, 1)
    d = d2[:, 0].astype(np.float64)
    nf = n.astype(np.float64)
    sf = np.cumprod((nf - d) / nf)
    with np.errstate(divide="ignore", invalid="ignore"):
        var_log = np.cumsum(d / (nf * (nf - d)))
        se = np.sqrt(1.0 / np.log(sf) ** 2 * var_log)
        lnl = np.log(-np.log(sf))
        low = np.exp(-np.exp(lnl + z * se))
        high = np.exp(-np.exp(lnl - z * se))
    low, high = np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)
    return _null_nan(
        pl.DataFrame(
            {
                "time": utime,
                "survival": sf,
                "n_at_risk": n,
                "n_events": d2[:, 0],
                "lower": low,
                "upper": high,
            }
        )
    )


def aalen_johansen(
    time: Sequence[float] | Any, cause: Sequence[int] | Any, level: float = 0.95
) -> pl.DataFrame:
    """Aalen–Johansen cumulative incidence of competing causes (cause 0 = censored, 1..k).

    One row per distinct time and cause (1..k, k the largest cause given): ``time``, ``cause``,
    ``cif`` (just after ``time``), ``variance``, ``lower``, ``upper``, ``n_at_risk`` (just before
    ``time``), ``n_events`` (of that cause at ``time``). Ties are deterministic: the events of all
    causes at a time are processed together, then the censorings at that time; so
    F₁ + … + F_k + S = 1 at every time, S the all-cause Kaplan–Meier.

    ``variance`` is the delta-method estimator of statsmodels' ``CumIncidenceRight`` (Stata's
    ``stcompet``: Coviello V, Boggess M. Stata J 2004;4(2):103-112); the interval is the log(−log)
    transform ``F^exp(±z·se/(F·log F))`` used by cmprsk/tidycmprsk,
    null where undefined (F = 0, F = 1 or an undefined variance).

    Aalen OO, Johansen S. Scand J Stat 1978;5(3):141-150. https://www.jstor.org/stable/4615704

    >>> aj = aalen_johansen([1, 2, 3, 4, 5], [1, 2, 1, 0, 1])
    >>> aj.filter(pl.col("time") == 5).select("cause", "cif").rows()
    [(1, 0.8), (2, 0.2)]
    """
    t = _times(time)
    c = _codes(cause, t.size, "cause")
    z = _z(_level(level))
    k = int(c.max()) if c.size else 0
    if k == 0:
        raise AnalysisError("cause", "all 0", "at least one event (a cause 1, 2, …); every time is censored")
    utime, n, d = _risk_sets(t, c, k)
    nf = n.astype(np.float64)
    df = d.astype(np.float64)
    da = df.sum(axis=1)
    sf = np.cumprod((nf - da) / nf)
    sp0 = np.concatenate(([1.0], sf[:-1])) / nf
    frames = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for j in range(k):
            dk = df[:, j]
            ip = np.cumsum(sp0 * dk)
            # statsmodels.duration.survfunc._calc_incidence_right, term by term
            ra = da / (nf * (nf - da))
            v = ip**2 * np.cumsum(ra)
            v -= 2 * ip * np.cumsum(ip * ra)
            v += np.cumsum(ip**2 * ra)
            ra = (nf - dk) * dk / nf
            v += np.cumsum(sp0**2 * ra)
            ra = sp0 * dk / nf
            v -= 2 * ip * np.cumsum(ra)
            v += 2 * np.cumsum(ip * ra)
            se = np.sqrt(v)
            expo = z * se / (ip * np.log(ip))
            low = ip ** np.exp(-expo)
            high = ip ** np.exp(expo)
            undefined = (ip <= 0) | (ip >= 1) | ~np.isfinite(v)
            low[undefined] = np.nan
            high[undefined] = np.nan
            frames.append(
                pl.DataFrame(
                    {
                        "time": utime,
                        "cause": np.full(utime.size, j + 1, dtype=np.int64),
                        "cif": ip,
                        "variance": v,
                        "lower": np.clip(low, 0.0, 1.0),
                        "upper": np.clip(high, 0.0, 1.0),
                        "n_at_risk": n,
                        "n_events": d[:, j],
                    }
                )
            )
    return _null_nan(pl.concat(frames).sort("time", "cause"))


def logistic_regression(
    outcome: Sequence[int] | Any,
    covariates: Mapping[str, Sequence[float] | Any],
    level: float = 0.95,
    max_iter: int = 100,
) -> pl.DataFrame:
    """Maximum-likelihood logistic regression with an intercept; odds ratios with Wald intervals.

    Returns one row per term (``intercept`` first, then the covariates in order): ``term``,
    ``coef``, ``se``, ``odds_ratio`` (exp(coef)), ``lower``, ``upper`` (exp(coef ± z·se)),
    ``p_value`` (Wald, two-sided), ``n`` (observations used). Fitted by Newton–Raphson; complete
    separation (an estimate that does not converge) raises :class:`AnalysisError`.

    >>> fit = logistic_regression([0, 0, 1, 1, 0, 1], {"x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    >>> fit["term"].to_list()
    ['intercept', 'x']
    """
    y = _codes(outcome, np.asarray(outcome).size, "outcome", high=1).astype(np.float64)
    if not covariates:
        raise AnalysisError("covariates", "none", "at least one covariate")
    cols = [np.ones(y.size)]
    for name, values in covariates.items():
        x = np.asarray(values, dtype=np.float64)
        if x.shape != y.shape:
            raise AnalysisError(name, f"{x.size} values", f"one value per outcome ({y.size})")
        bad = np.flatnonzero(~np.isfinite(x))
        if bad.size:
            raise AnalysisError(f"{name}[{int(bad[0])}]", float(x[bad[0]]), "a finite number")
        cols.append(x)
    X = np.column_stack(cols)
    z = _z(_level(level))
    if y.min() == y.max():
        raise AnalysisError("outcome", f"all {int(y[0])}", "both outcomes (0 and 1) present")
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise AnalysisError("covariates", ", ".join(covariates), "not collinear with each other or constant")
    separated = AnalysisError(
        "outcome", "separated", "no complete separation by the covariates (the estimate diverges)"
    )
    beta = np.zeros(X.shape[1])
    converged = False
    for _ in range(max_iter):
        eta = X @ beta
        p = special.expit(eta)
        w = p * (1 - p)
        hess = X.T @ (X * w[:, None])
        grad = X.T @ (y - p)
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            raise separated from None
        beta = beta + step
        if np.max(np.abs(step)) < 1e-12 * (1 + np.max(np.abs(beta))):
            converged = True
            break
    p = special.expit(X @ beta)
    hess = X.T @ (X * (p * (1 - p))[:, None])
    if not converged or np.max(np.abs(beta)) > 30 or not np.all(np.isfinite(beta)):
        raise separated
    se = np.sqrt(np.diag(np.linalg.inv(hess)))
    wald = beta / se
    return pl.DataFrame(
        {
            "term": ["intercept", *covariates],
            "coef": beta,
            "se": se,
            "odds_ratio": np.exp(beta),
            "lower": np.exp(beta - z * se),
            "upper": np.exp(beta + z * se),
            "p_value": 2.0 * stats.norm.sf(np.abs(wald)),
            "n": np.full(beta.size, y.size, dtype=np.int64),
        }
    )


def _midrank(x: FloatArray) -> FloatArray:
    return np.asarray(stats.rankdata(x, method="average"), dtype=np.float64)


def auc_delong(
    score: Sequence[float] | Any, label: Sequence[int] | Any, level: float = 0.95
) -> dict[str, float]:
    """Area under the ROC curve with DeLong's variance and the interval AUC ± z·se (clipped to [0, 1]).

    Ties count one half. Returns ``auc``, ``variance``, ``lower``, ``upper``, ``n_pos``, ``n_neg``.
    Computed with the midrank algorithm of Sun & Xu (2014), equal to DeLong's structural components.

    DeLong ER, DeLong DM, Clarke-Pearson DL. Biometrics 1988;44(3):837-845. doi:10.2307/2531595
    Sun X, Xu W. IEEE Signal Process Lett 2014;21(11):1389-1393. doi:10.1109/LSP.2014.2337313

    >>> r = auc_delong([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    >>> r["auc"]
    0.75
    """
    s = np.asarray(score, dtype=np.float64)
    if s.ndim != 1:
        raise AnalysisError("score", f"{s.ndim} dimensions", "a one-dimensional sequence")
    bad = np.flatnonzero(~np.isfinite(s))
    if bad.size:
        raise AnalysisError(f"score[{int(bad[0])}]", float(s[bad[0]]), "a finite number")
    y = _codes(label, s.size, "label", high=1)
    pos, neg = s[y == 1], s[y == 0]
    m, n = pos.size, neg.size
    if m < 2 or n < 2:
        raise AnalysisError("label", f"{m} positive, {n} negative", "at least 2 of each")
    z = _z(_level(level))
    tx, ty, tz = _midrank(pos), _midrank(neg), _midrank(np.concatenate((pos, neg)))
    auc = float((tz[:m].sum() - m * (m + 1) / 2.0) / (m * n))
    v01 = (tz[:m] - tx) / n  # structural components of the positives
    v10 = 1.0 - (tz[m:] - ty) / m  # of the negatives
    var = float(np.var(v01, ddof=1) / m + np.var(v10, ddof=1) / n)
    se = math.sqrt(var)
    return {
        "auc": auc,
        "variance": var,
        "lower": max(0.0, auc - z * se),
        "upper": min(1.0, auc + z * se),
        "n_pos": float(m),
        "n_neg": float(n),
    }


def weighted_kappa(
    a: Sequence[int] | Any,
    b: Sequence[int] | Any,
    weights: Literal["linear", "quadratic"] | None = "linear",
    categories: Sequence[int] | None = None,
) -> float:
    """Cohen's kappa of two ratings of the same subjects, weighted by the distance of categories.

    ``categories`` (ordered) fixes the scale, e.g. grades 0–4; by default the sorted union of the
    values. Weights ``|i−j|`` (linear) or ``(i−j)²`` (quadratic) on the category positions; None is
    the unweighted kappa. Equal to ``sklearn.metrics.cohen_kappa_score(a, b, labels=categories,
    weights=...)``. Undefined (NaN) when the expected disagreement is 0.

    Cohen J. Psychol Bull 1968;70(4):213-220. doi:10.1037/h0026256

    >>> weighted_kappa([0, 1, 2, 2], [0, 1, 2, 1], "quadratic")
    0.8
    """
    x, yv = np.asarray(a), np.asarray(b)
    if x.ndim != 1 or x.shape != yv.shape or x.size == 0:
        raise AnalysisError("b", f"{yv.size} values", f"one rating per rating of a ({x.size}), at least one")
    if weights not in ("linear", "quadratic", None):
        raise AnalysisError("weights", weights, "linear, quadratic or None")
    cats = list(categories) if categories is not None else sorted(set(x.tolist()) | set(yv.tolist()))
    index = {v: i for i, v in enumerate(cats)}
    for name, values in (("a", x), ("b", yv)):
        for i, v in enumerate(values.tolist()):
            if v not in index:
                raise AnalysisError(f"{name}[{i}]", v, f"one of the categories {cats}")
    q = len(cats)
    ia = np.array([index[v] for v in x.tolist()])
    ib = np.array([index[v] for v in yv.tolist()])
    observed = np.zeros((q, q))
    np.add.at(observed, (ia, ib), 1.0)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    ii, jj = np.indices((q, q))
    if weights is None:
        w = (ii != jj).astype(np.float64)
    elif weights == "linear":
        w = np.abs(ii - jj).astype(np.float64)
    else:
        w = ((ii - jj) ** 2).astype(np.float64)
    denom = float((w * expected).sum())
    if denom == 0.0:
        return math.nan
    return 1.0 - float((w * observed).sum()) / denom
