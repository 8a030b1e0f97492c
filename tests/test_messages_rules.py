"""Texts for people beside the rules, in French and English (issue 11), beyond the graded results
of tests/test_messages.py: the refusals the scales raise when findings contradict each other, and
every message of the rule files rendered in both languages (a missing translation or a parameter
written in one language only fails here).
"""

from __future__ import annotations

import ast
import re
import string
import subprocess
import tomllib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, get_args

import pytest

import immunotox
from immunotox.errors import FindingError, UnknownScaleError
from immunotox.labs import check_reference
from immunotox.messages import Msg, entry, error_message, exc_message, render
from immunotox.timeline.live import rule_msg
from immunotox.vocabulary import Method, vocabulary
from tests.test_messages import FILES, english_in

Cli = Callable[..., subprocess.CompletedProcess[str]]


def _ngl(x: float) -> dict[str, Any]:
    return {"value": x, "unit": "ng/L"}


# (scale, findings, field, the French problem — the field and the value are shown as given)
REFUSALS: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "lee2014:crs",
        {"oxygen": "none", "o2_flow_l_min": 3},
        "o2_flow_l_min",
        "débit d'oxygène renseigné alors que oxygen = 'none'. "
        "Indication : indiquez le dispositif d'oxygénation",
    ),
    ("lee2014:crs", {"oxygen": "none", "fio2_pct": 50}, "fio2_pct", "FiO2 supérieure à celle de l'air"),
    (
        "lee2014:crs",
        {"oxygen": "facemask", "fio2_pct": 21},
        "fio2_pct",
        "FiO2 de l'air ambiant alors que oxygen = 'facemask' apporte un supplément d'oxygène",
    ),
    (
        "penn:crs",
        {"vasopressors": [], "vasopressor_high_dose": True},
        "vasopressor_high_dose",
        "renseigné alors que vasopressors = [] (aucun vasopresseur)",
    ),
    (
        "mskcc:crs",
        {"vasopressors": [], "vasopressor_hours": 4},
        "vasopressor_hours",
        "renseigné alors que vasopressors = [] (aucun vasopresseur)",
    ),
    (
        "cartox:crs",
        {"hypotension_refractory": True, "vasopressor_high_dose": False},
        "hypotension_refractory",
        "une hypotension réfractaire aux vasopresseurs à forte dose implique une forte dose",
    ),
    (
        "penn:crs",
        {"hypotension": False, "vasopressors": ["norepinephrine"]},
        "vasopressors",
        "renseigné alors que hypotension = false",
    ),
    (
        "penn:crs",
        {"organ_toxicity_grade": 1, "creatinine_grade": 3},
        "organ_toxicity_grade",
        "inférieur à creatinine_grade 3. Indication : organ_toxicity_grade est le grade de la toxicité "
        "d'organe la plus sévère (cytolyse hépatique exclue), créatinine comprise",
    ),
    (
        "penn:crs",
        {"crs_symptoms": False, "temperature_c": 39.5},
        "crs_symptoms",
        "contredit temperature_c = 39,5 °C (la fièvre est un symptôme du SRC)",
    ),
    (
        "astct2019:crs",
        {"oxygen": "none", "o2_flow_l_min": 2},
        "o2_flow_l_min",
        "débit d'oxygène renseigné alors que oxygen = 'none'",
    ),
    (
        "astct2019:icans",
        {
            "ice_score": 9,
            "ice_items": {"orientation": 4, "naming": 3, "commands": 1, "writing": 1, "attention": 1},
        },
        "ice_score",
        "ne correspond pas à la somme des ice_items (10)",
    ),
    (
        "astct2019:icans",
        {"ice_score": 5, "global_aphasia": True},
        "global_aphasia",
        "renseignée avec ice_score 5 ; une aphasie globale explique un score ICE de 0",
    ),
    (
        "astct2023:iec-hs",
        {"iec_hs_present": False, "iec_hs_grade": 2},
        "iec_hs_grade",
        "renseigné alors que iec_hs_present = false. Indication : omettez le grade",
    ),
    (
        "ctcae5:colitis",
        {"event_present": False, "peritoneal_signs": True},
        "event_present",
        "contredit peritoneal_signs = true (“peritoneal signs”, grade 3). Indication : si ces signes sont "
        "dus à cet événement, event_present vaut true",
    ),
    (
        "ctcae5:febrile-neutropenia",
        {"temperature_c": 37.5, "fever_ge_38c_hours": 3},
        "fever_ge_38c_hours",
        "contredit temperature_c = 37.5 : la température maximale est inférieure à 38,0 °C",
    ),
    (
        "ctcae5:alanine-aminotransferase-increased",
        {"value": 100, "uln": 40, "lln": 50},
        "lln",
        "n'est pas inférieure à uln (40 U/L). Indication : vérifiez l'intervalle de référence et ses unités",
    ),
    (
        "ctcae5:alanine-aminotransferase-increased",
        {"value": 100, "lln": 2e6},
        "lln",
        "hors de l'intervalle",
    ),
    (
        "ctcae5:alanine-aminotransferase-increased",
        {"value": 100, "uln": 40, "baseline": 0},
        "baseline",
        "doit être supérieure à 0 pour les critères exprimés en multiple de la valeur de base",
    ),
    (
        "ctcae5:hypocalcemia",
        {"value": {"value": 2, "unit": "mmol/L"}},
        "calcium_form",
        "requis avec value : les critères portant sur Calcium en dépendent (calcium mesuré (corrigé, "
        "ionisé ou total)). Indication : indiquez calcium_form (une valeur parmi",
    ),
    (
        "ctcae5:hypocalcemia",
        {"value": {"value": 2, "unit": "mmol/L"}, "calcium_form": "total"},
        "albumin",
        "requis avec calcium_form = 'total' : la valeur est gradée comme calcium total corrigé selon "
        "l'albumine (Payne et al. 1973)",
    ),
    (
        "ctcae5:cardiac-troponin-i-increased",
        {"value": _ngl(50), "uln": _ngl(20), "mi_level": _ngl(10)},
        "mi_level",
        "est inférieur à uln",
    ),
]


@pytest.mark.parametrize(
    ("scale", "findings", "field", "fr"), REFUSALS, ids=[f"{r[0]}/{r[2]}" for r in REFUSALS]
)
def test_a_scale_refuses_contradictory_findings_in_french_and_english(
    scale: str, findings: dict[str, Any], field: str, fr: str
) -> None:
    """The field, the value as given and what is expected, in the reader's language (issue 11:
    the CLI with --lang fr and the web pages showed these refusals in English)."""
    with pytest.raises(FindingError) as err:
        immunotox.grade(scale, findings)
    exc = err.value
    assert exc.field == field
    assert exc.problem_msg is not None, f"{scale}: refusal written in the code, in English: {exc}"
    english, french = error_message(exc, "en"), error_message(exc, "fr")
    assert english == str(exc) and french.startswith(f"{field} = ")
    assert fr in french, french
    problem = french.split(" : ", 1)[1]
    assert not english_in(problem), f"English in a French refusal: {english_in(problem)} in {french!r}"
    assert "Hint:" not in french and problem not in english


# Modules that raise a FindingError with an English string (issue 11). This list only shrinks: an
# English refusal anywhere else fails. analysis/_cohort.py catches its own (a dose it cannot check
# is counted, never shown).
_ENGLISH_REFUSALS_LEFT = {"analysis/_cohort.py"}


def _literal_refusals(path: Path) -> list[int]:
    """Lines of ``path`` raising a FindingError whose problem or hint is an English string (a
    literal, or the English rendering of another refusal)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", None))
        if name not in ("FindingError", "UnitError", "PathwayError"):
            continue
        texts = [*node.args[2:4], *(k.value for k in node.keywords if k.arg in ("problem", "hint"))]
        english = [
            a
            for a in texts
            if isinstance(a, ast.JoinedStr)
            or (isinstance(a, ast.Constant) and a.value)
            # exc.problem / exc.hint: the English rendering of another refusal (use *exc.texts())
            or (isinstance(a, ast.Attribute) and a.attr in ("problem", "hint"))
        ]
        if english:
            out.append(node.lineno)
    return out


def test_library_refusals_are_messages_not_english_strings() -> None:
    root = Path(str(resources.files("immunotox")))
    found = {
        str(p.relative_to(root)): lines for p in sorted(root.rglob("*.py")) if (lines := _literal_refusals(p))
    }
    assert not {k: v for k, v in found.items() if k not in _ENGLISH_REFUSALS_LEFT}, found
    for scales_file in ("scales/legacy_crs.py", "scales/ctcae.py", "scales/astct2019.py", "scales/iechs.py"):
        assert (root / scales_file).is_file() and scales_file not in found


# The service's problems and where their text is: the argument that becomes ``detail`` (or a field's
# message). problems.py defines them (and keeps conflict's English-only path, issue 11).
_PROBLEM_TEXT_ARG = {
    "forbidden": 0,
    "not_found": 0,
    "unauthorized": 0,
    "conflict": 0,
    "too_many_requests": 0,
    "field_error": 1,
    "problem": 2,
    "ApiError": 2,
}


def _literal_problems(source: str) -> list[int]:
    """Lines of ``source`` raising a service problem (403, 404, 401, 409, 429, 500…) whose text is
    written in the code (a string literal, an f-string, a concatenation or ``str(...)``) rather than a
    message of data/messages.toml that follows Accept-Language."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", None))
        if name not in _PROBLEM_TEXT_ARG:
            continue
        i = _PROBLEM_TEXT_ARG[name]
        texts = node.args[i : i + 1] + [
            k.value for k in node.keywords if k.arg in ("detail", "message", "what")
        ]
        for a in texts:
            literal = isinstance(a, (ast.JoinedStr, ast.BinOp)) or (
                isinstance(a, ast.Constant) and isinstance(a.value, str)
            )
            if literal or (isinstance(a, ast.Call) and getattr(a.func, "id", None) == "str"):
                out.append(node.lineno)
    return out


def test_service_problems_are_messages_not_english_strings() -> None:
    """Every 403, 404 and other problem the service raises (use cases, routes, dependencies) is a
    message id with its French twin, so its detail follows Accept-Language (issue 11)."""
    root = Path(str(resources.files("immunotox"))) / "service"
    found = {
        str(p.relative_to(root)): lines
        for p in sorted(root.rglob("*.py"))
        if p.name != "problems.py" and (lines := _literal_problems(p.read_text("utf-8")))
    }
    assert not found, f"problems written in English in the code: {found}"
    english = 'raise forbidden("x")\nraise not_found(f"user {u}")\nraise ApiError(500, "t", "d")\n'
    assert _literal_problems(english) == [1, 2, 3], "the scan finds nothing: it is broken"
    assert not _literal_problems('raise not_found(E("access.record_user", user=str(u)))')


def _literal_cli_exits(path: Path) -> list[int]:
    """Lines of a command module calling ``fail`` with a text written in the code (a literal, an
    f-string or ``str(exc)``) rather than a message rendered in the language asked."""
    out = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "fail" and node.args):
            continue
        arg = node.args[0]
        literal = isinstance(arg, (ast.JoinedStr, ast.Constant, ast.BinOp))
        as_str = isinstance(arg, ast.Call) and getattr(arg.func, "id", None) == "str"
        if literal or as_str:
            out.append(node.lineno)
    return out


def test_cli_commands_with_lang_refuse_in_that_language() -> None:
    """A command that takes --lang (grade, score, recommend, guidelines, pathway, dose, report)
    writes no refusal in the code: each is a message of data/messages.toml in both languages."""
    cli_dir = Path(str(resources.files("immunotox"))) / "cli"
    with_lang = [
        p for p in sorted(cli_dir.glob("*.py")) if re.search(r"\blang: Annotated", p.read_text("utf-8"))
    ]
    assert {p.name for p in with_lang} >= {
        "grading.py",
        "score.py",
        "recommend.py",
        "pathway.py",
        "dose.py",
        "report.py",
    }
    found = {p.name: lines for p in with_lang if (lines := _literal_cli_exits(p))}
    assert not found, f"refusals written in English in the code: {found}"
    assert _literal_cli_exits(cli_dir / "simulate.py"), "the scan finds nothing: it is broken"


def _fields(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f]


def _text_tables(node: Any, path: str = "") -> list[str]:
    """The paths of the tables with a ``text`` in a parsed message file (message ids)."""
    out: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("text"), str):
            out.append(path)
        for k, v in node.items():
            out += _text_tables(v, f"{path}.{k}" if path else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _text_tables(v, f"{path}.{i}")
    return out


def _load(name: str) -> dict[str, Any]:
    return tomllib.loads(resources.files("immunotox").joinpath(f"data/{name}.toml").read_text("utf-8"))


# the scales' and the shared message files, and the observation vocabulary (codes and derivation
# rules); the risk-score files have their own test (tests/test_messages.py)
RULE_FILES = [*(n for n in FILES if not n.startswith("risk/")), "observations"]


@pytest.mark.parametrize("name", RULE_FILES)
def test_every_message_of_a_rule_file_renders_in_both_languages(name: str) -> None:
    """Render each text of the file with sample parameters in English and French: a missing
    French text, or a parameter only one language shows, fails here (not on a ward page)."""
    ids = [f"{name}:{p}" for p in _text_tables(_load(name))]
    assert ids
    for msg_id in ids:
        params = {f: 1.5 for f in _fields(entry(msg_id)["text"])}
        en, fr = render(Msg(id=msg_id, params=params), "en"), render(Msg(id=msg_id, params=params), "fr")
        assert en.strip() and fr.strip(), msg_id
        if params:
            assert "1,5" in fr and "1.5" in en, f"{msg_id}: a parameter is not shown in both languages"


def test_every_derivation_method_is_said_in_both_languages() -> None:
    """The rule of reconstruction shown beside each input of a live grade (timeline.live) is data
    with its French twin, for every method of the vocabulary grammar and every derivation."""
    methods = set(get_args(Method))
    said = {k for k, v in _load("observations")["derive_text"].items() if isinstance(v.get("text"), str)}
    assert methods <= said, f"derivation methods without their texts: {sorted(methods - said)}"
    derivations = vocabulary().derivations.values()
    assert {d.method for d in derivations} >= {"window_max", "device", "masking", "series", "event_since"}
    for d in derivations:
        en, fr = render(rule_msg(d), "en"), render(rule_msg(d), "fr")
        if d.method != "masking":  # masking names the therapies, not their codes
            assert all(c in en and c in fr for c in d.codes), (d.finding, en, fr)
        if d.window_h is not None:
            assert f"{d.window_h:g}h" in en and f"{d.window_h:g}".replace(".", ",") + " h" in fr, (en, fr)
        words = re.sub(r"\b(" + "|".join(d.codes) + r")\b", " ", fr)  # codes are identifiers
        assert not english_in(words), f"{d.finding}: English in {fr!r}: {english_in(words)}"
        assert en != fr
    temp = vocabulary().derivation("temperature_c")
    assert render(rule_msg(temp), "en") == "highest temperature in (t-6h, t]"
    assert render(rule_msg(temp), "fr") == "valeur la plus élevée de temperature sur (t-6 h, t]"


@pytest.mark.parametrize(
    ("scale", "findings", "fr"),
    [
        ("penn:crs", '{"crs_symptoms": false, "temperature_c": 39.5}', "crs_symptoms = false : contredit"),
        (
            "ctcae5:colitis",
            '{"event_present": false, "peritoneal_signs": true}',
            "event_present = false : contredit",
        ),
        ("astct2019:crs", "[1, 2]", "--findings = [1, 2] : attendu : un objet JSON de données cliniques"),
        ("astct2019:crs", "{bad", "--findings = '{bad' : JSON invalide (« Expecting property name"),
        ("astct2018:crs", "{}", "échelle inconnue 'astct2018:crs' ; lancez `immunotox scales` pour la liste"),
    ],
)
def test_the_cli_refuses_in_the_language_asked(cli: Cli, scale: str, findings: str, fr: str) -> None:
    p = cli("grade", scale, "--findings", findings, "--lang", "fr")
    assert p.returncode == 2 and p.stderr.startswith(f"error: {fr}"), p.stderr
    problem = p.stderr.split(" : ", 1)[-1]
    assert not english_in(problem), english_in(problem)


def test_an_unknown_scale_is_named_in_both_languages() -> None:
    with pytest.raises(UnknownScaleError) as err:
        immunotox.grade("x:crs", {})
    assert exc_message(err.value, "en") == str(err.value)
    assert str(err.value).endswith(
        "Did you mean 'astct2019:crs', 'lee2014:crs', 'penn:crs', 'mskcc:crs', 'cartox:crs'?"
    )
    fr = exc_message(err.value, "fr")
    assert fr.startswith("échelle inconnue 'x:crs' ; lancez `immunotox scales` pour la liste (")
    assert fr.endswith(
        "Vouliez-vous dire 'astct2019:crs', 'lee2014:crs', 'penn:crs', 'mskcc:crs', 'cartox:crs' ?"
    )


@pytest.mark.parametrize(
    ("low", "high", "unit", "fr"),
    [
        (50, 40, "U/L", "ref_low = 50.0 : n'est pas inférieure à ref_high (40). Indication : l'intervalle"),
        (7, 40, None, "unit = null : un intervalle de référence exige l'unité du résultat"),
        (-1, 40, "U/L", "ref_low = -1.0 : une limite de référence ne peut pas être négative"),
        ("x", 40, "U/L", "ref_low = 'x' : attendu : un nombre écrit simplement"),
        (7.5, 40.5, "kg", "unit = 'kg' : impossible de convertir 'kg' en 'U/L'"),
    ],
)
def test_a_refused_reference_interval_is_explained_in_french(low: Any, high: Any, unit: Any, fr: str) -> None:
    """A result's reference interval (API, FHIR, bedside forms, cohort files) is refused in the
    reader's language; a unit refusal keeps its French when raised again under the unit field."""
    with pytest.raises(FindingError) as err:
        check_reference(vocabulary().code("alt"), low, high, unit)
    french = error_message(err.value, "fr")
    assert french.startswith(fr), french
    assert not english_in(french.split(" : ", 1)[1])
