"""The CAR-T pathway: an explicit state machine with dates, monitoring and information.

A patient's journey — eligibility screening, leukapheresis, manufacturing (with bridging therapy),
lymphodepletion, infusion (day 0), close monitoring, discharge near the centre, follow-up of
decreasing frequency and long-term follow-up — is a set of phases with allowed transitions
(:func:`check_transition`, :class:`Journey`). From an infusion date, :func:`plan` dates every step,
visit and label restriction; :func:`resolve_label` picks the label periods of a jurisdiction
(a setting, never the language) and a product; :func:`monitoring` gives the vital-sign and ICE
frequencies a phase implies, escalated by the current CRS and ICANS grades; :func:`info` returns
the patient or clinician text of a phase in French or English; :func:`status` puts it all together for a date.

Everything clinical is data in ``data/pathway/*.toml``: phases and transitions, label versions
per jurisdiction and product (the proximity and driving periods), monitoring, visits, indications
(oncology, autoimmune) and the bilingual texts. Oncology and autoimmune indications follow the same steps.

>>> from datetime import date
>>> from immunotox import pathway
>>> p = pathway.plan(date(2026, 12, 1), jurisdiction="US", product="axi-cel")
>>> [(r.id, str(r.until)) for r in p.restrictions() if r.id in ("proximity", "no_driving")]
[('proximity', '2026-12-15'), ('no_driving', '2026-12-15')]
>>> p = pathway.plan(date(2026, 12, 1))   # no jurisdiction configured: no period
>>> [(r.id, r.until) for r in p.restrictions() if r.id in ("proximity", "no_driving")]
[('proximity', None), ('no_driving', None)]
"""

from ._data import Label, LabelVersion, Period, Phase
from ._errors import IllegalTransitionError, PathwayError
from ._info import InfoText, info, info_text
from ._label import LabelChoice, Product, check_jurisdiction, check_product, resolve_label
from ._machine import Journey, allowed_next, check_phase, check_transition, phases
from ._monitoring import Monitoring, monitoring
from ._schedule import Plan, Restriction, ScheduledVisit, Step, add_months, add_years, plan
from ._status import PathwayStatus, status

__all__ = [
    "IllegalTransitionError",
    "InfoText",
    "Journey",
    "Label",
    "LabelChoice",
    "LabelVersion",
    "Monitoring",
    "PathwayError",
    "PathwayStatus",
    "Period",
    "Phase",
    "Plan",
    "Product",
    "Restriction",
    "ScheduledVisit",
    "Step",
    "add_months",
    "add_years",
    "allowed_next",
    "check_jurisdiction",
    "check_phase",
    "check_product",
    "check_transition",
    "info",
    "info_text",
    "label_versions",
    "labels",
    "monitoring",
    "phases",
    "plan",
    "resolve_label",
    "status",
]


def label_versions() -> dict[str, LabelVersion]:
    """Every label version, by id (each belongs to one jurisdiction)."""
    from ._data import data

    return dict(data().label_versions)


def labels() -> dict[tuple[str, str], Label]:
    """The periods of every (label version, product)."""
    from ._data import data

    return dict(data().labels)
