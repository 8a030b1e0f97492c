"""Which CTCAE laboratory terms the cohort engine grades at every result of an observation code.

Kept apart from :mod:`._labs` (the vectorised reading) so that :mod:`._snapshot`, which plans
every scale, can ask without importing the reading it plans for (no import cycle).
"""

from __future__ import annotations

from .. import labs
from ..catalogue import all_scales
from ..scales.ctcae import CtcaeScale
from ..vocabulary import vocabulary


def lab_code(scale_id: str) -> str | None:
    """The observation code the CTCAE laboratory term ``scale_id`` is graded from, or None.

    ``[terms]`` of ``data/reference_intervals.toml`` names the v5.0 terms; the v4.03 term of the
    same name reads the same code. Only terms the vectorised reading covers are listed: a lab
    part without conditions on findings, adjustments or required findings, in the code's
    canonical unit (every term of ``[terms]`` today).
    """
    scale = all_scales().get(scale_id)
    if not isinstance(scale, CtcaeScale) or scale.term.lab is None:
        return None
    prefix, slug = scale_id.split(":", 1)
    code = labs.table().code_of(scale_id)
    if code is None and prefix == "ctcae4":
        code = labs.table().code_of(f"ctcae5:{slug}")
    lab = scale.term.lab
    if code is None or vocabulary().code(code).unit != lab.unit:
        return None
    if lab.adjust or lab.requires or any(b.when for b in lab.bands):
        return None
    return code
