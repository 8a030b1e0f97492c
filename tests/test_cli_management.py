"""``immunotox recommend``, ``immunotox guidelines`` and ``immunotox dose`` through a subprocess.

Expected doses: US ACTEMRA label (8 mg/kg ≥30 kg, 12 mg/kg <30 kg, ≤800 mg) and ASCO CAR-T 2021
(≥8 h apart, ≤3 in 24 h, ≤4 in total); ASCO CAR-T 2021 Table 1 for CRS grade 3 dexamethasone.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]


def ago(hours: float) -> str:
    return (
        (datetime.now(UTC) - timedelta(hours=hours)).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    )


def ok_json(p: subprocess.CompletedProcess[str]) -> Any:
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    return json.loads(p.stdout)


def bad(p: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    for f in fragments:
        assert f in p.stderr, p.stderr


# ------------------------------------------------------------------------------ dose tocilizumab
def test_dose_120_kg_is_capped_at_800_mg(cli: Cli) -> None:
    out = ok_json(cli("dose", "tocilizumab", "--weight-kg", "120", "--age-years", "50"))
    assert (out["dose_mg"], out["allowed"], out["capped"], out["uncapped_mg"]) == (800, True, True, 960)
    assert out["rule_set"] == "tocilizumab-crs"
    assert {s["key"] for s in out["sources"]} >= {"actemra-us-label", "santomasso2021"}
    assert out["doses_in_last_24h"] == 0 and out["total_doses"] == 0


def test_dose_under_30_kg_is_12_mg_per_kg(cli: Cli) -> None:
    out = ok_json(cli("dose", "tocilizumab", "--weight-kg", "25", "--age-years", "8", "--jurisdiction", "US"))
    assert (out["dose_mg"], out["mg_per_kg"]) == (300, 12)


def test_dose_refuses_a_fifth_dose(cli: Cli) -> None:
    args = ["dose", "tocilizumab", "--weight-kg", "70"]
    for h in (60, 50, 40, 30):
        args += ["--given", ago(h)]
    out = ok_json(cli(*args))
    assert out["allowed"] is False and out["next_allowed_at"] is None
    assert out["total_doses"] == 4
    assert out["reasons"][0].startswith("REFUSED") and "maximum of 4 in total" in out["reasons"][0]


def test_dose_refuses_a_fourth_dose_within_24_hours(cli: Cli) -> None:
    at = ago(0)
    first = ago(23)
    out = ok_json(
        cli(
            "dose",
            "tocilizumab",
            "--weight-kg",
            "70",
            "--given",
            first,
            "--given",
            ago(15),
            "--given",
            ago(7),
            "--at",
            at,
        )
    )
    assert out["allowed"] is False
    assert out["doses_in_last_24h"] == 3
    window = next(c for c in out["limits"] if c["kind"] == "max_in_window")
    assert window["ok"] is False
    expected_next = (datetime.fromisoformat(first) + timedelta(hours=24)).isoformat().replace("+00:00", "Z")
    assert out["next_allowed_at"] == expected_next


def test_dose_refuses_less_than_8_hours_after_the_last(cli: Cli) -> None:
    last = ago(6)
    out = ok_json(cli("dose", "tocilizumab", "--weight-kg", "70", "--given", last))
    assert out["allowed"] is False
    expected_next = (datetime.fromisoformat(last) + timedelta(hours=8)).isoformat().replace("+00:00", "Z")
    assert out["next_allowed_at"] == expected_next
    assert "at least 8 h are required" in out["reasons"][0]


def test_dose_with_explicit_times_and_offsets(cli: Cli) -> None:
    out = ok_json(
        cli(
            "dose",
            "tocilizumab",
            "--weight-kg",
            "70",
            "--given",
            "2025-03-01T09:00:00+01:00",
            "--at",
            "2025-03-01T16:00:00Z",
        )
    )
    assert out["allowed"] is True and out["hours_since_last"] == 8
    assert out["following_dose_earliest_at"] == "2025-03-02T00:00:00Z"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--weight-kg", "700"], ["--weight-kg = 700", "plausible body weight range 1–350 kg"]),
        (["--weight-kg", "70", "--given", "2099-01-01T00:00:00Z"], ["--given[0]", "cannot be in the future"]),
        (["--weight-kg", "70", "--given", "2025-01-01T08:00:00"], ["--given[0]", "time without a timezone"]),
        (["--weight-kg", "70", "--at", "tomorrow"], ["--at = 'tomorrow'", "not an ISO 8601 date-time"]),
        (
            ["--weight-kg", "70", "--given", "2025-01-02T08:00:00Z", "--at", "2025-01-01T08:00:00Z"],
            ["--given[0]", "after the time of the intended dose"],
        ),
        (["--weight-kg", "abc"], ["--weight-kg"]),
        ([], ["--weight-kg"]),
    ],
)
def test_dose_bad_input_exits_2_naming_the_option(cli: Cli, args: list[str], fragments: list[str]) -> None:
    bad(cli("dose", "tocilizumab", *args), *fragments)


# ------------------------------------------------------------------------------ dose steroid
def test_dose_steroid_conversion(cli: Cli) -> None:
    out = ok_json(cli("dose", "steroid", "--drug", "dexamethasone", "--mg", "10", "--to", "prednisone"))
    assert out["equivalents_mg"] == {"prednisone": 66.667}
    assert out["table_mg"]["methylprednisolone"] == 4
    full = ok_json(cli("dose", "steroid", "--drug", "Methylprednisolone", "--mg", "4"))
    assert full["equivalents_mg"]["dexamethasone"] == 0.75 and full["equivalents_mg"]["hydrocortisone"] == 20


def test_dose_steroid_bad_input(cli: Cli) -> None:
    bad(
        cli("dose", "steroid", "--drug", "cortisone", "--mg", "10"), "drug = 'cortisone'", "equivalence table"
    )
    bad(
        cli("dose", "steroid", "--drug", "prednisone", "--mg", "10", "--to", "budesonide"),
        "--to = 'budesonide'",
    )
    bad(cli("dose", "steroid", "--drug", "prednisone", "--mg", "-5"), "mg = -5")


def test_dose_outside_the_label_population_gives_no_amount(cli: Cli) -> None:
    out = ok_json(cli("dose", "tocilizumab", "--weight-kg", "9", "--age-years", "1", "--lang", "fr"))
    assert out["dose_mg"] is None and out["withheld"] is True and out["population"]["covered"] is False
    assert (
        "Patient pédiatrique : dose selon le protocole pédiatrique de l'unité." in out["population"]["reason"]
    )
    out = ok_json(cli("dose", "tocilizumab", "--weight-kg", "15", "--product", "tisa-cel"))
    assert out["dose_mg"] is None and out["population"]["missing"] == ["age_years"]
    out = ok_json(cli("dose", "tocilizumab", "--weight-kg", "70", "--product", "axi-cel"))
    assert out["dose_mg"] == 560


# ------------------------------------------------------------------------------ recommend
def test_recommend_child_crs_grade_4_issue_11_item_1(cli: Cli) -> None:
    """Issue 11 item 1: a 4-year-old, 15 kg, after tisa-cel; ASCO 2021 doses are adult doses."""
    ctx = '{"product":"tisa-cel","weight_kg":15,"age_years":4}'
    out = ok_json(
        cli("recommend", "--toxicity", "crs", "--grade", "4", "--context", ctx, "--jurisdiction", "FR")
    )
    methyl = [a for a in out["actions"] if a["dose"] and a["dose"]["drug"] == "methylprednisolone"]
    assert methyl and all(a["dose"]["amount"] is None and a["withheld"] for a in methyl)
    assert not any(
        "500 mg" in a["text"] or "1,000 mg" in (a["escalation"] or a["text"]) for a in out["actions"]
    )
    assert any("Paediatric patient: dose per the unit's paediatric protocol." in w for w in out["warnings"])
    toci = next(a for a in out["actions"] if a["dose"] and a["dose"]["drug"] == "tocilizumab")
    assert toci["dose"]["dose_mg"] == 180  # 12 mg/kg (EU SmPC posology, shipped unverified)
    assert toci["dose"]["check"]["label"]["source"] == "roactemra-eu-smpc"
    assert any(w.startswith("UNVERIFIED: the label items") for w in out["warnings"])


def test_recommend_crs_grade_2(cli: Cli) -> None:
    ctx = {
        "product": "axi-cel",
        "weight_kg": 70,
        "age_years": 54,
        "concurrent_icans_grade": 0,
        "doses_given": [{"drug": "tocilizumab", "time": ago(10)}],
        "current_steroid": {"drug": "dexamethasone", "mg": 10, "interval_h": 12},
    }
    out = ok_json(cli("recommend", "--toxicity", "crs", "--grade", "2", "--context", json.dumps(ctx)))
    assert (out["toxicity"], out["grade"]) == ("crs", 2)
    assert (out["guideline"]["id"], out["guideline"]["version"]) == ("asco2021-cart", "1.0.0")
    for a in out["actions"]:
        assert a["sources"] and all(s["key"] and s["verification"] for s in a["sources"])
        assert a["rule"].startswith(a["guideline"] + "/")
    toci = next(a for a in out["actions"] if a["dose"] and a["dose"]["drug"] == "tocilizumab")
    assert toci["dose"]["dose_mg"] == 560 and toci["dose"]["weight_kg"] == 70 and toci["dose"]["cap"] == 800
    assert toci["interval_h"] == 8 and toci["dose"]["check"]["total_doses"] == 1
    assert [a["order"] for a in out["actions"]] == list(range(1, len(out["actions"]) + 1))
    assert any("earlier corticosteroid" in a["text"] for a in out["actions"])
    assert (
        out["current_steroid"]["mg"] == 20
        and out["current_steroid"]["equivalents_mg"]["prednisone"] == 133.333
    )
    assert out["unverified_actions"] == 1


def test_recommend_from_grade(cli: Cli) -> None:
    findings = {
        "temperature_c": 39.5,
        "vasopressors": ["norepinephrine"],
        "oxygen": "low_flow_nasal_cannula",
        "o2_flow_l_min": 2,
    }
    out = ok_json(
        cli(
            "recommend",
            "--from-grade",
            "astct2019:crs",
            "--findings",
            json.dumps(findings),
            "--context",
            '{"therapy_class": "car_t", "weight_kg": 80, "age_years": 61}',
        )
    )
    assert out["grade"] == 3 and out["grade_input"]["scale"] == "astct2019:crs"
    dex = next(a for a in out["actions"] if a["dose"] and a["dose"]["drug"] == "dexamethasone")
    assert (dex["dose"]["dose_mg"], dex["interval_h"], dex["verification"]) == (10, 6, "V")


def test_recommend_refuses_the_fifth_tocilizumab_dose(cli: Cli) -> None:
    ctx = {
        "therapy_class": "car_t",
        "weight_kg": 70,
        "age_years": 50,
        "doses_given": [{"drug": "tocilizumab", "time": ago(h)} for h in (40, 30, 20, 10)],
    }
    out = ok_json(cli("recommend", "-t", "crs", "-g", "3", "-c", json.dumps(ctx)))
    refused = [a for a in out["actions"] if a["refused"]]
    assert len(refused) == 1 and refused[0]["kind"] == "drug_refused"
    assert "maximum of 4 in total" in refused[0]["text"]


def test_recommend_in_french_with_a_local_set(cli: Cli) -> None:
    out = ok_json(
        cli(
            "recommend",
            "-t",
            "icans",
            "-g",
            "1",
            "-c",
            '{"therapy_class": "car_t", "concurrent_crs_grade": 0}',
            "--guideline",
            "example-local-fr",
            "--lang",
            "fr",
        )
    )
    assert out["guideline"]["id"] == "example-local-fr" and out["lang"] == "fr"
    assert any(a["guideline"] == "example-local-fr@0.1.0" and "SFGM-TC" in a["text"] for a in out["actions"])
    assert any(a["guideline"] == "asco2021-cart@1.0.0" for a in out["actions"])
    assert out["disclaimer"].startswith("Aide à la décision")


def test_recommend_irae(cli: Cli) -> None:
    out = ok_json(
        cli(
            "recommend",
            "-t",
            "ctcae5:colitis",
            "-g",
            "3",
            "-c",
            '{"weight_kg": 60, "age_years": 50, "product": "ipilimumab"}',
        )
    )
    assert out["guideline"]["id"] == "asco2021-ici"
    assert [a["ici_action"]["id"] for a in out["actions"] if a["ici_action"]] == [
        "hold",
        "consider_discontinue",
        "rechallenge",
        "rechallenge",
    ]
    pred = next(a for a in out["actions"] if a["dose"] and a["dose"]["drug"] == "prednisone")
    assert pred["dose"]["dose_mg_range"] == [60, 120]


def test_recommend_verified_only_and_explain(cli: Cli) -> None:
    out = ok_json(
        cli("recommend", "-t", "iec-hs", "-g", "2", "-c", '{"therapy_class": "car_t"}', "--verified-only")
    )
    assert out["actions"] == [] and any("left out on request" in w for w in out["warnings"])
    p = cli(
        "recommend",
        "-t",
        "crs",
        "-g",
        "3",
        "-c",
        '{"therapy_class": "car_t", "weight_kg": 70, "age_years": 50}',
        "--explain",
    )
    assert p.returncode == 0 and "dose: 10 mg, q6h" in p.stdout and "santomasso2021" in p.stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (
            [
                "-t",
                "crs",
                "-g",
                "2",
                "-c",
                '{"therapy_class": "car_t", "weight_kg": 70, "product": "super-cel"}',
            ],
            ["context.product = 'super-cel'", "unknown product"],
        ),
        (
            [
                "-t",
                "crs",
                "-g",
                "2",
                "-c",
                '{"therapy_class": "car_t", "weight_kg": 70}',
                "--guideline",
                "nccn",
            ],
            ["guideline = 'nccn'", "unknown guideline set"],
        ),
        (
            ["-t", "crs", "-g", "9", "-c", '{"therapy_class": "car_t", "weight_kg": 70}'],
            ["grade = 9", "out of range"],
        ),
        (
            ["-t", "crs", "-g", "2", "-c", '{"therapy_class": "car_t"}'],
            ["context.weight_kg = null", "weight-based doses (tocilizumab)"],
        ),
        (["-t", "crs", "-g", "2"], ["context.therapy_class = null", "never a CAR-T default"]),
        (
            ["-t", "crs", "-g", "2", "-c", '{"product": "kymriahh"}'],
            ["context.product = 'kymriahh'", "unknown product"],
        ),
        (["-t", "crs", "-g", "2", "-c", '{"therapy_class": "cart"}'], ["context.therapy_class = 'cart'"]),
        (
            ["-t", "crs", "-g", "2", "-c", '{"product": "pembrolizumab", "therapy_class": "car_t"}'],
            ["context.product = 'pembrolizumab'", "not 'car_t'"],
        ),
        (
            ["-t", "crs", "-g", "2", "-c", '{"product": "axi-cel", "age_years": 121}'],
            ["context.age_years = 121"],
        ),
        (
            ["-t", "crs", "-g", "2", "-c", '{"product": "axi-cel", "age_years": -1}'],
            ["context.age_years = -1"],
        ),
        (
            ["-t", "crs", "-g", "2", "-c", '{"therapy_class": "car_t", "weight_kg": 700}'],
            ["context.weight_kg = 700", "plausible body weight"],
        ),
        (
            [
                "-t",
                "crs",
                "-g",
                "2",
                "-c",
                '{"therapy_class": "car_t", "weight_kg": 70, '
                '"doses_given": [{"drug": "tocilizumab", "time": "2099-01-01T00:00:00Z"}]}',
            ],
            ["context.doses_given[0].time", "future"],
        ),
        (
            ["-t", "icans", "-g", "2", "-c", '{"therapy_class": "car_t", "weight_kg": 70}'],
            ["context.concurrent_crs_grade = null", "missing"],
        ),
        (["-t", "crs", "-g", "2", "-c", "{not json"], ["--context", "not valid JSON"]),
        (["-t", "crs"], ["--grade is required"]),
        (["-g", "2"], ["--toxicity is required"]),
        (["-t", "crs", "-g", "2", "--findings", "{}"], ["--findings needs --from-grade"]),
        (["--from-grade", "astct2019:crs"], ["--from-grade needs --findings"]),
        (["--from-grade", "astct2019:crs", "--findings", '{"temperature_c": 55}'], ["temperature_c = 55"]),
        (
            ["-t", "lee2014:crs", "-g", "2", "-c", '{"therapy_class": "car_t", "weight_kg": 70}'],
            ["regrade with astct2019:crs"],
        ),
        (
            ["-t", "crs", "-g", "2", "-c", '{"therapy_class": "car_t", "weight_kg": 70}', "--lang", "de"],
            ["lang = 'de'"],
        ),
        (
            [
                "-t",
                "crs",
                "-g",
                "2",
                "-c",
                '{"therapy_class": "car_t", "weight_kg": 70}',
                "--guideline-dir",
                "/nonexistent/dir",
            ],
            ["not a directory"],
        ),
    ],
)
def test_recommend_bad_input_exits_2(cli: Cli, args: list[str], fragments: list[str]) -> None:
    bad(cli("recommend", *args), *fragments)


def test_guidelines_list(cli: Cli) -> None:
    p = cli("guidelines", "--json")
    assert p.returncode == 0, p.stderr
    rows = {r["id"]: r for r in json.loads(p.stdout)}
    assert {"asco2021-cart", "asco2021-ici", "example-local-fr"} <= set(rows)
    assert rows["example-local-fr"]["derives_from"] == "asco2021-cart@1.0.0"
    assert "crs" in rows["asco2021-cart"]["default_for"]
    table = cli("guidelines")
    assert table.returncode == 0 and "asco2021-ici" in table.stdout


def test_recommend_in_french_writes_the_doses_in_french(cli: Cli) -> None:
    """Issue 11: ``--lang fr`` shows no English word in a dose line (ICI hepatitis G3, 80 kg)."""
    from tests.test_messages import english_in_dose as english_in

    ctx = '{"product": "pembrolizumab", "weight_kg": 80, "age_years": 60}'
    args = ["recommend", "-t", "hepatitis", "-g", "3", "-c", ctx, "--jurisdiction", "EU"]
    fr = ok_json(cli(*args, "--lang", "fr"))
    doses = [a["dose"]["expression"] for a in fr["actions"] if a["dose"]]
    assert doses == ["1–2 mg/kg/j × 80 kg = 80–160 mg/j"]
    assert not [w for d in doses for w in english_in(d)]
    en = ok_json(cli(*args))
    assert [a["dose"]["expression"] for a in en["actions"] if a["dose"]] == [
        "1–2 mg/kg/day × 80 kg = 80–160 mg/day"
    ]
