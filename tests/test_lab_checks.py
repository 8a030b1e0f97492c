"""A lab term's grader reads its bands as the rule objects say (issue 19, live grading).

``LabGrader`` takes each bound once from the term's rule objects, as a tuple with its comparator
(``ctcae_spec.COMPARATORS``), instead of calling ``Bound.evaluate`` and ``compare`` per bound and
per grade. These tests hold it to the rule objects: on every band of every CTCAE lab term, with
every operand known, missing or exactly on a threshold, it gives what ``Bound.evaluate`` gives.
"""

from __future__ import annotations

import itertools
import random

import pytest

from immunotox.catalogue import all_scales
from immunotox.scales.ctcae import CtcaeScale
from immunotox.scales.ctcae_lab import LabGrader
from immunotox.scales.ctcae_spec import COMPARATORS, LAB_INPUTS, compare


def _graders() -> list[LabGrader]:
    out = []
    for scale in all_scales().values():
        if isinstance(scale, CtcaeScale) and scale._lab is not None:
            out.append(scale._lab)
    return out


GRADERS = _graders()


def _by_rule_objects(g: LabGrader, i: int, q: dict[str, float]) -> bool | None:
    """Band ``i``'s bounds (and named conditions) three-valued, with ``Bound.evaluate``."""
    result: bool | None = True
    for bound in g.lab.band_bounds(g.lab.bands[i]):
        r = bound.evaluate(q)
        if r is False:
            return False
        if r is None:
            result = None
    return result


def _numbers(g: LabGrader, rng: random.Random) -> list[dict[str, float]]:
    """Operand sets: random, each operand left out in turn, and each bound put on its threshold."""
    lo, hi = g.lab.range
    out = []
    for _ in range(6):
        q = {k: rng.uniform(max(lo, 1e-3), min(hi, 500.0)) for k in LAB_INPUTS}
        out.append(q)
        out += [{k: v for k, v in q.items() if k != drop} for drop in LAB_INPUTS]
        for bound in itertools.chain.from_iterable(g._bounds):
            at = bound.solve(q, bound.lhs)
            if at is not None:
                out.append({**q, bound.lhs: at})
    return out


@pytest.mark.parametrize("grader", GRADERS, ids=lambda g: g.scale_id)
def test_every_band_holds_as_its_rule_objects_say(grader: LabGrader) -> None:
    rng = random.Random(grader.scale_id)
    cases = _numbers(grader, rng)
    assert len(cases) > 6 * (1 + len(LAB_INPUTS))  # some bound put on its threshold
    for q in cases:
        for i, band in enumerate(grader.lab.bands):
            expected = _by_rule_objects(grader, i, q)
            if band.when:  # conditions on findings: none given here, so at best unknown
                expected = False if expected is False else None
            assert grader._holds(i, q, {}) is expected, (i, q)


def test_the_comparators_are_the_printed_ones_with_the_threshold_tolerance() -> None:
    on = (1.8, 1.5 * 1.2)  # equal within the tolerance, not in binary floating point
    assert [COMPARATORS[op](*on) for op in ("<", "<=", ">", ">=")] == [False, True, False, True]
    assert [COMPARATORS[op](1.0, 2.0) for op in ("<", "<=", ">", ">=")] == [True, True, False, False]
    assert [COMPARATORS[op](2.0, 1.0) for op in ("<", "<=", ">", ">=")] == [False, False, True, True]
    assert [compare(120.0, ">", 3.0 * 40.0), compare(120.4, ">", 3.0 * 40.0)] == [False, True]
    assert not any(COMPARATORS[op](float("nan"), 1.0) for op in COMPARATORS)
