"""Issue 11: every refusal of a command with ``--lang`` (recommend, guidelines, pathway, dose,
report) is written in the language asked — the field (the option), the value as given and what
was expected; the JSON parser's own words are quoted as given. The English lines are unchanged
and keep their ``error:`` prefix (scripts read it)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from immunotox.cli.main import app
from immunotox.service.grades import grade_from
from tests.test_messages import english_in

runner = CliRunner()

CTX = '{"therapy_class": "car_t", "weight_kg": 70}'
PATHWAY = ("pathway", "--infusion-date", "2026-12-01", "--today", "2026-12-10")
STEROID = ("dose", "steroid", "--drug", "dexamethasone", "--mg", "10")

# (arguments, the English line, the start of the French line)
CASES: list[tuple[tuple[str, ...], str, str]] = [
    (
        ("recommend", "-t", "crs", "-g", "2", "--context", "{bad"),
        "error: --context = '{bad': not valid JSON (Expecting property name enclosed in double quotes "
        "at line 1, column 2)",
        "error: --context = '{bad' : JSON invalide (« Expecting property name enclosed in double quotes », "
        "ligne 1, colonne 2)",
    ),
    (
        ("recommend", "-t", "crs", "-g", "2", "--context", "[1, 2]"),
        "error: --context = [1, 2]: expected a JSON object",
        "error: --context = [1, 2] : attendu : un objet JSON",
    ),
    (
        ("recommend", "-t", "crs", "--context", CTX),
        "error: --grade is required with --toxicity",
        "error: --grade est requis avec --toxicity",
    ),
    (
        ("recommend", "-g", "2"),
        "error: --toxicity is required (or use --from-grade SCALE --findings JSON)",
        "error: --toxicity est requis (ou bien utilisez --from-grade ÉCHELLE --findings JSON)",
    ),
    (
        ("recommend", "-t", "crs", "-g", "2", "--findings", "{}"),
        "error: --findings needs --from-grade SCALE",
        "error: --findings exige --from-grade ÉCHELLE",
    ),
    (
        ("recommend", "--from-grade", "astct2019:crs"),
        "error: --from-grade needs --findings (the findings to grade)",
        "error: --from-grade exige --findings (les données cliniques à grader)",
    ),
    (
        ("recommend", "--from-grade", "astct2019:crs", "--findings", "{}", "-t", "crs"),
        "error: give either --toxicity/--grade or --from-grade/--findings, not both",
        "error: donnez soit --toxicity/--grade, soit --from-grade/--findings, pas les deux",
    ),
    (
        ("recommend", "--from-grade", "astct2019:crs", "--findings", "[1]", "--context", CTX),
        "error: --findings = [1]: expected a JSON object of findings",
        "error: --findings = [1] : attendu : un objet JSON de données cliniques",
    ),
    (
        ("pathway", "--infusion-date", "2026-13-01"),
        "error: --infusion-date = '2026-13-01': not a date; expected YYYY-MM-DD",
        "error: --infusion-date = '2026-13-01' : n'est pas une date ; attendu : AAAA-MM-JJ",
    ),
    (
        (*PATHWAY, "--discharge-date", "1 Dec"),
        "error: --discharge-date = '1 Dec': not a date; expected YYYY-MM-DD",
        "error: --discharge-date = '1 Dec' : n'est pas une date",
    ),
    (
        (*PATHWAY, "--crs-grade", "two"),
        "error: --crs-grade = 'two': expected a whole number 0-4 (ASTCT grade; 0 = none)",
        "error: --crs-grade = 'two' : attendu : un nombre entier de 0 à 4 (grade ASTCT ; 0 = aucun)",
    ),
    (
        (*STEROID, "--to", "aspirin"),
        "error: --to = 'aspirin': not in the corticosteroid equivalence table; use one of [",
        "error: --to = 'aspirin' : absent de la table d'équivalence des corticoïdes ; "
        "utilisez une valeur parmi [",
    ),
    (
        ("report",),
        "error: RESULTS_DIR is missing: give the folder written by `immunotox timeline`",
        "error: RESULTS_DIR manque : donnez le dossier écrit par `immunotox timeline`",
    ),
    (
        ("report", "results"),
        "error: --clinical is missing: give the clinical table (.parquet or .csv)",
        "error: --clinical manque : donnez la table clinique (.parquet ou .csv)",
    ),
    (
        ("report", "results", "--clinical", "c.csv"),
        "error: --out is missing: give an output folder",
        "error: --out manque : donnez un dossier de sortie",
    ),
    (
        ("report", "results", "--clinical", "c.csv", "--out", "o", "--engine", "duckdb"),
        "error: --engine = 'duckdb': expected embedded or spark",
        "error: --engine = 'duckdb' : attendu : embedded ou spark",
    ),
    (
        ("report", "results", "--clinical", "c.csv", "--out", "o", "--min-cell", "0"),
        "error: --min-cell = '0': expected an integer >= 1",
        "error: --min-cell = '0' : attendu : un nombre entier ≥ 1",
    ),
]


def _error_line(args: tuple[str, ...], lang: str) -> str:
    r = runner.invoke(app, [*args, "--lang", lang])
    assert r.exit_code == 2, (r.exit_code, r.output)
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.output, r.output
    return lines[0]


@pytest.mark.parametrize(("args", "en", "fr"), CASES, ids=[" ".join(c[0][:4]) for c in CASES])
def test_a_cli_refusal_is_written_in_the_language_asked(args: tuple[str, ...], en: str, fr: str) -> None:
    english, french = _error_line(args, "en"), _error_line(args, "fr")
    assert english.startswith(en), english
    assert french.startswith(fr), french
    problem = french.split(" : ", 1)[-1] if " = " in french else french.removeprefix("error: ")
    quoted_parser_words = problem.split("«")[0] + problem.split("»")[-1]
    assert not english_in(quoted_parser_words), english_in(quoted_parser_words)


@pytest.mark.parametrize("args", [("recommend", "-t", "crs", "-g", "2"), PATHWAY, STEROID, ("guidelines",)])
def test_an_unknown_language_is_refused_naming_the_option(args: tuple[str, ...]) -> None:
    """No language to write in: the refusal names --lang and the two languages (in English)."""
    assert _error_line(args, "de") == "error: --lang = 'de': unknown language; expected one of ['en', 'fr']"


def test_pathway_library_refusal_is_shown_under_the_option_name_in_both_languages() -> None:
    """A refusal raised by the pathway library under its field (product) is shown under the
    option (--product), in the language asked when its text is data."""
    english = _error_line((*PATHWAY, "--product", "axicel2"), "en")
    french = _error_line((*PATHWAY, "--product", "axicel2"), "fr")
    assert english.startswith("error: --product = 'axicel2': unknown product"), english
    assert french.startswith("error: --product = 'axicel2' : "), french
    assert not english_in(french.split(" : ", 1)[1]), french


# the CAR-T pathway library's own refusals, shown under the option name (the English lines are
# checked by tests/test_cli_risk_pathway.py::test_pathway_bad_input)
PATHWAY_FR: list[tuple[tuple[str, ...], str]] = [
    (
        ("--phase", "recovery"),
        "--phase = 'recovery' : phase inconnue. Indication : une valeur parmi screening,",
    ),
    (
        ("--phase", "screening", "--to", "infusion"),
        "--to = 'infusion' : transition interdite screening → infusion. Indication : permis après "
        "screening : leukapheresis, off_pathway",
    ),
    (
        ("--phase", "follow_up", "--today", "2026-11-20"),
        "--phase = 'follow_up' : ne peut pas être la phase en cours le 2026-11-20 (J-11) : elle commence "
        "au plus tôt à J1 (perfusion le 2026-12-01). Indication : vérifiez --today et --infusion-date",
    ),
    (
        ("--today", "2026-10-01", "--screening-date", "2026-10-15"),
        "--today = '2026-10-01' : antérieure à la date de sélection (screening) 2026-10-15",
    ),
    (("--crs-grade", "5"), "--crs-grade = 5 : attendu : un nombre entier de 0 à 4 (grade ASTCT ; 0 = aucun)"),
    (("--info", "nurse"), "--info = 'nurse' : public inconnu"),
    (
        ("--label", "fda-2030"),
        "--label = 'fda-2030' : version de RCP inconnue. Indication : une valeur parmi",
    ),
    (
        ("--label", "fda-2025"),
        "--label = 'fda-2025' : version de RCP de la juridiction US, "
        "mais aucune juridiction n'est configurée",
    ),
    (
        ("--label", "fda-2025", "--jurisdiction", "FR"),
        "--label = 'fda-2025' : version de RCP de la juridiction US, alors que la juridiction configurée "
        "est EU. Indication : versions pour EU : ema-smpc",
    ),
    (("--product", "teclistamab"), "--product = 'teclistamab' : produit de classe bispecific : le parcours"),
    (
        ("--lymphodepletion-date", "2026-12-02"),
        "--lymphodepletion-date = '2026-12-02' : n'est pas antérieure à la date de perfusion 2026-12-01",
    ),
    (
        ("--indication", "x"),
        "--indication = 'x' : indication inconnue. Indication : une valeur parmi oncology",
    ),
]


@pytest.mark.parametrize(("extra", "fr"), PATHWAY_FR, ids=[" ".join(c[0]) for c in PATHWAY_FR])
def test_a_pathway_refusal_is_written_in_french(extra: tuple[str, ...], fr: str) -> None:
    args = (
        "pathway",
        "--infusion-date",
        "2026-12-01",
        *(() if "--today" in extra else ("--today", "2026-12-10")),
    )
    french = _error_line((*args, *extra), "fr")
    assert french.startswith(f"error: {fr}"), french
    words = re.sub(r"\b(screening|leukapheresis|clinician|bispecific|oncology|autoimmune)\b", " ", french)
    assert not english_in(words.split(" : ", 1)[1]), english_in(words)
    assert _error_line((*args, *extra), "en").startswith("error: --"), "the English line keeps its prefix"


def test_the_service_keeps_a_refused_findings_french_beside_its_english() -> None:
    """Stored findings that contradict each other are graded without the offending one; the
    refusal is kept in English (``error``, in the fingerprint) and in French (``error_fr``)."""
    inputs: dict[str, Any] = {}
    findings = {"temperature_c": 38.5, "oxygen": "none", "o2_flow_l_min": 2}
    g = grade_from("p1", "astct2019:crs", datetime(2026, 12, 1, tzinfo=UTC), findings, inputs)
    assert inputs["error"].startswith("o2_flow_l_min = 2.0: oxygen flow given while oxygen = 'none'")
    fr = "o2_flow_l_min = 2.0 : débit d'oxygène renseigné alors que oxygen = 'none'"
    assert inputs["error_fr"].startswith(fr), inputs["error_fr"]
    assert g.result.grade == 1 and "o2_flow_l_min" not in findings
