"""Run every conformance vector shipped in ``immunotox/data/conformance/*.toml``."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

import pytest

import immunotox
from immunotox.errors import FindingError


def load_cases() -> list[dict[str, Any]]:
    folder = resources.files("immunotox").joinpath("data/conformance")
    cases: list[dict[str, Any]] = []
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if not path.name.endswith(".toml"):
            continue
        doc = tomllib.loads(path.read_text("utf-8"))
        bases = doc.get("bases", {})
        for case in doc.get("case", []):
            findings = dict(bases[case["base"]]) if "base" in case else {}
            for key in case.get("drop", []):
                findings.pop(key, None)
            findings.update(case.get("findings", {}))
            cases.append(case | {"findings": findings, "file": path.name})
    return cases


CASES = load_cases()


def test_case_ids_are_unique() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_every_case_names_its_source() -> None:
    assert all(c.get("source") for c in CASES)


def test_every_scale_has_conformance_cases() -> None:
    covered = {c["scale"] for c in CASES}
    uncovered = [s for s in immunotox.all_scales() if s not in covered]
    assert uncovered == []


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_conformance(case: dict[str, Any]) -> None:
    if "expect_error" in case:
        with pytest.raises(FindingError) as err:
            immunotox.grade(case["scale"], case["findings"], ignore_unused=case.get("ignore_unused", False))
        assert err.value.field == case["expect_error"], str(err.value)
        assert str(err.value).startswith(case["expect_error"])
        return
    r = immunotox.grade(case["scale"], case["findings"], ignore_unused=case.get("ignore_unused", False))
    if "expect_status" in case:
        assert r.status == case["expect_status"], r.explain()
    if "expect_grade" in case:
        assert r.grade == case["expect_grade"], r.explain()
    if "expect_complete" in case:
        assert r.complete is case["expect_complete"], r.explain()
    if "expect_missing" in case:
        assert r.missing == case["expect_missing"], r.explain()
    if "expect_range" in case:
        assert list(r.grade_range) == case["expect_range"], r.explain()
    if "expect_ignored" in case:
        assert r.ignored == case["expect_ignored"], r.explain()
    if "expect_deciding" in case:
        assert r.deciding_domains == case["expect_deciding"], r.explain()
    # invariants that hold for every result
    if r.status == "not_applicable":  # no grade, no range, nothing missing
        assert r.grade is None and r.grade_range is None and r.complete and not r.missing
        assert r.sources and r.reasons
        return
    assert r.grade_range is not None
    lo, hi = r.grade_range
    assert lo <= hi
    if r.grade is not None:
        assert r.grade == lo
    assert r.complete == (not r.missing)
    assert r.sources, "every grade names its source"
    assert r.reasons, "every grade explains itself"


def test_memoised_enumeration_gives_the_results_of_a_fresh_one() -> None:
    """Scale._enumerate memoises lowest/highest grade per domain pattern: results must not move."""
    scales = immunotox.all_scales()

    def grade(c: dict[str, Any], *, fresh: bool) -> dict[str, Any]:
        if fresh:  # no memo at all: the enumeration runs for this call
            scales[c["scale"]].__dict__.pop("_enumerated", None)
        r = immunotox.grade(c["scale"], c["findings"], ignore_unused=c.get("ignore_unused", False))
        return r.model_dump()

    graded = [c for c in CASES if "expect_error" not in c]
    fresh = [grade(c, fresh=True) for c in graded]
    memoised = [grade(c, fresh=False) for c in graded]  # every pattern now comes from the memo
    assert memoised == fresh
    assert all(scales[c["scale"]].__dict__.get("_enumerated") for c in graded)
