"""``immunotox pathway``: a patient's CAR-T steps, upcoming visits and monitoring."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .. import pathway as pw
from ..errors import FindingError, ImmunotoxError
from ..messages import Lang, error, error_message, exc_message
from ._common import fail, lang_option, print_json, refuse_value

_UI: dict[str, dict[str, str]] = {
    "en": {
        "title": "CAR-T pathway — infusion {d0} — today {today} (day {day})",
        "current": "Current phase: {phase}",
        "label": "Label: {label}",
        "unknown": "—",
        "indication": "Indication: {ind}",
        "steps": "Steps",
        "phase": "Phase",
        "from": "From",
        "to": "To",
        "days": "Days",
        "status": "Status",
        "note": "Note",
        "estimated": "(estimated)",
        "done": "done",
        "current_s": "CURRENT",
        "upcoming": "upcoming",
        "visits": "Upcoming visits",
        "date": "Date",
        "day": "Day",
        "visit": "Visit",
        "checks": "Checks",
        "restrictions": "Label periods",
        "what": "What",
        "until": "Until (inclusive)",
        "active": "Active",
        "checked": "Checked",
        "yes": "yes",
        "no": "no",
        "monitoring": "Monitoring now (CRS grade {crs}, ICANS grade {icans})",
        "setting": "Setting",
        "vitals": "Vital signs",
        "ice": "ICE score",
        "every": "every {h} h",
        "at_visits": "at visits",
        "notes": "Notes",
        "transition": "Transition {frm} → {to} on {on}: allowed",
        "bridging": "Bridging",
        "response": "Response",
        "sep": ": ",
    },
    "fr": {
        "title": "Parcours CAR-T — perfusion le {d0} — aujourd'hui {today} (J{day})",
        "current": "Phase actuelle : {phase}",
        "label": "RCP : {label}",
        "unknown": "—",
        "indication": "Indication : {ind}",
        "steps": "Étapes",
        "phase": "Phase",
        "from": "Du",
        "to": "Au",
        "days": "Jours",
        "status": "État",
        "note": "Remarque",
        "estimated": "(estimé)",
        "done": "fait",
        "current_s": "EN COURS",
        "upcoming": "à venir",
        "visits": "Prochaines consultations",
        "date": "Date",
        "day": "Jour",
        "visit": "Consultation",
        "checks": "Contenu",
        "restrictions": "Périodes fixées par le RCP",
        "what": "Consigne",
        "until": "Jusqu'au (inclus)",
        "active": "En cours",
        "checked": "Vérifié",
        "yes": "oui",
        "no": "non",
        "monitoring": "Surveillance actuelle (CRS grade {crs}, ICANS grade {icans})",
        "setting": "Lieu",
        "vitals": "Constantes",
        "ice": "Score ICE",
        "every": "toutes les {h} h",
        "at_visits": "aux consultations",
        "notes": "Remarques",
        "transition": "Transition {frm} → {to} le {on} : autorisée",
        "bridging": "Traitement d'attente",
        "response": "Réponse",
        "sep": " : ",
    },
}

_OPTION = {"audience": "--info", "infusion_date": "--infusion-date"}


def register(app: typer.Typer) -> None:
    app.command("pathway")(pathway)


def _parse_date(option: str, raw: str | None, lang: Lang) -> date | None:
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        refuse_value(lang, option, raw, error("cli_care.not_a_date"))


def _parse_grade(option: str, raw: str | None, lang: Lang) -> int:
    if raw is None:
        return 0
    try:
        return int(raw)
    except ValueError:
        refuse_value(lang, option, raw, error("pathway.grade_range"))


def pathway(
    infusion_date: Annotated[str, typer.Option("--infusion-date", help="Day 0, YYYY-MM-DD")],
    today: Annotated[str | None, typer.Option(help="Date of the view, YYYY-MM-DD (default: today)")] = None,
    phase: Annotated[
        str | None, typer.Option(help="Current phase (default: the planned phase today)")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="Move to this phase today (checked)")] = None,
    crs_grade: Annotated[str | None, typer.Option(help="Current ASTCT CRS grade, 0-4")] = None,
    icans_grade: Annotated[str | None, typer.Option(help="Current ASTCT ICANS grade, 0-4")] = None,
    jurisdiction: Annotated[
        str | None,
        typer.Option(
            help="Whose product information applies: EU, US or an ISO country (FR -> EU). "
            "Never inferred from --lang; without it no label period is given"
        ),
    ] = None,
    product: Annotated[
        str | None,
        typer.Option(help="CAR-T product (id, INN or brand: axi-cel, Kymriah…); the periods depend on it"),
    ] = None,
    label: Annotated[
        str | None,
        typer.Option(
            help="Label version of the jurisdiction (default: its current one): fda-2025, fda-rems, ema-smpc"
        ),
    ] = None,
    indication: Annotated[str, typer.Option(help="oncology or autoimmune")] = "oncology",
    lang: Annotated[str, typer.Option(help="fr or en")] = "en",
    info: Annotated[
        str | None, typer.Option("--info", help="Show the phase text: patient or clinician")
    ] = None,
    screening_date: Annotated[str | None, typer.Option(help="Actual screening date")] = None,
    leukapheresis_date: Annotated[str | None, typer.Option(help="Actual leukapheresis date")] = None,
    lymphodepletion_date: Annotated[
        str | None, typer.Option(help="Actual first day of lymphodepletion")
    ] = None,
    discharge_date: Annotated[str | None, typer.Option(help="Actual discharge date")] = None,
    all_visits: Annotated[bool, typer.Option("--all-visits", help="List every upcoming visit")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")] = False,
) -> None:
    """Show a patient's CAR-T steps with dates, upcoming visits, label periods and monitoring."""
    lg = lang_option(lang)
    d0 = _parse_date("--infusion-date", infusion_date, lg)
    assert d0 is not None
    now = _parse_date("--today", today, lg) or date.today()
    try:
        st = pw.status(
            d0,
            today=now,
            phase=phase,
            to=to,
            crs_grade=_parse_grade("--crs-grade", crs_grade, lg),
            icans_grade=_parse_grade("--icans-grade", icans_grade, lg),
            jurisdiction=jurisdiction,
            product=product,
            label=label,
            indication=indication,
            lang=lg,
            info_audience=info,
            screening_date=_parse_date("--screening-date", screening_date, lg),
            leukapheresis_date=_parse_date("--leukapheresis-date", leukapheresis_date, lg),
            lymphodepletion_date=_parse_date("--lymphodepletion-date", lymphodepletion_date, lg),
            discharge_date=_parse_date("--discharge-date", discharge_date, lg),
        )
    except pw.PathwayError as exc:  # the same refusal under the name of the option
        option = _OPTION.get(exc.field, "--" + exc.field.replace("_", "-"))
        fail(error_message(FindingError(option, exc.value, *exc.texts()), lg))
    except ImmunotoxError as exc:
        fail(exc_message(exc, lg))
    if as_json:
        print_json(st.as_json())
        return
    _render(st, all_visits)


def _render(st: pw.PathwayStatus, all_visits: bool) -> None:
    ui = _UI[st.lang]
    con = Console()
    con.print(ui["title"].format(d0=st.infusion_date, today=st.today, day=st.day), style="bold")
    con.print(ui["current"].format(phase=f"{st.current_title} ({st.current_phase})"), markup=False)
    if st.transition:
        con.print(
            ui["transition"].format(frm=st.transition["from"], to=st.transition["to"], on=st.transition["on"])
        )
    con.print(ui["label"].format(label=st.label["message"]), markup=False)
    con.print(ui["indication"].format(ind=st.indication["title"]), markup=False)
    con.print(f"  {ui['bridging']}{ui['sep']}{st.indication['bridging']}", markup=False)
    con.print(f"  {ui['response']}{ui['sep']}{st.indication['response']}", markup=False)

    steps = Table(title=ui["steps"])
    for col in ("phase", "from", "to", "days", "status", "note"):
        steps.add_column(ui[col], overflow="fold")
    for s in st.steps:
        status = {"done": ui["done"], "current": ui["current_s"], "upcoming": ui["upcoming"]}[s.status]
        days = f"{s.start_day}" if s.end_day in (None, s.start_day) else f"{s.start_day}…{s.end_day}"
        steps.add_row(
            escape(s.title),
            f"{s.start}" + (f" {ui['estimated']}" if s.estimated else ""),
            "" if s.end is None else f"{s.end}",
            days,
            status,
            escape(s.note),
            style="bold" if s.status == "current" else None,
        )
    con.print(steps)

    upcoming = [v for v in st.visits if v.status != "past"]
    visits = Table(title=ui["visits"])
    for col in ("date", "day", "visit", "checks"):
        visits.add_column(ui[col], overflow="fold")
    for v in upcoming if all_visits else upcoming[:6]:
        visits.add_row(f"{v.date}", str(v.day), escape(v.title), escape(v.checks))
    con.print(visits)

    rest = Table(title=f"{ui['restrictions']} — {st.label['id'] or ui['unknown']}")
    for col in ("what", "until", "days", "active", "checked"):
        rest.add_column(ui[col], overflow="fold")
    for r in st.restrictions:
        active = ui["unknown"] if r.active is None else ui["yes"] if r.active else ui["no"]
        rest.add_row(
            escape(r.title),
            escape(r.text) if r.until is None else f"{r.until}",
            ui["unknown"] if r.days is None else str(r.days),
            active,
            r.verification or ui["unknown"],
        )
    con.print(rest)

    m = st.monitoring
    con.print(ui["monitoring"].format(crs=m.crs_grade, icans=m.icans_grade), style="bold")
    every = ui["every"]
    con.print(f"  {ui['setting']}{ui['sep']}{m.setting_title}", markup=False)
    con.print(
        f"  {ui['vitals']}{ui['sep']}"
        + (every.format(h=f"{m.vitals_every_h:g}") if m.vitals_every_h else ui["at_visits"])
    )
    con.print(
        f"  {ui['ice']}{ui['sep']}"
        + (every.format(h=f"{m.ice_every_h:g}") if m.ice_every_h else ui["at_visits"])
    )
    for item in m.items:
        con.print(f"  - {item.text} [{item.basis}{', ' + item.source if item.source else ''}]", markup=False)

    if st.info is not None:
        con.print()
        con.print(st.info.title, style="bold", markup=False)
        if st.info.text:
            con.print(st.info.text, markup=False)
        for i in st.info.items:
            con.print(f"  - {i}", markup=False)
        if st.info.call:
            con.print(st.info.call_title, style="bold", markup=False)
            for c in st.info.call:
                con.print(f"  - {c}", markup=False)
            con.print(st.info.before_calling, markup=False)
            con.print(st.info.emergency, markup=False)
    if st.notes:
        con.print(ui["notes"], style="bold")
        for n in st.notes:
            con.print(f"  - {n}", markup=False)
