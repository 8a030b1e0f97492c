"""Cohort analytics on the timeline outputs: incidence, onset, outcomes, agreement, reports.

The statistics (stable API; methods and references in ``docs/analysis.md``):
:func:`clopper_pearson`, :func:`kaplan_meier`, :func:`aalen_johansen`,
:func:`logistic_regression`, :func:`auc_delong`, :func:`weighted_kappa`. Bad input raises
:class:`AnalysisError` naming the field, the value and the expectation.

This package builds on the foundations, the scales and the timeline outputs; it never imports
the service or the web layer.
"""

from __future__ import annotations

from ._clinical import CLINICAL_SCHEMA, Clinical, read_clinical
from ._cohort import CohortAnalysis, analyze, ard_value, suppress
from ._errors import AnalysisError
from ._report import render_html, write_report
from ._stats import (
    aalen_johansen,
    auc_delong,
    clopper_pearson,
    kaplan_meier,
    logistic_regression,
    weighted_kappa,
)

__all__ = [
    "CLINICAL_SCHEMA",
    "AnalysisError",
    "Clinical",
    "CohortAnalysis",
    "aalen_johansen",
    "analyze",
    "ard_value",
    "auc_delong",
    "clopper_pearson",
    "kaplan_meier",
    "logistic_regression",
    "read_clinical",
    "render_html",
    "suppress",
    "weighted_kappa",
    "write_report",
]
