"""The episode rule and the fever-masking predicate, one assessment at a time (scalar).

Written once here and used by the scalar reference engine (:func:`._reference.episodes_py`,
:meth:`._reference.PatientState.compute_masking`) and by the live per-patient path
(:mod:`.live`, which the service calls); :func:`._state.episodes` and :func:`._astct.masking`
are their vectorised forms, held equal by ``tests/test_timeline_differential.py``.

Episode rule (``data/observations.toml`` ``[episode]``): an episode opens at the first positive
assessment (grade >= 1) outside an episode; after its last positive one, the first non-positive
assessment starts the quiet time; the episode *resolves at that first non-positive time* once
the record reaches ``resolution`` later — by any assessment, positive or not (a positive one
arriving that late opens a new episode). A non-positive assessment is a grade 0 or no grade.
Times are integers (microseconds since the epoch); assessments come in time order (an
assessment earlier than the last positive one never starts the quiet time).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Course:
    """An episode in progress (or just resolved, with ``resolved_at``)."""

    onset: int
    peak: int
    peak_at: int
    last_positive: int
    quiet_since: int | None = None
    resolved_at: int | None = None


@dataclass(frozen=True)
class Step:
    """What one assessment did: the episode after it, the one it resolved, what changed."""

    course: Course | None
    closed: Course | None = None
    opened: bool = False
    peak_raised: bool = False


def episode_step(course: Course | None, t: int, grade: int | None, resolution: int) -> Step:
    """Apply the assessment at ``t`` (grade ``grade``, None = no grade) to the episode ``course``.

    >>> s = episode_step(None, 0, 2, 24)
    >>> s.opened, s.course.onset, s.course.peak
    (True, 0, 2)
    >>> s = episode_step(episode_step(s.course, 5, 0, 24).course, 29, 0, 24)
    >>> s.course, s.closed.resolved_at
    (None, 5)
    """
    closed: Course | None = None
    if course is not None and course.quiet_since is not None and t - course.quiet_since >= resolution:
        closed = replace(course, resolved_at=course.quiet_since)
        course = None
    if grade is not None and grade >= 1:
        if course is None:
            return Step(Course(t, grade, t, t), closed, opened=True)
        raised = grade > course.peak
        return Step(
            replace(
                course,
                peak=grade if raised else course.peak,
                peak_at=t if raised else course.peak_at,
                last_positive=max(course.last_positive, t),
                quiet_since=None,
            ),
            closed,
            peak_raised=raised,
        )
    if course is not None and course.quiet_since is None and t >= course.last_positive:
        course = replace(course, quiet_since=t)
    return Step(course, closed)


def masked_at(onset: int, therapy: Sequence[int], t: int) -> bool:
    """Fever masking (``data/observations.toml`` ``[masking]``) at ``t`` within a CRS course of
    onset ``onset``: true once a therapy row (sorted times ``therapy``) lies in [onset, t].

    >>> masked_at(10, [5, 12], 11), masked_at(10, [5, 12], 12)
    (False, True)
    """
    i = bisect.bisect_left(therapy, onset)
    return i < len(therapy) and therapy[i] <= t
