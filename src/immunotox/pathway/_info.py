"""Patient and clinician information for each phase, in French and English (kept as data)."""

from __future__ import annotations

from dataclasses import dataclass

from ..handouts import handout
from ..messages import error
from ._data import AUDIENCES, LANGS, PERIODS, Audience, Lang, data
from ._errors import PathwayError
from ._label import LabelChoice, resolve_label
from ._machine import check_phase


@dataclass(frozen=True)
class InfoText:
    """One phase's information for one audience in one language.

    ``text`` is the patient paragraph (empty for clinicians); ``items`` the clinician checklist;
    ``call`` the when-to-call list shown to patients after the infusion, ``before_calling`` the
    instruction not to take an antipyretic first and ``emergency`` the line on emergency services
    — all from the CAR-T handout (``data/handouts/car_t.toml``, shared with the portal's triage).
    """

    phase: str
    audience: Audience
    lang: Lang
    title: str
    text: str
    items: tuple[str, ...]
    call_title: str = ""
    call: tuple[str, ...] = ()
    before_calling: str = ""
    emergency: str = ""

    def render(self) -> str:
        """Plain text: title, paragraph or checklist, then the when-to-call list."""
        lines = [self.title, ""]
        if self.text:
            lines.append(self.text)
        lines += [f"- {i}" for i in self.items]
        if self.call:
            lines += ["", self.call_title, *(f"- {c}" for c in self.call), "", self.before_calling]
            lines += ["", self.emergency]
        return "\n".join(lines).strip()


def check_audience(audience: object) -> Audience:
    if audience not in AUDIENCES:
        raise PathwayError(
            "audience", audience, error("pathway.unknown_audience"), error("pathway.audience_values")
        )
    return audience


def check_lang(lang: object) -> Lang:
    if lang not in LANGS:
        raise PathwayError("lang", lang, error("pathway.unknown_language"), error("pathway.lang_values"))
    return lang


def _fill(text: str, label: LabelChoice, lang: Lang) -> str:
    """Fill ``{proximity}``, ``{no_driving}``, ``{daily_monitoring}``, ``{monitoring}`` (« au moins
    14 jours » or « la durée fixée par votre équipe selon le RCP ») and ``{label}`` (the sentence
    naming the label version and its jurisdiction, or why no period is given)."""
    values = {n: label.phrase(n, lang) for n in PERIODS}
    return text.format(label=label.message(lang), **values)


def info_text(
    phase: str,
    audience: str = "patient",
    lang: str = "fr",
    *,
    jurisdiction: object = None,
    product: str | None = None,
    label: str | None = None,
) -> InfoText:
    """The structured information of ``phase`` for ``audience`` in ``lang`` (see :func:`info`)."""
    check_phase(phase)
    aud = check_audience(audience)
    lg = check_lang(lang)
    return info_for_label(phase, aud, lg, resolve_label(jurisdiction, product, label))


def info_for_label(phase: str, aud: Audience, lg: Lang, lab: LabelChoice) -> InfoText:
    d = data()
    t = d.info[phase]
    if aud == "patient":
        call = handout("car_t")
        return InfoText(
            phase=phase,
            audience=aud,
            lang=lg,
            title=t.patient_title.get(lg),
            text=_fill(t.patient.get(lg), lab, lg),
            items=(),
            call_title=call.title(lg) if t.call else "",
            call=call.call(lg) if t.call else (),
            before_calling=call.before_calling(lg) if t.call else "",
            emergency=call.emergency(lg) if t.call else "",
        )
    items = t.clinician_fr if lg == "fr" else t.clinician_en
    return InfoText(
        phase=phase,
        audience=aud,
        lang=lg,
        title=t.clinician_title.get(lg),
        text="",
        items=tuple(_fill(i, lab, lg) for i in items),
    )


def info(
    phase: str,
    audience: str = "patient",
    lang: str = "fr",
    *,
    jurisdiction: object = None,
    product: str | None = None,
    label: str | None = None,
) -> str:
    """The information text of ``phase`` for ``audience`` (``patient`` | ``clinician``) in ``lang``
    (``fr`` | ``en``), with the periods of the label that applies to ``jurisdiction`` and
    ``product`` filled in and the label version named; without them, no period is given.

    Raises
    ------
    PathwayError
        Unknown phase, audience, language, jurisdiction, product or label version.

    Examples
    --------
    >>> print(info("near_centre", "patient", "fr").splitlines()[0])
    Après la sortie : rester près du centre
    >>> "at least 14 days" in info("near_centre", "patient", "en", jurisdiction="US", product="axi-cel")
    True
    >>> "at least 28 days" in info("near_centre", "patient", "en", jurisdiction="US", product="axi-cel",
    ...                            label="fda-rems")
    True
    >>> "durée fixée par votre équipe selon le RCP" in info("near_centre", "patient", "fr")
    True
    """
    return info_text(phase, audience, lang, jurisdiction=jurisdiction, product=product, label=label).render()
