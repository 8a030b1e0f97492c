"""CTCAE v5.0 term scales (and CTCAE v4.03 / v5.0 CRS): data against the NCI text, properties.

The boundary cases of every term are conformance vectors (data/conformance/ctcae5.toml, run by
test_conformance.py). Here: the catalogue holds every v5.0 term of the NCI CSV with its slug,
MedDRA code and verbatim text; the rule tables are validated; and Hypothesis checks that grades
are monotone in the lab value, invariant under unit conversion, within the term's grades, and
that learning one more finding never moves the grade outside the range given before.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import immunotox
from immunotox import units
from immunotox.errors import FindingError, RuleSpecError
from immunotox.findings import FieldSpec
from immunotox.messages import error_message
from immunotox.scales import ctcae_spec
from immunotox.scales.ctcae import CtcaeScale
from immunotox.scales.ctcae_spec import Table, compare, load_table, slugify

# The NCI CTCAE v5.0 / v4.03 text as converted to CSV in KohSoonho/CTCAE (public domain; see
# tests/data/README.md): the focus terms, and the laboratory-graded terms (issue 18). The rule
# tables must reproduce it character for character.
DATA = Path(__file__).parent / "data"
FOCUS_CSV = DATA / "ctcae_focus_terms_v5_and_v403.csv"
LAB_CSV = DATA / "ctcae_lab_terms_v5_and_v403.csv"


def _read(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open(encoding="utf-8")))


def _by_version(rows: list[dict[str, str]], version: str) -> dict[str, dict[str, str]]:
    return {slugify(r["term"]): r for r in rows if r["version"] == version}


FOCUS_ROWS, LAB_ROWS = _read(FOCUS_CSV), _read(LAB_CSV)
FOCUS_V5 = _by_version(FOCUS_ROWS, "5.0")
# the two files overlap (anemia, ALT...); test_the_two_csv_files_agree checks the shared rows
V5 = _by_version(FOCUS_ROWS, "5.0") | _by_version(LAB_ROWS, "5.0")
V4 = _by_version(FOCUS_ROWS, "4.03") | _by_version(LAB_ROWS, "4.03")

# The terms issue 18 asks for (NCI spellings), graded wholly or partly from a laboratory value.
ISSUE18_V5 = {
    "activated-partial-thromboplastin-time-prolonged",
    "inr-increased",
    "blood-lactate-dehydrogenase-increased",
    "cholesterol-high",
    "cd4-lymphocytes-decreased",
    "haptoglobin-decreased",
    "hemoglobin-increased",
    "hypercalcemia",
    "hypocalcemia",
    "hypoglycemia",
    "hyperkalemia",
    "hypokalemia",
    "hypermagnesemia",
    "hypomagnesemia",
    "hypernatremia",
    "hyponatremia",
    "hyperphosphatemia",
    "hypophosphatemia",
    "hypertriglyceridemia",
    "hyperuricemia",
    "hypoalbuminemia",
    "leukocytosis",
    "lymphocyte-count-increased",
    "eosinophilia",
    "acidosis",
    "alkalosis",
    "chronic-kidney-disease",
}
BUILT_V5 = set(FOCUS_V5) | ISSUE18_V5
# v4.03: every term above and every focus term, where v4.03 has it; test_v403_terms_are_those_of_the_nci_text
# checks each against the v4.03 rows.
TARGET_V4 = (set(FOCUS_V5) | ISSUE18_V5) & set(V4)
BUILT_V4 = TARGET_V4


def ctcae_scales() -> dict[str, CtcaeScale]:
    return {k: s for k, s in immunotox.all_scales().items() if isinstance(s, CtcaeScale)}


SCALES = ctcae_scales()
LAB = {k: s for k, s in SCALES.items() if s.term.lab is not None}


# ------------------------------------------------------------------ catalogue against the NCI text
def test_csv_files_hold_the_nci_terms() -> None:
    assert len(FOCUS_V5) == 41
    assert (len(_by_version(LAB_ROWS, "5.0")), len(_by_version(LAB_ROWS, "4.03"))) == (54, 49)
    assert set(V5) >= ISSUE18_V5, sorted(ISSUE18_V5 - set(V5))


def test_the_two_csv_files_agree() -> None:
    """Rows of a term in both files (same version) are identical: one NCI text per term."""
    focus = {(r["version"], r["term"]): r for r in FOCUS_ROWS}
    shared = [(k, r) for r in LAB_ROWS if (k := (r["version"], r["term"])) in focus]
    assert len(shared) >= 40
    assert [k for k, r in shared if focus[k] != r] == []


def _check_against_nci(scale: CtcaeScale, row: dict[str, str], version: str) -> None:
    term = scale.term
    assert (term.term, term.meddra, term.soc) == (row["term"], row["meddra_code"], row["soc"])
    for g in range(1, 6):
        assert term.verbatim.grade_text(g) == row[f"grade{g}"], f"grade {g}"
    assert term.verbatim.definition == row["definition"]
    assert term.verbatim.navigational_note == row["navigational_note"]
    assert scale.title == f"{row['term']} — CTCAE v{version}"
    # a dash means the grade does not exist
    assert scale.grades == (0, *(g for g in range(1, 6) if row[f"grade{g}"] != "-"))
    assert scale.notes, "every scale lists its interpretation decisions"


@pytest.mark.parametrize("slug", sorted(BUILT_V5))
def test_every_v5_term_is_a_scale_with_its_nci_text(slug: str) -> None:
    row = V5[slug]
    scale = immunotox.get_scale(f"ctcae5:{slug}")
    assert isinstance(scale, CtcaeScale)
    _check_against_nci(scale, row, "5.0")
    assert (scale.version, scale.source_keys, scale.family) == ("5.0", ("ctcae5",), "ctcae")


@pytest.mark.parametrize("slug", sorted(BUILT_V4))
def test_v403_terms_are_those_of_the_nci_text(slug: str) -> None:
    scale = immunotox.get_scale(f"ctcae4:{slug}")
    assert isinstance(scale, CtcaeScale)
    _check_against_nci(scale, V4[slug], "4.03")
    assert (scale.version, scale.source_keys, scale.family) == ("4.03", ("ctcae4",), "ctcae")


def test_scale_ids_are_the_slugs() -> None:
    expected = {f"ctcae5:{s}" for s in BUILT_V5} | {f"ctcae4:{s}" for s in BUILT_V4}
    assert set(SCALES) == expected
    assert slugify("Rash maculo-papular") == "rash-maculo-papular"
    assert slugify("Alanine aminotransferase increased") == "alanine-aminotransferase-increased"
    assert slugify("GGT increased") == "ggt-increased"


@pytest.mark.parametrize(
    ("sid", "grades"),
    [
        ("ctcae5:myocarditis", (0, 2, 3, 4, 5)),
        ("ctcae5:rash-maculo-papular", (0, 1, 2, 3)),
        ("ctcae5:pruritus", (0, 1, 2, 3)),
        ("ctcae5:acute-kidney-injury", (0, 3, 4, 5)),
        ("ctcae5:febrile-neutropenia", (0, 3, 4, 5)),
        ("ctcae5:hypoxia", (0, 2, 3, 4, 5)),
        ("ctcae5:cardiac-troponin-i-increased", (0, 1, 3)),
        ("ctcae5:myositis", (0, 1, 2, 3, 4)),
        ("ctcae5:alanine-aminotransferase-increased", (0, 1, 2, 3, 4)),
        ("ctcae5:hepatic-failure", (0, 3, 4, 5)),
    ],
)
def test_dashes_remove_grades(sid: str, grades: tuple[int, ...]) -> None:
    assert immunotox.get_scale(sid).grades == grades


def test_each_term_reads_only_its_findings() -> None:
    for sid, scale in SCALES.items():
        lab = scale.term.lab
        lab_keys = {"value", *lab.refs} if lab else set()
        assert set(scale.findings) == lab_keys | set(scale.term.reads), sid


def test_every_ctcae_finding_is_read_and_bilingual() -> None:
    text = resources.files("immunotox").joinpath("data/findings_ctcae.toml").read_text("utf-8")
    declared = tomllib.loads(text)
    read = {k for s in SCALES.values() for k in s.term.reads}
    assert set(declared) <= read, sorted(set(declared) - read)
    for key, t in declared.items():
        assert t.get("text") and t.get("text_fr"), key


def test_every_grade_of_every_term_has_a_conformance_case() -> None:
    folder = resources.files("immunotox").joinpath("data/conformance")
    seen: set[tuple[str, int]] = set()
    for name in ("ctcae5.toml", "ctcae4.toml"):
        for case in tomllib.loads(folder.joinpath(name).read_text("utf-8"))["case"]:
            if "expect_grade" in case and case.get("expect_complete", True):
                seen.add((case["scale"], case["expect_grade"]))
    lacking = [(sid, g) for sid, s in SCALES.items() for g in s.grades if (sid, g) not in seen]
    assert lacking == []


# ------------------------------------------------------------------ rule tables: validation
def _raw_table() -> dict[str, Any]:
    path = resources.files("immunotox").joinpath("data/scales/ctcae5.toml")
    return tomllib.loads(path.read_text("utf-8"))


def _validate(raw: dict[str, Any]) -> None:
    table = Table.model_validate(raw)
    for slug, term in table.term.items():
        ctcae_spec._validate(f"test.term.{slug}", slug, term, table.meta)


def test_shipped_tables_validate() -> None:
    assert set(load_table("ctcae5").term) == BUILT_V5
    assert set(load_table("ctcae4").term) == BUILT_V4


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t["term"]["diarrhea"]["criteria"][0].update(text="Increase of <5 stools"),
            "not a fragment",
        ),
        (lambda t: t["term"]["rash-maculo-papular"]["criteria"][0].update(grade=4), "marks '-'"),
        (lambda t: t["term"]["diarrhea"]["reads"].append("bsa_pct"), "differs from the findings"),
        (lambda t: t["term"]["colitis"]["criteria"].pop(), "have no criterion"),
        (
            lambda t: t["term"]["diarrhea"]["criteria"][0]["when"][0].update(finding="adl_limitation"),
            "does not suit",
        ),
        (lambda t: t["term"]["diarrhea"].update(term="Diarrhoea"), "slug"),
        (
            lambda t: t["term"]["anemia"]["lab"]["bands"][0]["bounds"][0].update(ref="baseline"),
            "not in lab.refs",
        ),
    ],
)
def test_table_errors_are_refused(edit: Any, message: str) -> None:
    raw = copy.deepcopy(_raw_table())
    edit(raw)
    with pytest.raises(RuleSpecError, match=message):
        _validate(raw)


def test_code_strings_are_refused() -> None:
    raw = copy.deepcopy(_raw_table())
    raw["term"]["cpk-increased"]["lab"]["bands"][0]["bounds"][0]["op"] = "eval"
    with pytest.raises(Exception, match="op"):
        Table.model_validate(raw)


# ------------------------------------------------------------------ comparators and reasons
def test_compare_is_exact_on_printed_thresholds() -> None:
    assert 1.5 * 1.2 != 1.8  # binary floating point ...
    assert compare(1.8, "<=", 1.5 * 1.2) and not compare(1.8, ">", 1.5 * 1.2)  # ... but on the threshold
    assert compare(1.81, ">", 1.5 * 1.2)
    assert not compare(0.5, "<", 0.5) and compare(0.49, "<", 0.5)


def test_reasons_quote_the_criterion_that_fired() -> None:
    r = immunotox.grade(
        "ctcae5:alanine-aminotransferase-increased", {"value": 250, "uln": 40, "baseline": 30}
    )
    assert (r.grade, r.complete, r.deciding_domains) == (3, True, ["value"])
    assert r.reasons[0] == (
        "ALT 250 U/L = 6.25 × ULN (40 U/L); baseline 30 U/L, normal (<= ULN): “>5.0 - 20.0 x ULN” → grade 3"
    )
    # in French the NCI wording stays a quotation in English, the rest is French (issue 11)
    assert r.in_lang("fr").reasons[0] == (
        "ALAT 250 U/L = 6,25 × LSN (40 U/L) ; valeur de base 30 U/L, normale (<= LSN) : "
        "“>5.0 - 20.0 x ULN” → grade 3"
    )
    assert r.fired[0].grade == 3
    assert "ctcae5" in r.sources[0] or "CTCAE" in r.sources[0]


def test_missing_baseline_says_which_reading_gives_which_grade() -> None:
    r = immunotox.grade("ctcae5:alanine-aminotransferase-increased", {"value": 250, "uln": 40})
    assert r.missing == ["baseline"] and r.grade_range == (0, 3) and not r.complete
    assert (
        "baseline not given — if baseline normal (<= ULN): grade 3; "
        "if baseline abnormal (> ULN): grade 0–3 depending on its value"
    ) in r.reasons
    assert (
        "Sans valeur de base — si valeur de base normale (<= LSN) : grade 3 ; "
        "si valeur de base anormale (> LSN) : grade 0–3 selon sa valeur"
    ) in r.in_lang("fr").reasons


def test_missing_uln_is_never_grade_0_silently() -> None:
    r = immunotox.grade("ctcae5:cpk-increased", {"value": 5000})
    assert r.status == "not_assessable" and r.grade is None and r.missing == ["uln"]


def test_converted_units_are_shown_in_reasons() -> None:
    r = immunotox.grade(
        "ctcae5:creatinine-increased",
        {
            "value": {"value": 160, "unit": "umol/L"},
            "uln": {"value": 1.2, "unit": "mg/dL"},
            "baseline": {"value": 100, "unit": "umol/L"},
        },
    )
    assert r.grade == 2
    assert any("given as 160 umol/L" in x and ">1.5 - 3.0 x baseline" in x for x in r.reasons)


def test_implied_presence_and_contradiction() -> None:
    r = immunotox.grade("ctcae5:colitis", {"abdominal_pain": "present"})
    assert r.grade == 2 and "event_present" not in r.missing
    with pytest.raises(FindingError, match=r"^event_present = false: contradicts peritoneal_signs = true"):
        immunotox.grade("ctcae5:colitis", {"event_present": False, "peritoneal_signs": True})


# ------------------------------------------------------------------ property tests
def _lab_inputs(scale: CtcaeScale, data: st.DataObject, value: float | None = None) -> dict[str, Any]:
    """Complete, consistent inputs for a lab term (numbers on a 0.01 grid, see below)."""
    lab = scale.term.lab
    assert lab is not None
    lo, hi = lab.range
    top = min(hi * 0.99, 5000.0)  # below the range end: a round trip through another unit may pass it
    # Values on a grid of 0.01 are either exactly on a printed threshold or at least 1e-6
    # (relative) away from it, far outside the equality tolerance REL_TOL = 1e-8: random floats
    # landing within the tolerance would make the unit-conversion comparison depend on rounding.
    bottom = max(1, math.ceil(lo * 101))  # above the range start, for the same reason as top
    grid = st.integers(min_value=bottom, max_value=int(top * 100)).map(lambda n: n / 100)
    f: dict[str, Any] = {"value": value if value is not None else data.draw(grid, label="value")}
    for ref in lab.refs:
        f[ref] = data.draw(grid, label=ref)
    if "lln" in f and "uln" in f:
        f["lln"], f["uln"] = sorted((f["lln"], f["uln"]))
        assume(f["lln"] < f["uln"])
    if "mi_level" in f:
        f["mi_level"] = max(f["mi_level"], f["uln"])
    for key in scale.term.reads:
        f[key] = data.draw(_finding_value(scale.findings[key]), label=key)
    return f


def _finding_value(spec: FieldSpec) -> st.SearchStrategy[Any]:
    if spec.kind == "bool":
        return st.booleans()
    if spec.kind == "enum":
        return st.sampled_from(spec.values)
    if spec.kind == "enum_list":
        return st.lists(st.sampled_from(spec.values), max_size=3, unique=True)
    assert spec.range is not None
    lo, hi = spec.range
    if spec.kind == "integer":
        return st.integers(min_value=int(lo), max_value=int(hi))
    return st.integers(min_value=math.ceil(lo * 10), max_value=math.floor(hi * 10)).map(lambda n: n / 10)


def _grade(sid: str, f: dict[str, Any]) -> immunotox.GradeResult | None:
    try:
        return immunotox.grade(sid, f)
    except FindingError:
        return None  # an inconsistent combination (e.g. an implication contradicted): refused


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sid=st.sampled_from(sorted(LAB)), data=st.data())
def test_grade_is_monotone_in_the_lab_value(sid: str, data: st.DataObject) -> None:
    scale = LAB[sid]
    lab = scale.term.lab
    assert lab is not None
    f = _lab_inputs(scale, data)
    other = (
        data.draw(st.integers(min_value=1, max_value=int(min(lab.range[1], 5000.0) * 100)), label="v2") / 100
    )
    lo_v, hi_v = sorted((f["value"], other))
    r_lo = _grade(sid, f | {"value": lo_v})
    r_hi = _grade(sid, f | {"value": hi_v})
    assume(r_lo is not None and r_hi is not None)
    assert r_lo is not None and r_hi is not None
    assert r_lo.grade is not None and r_hi.grade is not None
    if lab.direction == "increased":
        assert r_hi.grade >= r_lo.grade, (f, lo_v, hi_v)
    else:
        assert r_lo.grade >= r_hi.grade, (f, lo_v, hi_v)


# analyte unit -> other units accepted for it (molar ones only where the analyte has a molar mass)
ALT_UNITS = {
    "mg/dL": ["umol/L", "mmol/L", "mg/L"],
    "mmol/L": ["umol/L", "mg/dL"],
    "10*9/L": ["/uL", "/mm3", "10*3/uL"],
    "g/dL": ["g/L", "mmol/L"],
    "g/L": ["g/dL", "mg/dL"],
    "ng/L": ["ng/mL", "ug/L"],
    "U/L": ["[IU]/L"],
    "s": ["min"],
}


def _convertible(lab: Any, unit: str) -> bool:
    try:
        units.convert("value", 1.0, lab.unit, unit, lab.molar_mass)
    except FindingError:
        return False
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sid=st.sampled_from(sorted(LAB)), data=st.data())
def test_unit_converted_input_grades_the_same(sid: str, data: st.DataObject) -> None:
    scale = LAB[sid]
    lab = scale.term.lab
    assert lab is not None
    units_ok = [lab.unit, *(u for u in ALT_UNITS.get(lab.unit, []) if _convertible(lab, u))]
    unit = data.draw(st.sampled_from(units_ok), label="unit")
    f = _lab_inputs(scale, data)
    converted = dict(f)
    for key in ("value", *lab.refs):
        if key in f and data.draw(st.booleans(), label=f"convert {key}"):
            x = units.convert(key, f[key], lab.unit, unit, lab.molar_mass)
            converted[key] = {"value": x, "unit": unit}
    a, b = _grade(sid, f), _grade(sid, converted)
    assume(a is not None)
    assert a is not None and b is not None
    assert (a.grade, a.grade_range, a.missing) == (b.grade, b.grade_range, b.missing), (f, converted)


def _random_findings(scale: CtcaeScale, data: st.DataObject) -> dict[str, Any]:
    keys = data.draw(st.lists(st.sampled_from(sorted(scale.findings)), unique=True), label="keys")
    return {k: data.draw(_finding_value(scale.findings[k]), label=k) for k in keys}


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sid=st.sampled_from(sorted(SCALES)), data=st.data())
def test_every_grade_is_within_the_terms_grades(sid: str, data: st.DataObject) -> None:
    scale = SCALES[sid]
    r = _grade(sid, _random_findings(scale, data))
    assume(r is not None)
    assert r is not None
    lo, hi = r.grade_range
    assert lo in scale.grades and hi in scale.grades
    assert r.grade is None or r.grade in scale.grades
    assert r.complete == (not r.missing)
    if r.complete:
        assert lo == hi


# documented defaults (absent = alive / attributed to CRS): learning them is not "more of the same"
DEFAULTED = {"death", "death_due_to_crs", "attribution_other_cause"}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sid=st.sampled_from(sorted(SCALES)), data=st.data())
def test_one_more_finding_stays_within_the_range_given_before(sid: str, data: st.DataObject) -> None:
    """Missing data is never read as normal: the range given without a finding holds the grade with it."""
    scale = SCALES[sid]
    f = _random_findings(scale, data)
    absent = sorted(set(scale.findings) - set(f) - DEFAULTED)
    assume(absent)
    key = data.draw(st.sampled_from(absent), label="added")
    more = f | {key: data.draw(_finding_value(scale.findings[key]), label=f"{key} value")}
    before, after = _grade(sid, f), _grade(sid, more)
    assume(before is not None and after is not None)
    assert before is not None and after is not None
    assert before.grade_range[0] <= after.grade_range[0] <= after.grade_range[1] <= before.grade_range[1], (
        f,
        more,
    )


# ------------------------------------------------------------------ command line
def test_cli_grades_a_ctcae_term(cli: Any) -> None:
    findings = {"value": {"value": 1500, "unit": "/uL"}, "lln": {"value": 2.0, "unit": "10*9/L"}}
    p = cli("grade", "ctcae5:neutrophil-count-decreased", "--findings", json.dumps(findings))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert (out["scale"], out["version"], out["grade"], out["complete"]) == (
        "ctcae5:neutrophil-count-decreased",
        "5.0",
        1,
        True,
    )
    assert any("<LLN - 1.5 x 10e9 /L" in r for r in out["reasons"])


def test_cli_refuses_an_inconsistent_reference_interval(cli: Any) -> None:
    p = cli(
        "grade",
        "ctcae5:neutrophil-count-decreased",
        "--findings",
        json.dumps({k: {"value": v, "unit": "10*9/L"} for k, v in (("value", 1), ("lln", 8), ("uln", 7))}),
    )
    assert p.returncode == 2
    assert p.stderr.strip().startswith("error: lln = 8")
    assert len(p.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------ cell counts are never bare (issue 11)
COUNT_TERMS = (
    "neutrophil-count-decreased",
    "platelet-count-decreased",
    "lymphocyte-count-decreased",
    "white-blood-cell-decreased",
    "leukocytosis",
    "lymphocyte-count-increased",
    "eosinophilia",
)


@pytest.mark.parametrize(
    "sid",
    [f"ctcae5:{t}" for t in COUNT_TERMS] + [f"ctcae4:{t}" for t in COUNT_TERMS if t != "eosinophilia"],
)
def test_a_bare_cell_count_is_refused_in_every_count_term(sid: str) -> None:
    """G/L (French labs) or cells/uL (US labs): a bare count is refused, never read as 10*9/L."""
    with pytest.raises(FindingError) as err:
        immunotox.grade(sid, {"value": 150})
    assert (err.value.field, err.value.value) == ("value", 150)
    assert "a bare number is refused" in str(err.value) and "'10*9/L' or '/uL'" in str(err.value)


def test_a_bare_platelet_count_is_refused_in_english_and_french() -> None:
    lln = {"value": 150, "unit": "10*9/L"}
    with pytest.raises(FindingError) as err:
        immunotox.grade("ctcae5:platelet-count-decreased", {"value": 150, "lln": lln})
    assert str(err.value).startswith("value = 150: a bare number is refused")
    assert "e.g. '10*9/L' or '/uL'" in str(err.value)
    french = error_message(err.value, "fr")
    assert (
        french.startswith("value = 150 : un nombre sans unité est refusé") and "'10*9/L' ou '/uL'" in french
    )
    with pytest.raises(FindingError) as bare_lln:
        immunotox.grade(
            "ctcae5:platelet-count-decreased", {"value": {"value": 150, "unit": "/uL"}, "lln": 150}
        )
    assert (bare_lln.value.field, bare_lln.value.value) == ("lln", 150)


@pytest.mark.parametrize("version", ["ctcae5", "ctcae4"])
def test_150_platelets_per_ul_is_grade_4_and_150_g_per_l_is_normal(version: str) -> None:
    """The defect: a US count of 150/uL given bare was read as 150 G/L (grade 0 instead of 4)."""
    sid = f"{version}:platelet-count-decreased"
    lln = {"value": 150, "unit": "10*9/L"}
    us = immunotox.grade(sid, {"value": {"value": 150, "unit": "/uL"}, "lln": lln})
    assert (us.grade, us.complete) == (4, True)  # 0.15 x 10*9/L < 25.0 x 10*9/L
    french = immunotox.grade(sid, {"value": {"value": 150, "unit": "10*9/L"}, "lln": lln})
    assert (french.grade, french.complete) == (0, True)  # at the LLN, not below it
    thousands = immunotox.grade(sid, {"value": {"value": 150, "unit": "10*3/uL"}, "lln": lln})
    assert thousands.grade == 0


# ------------------------------------------------------------------ laboratory terms (issue 18)
def test_cli_grades_hypokalemia_with_its_reason_and_source(cli: Any) -> None:
    """Issue 18's check: 2.4 mmol/L with LLN 3.5 mmol/L is grade 4 (<2.5 mmol/L), complete."""
    findings = {"value": {"value": 2.4, "unit": "mmol/L"}, "lln": {"value": 3.5, "unit": "mmol/L"}}
    p = cli("grade", "ctcae5:hypokalemia", "--findings", json.dumps(findings))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert (out["grade"], out["complete"], out["missing"]) == (4, True, [])
    assert out["reasons"][0] == "Potassium 2.4 mmol/L: “<2.5 mmol/L” → grade 4"
    assert out["sources"][0].startswith("National Cancer Institute") and "CTCAE) v5.0" in out["sources"][0]


@pytest.mark.parametrize(
    ("sid", "findings", "first_line"),
    [
        (
            "ctcae5:hypocalcemia",
            {"value": {"value": 2.0, "unit": "mmol/L"}, "lln": {"value": 2.15, "unit": "mmol/L"}},
            "error: calcium_form = null: required with value: the Calcium criteria depend on it",
        ),
        (
            "ctcae4:hypercalcemia",
            {"value": {"value": 2.0, "unit": "mmol/L"}, "calcium_form": "total"},
            "error: albumin = null: required with calcium_form = 'total': the value is graded as total "
            "calcium corrected for albumin by Payne et al. 1973",
        ),
        (
            "ctcae5:hypercalcemia",
            {"value": {"value": 2.0, "unit": "mmol/L"}, "calcium_form": "free"},
            "error: calcium_form = 'free': not one of ['corrected', 'ionized', 'total']",
        ),
        (
            "ctcae5:acidosis",
            {"value": 6.4, "lln": 7.35},
            "error: value = 6.4: outside the physiologically possible range 6.5–8",
        ),
        (
            "ctcae5:chronic-kidney-disease",
            {"value": {"value": 45, "unit": "mL/min"}},
            "error: value.unit = 'mL/min': cannot convert 'mL/min' to 'mL/min/{1.73_m2}' for value",
        ),
        (
            "ctcae5:hypoalbuminemia",
            {"value": {"value": 0.5, "unit": "mmol/L"}},
            "error: value.unit = 'mmol/L': cannot convert 'mmol/L' to 'g/dL' for value",
        ),
    ],
)
def test_cli_refuses_bad_laboratory_input_in_one_line(
    cli: Any, sid: str, findings: Any, first_line: str
) -> None:
    p = cli("grade", sid, "--findings", json.dumps(findings))
    assert p.returncode == 2
    assert p.stderr.strip().startswith(first_line), p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_v403_glucose_without_fasting_status_is_a_range_naming_it() -> None:
    no_qualifier = {"hospitalization_indicated": False, "life_threatening": False}
    glucose = {
        "value": {"value": 11.0, "unit": "mmol/L"},
        "uln": {"value": 100, "unit": "mg/dL"},
    }  # 198.2 mg/dL
    r = immunotox.grade("ctcae4:hyperglycemia", glucose | no_qualifier)
    assert (r.grade, r.grade_range, r.complete, r.missing) == (0, (0, 2), False, ["fasting"])
    assert immunotox.grade("ctcae4:hyperglycemia", glucose | no_qualifier | {"fasting": False}).grade == 0
    assert (
        immunotox.grade(
            "ctcae4:hyperglycemia",
            {
                "value": {"value": 198.2, "unit": "mg/dL"},
                "uln": {"value": 100, "unit": "mg/dL"},
                "fasting": True,
            },
        ).grade
        == 2
    )


def test_consequence_graded_terms_give_a_lower_bound_from_the_value() -> None:
    r = immunotox.grade(
        "ctcae5:hyperuricemia",
        {"value": {"value": 600, "unit": "umol/L"}, "uln": {"value": 7.0, "unit": "mg/dL"}},
    )
    assert (r.grade, r.grade_range) == (1, (1, 4))
    assert r.missing == ["physiologic_consequences", "life_threatening"]
    v4 = immunotox.grade(
        "ctcae4:hyperuricemia",
        {"value": {"value": 600, "unit": "umol/L"}, "uln": {"value": 7.0, "unit": "mg/dL"}},
    )
    assert (v4.grade, v4.complete) == (4, True)  # 10.09 mg/dL: '>10 mg/dL' is grade 4 in v4.03


def test_timeline_grades_the_laboratory_terms_of_a_laboratory_code() -> None:
    """The cohort engine grades a CTCAE laboratory term at every result of the observation code
    ``[terms]`` of data/reference_intervals.toml names for it (the v4.03 term of the same name
    too: timeline/_labs.py); a term of an analyte no observation code carries (potassium…) is
    not picked up."""
    from immunotox import labs
    from immunotox.timeline._run import select_scales

    picked = {s for s in select_scales("all") if s.startswith("ctcae")}
    lab_terms = {sid for sid, s in SCALES.items() if s.term.lab is not None}
    v5 = {s for scales in labs.lab_terms().values() for s in scales}
    expected = v5 | {s.replace("ctcae5:", "ctcae4:") for s in v5}
    assert picked & lab_terms == expected
    assert "ctcae5:hyperkalemia" not in picked  # no potassium code in data/observations.toml
    assert "ctcae5:fever" in picked  # terms whose findings the timeline derives


def test_docs_list_every_term_with_its_notes() -> None:
    """docs/ctcae.md has a section per term naming both scale ids, with the term's notes."""
    text = (Path(__file__).parent.parent / "docs" / "ctcae.md").read_text("utf-8")
    for sid, scale in SCALES.items():
        assert f"`{sid}`" in text, sid
        for note in scale.term.notes:
            if note.startswith("CTCAE v4.03 prints the same grade criteria as v5.0"):
                continue  # the docs say "same grade criteria as v5.0" and list the v5.0 notes
            assert note in text, (sid, note[:60])


def test_total_calcium_is_corrected_by_payne_1973_named_in_the_reasons() -> None:
    """Payne et al. 1973: adjusted calcium = calcium - albumin + 4.0 (mg/dL, g/dL)."""
    base = {"symptom_severity": "none", "hospitalization_indicated": False, "life_threatening": False}
    total = {
        "value": {"value": 7.2, "unit": "mg/dL"},
        "calcium_form": "total",
        "albumin": {"value": 2.8, "unit": "g/dL"},
        "lln": {"value": 2.15, "unit": "mmol/L"},
    }
    r = immunotox.grade("ctcae5:hypocalcemia", total | base)
    adjusted_mmol_l = (7.2 - 2.8 + 4.0) * 10 / 40.078  # 8.4 mg/dL = 2.0959 mmol/L
    assert (r.grade, r.complete) == (1, True)  # <LLN - 2.0 mmol/L
    assert f"Calcium {adjusted_mmol_l:.6g} mmol/L (given as 7.2 mg/dL with `albumin` 2.8 g/dL" in r.reasons[0]
    assert "Payne et al. 1973" in r.reasons[0] and "doi:10.1136/bmj.4.5893.643" in r.reasons[0]
    # the same number read as a corrected calcium (1.7965 mmol/L) is grade 2: the correction matters
    unadjusted = immunotox.grade("ctcae5:hypocalcemia", total | base | {"calcium_form": "corrected"})
    assert unadjusted.grade == 2
