"""Findings stored for a patient but read only by scales of another therapy class.

Each scale applies to the therapy classes of :data:`immunotox.service.grades.SCALES_BY_THERAPY`
(ASTCT 2019 CRS and ICANS: CAR-T cells and bispecific antibodies; the ASCO 2021 irAE organ
grades: checkpoint inhibitors). A finding accepted for a patient whose therapy no scale reading it
applies to — stools per day on a CAR-T patient, CRS vital signs on a checkpoint-inhibitor patient —
is kept as an observation (nothing accepted is lost) but never graded; :func:`ungraded` says which
scales would have read it and why they do not apply, so that the patient page can say so instead
of staying silent (issue 17). The texts are data (``data/messages.toml`` ``[ungraded]``), in
English and French.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...catalogue import get_scale
from ...messages import Catalogue, Lang, Msg, render
from ..event_rows import SCALE_CODES, is_current_event
from ..grades import SCALES_BY_THERAPY, all_scales_of
from ..models import ClinicalEvent, Patient

T = Catalogue("messages")


@dataclass(frozen=True)
class Stored:
    """The stored results of one code: how many, the latest time."""

    code: str
    count: int
    latest: dt.datetime


@dataclass(frozen=True)
class UngradedScale:
    """A scale that does not apply to the patient's therapy, and the findings it would read."""

    scale: str
    therapies: tuple[str, ...]  # the therapy classes it applies to
    therapy: str  # the patient's
    stored: tuple[Stored, ...]

    def text(self, lang: Lang, when: dict[str, str] | None = None) -> str:
        """Why the findings are not graded, in ``lang`` (``when``: each code's latest time as the
        reader's page writes it; default ISO 8601, UTC)."""
        items = [
            T(
                "ungraded.item",
                code=_code_text(s.code, lang),
                n=s.count,
                time=(when or {}).get(s.code) or s.latest.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            )
            for s in self.stored
        ]
        msg = T(
            "ungraded.why",
            scale=get_scale(self.scale).title_msg(),
            therapies=_or(lang, [_therapy(t) for t in self.therapies]),
            therapy=_therapy(self.therapy),
            findings="; ".join(render(i, lang) for i in items),
        )
        return render(msg, lang)


def _therapy(therapy_class: str) -> Msg:
    return T(f"ungraded.therapy.{therapy_class}")


def _or(lang: Lang, names: list[Msg]) -> str:
    out = render(names[0], lang)
    for n in names[1:]:
        out = render(T("errors.or_pair", a=out, b=n), lang)
    return out


def _code_text(code: str, lang: Lang) -> str:
    from ..codes import vocabulary

    spec = vocabulary().get(code)
    if spec is None:
        return code
    return spec.text_fr if lang == "fr" and spec.text_fr else spec.text


@functools.cache
def _not_findings() -> frozenset[str]:
    from ..codes import vocabulary

    return frozenset(c for c, spec in vocabulary().items() if spec.resource in ("attribute", "event"))


@functools.cache
def _therapies_of(scale: str) -> tuple[str, ...]:
    return tuple(sorted(tc for tc, scales in SCALES_BY_THERAPY.items() if scale in scales))


def ungraded(session: Session, patient: Patient) -> list[UngradedScale]:
    """The scales of other therapy classes that would read findings stored for ``patient`` (its
    own scales and the CTCAE laboratory terms read them otherwise), with those findings; one
    query. Empty when every stored finding is graded or read by no scale."""
    # a patient attribute (age, weight) or an event (day 0, death) is not a finding for a scale
    graded = frozenset().union(*(SCALE_CODES[s] for s in all_scales_of(patient)), _not_findings())
    other: dict[str, frozenset[str]] = {}
    for tc, scales in SCALES_BY_THERAPY.items():
        if tc == patient.therapy_class:
            continue
        for s in scales:
            codes = SCALE_CODES[s] - graded
            if codes and s not in all_scales_of(patient):
                other[s] = codes
    wanted = sorted(frozenset().union(*other.values())) if other else []
    if not wanted:
        return []
    found = {
        code: Stored(code, n, latest)
        for code, n, latest in session.execute(
            select(ClinicalEvent.code, func.count(), func.max(ClinicalEvent.time))
            .where(ClinicalEvent.patient_id == patient.id, ClinicalEvent.code.in_(wanted), is_current_event())
            .group_by(ClinicalEvent.code)
        )
    }
    out: list[UngradedScale] = []
    for s, codes in other.items():
        stored = tuple(found[c] for c in sorted(codes) if c in found)
        if stored:
            out.append(UngradedScale(s, _therapies_of(s), patient.therapy_class, stored))
    return out
