"""``immunotox score``, ``immunotox scores`` and ``immunotox pathway`` through a subprocess."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]


def one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


# ------------------------------------------------------------------------------------------ score
def test_score_easix_json(cli: Cli) -> None:
    r = cli(
        "score",
        "easix",
        "--findings",
        '{"ldh": 500, "creatinine": {"value": 1.5, "unit": "mg/dL"}, '
        '"platelets": {"value": 100, "unit": "10*9/L"}}',
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert list(out)[:3] == ["score", "value", "risk"]
    assert out["value"] == 7.5  # 500 × 1.5 / 100
    assert out["risk"]["category"] == "high" and out["risk"]["source"] == "korell2022"
    assert out["complete"] is True and out["sources"]


def test_score_m_easix_has_no_risk_key_and_converts_crp(cli: Cli) -> None:
    r = cli(
        "score",
        "m-easix",
        "-f",
        '{"ldh": 300, "crp": {"value": 50, "unit": "mg/L"}, "platelets": {"value": 150000, "unit": "/uL"}}',
    )
    out = json.loads(r.stdout)
    assert out["value"] == 10.0  # 300 × 5 mg/dL / 150
    assert "risk" not in out
    assert {c["finding"] for c in out["unit_conversions"]} == {"crp", "platelets"}


def test_score_car_hematotox_points_from_stdin(cli: Cli) -> None:
    findings = {
        "platelets": {"value": 74.9, "unit": "10*9/L"},
        "anc": {"value": 1.2, "unit": "10*9/L"},
        "hemoglobin": 9.0,
        "crp": {"value": 3.0, "unit": "mg/dL"},
        "ferritin": 2001,
    }
    r = cli("score", "car-hematotox", "--findings", "-", stdin=json.dumps(findings))
    out = json.loads(r.stdout)
    assert out["points"] == {"platelets": 2, "anc": 1, "hemoglobin": 1, "crp": 1, "ferritin": 2, "total": 7}
    assert out["value"] == 7 and out["risk"]["label"] == "HT-high"


def test_score_car_hematotox_missing_input(cli: Cli) -> None:
    r = cli(
        "score",
        "car-hematotox",
        "-f",
        '{"platelets": {"value": 200, "unit": "10*9/L"}, "anc": {"value": 2, "unit": "10*9/L"}, '
        '"hemoglobin": 12, "crp": {"value": 1, "unit": "mg/dL"}}',
    )
    out = json.loads(r.stdout)
    assert r.returncode == 0
    assert out["value"] is None and out["risk"] is None and out["missing"] == ["ferritin"]
    assert out["points"]["ferritin"] is None and out["points_range"] == [0, 2]


def test_score_explain(cli: Cli) -> None:
    r = cli(
        "score",
        "easix",
        "--explain",
        "-f",
        '{"ldh": 250, "creatinine": {"value": 1.2, "unit": "mg/dL"}, '
        '"platelets": {"value": 150, "unit": "10*9/L"}}',
    )
    assert r.returncode == 0
    assert "Value: 2" in r.stdout and "Korell" in r.stdout and "UNVERIFIED" in r.stdout


def test_scores_list(cli: Cli) -> None:
    r = cli("scores", "--json")
    rows = json.loads(r.stdout)
    assert [x["id"] for x in rows] == ["easix", "m-easix", "s-easix", "car-hematotox", "hscore"]
    assert {x["id"]: x["cutoff"] for x in rows}["m-easix"] is None
    table = cli("scores")
    assert table.returncode == 0 and "none retrieved" in table.stdout


@pytest.mark.parametrize(
    ("args", "start"),
    [
        (("score", "easy", "-f", "{}"), "error: unknown score 'easy'"),
        (
            (
                "score",
                "easix",
                "-f",
                '{"ldh": 250, "creatinin": 1, "platelets": {"value": 100, "unit": "10*9/L"}}',
            ),
            "error: creatinin = 1",
        ),
        (
            (
                "score",
                "easix",
                "-f",
                '{"ldh": 250, "creatinine": {"value": 1, "unit": "mg/dL"}, '
                '"platelets": {"value": 0, "unit": "10*9/L"}}',
            ),
            'error: platelets = {"value": 0, "unit": "10*9/L"}: easix divides by platelets',
        ),
        (
            (
                "score",
                "easix",
                "-f",
                '{"ldh": 250, "creatinine": {"value": 1, "unit": "mg/dL"}, '
                '"platelets": {"value": -1, "unit": "10*9/L"}}',
            ),
            "error: platelets = -1: outside the physiologically possible range",
        ),
        (
            (
                "score",
                "easix",
                "-f",
                '{"ldh": 1e9, "creatinine": {"value": 1, "unit": "mg/dL"}, '
                '"platelets": {"value": 100, "unit": "10*9/L"}}',
            ),
            "error: ldh = ",
        ),
        (
            (
                "score",
                "easix",
                "-f",
                '{"ldh": 250, "creatinine": {"value": 1, "unit": "furlong"}, '
                '"platelets": {"value": 1, "unit": "10*9/L"}}',
            ),
            "error: creatinine.unit = 'furlong'",
        ),
        # issue 11: a French CRP (mg/L) or creatinine (umol/L) is never read in the US unit
        (
            (
                "score",
                "car-hematotox",
                "-f",
                '{"platelets": {"value": 150, "unit": "10*9/L"}, "anc": {"value": 2, "unit": "10*9/L"}, '
                '"hemoglobin": 12, "crp": 5, "ferritin": 300}',
            ),
            "error: crp = 5: a bare number is refused",
        ),
        (
            (
                "score",
                "m-easix",
                "-f",
                '{"ldh": 300, "crp": 5, "platelets": {"value": 150, "unit": "10*9/L"}}',
            ),
            "error: crp = 5: a bare number",
        ),
        (
            (
                "score",
                "easix",
                "-f",
                '{"ldh": 300, "creatinine": 80, "platelets": {"value": 150, "unit": "10*9/L"}}',
            ),
            "error: creatinine = 80: a bare",
        ),
        # issue 11: a US count in cells/uL is never read in G/L
        (
            ("score", "s-easix", "-f", '{"ldh": 300, "platelets": 150}'),
            "error: platelets = 150: a bare number is refused",
        ),
        (("score", "easix", "-f", "[1]"), "error: findings = [1]"),
        (("score", "easix", "-f", "{not json"), "error: --findings = '{not json'"),
    ],
)
def test_score_bad_input(cli: Cli, args: tuple[str, ...], start: str) -> None:
    assert one_line_error(cli(*args)).startswith(start)


# ---------------------------------------------------------------------------------------- pathway
US = ("--jurisdiction", "US", "--product", "axi-cel")


def test_pathway_table_shows_steps_visits_and_periods(cli: Cli) -> None:
    r = cli("pathway", "--infusion-date", "2026-12-01", "--today", "2026-12-10", *US)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "CAR-T pathway" in out and "day 9" in out
    assert "Discharged, staying near the centre" in out and "CURRENT" in out
    assert "2026-12-15" in out and "2026-12-29" in out  # day 14 and day 28 visits
    assert "Stay near the treating centre" in out and "fda-2025" in out
    assert "Monitoring now" in out


def test_pathway_json(cli: Cli) -> None:
    r = cli(
        "pathway", "--infusion-date", "2026-12-01", "--today", "2026-12-03", "--crs-grade", "3", "--json", *US
    )
    out = json.loads(r.stdout)
    assert out["current_phase"] == "inpatient_observation" and out["day"] == 2
    assert out["monitoring"]["setting"] == "icu" and out["monitoring"]["level"] == 3
    visits = {v["id"]: v["date"] for v in out["visits"]}
    assert visits["d14"] == "2026-12-15" and visits["d28"] == "2026-12-29"
    prox = next(x for x in out["restrictions"] if x["id"] == "proximity")
    assert prox["until"] == "2026-12-15" and prox["active"] is True


def test_pathway_label_version_changes_periods(cli: Cli) -> None:
    r = cli(
        "pathway",
        "--infusion-date",
        "2026-12-01",
        "--today",
        "2026-12-10",
        "--label",
        "fda-rems",
        "--json",
        *US,
    )
    out = json.loads(r.stdout)
    until = {x["id"]: x["until"] for x in out["restrictions"]}
    assert until["proximity"] == "2026-12-29" and until["no_driving"] == "2027-01-26"


def test_pathway_patient_info_in_french(cli: Cli) -> None:
    r = cli(
        "pathway",
        "--infusion-date",
        "2026-12-01",
        "--today",
        "2026-12-10",
        "--info",
        "patient",
        "--lang",
        "fr",
        *US,
    )
    assert r.returncode == 0, r.stderr
    assert "Parcours CAR-T" in r.stdout and "Étapes" in r.stdout
    assert "Restez à proximité du centre pendant au moins 14 jours" in r.stdout
    assert "fièvre à 38 °C" in r.stdout and "écriture" in r.stdout


def test_issue_11_french_patient_is_not_told_us_periods(cli: Cli) -> None:
    """Issue 11 item 2: `pathway --infusion-date 2026-12-01 --lang fr` printed the US fda-2025
    periods (« Pas de conduite … jusqu'au 15 décembre »). French is a language, not a
    jurisdiction: with none configured, no period; with FR/EU, the EU SmPC (unverified here)."""
    base = ("pathway", "--infusion-date", "2026-12-01", "--today", "2026-12-10", "--lang", "fr", "--json")
    bare = json.loads(cli(*base, "--info", "patient").stdout)
    assert bare["label"]["status"] == "no_jurisdiction"
    assert all(x["until"] is None and x["days"] is None for x in bare["restrictions"])
    assert "Aucune juridiction n'est configurée" in bare["info"]["text"]
    assert "2026-12-15" not in json.dumps(bare["restrictions"]) and "14 jours" not in bare["info"]["text"]
    eu = json.loads(cli(*base, "--info", "patient", "--jurisdiction", "FR", "--product", "Kymriah").stdout)
    assert eu["label"]["jurisdiction"] == "EU" and eu["label"]["id"] == "ema-smpc"
    assert all(x["until"] is None and x["verification"] == "M" for x in eu["restrictions"])
    assert "la durée fixée par votre équipe selon le RCP" in eu["info"]["text"]
    assert (
        eu["label"]["product_name"] == "Kymriah (tisagenlecleucel)"
        and "Union européenne" in eu["info"]["text"]
    )


def test_pathway_clinician_info_and_transition(cli: Cli) -> None:
    r = cli(
        "pathway",
        "--infusion-date",
        "2026-12-01",
        "--today",
        "2026-11-26",
        "--phase",
        "manufacturing",
        "--to",
        "lymphodepletion",
        "--info",
        "clinician",
        "--json",
    )
    out = json.loads(r.stdout)
    assert out["transition"] == {"from": "manufacturing", "to": "lymphodepletion", "on": "2026-11-26"}
    assert any("CAR-HEMATOTOX" in i for i in out["info"]["items"])


@pytest.mark.parametrize(
    ("extra", "start"),
    [
        (("--phase", "recovery"), "error: --phase = 'recovery': unknown phase"),
        (
            ("--phase", "screening", "--to", "infusion"),
            "error: --to = 'infusion': illegal transition screening → infusion",
        ),
        (
            ("--today", "2026-11-20", "--phase", "follow_up"),
            "error: --phase = 'follow_up': cannot be the current phase",
        ),
        (
            ("--today", "2026-10-01", "--screening-date", "2026-10-15"),
            "error: --today = '2026-10-01': before the screening date",
        ),
        (
            (
                "--today",
                "2026-12-32",
            ),
            "error: --today = '2026-12-32': not a date",
        ),
        (
            (
                "--crs-grade",
                "5",
            ),
            "error: --crs-grade = 5: expected a whole number 0-4",
        ),
        (
            (
                "--icans-grade",
                "two",
            ),
            "error: --icans-grade = 'two'",
        ),
        (
            (
                "--lang",
                "de",
            ),
            "error: --lang = 'de'",
        ),
        (
            (
                "--info",
                "nurse",
            ),
            "error: --info = 'nurse'",
        ),
        (
            (
                "--label",
                "fda-2030",
            ),
            "error: --label = 'fda-2030': unknown label version",
        ),
        (("--jurisdiction", "Mars"), "error: --jurisdiction = 'Mars': unknown jurisdiction"),
        (("--product", "axicel2"), "error: --product = 'axicel2': unknown product"),
        (("--product", "teclistamab"), "error: --product = 'teclistamab': a bispecific product"),
        (("--label", "fda-2025"), "error: --label = 'fda-2025': a US label version, but no jurisdiction"),
        (
            (
                "--lymphodepletion-date",
                "2026-12-02",
            ),
            "error: --lymphodepletion-date = '2026-12-02'",
        ),
    ],
)
def test_pathway_bad_input(cli: Cli, extra: tuple[str, ...], start: str) -> None:
    args = ["pathway", "--infusion-date", "2026-12-01"]
    if "--today" not in extra:
        args += ["--today", "2026-12-10"]
    message = one_line_error(cli(*args, *extra))
    assert message.startswith(start), message


def test_pathway_bad_infusion_date(cli: Cli) -> None:
    assert one_line_error(cli("pathway", "--infusion-date", "01/12/2026")).startswith(
        "error: --infusion-date = '01/12/2026': not a date"
    )
