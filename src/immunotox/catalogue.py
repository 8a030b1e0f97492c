"""The rule catalogue: every scale, by id.

Each module listed in ``_MODULES`` exposes ``scales() -> list[Scale]``. Ids are unique and
follow ``<source><version>:<name>`` (``astct2019:crs``, ``ctcae5:colitis``).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from typing import Any

from .errors import RuleSpecError, UnknownScaleError
from .messages import Lang, parse_lang
from .result import GradeResult
from .scales._base import Scale

_MODULES: tuple[str, ...] = (
    "immunotox.scales.astct2019",
    "immunotox.scales.legacy_crs",
    "immunotox.scales.icaht",
    "immunotox.scales.iechs",
    "immunotox.scales.ctcae",
    "immunotox.scales.asco2021",
)


@functools.cache
def all_scales() -> dict[str, Scale]:
    """Every scale in the catalogue, by id, in catalogue order."""
    out: dict[str, Scale] = {}
    for mod in _MODULES:
        for scale in importlib.import_module(mod).scales():
            if scale.id in out:
                raise RuleSpecError(f"scale id {scale.id!r} is defined twice")
            out[scale.id] = scale
    return out


def get_scale(scale_id: str) -> Scale:
    """The scale ``scale_id``; raises :class:`UnknownScaleError` if absent."""
    scales = all_scales()
    try:
        return scales[scale_id]
    except KeyError:
        raise UnknownScaleError(scale_id, list(scales)) from None


def grade(
    scale_id: str, findings: Mapping[str, Any], *, ignore_unused: bool = False, lang: Lang = "en"
) -> GradeResult:
    """Grade ``findings`` with scale ``scale_id``.

    Parameters
    ----------
    scale_id
        A catalogue id, e.g. ``"astct2019:crs"`` (see :func:`all_scales`).
    findings
        Finding key -> value; numbers in the canonical unit or ``{"value": x, "unit": "<UCUM>"}``.
    ignore_unused
        Regrading mode: findings of the shared vocabulary that this scale does not read are
        checked and reported in ``ignored`` instead of being refused, so that one record can be
        graded under every scale.
    lang
        Language of the title, reasons, fired-rule texts and notes: ``"en"`` or ``"fr"``
        (:meth:`GradeResult.in_lang` and :meth:`GradeResult.explain` switch it afterwards).

    Returns
    -------
    GradeResult
        The grade, whether it is complete, what was missing, the reasons and the sources.

    Raises
    ------
    UnknownScaleError
        ``scale_id`` is not in the catalogue.
    FindingError
        A finding has an unknown key, a wrong type, an impossible value or an unknown unit.

    Examples
    --------
    >>> r = grade("astct2019:crs", {"temperature_c": 39.5, "vasopressors": ["norepinephrine"],
    ...                              "oxygen": "low_flow_nasal_cannula", "o2_flow_l_min": 2})
    >>> r.grade, r.complete, r.deciding_domains
    (3, True, ['hypotension'])
    >>> grade("astct2019:crs", {"temperature_c": 37.2}, lang="fr").reasons[0]
    'Pas de fièvre : température 37,2 °C < 38 °C'
    """
    return get_scale(scale_id).grade(findings, ignore_unused=ignore_unused).in_lang(parse_lang(lang))
