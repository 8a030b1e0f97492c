"""Reading the web forms into the service's API models (``immunotox.service.schemas``).

A form field that cannot be read is refused with :class:`FormError` naming the field (shown
next to it, in the user's language); checks on *values* (ranges, units, tokens, times in the
future) are the service's own, applied when the model is written through its routes. Empty
fields are "not entered", never zero.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..service import validation
from ..service.schemas import AdministrationIn, AssessmentIn, IceItemsIn, SelfReportIn
from .i18n import current, gettext, parse_input_datetime

NEURO_FIELDS = ("consciousness", "seizure", "motor", "cerebral_edema")


class FormError(ValueError):
    """A field of a submitted form that cannot be read (``field`` names the input)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NothingEntered(FormError):
    """The form was submitted empty."""


@dataclass(frozen=True)
class Submitted:
    """A form's values (the last value of each name; lists for repeated names)."""

    values: Mapping[str, str]
    lists: Mapping[str, list[str]]

    def get(self, name: str) -> str:
        return (self.values.get(name) or "").strip()

    def getlist(self, name: str) -> list[str]:
        return [v for v in self.lists.get(name, []) if v]


def number(form: Submitted, name: str) -> float | None:
    """A decimal number (``38.6`` or ``38,6``), or None when the field is empty."""
    raw = form.get(name)
    if not raw:
        return None
    try:
        x = float(raw.replace(",", ".").replace(" ", "").replace("\u202f", ""))
    except ValueError:
        raise FormError(name, gettext("enter a number, e.g. 38.6")) from None
    if not math.isfinite(x):
        raise FormError(name, gettext("enter a number, e.g. 38.6"))
    return x


def integer(form: Submitted, name: str) -> int | None:
    x = number(form, name)
    if x is None:
        return None
    if not x.is_integer():
        raise FormError(name, gettext("enter a whole number"))
    return int(x)


def when(form: Submitted, name: str, now: dt.datetime) -> dt.datetime:
    """The time typed in the ward's time zone, or ``now`` when the field is empty."""
    raw = form.get(name)
    if not raw:
        return now
    try:
        return parse_input_datetime(raw)
    except ValueError:
        raise FormError(name, gettext("enter a date and time")) from None


def _pydantic(exc: ValidationError, prefix: str = "") -> FormError:
    """The first refusal of the service's model, in the page's language (service/validation.py)."""
    err = exc.errors()[0]
    field = prefix + (".".join(str(x) for x in err.get("loc", ())) or "form")
    return FormError(field, validation.error_text(err, field, current()))


def assessment(form: Submitted, now: dt.datetime, item_max: Mapping[str, int]) -> AssessmentIn:
    """The bedside neurological assessment: ICE item by item, CAPD, neurological signs.

    An item left "not assessed" is absent (a partial ICE grades as a range), never 0.
    """
    items: dict[str, int] = {}
    for item, hi in item_max.items():
        v = integer(form, f"ice_{item}")
        if v is None:
            continue
        if not 0 <= v <= hi:
            raise FormError(f"ice_{item}", gettext("between 0 and %(max)d") % {"max": hi})
        items[item] = v
    capd = integer(form, "capd_score")
    neuro: dict[str, Any] = {k: form.get(k) for k in NEURO_FIELDS if form.get(k)}
    icp = form.get("raised_icp_signs")
    if icp in ("true", "false"):
        neuro["raised_icp_signs"] = icp == "true"
    if not items and capd is None and not neuro:
        raise NothingEntered("ice_orientation", gettext("nothing entered: tick at least one item or sign"))
    kind = "ice" if items else "capd" if capd is not None else "neuro"
    comment = form.get("comment") or None
    try:
        return AssessmentIn(
            kind=kind,
            time=when(form, "time", now),
            items=IceItemsIn(**items) if items else None,
            capd_score=capd,
            comment=comment,
            **neuro,
        )
    except ValidationError as exc:
        raise _pydantic(exc) from None


def administration(form: Submitted, now: dt.datetime) -> AdministrationIn:
    """A drug given or a support started (oxygen with its flow)."""
    code = form.get("code")
    value = form.get("value") or code
    dose = number(form, "dose")
    dose_unit = form.get("dose_unit") or None
    flow = number(form, "o2_flow_l_min") if code == "oxygen" else None
    try:
        return AdministrationIn(
            code=code,
            value=value,
            time=when(form, "time", now),
            dose=dose,
            dose_unit=dose_unit if dose is not None else None,
            o2_flow_l_min=flow,
            note=form.get("note") or None,
        )
    except ValidationError as exc:
        raise _pydantic(exc) from None


def self_report(form: Submitted, now: dt.datetime, allowed: set[str]) -> SelfReportIn:
    """A patient's report: temperature (°C or °F), symptoms, a note."""
    temp = number(form, "temperature")
    unit = form.get("temperature_unit") or "Cel"
    symptoms = form.getlist("symptoms")
    for sym in symptoms:
        if sym not in allowed:
            raise FormError("symptoms", gettext("unknown symptom"))
    note = form.get("note") or None
    if temp is None and not symptoms and not note:
        raise FormError("temperature", gettext("enter your temperature, tick a symptom or write a note"))
    try:
        return SelfReportIn(
            time=now,
            temperature=temp,
            temperature_unit=unit,
            symptoms=list(dict.fromkeys(symptoms)),
            note=note,
        )
    except ValidationError as exc:
        raise _pydantic(exc) from None
