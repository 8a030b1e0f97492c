"""The web UI's routes: pages, forms and two small JSON endpoints (ward refresh, ICANS preview).

Writes go through the service's use cases (:mod:`immunotox.service.usecases`), called with the
session's principal once this module has checked the form's CSRF token: the same checks,
ingest, grading, alerts, audit entries and idempotency as the JSON API (each form
carries an idempotency key, so a form submitted twice is stored once). Reads use
:mod:`.queries` and :mod:`.views`.

==========================================  ===============  =====================================
path                                        who              what
==========================================  ===============  =====================================
``GET /``                                   anyone           to the login, the ward or the portal
``GET|POST /login``, ``POST /logout``       anyone           session (CSRF-checked forms)
``POST /lang``                              anyone           French / English
``GET /ward``, ``GET /ward/poll``           staff            dashboard; JSON refresh
``GET /patients/{id}``                      staff            timeline, grades, advice, pathway
``GET /patients/{id}/bedside``              staff            entry forms (writers: nurse, physician)
``POST /patients/{id}/vitals``              writers          vital signs (partial, carried forward)
``POST /patients/{id}/assessments``         writers          ICE item by item, CAPD, neuro signs
``POST /patients/{id}/icans-preview``       staff            the grade of the form being filled
``POST /patients/{id}/administrations``     writers          drugs, oxygen (and ``…/{e}/stop``)
``GET /alerts``, ``POST /alerts/{a}/ack…``  staff            inbox; acknowledge with a comment
``GET /portal``, ``POST /portal/report``    patient          self-report and triage answer
==========================================  ===============  =====================================
"""

from __future__ import annotations

import datetime as dt
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from .. import grade as grade_findings
from ..service import auth
from ..service.models import ClinicalEvent, Patient
from ..service.problems import ApiError
from ..service.schemas import (
    AckIn,
    AlertPublic,
    AssessmentOut,
    BatchObservationIn,
    GradePublic,
    IngestOut,
    LoginIn,
    ObservationBatchIn,
    SelfReportOut,
    StopIn,
)
from ..service.usecases import alerts, base, events
from ..service.usecases.base import Call, Written
from . import chart, forms, i18n, labels, queries, security, views
from .i18n import gettext as _
from .i18n import ngettext
from .pages import Page, error, open_alerts, render, render_text, see_other, to_login
from .pages import json as json_response

router = APIRouter(include_in_schema=False)

ALERT_STATUSES = ("active", "open", "acknowledged", "resolved", "all")
_FORM_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


async def form_data(request: Request) -> forms.Submitted:
    """The submitted form (read once, before the sync route runs in its worker thread)."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    lists = {k: [v for v in form.getlist(k) if isinstance(v, str)] for k in form}
    return forms.Submitted(values, lists)


FormDep = Annotated[forms.Submitted, Depends(form_data)]


def new_key() -> str:
    """An idempotency key for one rendered form."""
    return secrets.token_urlsafe(18)


# ----------------------------------------------------------------------------- service calls
@dataclass
class Outcome:
    """The answer of a service route called on behalf of the session."""

    body: Any = None
    replayed: bool = False
    error: ApiError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def call_service(page: Page, use_case: Callable[..., Written], key: str | None, *args: Any) -> Outcome:
    """Run a use case as the session's user (CSRF already checked by the caller), under the
    form's idempotency key (``web-<key>``): a form submitted twice is stored once."""
    request = page.request
    assert page.principal is not None
    call = Call(
        db=security.app_db(request),
        principal=page.principal,
        ctx=security.request_context(request),
        now=security.app_clock(request).now(),
        settings=security.app_settings(request),
        target=f"{request.method} {request.url.path}",
        key=f"web-{key}" if key and _FORM_KEY.match(key) else None,
    )
    try:
        written = use_case(call, *args)
    except ApiError as exc:  # its texts (detail, each field's message) in the page's language
        return Outcome(error=exc.in_lang(i18n.current()))
    return Outcome(body=written.content, replayed=written.replayed)


def explain_error(exc: ApiError) -> str:
    """A message for people: the service's own words for input errors, ours for access."""
    if exc.status == 403:
        return _("You may not do this for this patient.")
    if exc.status == 404:
        return _("Not found, or not in your units.")
    if any(e.field.startswith("header.") for e in exc.errors):
        return _("This form was already submitted with other values: reload the page to enter new ones.")
    detail = exc.in_lang(i18n.current()).detail  # the service's words in the page's language
    if exc.status == 409:
        return _("Already done, or changed meanwhile: %(detail)s") % {"detail": detail}
    return _("Refused: %(detail)s") % {"detail": detail}


# ----------------------------------------------------------------------------- guards
def staff_page(request: Request) -> tuple[Page, Response | None]:
    page = Page.start(request)
    if page.principal is None:
        return page, to_login(page)
    if not page.is_staff:
        return page, error(page, 403, _("This page is for the care team."))
    return page, None


def load_patient(s: Session, page: Page, patient_id: str, need: base.Need = "read") -> Patient | Response:
    assert page.principal is not None
    try:
        return base.get_patient(s, page.principal, patient_id, need)
    except ApiError as exc:
        status = 404 if exc.status == 404 else 403
        msg = (
            _("No such patient in your units.")
            if status == 404
            else _("You may not do this for this patient.")
        )
        return error(page, status, msg)


def csrf_refused(page: Page) -> Response:
    return error(
        page, 403, _("The form has expired or did not come from this site: reload the page and try again.")
    )


# ----------------------------------------------------------------------------- session
@router.get("/")
def home(request: Request) -> Response:
    page = Page.start(request)
    return see_other(page, page.home())


def login_refusal(username: str, password: str) -> str | None:
    """Why the login form cannot be checked at all (the API's ``LoginIn`` rules: nothing is cut
    to fit), in the user's language; None when it can."""
    try:
        LoginIn(username=username, password=password)
    except ValidationError as exc:
        if exc.errors()[0]["loc"][:1] == ("password",):
            return _("Password refused: 1 to 256 characters, without a NUL character.")
        return _("User name refused: 1 to 64 characters, without a NUL character.")
    return None


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    page = Page.start(request)
    if page.principal is not None:
        return see_other(page, security.safe_next(next, page.home()))
    return render(page, "login.html", {"next": security.safe_next(next, ""), "error": None, "username": ""})


@router.post("/login")
def login_submit(request: Request, form: FormDep) -> Response:
    page = Page.start(request)
    username, password = form.get("username"), form.values.get("password", "")
    shown = username.replace("\x00", "")[:64]  # re-filled into the form; the password never is
    ctx = {"next": security.safe_next(form.get("next"), ""), "username": shown}
    if not page.csrf_ok(form.get(security.CSRF_FIELD)):
        return render(
            page, "login.html", {**ctx, "error": _("The form had expired: please log in again.")}, 403
        )
    refused = login_refusal(username, password)
    if refused is not None:
        return render(page, "login.html", {**ctx, "error": refused}, 422)
    session = security.login(request, username, password)
    if session is None:
        return render(page, "login.html", {**ctx, "error": _("Wrong user name or password.")}, 401)
    if isinstance(session, security.Throttled):
        minutes = math.ceil(session.retry_after / 60)
        wait = ngettext(
            "Too many failed login attempts: try again in %(num)d minute, or from another workstation. "
            "Your account is not locked.",
            "Too many failed login attempts: try again in %(num)d minutes, or from another workstation. "
            "Your account is not locked.",
            minutes,
        ) % {"num": minutes}
        resp = render(page, "login.html", {**ctx, "error": wait}, 429)
        resp.headers["Retry-After"] = str(session.retry_after)
        return resp
    target = security.safe_next(form.get("next"), "/portal" if session.role == "patient" else "/ward")
    resp = RedirectResponse(target, status_code=303)
    security.start_session(resp, security.app_settings(request), session, page.now)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@router.post("/logout")
def logout(request: Request, form: FormDep) -> Response:
    page = Page.start(request)
    if page.principal is not None:
        if not page.csrf_ok(form.get(security.CSRF_FIELD)):
            return csrf_refused(page)
        security.logout(request, page.principal)
    resp = RedirectResponse("/login", status_code=303)
    security.clear_session_cookies(resp, security.app_settings(request))
    return resp


@router.post("/lang")
def switch_language(request: Request, form: FormDep) -> Response:
    page = Page.start(request)
    if not page.csrf_ok(form.get(security.CSRF_FIELD)):
        return csrf_refused(page)
    lang = i18n.check_lang(form.get("lang")) or i18n.DEFAULT_LANG
    resp = see_other(page, security.safe_next(form.get("next"), page.home()))
    security.set_cookie(
        resp, security.app_settings(request), security.LANG_COOKIE, lang, max_age=security.LANG_MAX_AGE_S
    )
    return resp


# ----------------------------------------------------------------------------- ward
def _unit(value: str | None) -> str | None:
    return value or None


@router.get("/ward")
def ward_page(request: Request, unit: str | None = None) -> Response:
    page, refused = staff_page(request)
    if refused is not None:
        return refused
    assert page.principal is not None
    settings = security.app_settings(request)
    with security.app_db(request).session() as s:
        ward = queries.ward(
            s, page.principal, now=page.now, settings=settings, lang=page.lang, unit=_unit(unit)
        )
        ward.stamp = queries.ward_stamp(s, page.principal, page.now, ward.unit)
    return render(page, "ward.html", {"ward": ward})


@router.get("/ward/poll")
def ward_poll(request: Request, unit: str | None = None, stamp: str | None = None) -> Response:
    """``{"stamp", "changed"}`` and, when something changed, the new rows (``html``)."""
    page = Page.start(request)
    if page.principal is None:
        return json_response(page, {"error": "login", "login": "/login"}, 401)
    if not page.is_staff:
        return json_response(page, {"error": "forbidden"}, 403)
    settings = security.app_settings(request)
    with security.app_db(request).session() as s:
        units = dict(queries.visible_unit_list(s, page.principal))
        chosen = unit if unit in units else None
        current = queries.ward_stamp(s, page.principal, page.now, chosen)
        if stamp == current:
            return json_response(page, {"stamp": current, "changed": False})
        ward = queries.ward(s, page.principal, now=page.now, settings=settings, lang=page.lang, unit=chosen)
    return json_response(
        page,
        {
            "stamp": current,
            "changed": True,
            "html": render_text(page, "_ward_rows.html", {"ward": ward}),
            "status": render_text(page, "_ward_status.html", {"ward": ward}),
            "counts": ward.counts,
            "open_alerts": open_alerts(page),
        },
    )


# ----------------------------------------------------------------------------- patient page
@router.get("/patients/{patient_id}")
def patient_page(request: Request, patient_id: str, hours: str = "72") -> Response:
    page = Page.start(request)
    if page.principal is None:
        return to_login(page)
    if page.principal.role == "patient":
        if page.principal.patient_id == patient_id:
            return see_other(page, "/portal")
        return error(page, 404, _("No such patient in your units."))
    if not page.is_staff:
        return error(page, 403, _("This page is for the care team."))
    window = int(hours) if hours.isdigit() and int(hours) in views.WINDOWS_H else 72
    with security.app_db(request).session() as s:
        p = load_patient(s, page, patient_id)
        if isinstance(p, Response):
            return p
        now = page.now
        t0 = now - dt.timedelta(hours=window)
        grades = views.grade_views(s, p, now, page.lang)
        data = views.chart_data(s, p, t0, now)
        status, pathway_note = views.pathway_view(
            p, now, page.lang, grades, "clinician", security.app_settings(request).jurisdiction
        )
        ctx = {
            "patient": p,
            "unit": queries.unit_of(s, p),
            "day": queries.day_label(queries.day_of(p, now)),
            "phase_title": queries.phase_title(
                queries.patient_phase(p, now, security.app_settings(request).jurisdiction), page.lang
            ),
            "grades": grades,
            "chart": chart.render(data),
            "chart_data": data,
            "chart_rows": chart.table_rows(data),
            "hours": window,
            "windows": views.WINDOWS_H,
            "alerts": views.active_alerts(s, p.id),
            "recs": views.recommendations(
                s, page.principal, p, now, page.lang, security.app_settings(request).jurisdiction
            ),
            "pathway": status,
            "pathway_note": pathway_note,
            "recent": views.recent_events(s, p.id),
            "event_value": views.event_value,
            "dose_text": views.dose_text,
            "alert_title": views.alert_title,
            "can_write": auth.can_write_clinical(page.principal, p),
        }
        return render(page, "patient.html", ctx)


# ----------------------------------------------------------------------------- bedside
@dataclass
class Saved:
    """What a bedside write stored and changed, to show after saving."""

    what: str
    lines: list[str] = field(default_factory=list)
    grades: list[queries.Badge] = field(default_factory=list)
    alerts: list[AlertPublic] = field(default_factory=list)
    replayed: bool = False


def _badges(grades: list[GradePublic]) -> list[queries.Badge]:
    return [queries.badge_of(g.scale, g.grade, g.grade_range, g.status, None) for g in grades]


def bedside(
    page: Page,
    s: Session,
    p: Patient,
    *,
    saved: Saved | None = None,
    errors: dict[str, str] | None = None,
    form: forms.Submitted | None = None,
    status: int = 200,
) -> Response:
    assert page.principal is not None
    now = page.now
    recs = views.recommendations(
        s, page.principal, p, now, page.lang, security.app_settings(page.request).jurisdiction
    )
    age = queries.age_years(s, p, now)
    ctx = {
        "patient": p,
        "unit": queries.unit_of(s, p),
        "day": queries.day_label(queries.day_of(p, now)),
        "grades": views.grade_views(s, p, now, page.lang),
        "vitals": views.vital_fields(s, p, now),
        "ice_items": views.ice_item_max(),
        "consciousness": views.token_values("consciousness"),
        "seizure": views.token_values("seizure"),
        "motor": views.token_values("motor"),
        "cerebral_edema": views.token_values("cerebral_edema"),
        "devices": [d for d in views.token_values("oxygen") if d != "none"],
        "pressors": views.token_values("vasopressor"),
        "antipyretics": views.token_values("antipyretic"),
        "steroids": views.token_values("corticosteroid"),
        "running": queries.running_now(s, p.id, now),
        "toci": recs.tocilizumab,
        "rec_notes": recs.notes,
        "age": age,
        "pediatric": age is not None and age < views.pediatric_age_limit(),
        "pediatric_limit": views.pediatric_age_limit(),
        "assessments": views.recent_assessments(s, p.id),
        "can_write": auth.can_write_clinical(page.principal, p),
        "saved": saved,
        "errors": errors or {},
        "form": form,
        "key": new_key,
        "event_value": views.event_value,
        "dose_text": views.dose_text,
        "alert_title": views.alert_title,
    }
    return render(page, "bedside.html", ctx, status)


@router.get("/patients/{patient_id}/bedside")
def bedside_page(request: Request, patient_id: str) -> Response:
    page, refused = staff_page(request)
    if refused is not None:
        return refused
    with security.app_db(request).session() as s:
        p = load_patient(s, page, patient_id)
        if isinstance(p, Response):
            return p
        return bedside(page, s, p)


def _writer(request: Request, patient_id: str, form: forms.Submitted) -> tuple[Page, Response | None]:
    page, refused = staff_page(request)
    if refused is not None:
        return page, refused
    if not page.csrf_ok(form.get(security.CSRF_FIELD)):
        return page, csrf_refused(page)
    return page, None


def _rerender(page: Page, patient_id: str, **kwargs: Any) -> Response:
    with security.app_db(page.request).session() as s:
        p = load_patient(s, page, patient_id)
        if isinstance(p, Response):
            return p
        return bedside(page, s, p, **kwargs)


@router.post("/patients/{patient_id}/vitals")
def save_vitals(request: Request, patient_id: str, form: FormDep) -> Response:
    """Vital signs: empty fields are not saved; a value equal to the one carried forward is saved
    with a note naming the reading it repeats."""
    page, refused = _writer(request, patient_id, form)
    if refused is not None:
        return refused
    from ..service import codes

    vocab = codes.vocabulary()
    rows: list[BatchObservationIn] = []
    shown: list[str] = []
    try:
        t = forms.when(form, "time", page.now)
        with security.app_db(request).session() as s:
            p = load_patient(s, page, patient_id, "clinical")
            if isinstance(p, Response):
                return p
            for code, unit_label, _step in views.VITALS:
                x = forms.number(form, code)
                if x is None:
                    continue
                note = None
                prev_id = form.get(f"prev_{code}")
                prev = s.get(ClinicalEvent, int(prev_id)) if prev_id.isdigit() else None
                carried = (
                    prev is not None
                    and prev.patient_id == p.id
                    and prev.code == code
                    and prev.value_num is not None
                    and abs(prev.value_num - x) < 1e-9
                )
                if carried and prev is not None:
                    note = f"carried forward: unchanged since {prev.time.isoformat()} (event {prev.id})"
                rows.append(
                    BatchObservationIn(
                        patient_id=p.id, code=code, time=t, value=x, unit=vocab[code].unit, note=note
                    )
                )
                line = f"{labels.code_text(code)}: {i18n.fmt_number(x)} {unit_label}"
                if carried:
                    line += " (" + _("carried forward") + ")"
                shown.append(line)
    except forms.FormError as exc:
        return _rerender(page, patient_id, errors={exc.field: exc.message}, form=form, status=422)
    if not rows:
        return _rerender(page, patient_id, errors={"vitals": _("Nothing entered.")}, form=form, status=422)
    out = call_service(
        page,
        events.record_batch,
        form.get("form_key"),
        ObservationBatchIn(observations=rows),
        "now",  # regraded at once: the nurse sees the new grades (and the team the alerts)
    )
    if not out.ok:
        assert out.error is not None
        errs = {"vitals": explain_error(out.error)}
        for e in out.error.errors:  # observations.<i>.value -> the field of that code
            m = re.match(r"observations\.(\d+)\.", e.field)
            if m and int(m.group(1)) < len(rows):
                errs[rows[int(m.group(1))].code] = e.message
        return _rerender(page, patient_id, errors=errs, form=form, status=out.error.status)
    with security.app_db(request).session() as s:
        patient = s.get(Patient, patient_id)
        assert patient is not None  # the write above succeeded for this patient
        grades = _badges(base.current_grades(s, patient, page.now))
    saved = Saved(_("Vital signs saved"), shown, grades, [], out.replayed)
    return _rerender(page, patient_id, saved=saved)


@router.post("/patients/{patient_id}/assessments")
def save_assessment(request: Request, patient_id: str, form: FormDep) -> Response:
    page, refused = _writer(request, patient_id, form)
    if refused is not None:
        return refused
    try:
        body = forms.assessment(form, page.now, views.ice_item_max())
    except forms.FormError as exc:
        return _rerender(page, patient_id, errors={exc.field: exc.message}, form=form, status=422)
    out = call_service(
        page,
        events.record_assessment,
        form.get("form_key"),
        patient_id,
        body,
    )
    if not out.ok:
        assert out.error is not None
        return _rerender(
            page,
            patient_id,
            errors={"assessment": explain_error(out.error)},
            form=form,
            status=out.error.status,
        )
    res = AssessmentOut.model_validate(out.body)
    a = res.assessment
    lines = []
    if a.ice_score is not None:
        lines.append(_("ICE score %(score)d/10") % {"score": a.ice_score})
    elif a.items:
        lines.append(
            _("Partial ICE: %(n)d of %(total)d items entered")
            % {"n": len(a.items), "total": len(views.ice_item_max())}
        )
    if a.capd_score is not None:
        lines.append(_("CAPD score %(score)d") % {"score": a.capd_score})
    for name in ("consciousness", "seizure", "motor", "cerebral_edema"):
        value = getattr(a, name)
        if value is not None:
            lines.append(f"{labels.finding_text(name)}: {labels.token(value)}")
    saved = Saved(_("Assessment saved"), lines, _badges(res.grades), res.alerts, out.replayed)
    return _rerender(page, patient_id, saved=saved)


@router.post("/patients/{patient_id}/icans-preview")
def icans_preview(request: Request, patient_id: str, form: FormDep) -> Response:
    """The ICANS grade of the assessment being entered, by the grading core (nothing stored).

    The browser sends the form as it is filled; the answer is the grade the rule tables give for
    these entries alone (the saved grade also weighs the patient's other recent findings).
    """
    page = Page.start(request)
    if page.principal is None:
        return json_response(page, {"error": "login"}, 401)
    if not page.is_staff:
        return json_response(page, {"error": "forbidden"}, 403)
    supplied = request.headers.get(security.CSRF_HEADER) or form.get(security.CSRF_FIELD)
    if not page.csrf_ok(supplied):
        return json_response(page, {"error": "csrf"}, 403)
    with security.app_db(request).session() as s:
        p = load_patient(s, page, patient_id)
        if isinstance(p, Response):
            return json_response(page, {"error": "not found"}, 404)
        age = queries.age_years(s, p, page.now)
    item_max = views.ice_item_max()
    try:
        body = forms.assessment(form, page.now, item_max)
    except forms.NothingEntered:
        return json_response(page, {"entered": False, "summary": _("Nothing entered yet.")})
    except forms.FormError as exc:
        return json_response(page, {"entered": True, "error": exc.message, "field": exc.field}, 422)
    findings: dict[str, Any] = {}
    items = body.items.model_dump(exclude_none=True) if body.items else {}
    if items:
        findings["ice_items"] = items
    for name in ("capd_score", "consciousness", "seizure", "motor", "cerebral_edema", "raised_icp_signs"):
        value = getattr(body, name)
        if value is not None:
            findings[name] = value
    if age is not None:
        findings["age_years"] = age
    result = grade_findings("astct2019:icans", findings)
    badge = queries.badge_of("astct2019:icans", result.grade, result.grade_range, result.status, None)
    points = sum(items.values())
    ice_text = (
        _("ICE %(score)d/10") % {"score": points}
        if len(items) == len(item_max)
        else _("ICE partial: %(points)d points on %(n)d of %(total)d items")
        % {
            "points": points,
            "n": len(items),
            "total": len(item_max),
        }
        if items
        else ""
    )
    return json_response(
        page,
        {
            "entered": True,
            "ice_score": points if len(items) == len(item_max) else None,
            "ice_text": ice_text,
            "grade": result.grade,
            "range": list(result.grade_range) if result.grade_range is not None else None,
            "status": result.status,
            "badge": badge.text,
            "css": badge.css,
            "summary": badge.description,
            "status_text": labels.label(labels.STATUS, result.status),
            "missing": [labels.finding_text(m) for m in result.missing],
            "detail": (
                _("Not entered: %(list)s")
                % {"list": ", ".join(labels.finding_text(m) for m in result.missing)}
                if result.missing
                else _("All inputs entered.")
            ),
            "deciding": [labels.label(labels.DOMAINS, d) for d in result.deciding_domains],
            "rules": [h.text for h in result.fired],
        },
    )


@router.post("/patients/{patient_id}/administrations")
def save_administration(request: Request, patient_id: str, form: FormDep) -> Response:
    page, refused = _writer(request, patient_id, form)
    if refused is not None:
        return refused
    try:
        body = forms.administration(form, page.now)
    except forms.FormError as exc:
        return _rerender(page, patient_id, errors={"admin": exc.message}, form=form, status=422)
    out = call_service(
        page,
        events.record_administration,
        form.get("form_key"),
        patient_id,
        body,
    )
    if not out.ok:
        assert out.error is not None
        return _rerender(
            page, patient_id, errors={"admin": explain_error(out.error)}, form=form, status=out.error.status
        )
    res = IngestOut.model_validate(out.body)
    e = res.stored[0]
    line = f"{labels.code_text(e.code)}: {labels.token(e.value)}"
    if e.dose is not None:
        line += f" {i18n.fmt_number(e.dose, 2)} {(e.dose_unit or '').replace('ug', 'µg')}"
    if body.o2_flow_l_min is not None:
        line += f", {i18n.fmt_number(body.o2_flow_l_min)} L/min"
    saved = Saved(_("Administration saved"), [line], _badges(res.grades), res.alerts, out.replayed)
    return _rerender(page, patient_id, saved=saved)


@router.post("/patients/{patient_id}/administrations/{event_id}/stop")
def stop_administration(request: Request, patient_id: str, event_id: int, form: FormDep) -> Response:
    page, refused = _writer(request, patient_id, form)
    if refused is not None:
        return refused
    try:
        end = forms.when(form, "time", page.now)
    except forms.FormError as exc:
        return _rerender(page, patient_id, errors={"stop": exc.message}, status=422)
    out = call_service(
        page,
        events.stop_administration,
        form.get("form_key"),
        patient_id,
        event_id,
        StopIn(end_time=end),
    )
    if not out.ok:
        assert out.error is not None
        return _rerender(page, patient_id, errors={"stop": explain_error(out.error)}, status=out.error.status)
    res = IngestOut.model_validate(out.body)
    e = res.stored[0]
    stopped = _("stopped at %(time)s") % {"time": i18n.fmt_datetime(end)}
    line = f"{labels.code_text(e.code)}: {labels.token(e.value)} — {stopped}"
    saved = Saved(_("Stopped"), [line], _badges(res.grades), res.alerts, out.replayed)
    return _rerender(page, patient_id, saved=saved)


# ----------------------------------------------------------------------------- alerts
@router.get("/alerts")
def alerts_page(
    request: Request,
    status: str = "active",
    unit: str | None = None,
    patient: str | None = None,
    done: str | None = None,
) -> Response:
    page, refused = staff_page(request)
    if refused is not None:
        return refused
    acked = int(done) if done is not None and done.isdigit() else None
    return _alerts(page, status, _unit(unit), patient or None, done=acked)


def _alerts(
    page: Page,
    status: str,
    unit: str | None,
    patient: str | None,
    *,
    done: int | None = None,
    problem: str | None = None,
    http_status: int = 200,
) -> Response:
    assert page.principal is not None
    status = status if status in ALERT_STATUSES else "active"
    with security.app_db(page.request).session() as s:
        units = queries.visible_unit_list(s, page.principal)
        unit = unit if unit in dict(units) else None
        rows = views.alert_rows(s, page.principal, status=status, unit=unit, patient_id=patient)
    ctx = {
        "rows": rows,
        "status": status,
        "statuses": ALERT_STATUSES,
        "units": units,
        "unit": unit,
        "patient": patient,
        "done": done,
        "problem": problem,
        "alert_title": views.alert_title,
        "alert_message": views.alert_message,
        "alert_recommendation": views.alert_recommendation,
        "key": new_key,
    }
    return render(page, "alerts.html", ctx, http_status)


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge_alert(request: Request, alert_id: int, form: FormDep) -> Response:
    """Acknowledge with an optional comment (the service audits who, when and the comment)."""
    page, refused = staff_page(request)
    if refused is not None:
        return refused
    if not page.csrf_ok(form.get(security.CSRF_FIELD)):
        return csrf_refused(page)
    back_status = form.get("status") or "active"
    out = call_service(
        page,
        alerts.acknowledge,
        form.get("form_key"),
        alert_id,
        AckIn(comment=form.get("comment")[:2000] or None),
    )
    if not out.ok:
        assert out.error is not None
        return _alerts(
            page,
            back_status,
            _unit(form.get("unit")),
            form.get("patient") or None,
            problem=explain_error(out.error),
            http_status=out.error.status,
        )
    query = f"?status={back_status}&done={alert_id}"
    if form.get("unit"):
        query += f"&unit={form.get('unit')}"
    return see_other(page, "/alerts" + query)


# ----------------------------------------------------------------------------- portal
def _portal(
    page: Page,
    *,
    triage: SelfReportOut | None = None,
    errors: dict[str, str] | None = None,
    form: forms.Submitted | None = None,
    status: int = 200,
) -> Response:
    assert page.principal is not None and page.principal.patient_id is not None
    with security.app_db(page.request).session() as s:
        p = s.get(Patient, page.principal.patient_id)
        if p is None:
            return error(page, 404, _("Your record was not found: call the unit."))
        grades: list[views.GradeView] = []
        status_view, note = views.pathway_view(
            p, page.now, page.lang, grades, "patient", security.app_settings(page.request).jurisdiction
        )
        ctx = {
            "patient": p,
            "phone": views.unit_phone(s, p),
            "symptoms": views.symptom_choices(page.lang, p.therapy_class),
            "symptom_names": dict(views.symptom_choices(page.lang, p.therapy_class)),
            "handout": views.patient_handout(p.therapy_class),
            "pathway": status_view,
            "pathway_note": note,
            "reports": views.own_reports(s, p.id),
            "event_value": views.event_value,
            "fever_c": views.fever_threshold_c(),
            "triage": triage,
            "errors": errors or {},
            "form": form,
            "key": new_key(),
            "day": queries.day_label(queries.day_of(p, page.now)),
        }
    return render(page, "portal.html", ctx, status)


@router.get("/portal")
def portal_page(request: Request) -> Response:
    page = Page.start(request)
    if page.principal is None:
        return to_login(page)
    if page.principal.role != "patient" or page.principal.patient_id is None:
        return see_other(page, "/ward")
    return _portal(page)


@router.post("/portal/report")
def portal_report(request: Request, form: FormDep) -> Response:
    page = Page.start(request)
    if page.principal is None:
        return to_login(page)
    if page.principal.role != "patient" or page.principal.patient_id is None:
        return error(page, 403, _("The self-report is for patients."))
    if not page.csrf_ok(form.get(security.CSRF_FIELD)):
        return csrf_refused(page)
    with security.app_db(request).session() as s:
        me = s.get(Patient, page.principal.patient_id)
        if me is None:
            return error(page, 404, _("Your record was not found: call the unit."))
        allowed = {k for k, _v in views.symptom_choices(page.lang, me.therapy_class)}
    try:
        body = forms.self_report(form, page.now, allowed)
    except forms.FormError as exc:
        return _portal(page, errors={exc.field: exc.message}, form=form, status=422)
    out = call_service(
        page,
        events.self_report,
        form.get("form_key"),
        page.principal.patient_id,
        body,
    )
    if not out.ok:
        assert out.error is not None
        field_name = out.error.errors[0].field if out.error.errors else "temperature"
        key = "temperature" if field_name in ("value", "unit", "temperature") else field_name
        return _portal(page, errors={key: explain_error(out.error)}, form=form, status=out.error.status)
    return _portal(page, triage=SelfReportOut.model_validate(out.body))
