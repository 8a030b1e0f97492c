"""The pathway as a state machine: phases, allowed transitions, and a patient's journey.

The phases and the transitions allowed between them are data (``data/pathway/phases.toml``)::

    screening ─► leukapheresis ─► manufacturing ─► lymphodepletion ─► infusion (day 0)
                      ▲                 │                                  │
                      └─────────────────┘ (manufacturing failure)          ▼
    completed ◄─ long_term_follow_up ◄─ follow_up ◄─ near_centre ◄─► inpatient_observation
                                            ▲                              │
                                            └──────────────────────────────┘ (late discharge)
    off_pathway: reachable from every non-final phase except the infusion day

Every other transition is refused with :class:`IllegalTransitionError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ..messages import error
from ._data import Phase, data
from ._errors import IllegalTransitionError, PathwayError


def phases() -> dict[str, Phase]:
    """Every phase of the pathway, in journey order."""
    d = data()
    return {p: d.phases[p] for p in d.order}


def check_phase(phase: object, field: str = "phase") -> str:
    """``phase`` if it is a known phase id; else :class:`PathwayError` naming ``field``."""
    known = data().order
    if not isinstance(phase, str) or phase not in known:
        raise PathwayError(
            field, phase, error("pathway.unknown_phase"), error("pathway.one_of", values=", ".join(known))
        )
    return phase


def allowed_next(phase: str) -> tuple[str, ...]:
    """The phases that may follow ``phase``."""
    return data().phases[check_phase(phase)].next


def check_transition(from_phase: str, to_phase: str) -> None:
    """Refuse a transition the pathway does not allow.

    Raises
    ------
    PathwayError
        Either phase is unknown.
    IllegalTransitionError
        ``to_phase`` may not follow ``from_phase``.

    Examples
    --------
    >>> check_transition("manufacturing", "leukapheresis")   # re-collection after a failure
    >>> check_transition("follow_up", "infusion")
    Traceback (most recent call last):
    ...
    immunotox.pathway._errors.IllegalTransitionError: to = 'infusion': ...follow_up → infusion...
    """
    check_phase(from_phase, "phase")
    check_phase(to_phase, "to")
    nxt = allowed_next(from_phase)
    if to_phase not in nxt:
        raise IllegalTransitionError(from_phase, to_phase, nxt)


@dataclass(frozen=True)
class Entry:
    """The patient entered ``phase`` on ``on``."""

    phase: str
    on: date


@dataclass(frozen=True)
class Journey:
    """A patient's actual journey: the phases entered, in order, with their dates (immutable).

    Examples
    --------
    >>> from datetime import date
    >>> j = Journey.begin(date(2026, 10, 12))
    >>> j = j.advance("leukapheresis", date(2026, 10, 26)).advance("manufacturing", date(2026, 10, 27))
    >>> j.current, j.entered_on
    ('manufacturing', datetime.date(2026, 10, 27))
    >>> j.advance("infusion", date(2026, 12, 1))
    Traceback (most recent call last):
    ...
    immunotox.pathway._errors.IllegalTransitionError: ...manufacturing → infusion...
    """

    entries: tuple[Entry, ...]

    @classmethod
    def begin(cls, on: date, phase: str | None = None) -> Journey:
        """A journey entering ``phase`` (default: the pathway's first phase) on ``on``."""
        first = data().start if phase is None else check_phase(phase)
        if not isinstance(on, date):
            raise PathwayError("on", on, error("pathway.expected_a_date"))
        return cls((Entry(first, on),))

    @property
    def current(self) -> str:
        return self.entries[-1].phase

    @property
    def entered_on(self) -> date:
        return self.entries[-1].on

    @property
    def infusion_date(self) -> date | None:
        """The date the infusion phase was entered, if it was."""
        return next((e.on for e in self.entries if e.phase == "infusion"), None)

    def advance(self, to: str, on: date) -> Journey:
        """The journey after entering ``to`` on ``on``; refuses illegal transitions and dates
        earlier than the current phase's entry."""
        check_transition(self.current, to)
        if not isinstance(on, date):
            raise PathwayError("on", on, error("pathway.expected_a_date"))
        if on < self.entered_on:
            raise PathwayError(
                "on",
                on.isoformat(),
                error("pathway.start_before", to=to, current=self.current, since=self.entered_on.isoformat()),
            )
        return Journey((*self.entries, Entry(to, on)))
