"""The statistics of immunotox.analysis against exact fixtures and independent implementations.

Oracles (test-only dependencies, the `test` extra): scipy.stats.ecdf (Kaplan–Meier, log-log
interval), statsmodels (SurvfuncRight, CumIncidenceRight, Logit), scikit-learn (roc_auc_score,
cohen_kappa_score) and a direct O(m·n) evaluation of DeLong's structural components.
lifelines' Aalen–Johansen is deliberately not used (it breaks ties by random jitter).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special
from scipy import stats as sps
from sklearn.metrics import cohen_kappa_score, roc_auc_score
from sksurv.nonparametric import cumulative_incidence_competing_risks, kaplan_meier_estimator
from statsmodels.duration.survfunc import CumIncidenceRight, SurvfuncRight

from immunotox.analysis import (
    AnalysisError,
    aalen_johansen,
    auc_delong,
    clopper_pearson,
    kaplan_meier,
    logistic_regression,
    weighted_kappa,
)

TOL = 1e-10


def _close(a: np.ndarray, b: np.ndarray) -> None:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    assert np.array_equal(np.isnan(a), np.isnan(b)), (a, b)
    ok = ~np.isnan(a)
    np.testing.assert_allclose(a[ok], b[ok], rtol=0, atol=TOL)


def _tied_cohort(seed: int, n: int, causes: int, horizon: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Times on whole days 0..horizon (heavy ties), causes 0..causes with censoring ~30 %."""
    rng = np.random.default_rng(seed)
    time = rng.integers(0, horizon + 1, n).astype(np.float64)
    cause = rng.integers(1, causes + 1, n)
    cause[rng.random(n) < 0.3] = 0
    return time, cause


# ----------------------------------------------------------------------------- Clopper–Pearson


def test_clopper_pearson_exact_fixtures() -> None:
    lo, hi = clopper_pearson(7, 50)
    assert lo == pytest.approx(0.0581917003, abs=1e-10)
    assert hi == pytest.approx(0.2673960025, abs=1e-10)
    lo, hi = clopper_pearson(0, 10)
    assert lo == 0.0
    assert hi == pytest.approx(0.3084971078, abs=1e-10)
    assert clopper_pearson(10, 10) == (pytest.approx(1 - 0.3084971078, abs=1e-10), 1.0)


@given(st.integers(1, 400).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_clopper_pearson_equals_scipy_binomtest(xn: tuple[int, int]) -> None:
    x, n = xn
    ci = sps.binomtest(x, n).proportion_ci(confidence_level=0.95, method="exact")
    lo, hi = clopper_pearson(x, n)
    assert abs(lo - ci.low) < TOL and abs(hi - ci.high) < TOL


@pytest.mark.parametrize(
    ("x", "n", "level", "message"),
    [
        (-1, 10, 0.95, "x = -1: an integer count between 0 and n = 10"),
        (3, 0, 0.95, "n = 0: a positive integer count"),
        (1, 10, 1.0, "level = 1.0: a confidence level strictly between 0 and 1"),
        (True, 10, 0.95, "x = True: an integer count between 0 and n = 10"),
    ],
)
def test_clopper_pearson_bad_input(x: int, n: int, level: float, message: str) -> None:
    with pytest.raises(AnalysisError) as err:
        clopper_pearson(x, n, level)
    assert str(err.value) == message


# ------------------------------------------------------------------------------- Kaplan–Meier


def _scipy_km(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, ...]:
    data = sps.CensoredData(uncensored=time[event == 1], right=time[event == 0])
    sf = sps.ecdf(data).sf
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns where the log-log interval is undefined
        ci = sf.confidence_interval(method="log-log")
    return sf.quantiles, sf.probabilities, ci.low.probabilities, ci.high.probabilities


def _km_equals_scipy(time: np.ndarray, event: np.ndarray) -> pl.DataFrame:
    km = kaplan_meier(time, event)
    q, p, lo, hi = _scipy_km(time, event)
    _close(km["time"].to_numpy(), q)
    _close(km["survival"].to_numpy(), p)
    _close(km["lower"].fill_null(np.nan).to_numpy(), lo)
    _close(km["upper"].fill_null(np.nan).to_numpy(), hi)
    return km


@pytest.mark.parametrize("seed", range(6))
def test_kaplan_meier_equals_scipy_ecdf_and_statsmodels(seed: int) -> None:
    time, cause = _tied_cohort(seed, 300, 1)
    event = (cause == 1).astype(int)
    km = _km_equals_scipy(time, event)
    sm_fit = SurvfuncRight(time, event)
    at_events = km.filter(pl.col("n_events") > 0)
    _close(at_events["time"].to_numpy(), sm_fit.surv_times)
    _close(at_events["survival"].to_numpy(), sm_fit.surv_prob)
    assert at_events["n_at_risk"].to_list() == sm_fit.n_risk.astype(int).tolist()
    assert at_events["n_events"].to_list() == sm_fit.n_events.astype(int).tolist()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 6), st.booleans()), min_size=1, max_size=40).filter(
        lambda rows: any(e for _, e in rows)
    )
)
def test_kaplan_meier_equals_scipy_on_random_tied_data(rows: list[tuple[int, bool]]) -> None:
    time = np.array([float(t) for t, _ in rows])
    event = np.array([int(e) for _, e in rows])
    km = _km_equals_scipy(time, event)
    # censorings at a time come after its events: the number at risk includes them
    assert km["n_at_risk"][0] == len(rows)


def test_kaplan_meier_bad_input() -> None:
    with pytest.raises(AnalysisError) as err:
        kaplan_meier([1, 2, 3], [1, 2, 0])
    assert str(err.value) == "event[1] = 2: 0 (censored) or 1 (event)"
    with pytest.raises(AnalysisError) as err:
        kaplan_meier([1, float("nan")], [1, 0])
    assert str(err.value) == "time[1] = nan: a finite time >= 0 (from the time origin)"
    with pytest.raises(AnalysisError) as err:
        kaplan_meier([1, 2], [1])
    assert str(err.value) == "event = 1 values: one value per time (2)"


# ---------------------------------------------------------------------------- Aalen–Johansen


def test_aalen_johansen_issue_fixture_and_one_minus_km_difference() -> None:
    time, cause = [1, 2, 3, 4, 5], [1, 2, 1, 0, 1]
    aj = aalen_johansen(time, cause)
    last = {c: f for c, f in aj.filter(pl.col("time") == 5).select("cause", "cif").rows()}
    assert last[1] == pytest.approx(0.8, abs=1e-15)
    assert last[2] == pytest.approx(0.2, abs=1e-15)
    # 1 − KM with the competing cause censored overstates the incidence of cause 1: 1.0, not 0.8
    km = kaplan_meier(time, [1 if c == 1 else 0 for c in cause])
    assert 1 - km.filter(pl.col("time") == 5)["survival"][0] == pytest.approx(1.0, abs=1e-15)
    # step by step: 0.2, 0.2, 0.4, 0.4, 0.8 for cause 1
    assert aj.filter(pl.col("cause") == 1)["cif"].to_list() == pytest.approx([0.2, 0.2, 0.4, 0.4, 0.8])


@pytest.mark.parametrize("seed", range(6))
def test_aalen_johansen_equals_statsmodels_on_tied_cohorts(seed: int) -> None:
    time, cause = _tied_cohort(seed, 400, 3)
    aj = aalen_johansen(time, cause)
    oracle = CumIncidenceRight(time, cause)
    z = special.ndtri(0.975)
    for k in (1, 2, 3):
        part = aj.filter(pl.col("cause") == k)
        _close(part["time"].to_numpy(), oracle.times)
        _close(part["cif"].to_numpy(), oracle.cinc[k - 1])
        _close(np.sqrt(part["variance"].fill_null(np.nan).to_numpy()), oracle.cinc_se[k - 1])
        # the interval: log(−log) transform of the oracle's estimate and standard error
        f, se = oracle.cinc[k - 1], oracle.cinc_se[k - 1]
        with np.errstate(all="ignore"):
            lo = f ** np.exp(-z * se / (f * np.log(f)))
            hi = f ** np.exp(z * se / (f * np.log(f)))
        undefined = (f <= 0) | (f >= 1) | ~np.isfinite(se)
        lo[undefined] = np.nan
        hi[undefined] = np.nan
        _close(part["lower"].fill_null(np.nan).to_numpy(), lo)
        _close(part["upper"].fill_null(np.nan).to_numpy(), hi)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), min_size=1, max_size=40).filter(
        lambda rows: any(c for _, c in rows)
    )
)
def test_aalen_johansen_sums_to_one_with_survival_and_is_order_free(rows: list[tuple[int, int]]) -> None:
    time = np.array([float(t) for t, _ in rows])
    cause = np.array([c for _, c in rows])
    aj = aalen_johansen(time, cause)
    km = kaplan_meier(time, (cause > 0).astype(int))
    total = aj.group_by("time").agg(pl.col("cif").sum()).sort("time")
    np.testing.assert_allclose(total["cif"].to_numpy() + km["survival"].to_numpy(), 1.0, atol=1e-12)
    # deterministic: any order of the rows gives the same table
    order = np.argsort(-time, kind="stable")
    assert aalen_johansen(time[order], cause[order]).equals(aj)
    with np.errstate(all="ignore"):
        oracle = CumIncidenceRight(time, cause)
    for k in range(1, int(cause.max()) + 1):
        _close(aj.filter(pl.col("cause") == k)["cif"].to_numpy(), oracle.cinc[k - 1])


@pytest.mark.parametrize("seed", range(4))
def test_kaplan_meier_and_aalen_johansen_equal_scikit_survival(seed: int) -> None:
    time, cause = _tied_cohort(seed, 500, 2, horizon=20)
    km = kaplan_meier(time, (cause > 0).astype(int))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t, prob, ci = kaplan_meier_estimator(cause > 0, time, conf_type="log-log")
        ct, cinc = cumulative_incidence_competing_risks(cause, time)
    _close(km["time"].to_numpy(), t)
    _close(km["survival"].to_numpy(), prob)
    defined = ~km["lower"].is_null().to_numpy()
    _close(km["lower"].to_numpy()[defined], ci[0][defined])
    _close(km["upper"].to_numpy()[defined], ci[1][defined])
    aj = aalen_johansen(time, cause)
    _close(ct, km["time"].to_numpy())
    for k in (1, 2):
        _close(aj.filter(pl.col("cause") == k)["cif"].to_numpy(), cinc[k])
    _close(1 - km["survival"].to_numpy(), cinc[0])  # row 0: all causes = 1 − S


def test_aalen_johansen_bad_input() -> None:
    with pytest.raises(AnalysisError) as err:
        aalen_johansen([1, 2], [0, 0])
    assert str(err.value) == "cause = all 0: at least one event (a cause 1, 2, …); every time is censored"
    with pytest.raises(AnalysisError) as err:
        aalen_johansen([1, 2], [1, 1.5])
    assert str(err.value) == "cause[1] = 1.5: 0 (censored) or a cause 1, 2, …"


# ------------------------------------------------------------------------ logistic regression


@pytest.mark.parametrize("seed", range(4))
def test_logistic_regression_equals_statsmodels_logit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 500
    easix = rng.lognormal(0.5, 0.8, n)
    age = rng.integers(20, 80, n).astype(float)  # integer covariate: ties
    logit = -2.0 + 0.6 * np.log(easix) + 0.01 * age
    y = (rng.random(n) < special.expit(logit)).astype(int)
    fit = logistic_regression(y, {"log_easix": np.log(easix), "age": age})
    X = sm.add_constant(np.column_stack([np.log(easix), age]))
    oracle = sm.Logit(y, X).fit(disp=0, method="newton", tol=1e-14, maxiter=100)
    _close(fit["coef"].to_numpy(), oracle.params)
    _close(fit["se"].to_numpy(), oracle.bse)
    ci = np.exp(oracle.conf_int(0.05))
    _close(fit["lower"].to_numpy(), ci[:, 0])
    _close(fit["upper"].to_numpy(), ci[:, 1])
    _close(fit["p_value"].to_numpy(), oracle.pvalues)


def test_logistic_regression_refuses_separation_and_single_outcome() -> None:
    with pytest.raises(AnalysisError) as err:
        logistic_regression([0, 0, 1, 1], {"x": [1.0, 2.0, 3.0, 4.0]})
    assert str(err.value) == (
        "outcome = 'separated': no complete separation by the covariates (the estimate diverges)"
    )
    with pytest.raises(AnalysisError) as err:
        logistic_regression([1, 1, 1], {"x": [1.0, 2.0, 3.0]})
    assert str(err.value) == "outcome = all 1: both outcomes (0 and 1) present"
    with pytest.raises(AnalysisError) as err:
        logistic_regression([0, 1, 0, 1], {"x": [1.0, 2.0, 3.0, 1.0], "x2": [2.0, 4.0, 6.0, 2.0]})
    assert str(err.value) == "covariates = x, x2: not collinear with each other or constant"


# -------------------------------------------------------------------------------- AUC, DeLong


def _delong_direct(score: np.ndarray, label: np.ndarray) -> tuple[float, float]:
    """DeLong et al. 1988 by definition: ψ = 1, ½, 0 over every (positive, negative) pair."""
    pos, neg = score[label == 1], score[label == 0]
    psi = (pos[:, None] > neg[None, :]).astype(float) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    var = v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size
    return float(psi.mean()), float(var)


@pytest.mark.parametrize("seed", range(5))
def test_auc_delong_equals_sklearn_and_the_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    label = (rng.random(300) < 0.3).astype(int)
    score = np.round(rng.normal(label * 0.8, 1.0), 1)  # rounded: many ties
    r = auc_delong(score, label)
    assert abs(r["auc"] - roc_auc_score(label, score)) < TOL
    auc, var = _delong_direct(score, label)
    assert abs(r["auc"] - auc) < TOL and abs(r["variance"] - var) < TOL
    z = special.ndtri(0.975)
    assert abs(r["lower"] - max(0.0, auc - z * math.sqrt(var))) < TOL
    assert abs(r["upper"] - min(1.0, auc + z * math.sqrt(var))) < TOL


def test_auc_delong_bad_input() -> None:
    with pytest.raises(AnalysisError) as err:
        auc_delong([0.1, 0.2, 0.3], [1, 0, 0])
    assert str(err.value) == "label = 1 positive, 2 negative: at least 2 of each"


# ------------------------------------------------------------------------------ weighted kappa


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=2, max_size=60),
    st.sampled_from(["linear", "quadratic", None]),
)
def test_weighted_kappa_equals_sklearn(pairs: list[tuple[int, int]], weights: str | None) -> None:
    a = [p[0] for p in pairs]
    b = [p[1] for p in pairs]
    grades = [0, 1, 2, 3, 4]
    ours = weighted_kappa(a, b, weights, categories=grades)  # type: ignore[arg-type]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = cohen_kappa_score(a, b, labels=grades, weights=weights)
    if math.isnan(theirs):
        assert math.isnan(ours)
    else:
        assert abs(ours - theirs) < TOL


def test_weighted_kappa_bad_input() -> None:
    with pytest.raises(AnalysisError) as err:
        weighted_kappa([0, 1], [0, 7], categories=[0, 1, 2])
    assert str(err.value) == "b[1] = 7: one of the categories [0, 1, 2]"
