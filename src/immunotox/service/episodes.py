"""Episodes of the service: the timeline's episode rule applied to the stored open episode.

The rule is :func:`immunotox.timeline.live.step_episode` (``data/observations.toml``
``[episode]``: an episode opens at the first grade >= 1 and resolves at the first non-positive
grade once the record reaches the resolution time after it; a positive grade that late opens a
new one). This module applies it to the stored episode of a (patient, scale), inserts the
episodes it opens and says what changed (:class:`Transition`, read by the alert rules).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.orm import Session

from ..timeline import live
from .grades import Grade
from .models import Episode


@dataclass
class OpenEpisode:
    """An episode in progress, as the regrade reads and updates it."""

    id: int
    onset_at: dt.datetime
    peak_grade: int
    peak_at: dt.datetime
    last_positive_at: dt.datetime
    quiet_since: dt.datetime | None
    resolved_at: dt.datetime | None = None


@dataclass
class Transition:
    """What a regrade changed for one patient and scale (read by the alert rules)."""

    grade: Grade
    previous: int | None
    episode: OpenEpisode | None
    opened: bool = False
    peak_raised: bool = False
    resolved: bool = False


def step(
    session: Session, g: Grade, ep: OpenEpisode | None, previous: int | None, now: dt.datetime
) -> tuple[Transition, list[OpenEpisode]]:
    """Apply grade ``g`` to the open episode ``ep`` by the timeline's episode rule
    (:func:`immunotox.timeline.live.step_episode`); returns the transition and the stored
    episodes it changed (a new one is inserted here)."""
    tr = Transition(grade=g, previous=previous, episode=ep)
    course = (
        None
        if ep is None
        else live.course_of(ep.onset_at, ep.peak_grade, ep.peak_at, ep.last_positive_at, ep.quiet_since)
    )
    step = live.step_episode(course, g.time, g.grade)
    changed: list[OpenEpisode] = []
    if ep is not None and step.closed is not None and step.closed.resolved_at is not None:
        ep.resolved_at = live.from_us(step.closed.resolved_at)
        tr.resolved = True
        changed.append(ep)
    c = step.course
    if step.opened and c is not None:
        value = c.peak
        new_id = session.execute(
            insert(Episode)
            .values(
                patient_id=g.patient_id,
                scale=g.scale,
                onset_at=g.time,
                peak_grade=value,
                peak_at=g.time,
                last_positive_at=g.time,
                updated_at=now,
            )
            .returning(Episode.id)
        ).scalar_one()
        tr.episode = OpenEpisode(new_id, g.time, value, g.time, g.time, None)
        tr.opened = True
    elif ep is not None and c is not None:
        ep.peak_grade = c.peak
        ep.peak_at = live.from_us(c.peak_at)
        ep.last_positive_at = live.from_us(c.last_positive)
        ep.quiet_since = None if c.quiet_since is None else live.from_us(c.quiet_since)
        tr.peak_raised = step.peak_raised
        changed.append(ep)
    return tr, changed


@functools.cache
def update_statement() -> Any:
    table = cast(Table, Episode.__table__)
    return (
        update(table)
        .where(table.c.id == bindparam("i"))
        .values(
            peak_grade=bindparam("peak"),
            peak_at=bindparam("peak_at"),
            last_positive_at=bindparam("last"),
            quiet_since=bindparam("quiet"),
            resolved_at=bindparam("resolved"),
            updated_at=bindparam("at"),
        )
    )
