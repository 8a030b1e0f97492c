"""Recommended management for a patient's current grades, for the care team.

The API (``GET /api/v1/patients/{id}/recommendations``) and the web UI (the patient page and the
bedside form) both call :func:`recommendations`: the same access check (a patient outside the
caller's units is not found; a patient account is refused: the recommendations are for the care
team) and the same recommendations (:func:`immunotox.service.recommend.for_patient`).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from ...jurisdiction import Jurisdiction
from ...messages import error as E
from .. import auth, recommend
from ..problems import forbidden
from ..schemas import RecommendationsOut
from .base import get_patient


def recommendations(
    s: Session,
    principal: auth.Principal,
    patient_id: str,
    *,
    now: dt.datetime,
    lang: str = "en",
    jurisdiction: Jurisdiction | None = None,
) -> RecommendationsOut:
    """The recommendations for every current grade >= 1 of the patient, if ``principal`` may see it.

    Raises
    ------
    ApiError
        404 when the patient is not in the caller's units (or does not exist), 403 for a patient
        account.
    """
    p = get_patient(s, principal, patient_id)
    if principal.role == "patient":
        raise forbidden(E("access.recommendations_care_team"))
    return recommend.for_patient(s, p, now=now, lang=lang, jurisdiction=jurisdiction)
