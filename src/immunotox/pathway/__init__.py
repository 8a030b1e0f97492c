"""The CAR-T pathway: an explicit state machine with dates, monitoring and information.

A patient's journey — eligibility screening, leukapheresis, manufacturing (with bridging therapy),
lymphodepletion, infusion (day 0), close monitoring, discharge near the centre, follow-up of
decreasing frequency and long-term follow-up — is a set of phases with allowed transitions
(:func:`check_transition`, :class:`Journey`). From an infusion date, :func:`plan` dates every step,
visit and label restriction; :func:`monitoring` gives the vital-sign and ICE frequencies a phase
implies, escalated by the current CRS and ICANS grades; :func:`info` returns the patient or
clinician text of a phase in French or English; :func:`status` puts it all together for a date.

Everything clinical is data in ``data/pathway/*.toml``: phases and transitions, label versions
(the proximity and driving periods), monitoring, visits, indications (oncology, autoimmune) and
the bilingual texts. Oncology and autoimmune indications follow the same steps.

>>> from datetime import date
>>> from immunotox import pathway
>>> p = pathway.plan(date(2026, 12, 1))
>>> [(r.id, r.until.isoformat()) for r in p.restrictions() if r.id in ("proximity", "no_driving")]
[('proximity', '2026-12-15'), ('no_driving', '2026-12-15')]
"""

from ._data import Label, Phase
from ._errors import IllegalTransitionError, PathwayError
from ._info import InfoText, info, info_text
from ._machine import Journey, allowed_next, check_phase, check_transition, phases
from ._monitoring import Monitoring, monitoring
from ._schedule import Plan, Restriction, ScheduledVisit, Step, add_months, add_years, plan
from ._status import PathwayStatus, status

__all__ = [
    "IllegalTransitionError",
    "InfoText",
    "Journey",
    "Label",
    "Monitoring",
    "PathwayError",
    "PathwayStatus",
    "Phase",
    "Plan",
    "Restriction",
    "ScheduledVisit",
    "Step",
    "add_months",
    "add_years",
    "allowed_next",
    "check_phase",
    "check_transition",
    "info",
    "info_text",
    "labels",
    "monitoring",
    "phases",
    "plan",
    "status",
]


def labels() -> dict[str, Label]:
    """Every label version, by id."""
    from ._data import data

    return dict(data().labels)
