"""Labels shown for the service's tokens, scales and states (marked for gettext, translated when shown).

Only *names* live here (what a token is called on screen). What a code or a finding means comes
from the data in both languages (``data/observations.toml`` and ``data/findings*.toml``:
``text`` / ``text_fr``), read by :func:`code_text` and :func:`finding_text`; the allowed tokens
themselves come from the code vocabulary, never from this module.
"""

from __future__ import annotations

from ..catalogue import all_scales
from ..findings import vocabulary as finding_vocabulary
from ..messages import Msg, render
from ..service import codes
from .i18n import N_, current, gettext

TOKENS: dict[str, str] = {
    # oxygen devices (ASTCT vocabulary)
    "none": N_("none"),
    "low_flow_nasal_cannula": N_("low-flow nasal cannula"),
    "blow_by": N_("blow-by oxygen"),
    "high_flow_nasal_cannula": N_("high-flow nasal cannula"),
    "facemask": N_("facemask"),
    "nonrebreather_mask": N_("non-rebreather mask"),
    "venturi_mask": N_("Venturi mask"),
    "cpap": N_("CPAP"),
    "bipap": N_("BiPAP"),
    "mechanical_ventilation": N_("mechanical ventilation"),
    # level of consciousness
    "awake": N_("awake"),
    "awakens_spontaneously": N_("awakens spontaneously"),
    "awakens_to_voice": N_("awakens to voice"),
    "awakens_to_tactile": N_("awakens only to tactile stimulus"),
    "unarousable": N_("unarousable, stupor or coma"),
    # seizures
    "clinical_resolved": N_("clinical seizure that resolved rapidly"),
    "eeg_resolved_with_intervention": N_("non-convulsive seizure on EEG, resolved with intervention"),
    "prolonged": N_("prolonged seizure (> 5 min), life-threatening"),
    "repetitive": N_("repetitive seizures without return to baseline"),
    # motor, edema
    "deep_focal_weakness": N_("deep focal motor weakness (hemiparesis, paraparesis)"),
    "focal": N_("focal/local edema on imaging"),
    "diffuse": N_("diffuse cerebral edema on imaging"),
    # drugs
    "norepinephrine": N_("norepinephrine"),
    "epinephrine": N_("epinephrine"),
    "phenylephrine": N_("phenylephrine"),
    "dopamine": N_("dopamine"),
    "vasopressin": N_("vasopressin"),
    "angiotensin_ii": N_("angiotensin II"),
    "paracetamol": N_("paracetamol"),
    "ibuprofen": N_("ibuprofen"),
    "metamizole": N_("metamizole"),
    "aspirin": N_("aspirin"),
    "ketoprofen": N_("ketoprofen"),
    "tocilizumab": N_("tocilizumab"),
    "dexamethasone": N_("dexamethasone"),
    "methylprednisolone": N_("methylprednisolone"),
    "prednisone": N_("prednisone"),
    "prednisolone": N_("prednisolone"),
    "hydrocortisone": N_("hydrocortisone"),
    "anakinra": N_("anakinra"),
    "crystalloid": N_("crystalloid"),
}

THERAPIES: dict[str, str] = {
    "car_t": N_("CAR-T cells"),
    "bispecific": N_("bispecific antibody"),
    "checkpoint_inhibitor": N_("checkpoint inhibitor"),
}

SCALE_SHORT: dict[str, str] = {
    "astct2019:crs": N_("CRS"),
    "astct2019:icans": N_("ICANS"),
}

STATUS: dict[str, str] = {
    "assessed": N_("complete"),
    "incomplete": N_("incomplete: lower bound"),
    "not_assessable": N_("not assessable"),
    "not_applicable": N_("not applicable"),
}

DOMAINS: dict[str, str] = {
    "fever": N_("fever"),
    "fever_masked": N_("fever masked by treatment"),
    "hypotension": N_("hypotension"),
    "hypoxia": N_("hypoxia"),
    "encephalopathy": N_("encephalopathy (ICE or CAPD)"),
    "ice": N_("ICE score"),
    "capd": N_("CAPD score"),
    "consciousness": N_("level of consciousness"),
    "seizure": N_("seizures"),
    "motor": N_("motor findings"),
    "cerebral_edema": N_("cerebral edema"),
    "raised_icp": N_("raised intracranial pressure"),
    "death": N_("death"),
}

PRIORITIES: dict[str, str] = {
    "critical": N_("critical"),
    "high": N_("high"),
    "normal": N_("normal"),
    "low": N_("low"),
}

ALERT_STATUS: dict[str, str] = {
    "open": N_("open"),
    "acknowledged": N_("acknowledged"),
    "resolved": N_("resolved"),
}

ALERT_KINDS: dict[str, str] = {
    "new_toxicity": N_("new toxicity"),
    "grade_increase": N_("grade increase"),
    "missing_assessment": N_("assessment overdue"),
    "dose_limit": N_("dose limit"),
    "patient_report": N_("patient report"),
}

ESCALATION: dict[int, str] = {  # the service's convention (service/alerts.py)
    0: N_("care team of the unit"),
    1: N_("physician in charge"),
    2: N_("senior on call"),
}

ROLES: dict[str, str] = {
    "admin": N_("administrator"),
    "physician": N_("physician"),
    "nurse": N_("nurse"),
    "patient": N_("patient"),
}

ICE_ITEMS: dict[str, str] = {
    "orientation": N_("Orientation: year, month, city, hospital (1 point each)"),
    "naming": N_("Naming: three objects (1 point each)"),
    "commands": N_("Following simple commands"),
    "writing": N_("Writing a standard sentence"),
    "attention": N_("Attention: count backwards from 100 by 10"),
}

SOURCES: dict[str, str] = {
    "api": N_("API"),
    "patient": N_("patient"),
    "demo": N_("demo feed"),
    "web": N_("bedside"),
    "fhir": N_("FHIR import"),
}


def token(value: str | None) -> str:
    """The translated name of a token (the token itself when it has no label)."""
    if value is None:
        return "—"
    label = TOKENS.get(value)
    return gettext(label) if label else value


def label(table: dict[str, str], key: str | None) -> str:
    """``table[key]`` translated (the key itself when absent)."""
    if key is None:
        return "—"
    found = table.get(key)
    return gettext(found) if found else key


def domain(scale_id: str | None, name: str) -> str:
    """A deciding domain's name in the current language: the UI's label of an ASTCT domain, else
    the scale's own text for it (``domains.<name>`` of its rule file, the criteria of the ASCO 2021
    organ scales, the findings of a CTCAE term: « selles par jour au-dessus de l'état de base »
    on a French page, never the key ``stools``), else the name."""
    if name in DOMAINS or scale_id is None:
        return label(DOMAINS, name)
    scale = all_scales().get(scale_id)
    return scale.domain_msg(name).text(current()) if scale is not None else name


def scale_short(scale_id: str) -> str:
    """A scale's short name in the current language: the gettext label of ``SCALE_SHORT`` (CRS,
    ICANS), else the scale's own short name from its data (``short``/``short_fr`` of the ASCO 2021
    organ scales), else its term's name (``term``/``term_fr`` of a CTCAE term: « Augmentation des
    alanine aminotransférases (ALAT) » on a French page, never its id), else its id."""
    if scale_id in SCALE_SHORT:
        return label(SCALE_SHORT, scale_id)
    scale = all_scales().get(scale_id)
    short = getattr(scale, "short", None)
    if isinstance(short, Msg):
        return render(short, current())
    term = getattr(scale, "term_msg", None)
    return render(term(), current()) if callable(term) else scale_id


def named_scales() -> tuple[str, ...]:
    """The scales with a name (``SCALE_SHORT`` and the scales whose data give one: a short name,
    or a CTCAE term's name)."""
    return (
        *SCALE_SHORT,
        *(
            k
            for k, v in all_scales().items()
            if isinstance(getattr(v, "short", None), Msg) or callable(getattr(v, "term_msg", None))
        ),
    )


def code_text(code: str) -> str:
    """What a service code is, in the current language (from ``data/observations.toml``)."""
    spec = codes.vocabulary().get(code)
    if spec is None:
        return code
    return spec.text_fr if current() == "fr" and spec.text_fr else spec.text


def finding_text(name: str) -> str:
    """What a finding is, in the current language (from ``data/findings*.toml``).

    Sub-fields such as ``ice_items.naming`` are named by their item label.
    """
    head, _, sub = name.partition(".")
    if head == "ice_items" and sub in ICE_ITEMS:
        return gettext(ICE_ITEMS[sub])
    spec = finding_vocabulary().get(head)
    if spec is None:
        return name
    return spec.text_fr if current() == "fr" and spec.text_fr else spec.text
