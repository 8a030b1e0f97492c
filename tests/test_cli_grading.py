"""The grading CLI, through a subprocess: outputs, explanations and bad-input messages."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

import immunotox

Cli = Callable[..., CompletedProcess[str]]

VIGNETTE = (
    '{"temperature_c":39.5,"vasopressors":["norepinephrine"],'
    '"oxygen":"low_flow_nasal_cannula","o2_flow_l_min":2}'
)


def test_issue_example_grades_3_with_reason_and_source(cli: Cli) -> None:
    p = cli("grade", "astct2019:crs", "--findings", VIGNETTE)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert list(out)[:7] == ["scale", "version", "grade", "complete", "missing", "reasons", "sources"]
    assert out["grade"] == 3
    assert out["complete"] is True
    assert out["missing"] == []
    assert any("a vasopressor" in r and "grade 3" in r for r in out["reasons"])
    assert any("10.1016/j.bbmt.2018.12.758" in s for s in out["sources"])


def test_explain_is_readable(cli: Cli) -> None:
    p = cli("grade", "astct2019:crs", "--findings", '{"temperature_c":39,"hypotension":true}', "--explain")
    assert p.returncode == 0, p.stderr
    assert "Grade: 2 (lower bound" in p.stdout
    assert "Missing inputs: vasopressors, oxygen" in p.stdout
    assert "Sources:" in p.stdout


def test_findings_from_file_and_stdin(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    path.write_text(VIGNETTE)
    assert json.loads(cli("grade", "astct2019:crs", "--findings", f"@{path}").stdout)["grade"] == 3
    assert json.loads(cli("grade", "astct2019:crs", "--findings", "-", stdin=VIGNETTE).stdout)["grade"] == 3


def test_scales_lists_every_scale(cli: Cli) -> None:
    p = cli("scales", "--json")
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    assert [r["id"] for r in rows] == list(immunotox.all_scales())
    assert all(r["version"] and r["source"] for r in rows)
    table = cli("scales")
    assert "astct2019:crs" in table.stdout and "10.1016/j.bbmt.2018.12.758" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["astct2019:crs", "--findings", '{"temperature_c":55}'], "error: temperature_c = 55: outside"),
        (["astct2019:icans", "--findings", '{"ice_score":11}'], "error: ice_score = 11: outside"),
        (["astct2019:crs", "--findings", '{"o2_flow_l_min":-2}'], "error: o2_flow_l_min = -2: outside"),
        (["astct2018:crs", "--findings", "{}"], "error: unknown scale 'astct2018:crs'"),
        (["astct2019:crs", "--findings", '{"temp":39}'], "error: temp = 39: unknown finding"),
        (
            ["astct2019:crs", "--findings", '{"temperature_c":"39"}'],
            "error: temperature_c = '39': expected a number",
        ),
        (
            ["astct2019:crs", "--findings", '{"hypotension":"yes"}'],
            "error: hypotension = 'yes': expected true or false",
        ),
        (
            ["astct2019:crs", "--findings", '{"temperature_c":{"value":38,"unit":"degX"}}'],
            "error: temperature_c.unit = 'degX': unknown UCUM unit",
        ),
        (
            ["astct2019:crs", "--findings", '{"temperature_c":{"value":38,"unit":"mg/dL"}}'],
            "error: temperature_c.unit = 'mg/dL': cannot convert",
        ),
        (["astct2019:crs", "--findings", "{not json"], "error: --findings = '{not json': not valid JSON"),
        (["astct2019:crs", "--findings", "[1,2]"], "error: --findings = [1, 2]: expected a JSON object"),
        (["astct2019:crs", "--findings", "@/nonexistent.json"], "error: --findings = '@/nonexistent.json'"),
    ],
)
def test_bad_input_exits_2_with_one_line(cli: Cli, args: list[str], message: str) -> None:
    p = cli("grade", *args)
    assert p.returncode == 2
    assert p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(message), lines[0]
    assert "Traceback" not in p.stderr


def test_demo_prints_the_example_table(cli: Cli) -> None:
    p = cli("demo")
    assert p.returncode == 0, p.stderr
    assert "example cases graded" in p.stdout
    assert "astct2019:crs" in p.stdout and "astct2019:icans" in p.stdout


def test_a_refused_finding_is_explained_in_the_language_asked(cli: Cli) -> None:
    """exit 2, one line naming the field, the value and what is expected, in --lang (issue 11)."""
    bare = json.dumps({"anc_series": [{"day": 0, "value": 2}]})
    fr = cli("grade", "ehaebmt2023:icaht", "--findings", bare, "--lang", "fr")
    assert fr.returncode == 2 and "Traceback" not in fr.stderr
    assert fr.stderr.startswith("error: anc_series[0].value = 2 : un nombre sans unité est refusé")
    assert "p. ex. '10*9/L' ou '/uL'" in fr.stderr
    en = cli("grade", "ehaebmt2023:icaht", "--findings", bare)
    assert en.returncode == 2
    assert en.stderr.startswith("error: anc_series[0].value = 2: a bare number is refused")
