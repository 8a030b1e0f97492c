"""The web UI's routes: pages, forms and two small JSON endpoints (ward refresh, ICANS preview),
one module a concern; :data:`router` gathers them.

Writes go through the service's use cases (:mod:`immunotox.service.usecases`), called with the
session's principal once the form's CSRF token has been checked (:mod:`._submit`,
:mod:`._guards`): the same checks, ingest, grading, alerts, audit entries and idempotency as the
JSON API (each form carries an idempotency key, so a form submitted twice is stored once). Reads
use :mod:`..queries` and :mod:`..views`.

==========================================  =======  ==================================================
path                                        who      what (module)
==========================================  =======  ==================================================
``GET /``                                   anyone   to the login, the ward or the portal (``session``)
``GET|POST /login``, ``POST /logout``       anyone   session, CSRF-checked forms (``session``)
``POST /lang``                              anyone   French / English (``session``)
``GET /ward``, ``GET /ward/poll``           staff    dashboard; JSON refresh (``ward``)
``GET /patients/{id}``                      staff    timeline, grades, advice, pathway (``patient``)
``GET /patients/{id}/bedside``              staff    entry forms (``bedside``)
``POST /patients/{id}/vitals``              writers  vital signs, carried forward (``bedside``)
``POST /patients/{id}/assessments``         writers  ICE item by item, CAPD, neuro (``bedside``)
``POST /patients/{id}/icans-preview``       staff    the grade being entered (``icans_preview``)
``POST /patients/{id}/administrations``     writers  drugs, oxygen, ``…/{e}/stop`` (``bedside``)
``GET /alerts``, ``POST /alerts/{a}/ack…``  staff    inbox; acknowledge (``alerts``)
``GET /portal``, ``POST /portal/report``    patient  self-report and triage (``portal``)
==========================================  =======  ==================================================

Writers are the nurses and physicians of the patient's unit.
"""

from __future__ import annotations

from fastapi import APIRouter

from . import alerts, bedside, icans_preview, patient, portal, session, ward

router = APIRouter(include_in_schema=False)
for _part in (session, ward, patient, bedside, icans_preview, alerts, portal):
    router.routes.extend(_part.router.routes)  # the routes themselves, as if declared here

__all__ = ["router"]
