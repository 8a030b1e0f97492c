"""Issue 11: every refusal of a command with ``--lang`` (recommend, guidelines, pathway, dose,
report) is written in the language asked — the field (the option), the value as given and what
was expected; the JSON parser's own words are quoted as given. The English lines are unchanged
and keep their ``error:`` prefix (scripts read it)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from immunotox.cli.main import app
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
