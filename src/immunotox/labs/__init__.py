"""Laboratory results: reference intervals (a result's own or the site's default), the CTCAE
laboratory terms graded from each laboratory code, and the alert policy for their grades.

Data: ``data/reference_intervals.toml`` and ``data/lab_alert_policy.toml`` (docs/observations.md,
docs/service.md).
"""

from ._intervals import (
    Interval,
    Reference,
    check_reference,
    default_interval,
    interval_msg,
    lab_terms,
    load_site_intervals,
    population_msg,
    ref_name,
    table,
    use_site_intervals,
)
from ._intervals import T as texts
from ._policy import UNKNOWN_PHASE, AlertRule, Phase, alert_rule, phase_of, policy

__all__ = [
    "UNKNOWN_PHASE",
    "AlertRule",
    "Interval",
    "Phase",
    "Reference",
    "alert_rule",
    "check_reference",
    "default_interval",
    "interval_msg",
    "lab_terms",
    "load_site_intervals",
    "phase_of",
    "policy",
    "population_msg",
    "ref_name",
    "table",
    "texts",
    "use_site_intervals",
]
