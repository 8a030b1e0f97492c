"""``immunotox dose tocilizumab`` and ``immunotox dose steroid``."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import FindingError
from ..jurisdiction import optional_jurisdiction
from ..management import resolve_product, steroid_equivalents, tocilizumab_dose
from ..messages import error
from ._common import clean_errors, lang_option, print_json, refuse_value

_OPTION_NAMES = {
    "weight_kg": "--weight-kg",
    "at": "--at",
    "age_years": "--age-years",
    "given": "--given",
    "product": "--product",
}


def _as_option(exc: FindingError) -> FindingError:
    """The same error with the field named as the command-line option (weight_kg -> --weight-kg)."""
    head, bracket, rest = exc.field.partition("[")
    name = _OPTION_NAMES.get(head, head) + bracket + rest
    return FindingError(name, exc.value, *exc.texts())


dose_app = typer.Typer(
    name="dose",
    help="Dose safety: tocilizumab limits for CAR-T CRS, corticosteroid equivalence.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(dose_app, name="dose")


@dose_app.command("tocilizumab")
def tocilizumab(
    weight_kg: Annotated[float, typer.Option("--weight-kg", help="Body weight in kg (1–350)")],
    given: Annotated[
        list[str] | None,
        typer.Option(
            "--given", help="Time of a dose already given, ISO 8601 with timezone (repeat once per dose)"
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Time of the intended dose, ISO 8601 with timezone (default now)"),
    ] = None,
    age_years: Annotated[
        float | None,
        typer.Option(
            "--age-years",
            help="Age in years (0–120); without it no amount unless --product is licensed in adults only",
        ),
    ] = None,
    product: Annotated[
        str | None,
        typer.Option("--product", help="CAR-T product given (tisa-cel, axi-cel…): its licensed ages"),
    ] = None,
    jurisdiction: Annotated[
        str | None,
        typer.Option(
            "--jurisdiction", help="Whose tocilizumab label applies: EU, US or an ISO country (FR -> EU)"
        ),
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="Language of the reasons: en or fr")] = "en",
) -> None:
    """Tocilizumab dose for CAR-T CRS and whether the limits allow it at --at; prints JSON.

    8 mg/kg (12 mg/kg under 30 kg), ≤800 mg per dose, ≥8 h apart, ≤3 in 24 h, ≤4 in total, for
    patients aged 2 years and older (label). Outside that population, or without an age when the
    product may be given to children, "dose_mg" is null and "population.reason" says why.
    A refused dose has "allowed": false, the reason and the earliest next time (exit code 0).
    """
    language = lang_option(lang)
    with clean_errors(language):
        try:
            juris = optional_jurisdiction(jurisdiction, "--jurisdiction")
            code = juris.code if juris is not None else None
            licences = resolve_product("product", product).licences(code) if product is not None else None
            decision = tocilizumab_dose(
                weight_kg,
                given or [],
                at,
                age_years=age_years,
                licences=licences,
                jurisdiction=code,
                lang=language,
            )
        except FindingError as exc:
            raise _as_option(exc) from None
    print_json(decision.model_dump(mode="json"))


@dose_app.command("steroid")
def steroid(
    drug: Annotated[str, typer.Option("--drug", help="Corticosteroid given (dexamethasone, prednisone…)")],
    mg: Annotated[float, typer.Option("--mg", help="Dose in mg")],
    to: Annotated[str | None, typer.Option("--to", help="Only this corticosteroid in the output")] = None,
    lang: Annotated[str, typer.Option("--lang", help="Language of the texts: en or fr")] = "en",
) -> None:
    """Convert a corticosteroid dose with the equivalence table; prints JSON."""
    language = lang_option(lang)
    with clean_errors(language):
        conv = steroid_equivalents(mg, drug, lang=language)
    data = conv.model_dump(mode="json")
    if to is not None:
        key = to.strip().lower()
        if key not in data["equivalents_mg"]:
            known = list(data["table_mg"])
            refuse_value(language, "--to", to, error("cli_care.steroid_to", known=str(known)))
        data["equivalents_mg"] = {key: data["equivalents_mg"][key]}
    print_json(data)
