"""Every observation code of the timeline vocabulary has a home in OMOP and in SDTM: a code added
to data/observations.toml without its mapping fails here, not in a cohort that happens to
simulate it. One row per code goes through each writer and reader and comes back unchanged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from immunotox.standards import concepts, read_omop, read_sdtm, sdtm_map, write_omop, write_sdtm
from immunotox.vocabulary import CodeSpec, vocabulary

DAY0 = dt.datetime(2024, 6, 1, 8, 0, tzinfo=dt.UTC)
# codes whose value is a drug, device, product, stay or cause: the first token with a concept
TOKEN_OF: dict[str, str] = {}
for _c in concepts().concepts:
    if _c.domain in ("Drug", "Device", "Death", "Visit") and _c.token is not None:
        TOKEN_OF.setdefault(_c.code, _c.token)


def _value(spec: CodeSpec) -> str:
    if spec.name in TOKEN_OF:
        return TOKEN_OF[spec.name]
    if spec.kind == "quantity":
        lo, hi = spec.range or (0.0, 100.0)
        return str(round(lo + (hi - lo) / 4, 1) if hi - lo > 1 else lo)
    if spec.kind == "integer":
        return str(int((spec.range or (1.0, 1.0))[1]) // 2 or 1)
    if spec.kind == "bool":
        return "true"
    return spec.tokens[-1]


def _one_row_per_code() -> pa.Table:
    rows = []
    for i, spec in enumerate(vocabulary().codes):
        t = DAY0 if spec.name in ("infusion", "age") else DAY0 + dt.timedelta(minutes=10 + i)
        rows.append(
            {
                "patient_id": "P1",
                "time": t,
                "code": spec.name,
                "value": _value(spec),
                "unit": spec.unit,
                "end_time": t + dt.timedelta(hours=2) if spec.interval else None,
                "dose": None,
                "dose_unit": None,
            }
        )
    return pa.Table.from_pylist(rows)


def _codes_values(t: pa.Table) -> list[tuple[str, str, float | str]]:
    voc = vocabulary()
    out = []
    for r in t.to_pylist():
        spec = voc.lookup(str(r["code"]))
        assert spec is not None, r
        v = r["value"]
        out.append((spec.name, str(r["unit"] or ""), float(v) if spec.numeric else str(v).lower()))
    return sorted(out)


def test_every_observation_code_has_an_omop_concept_and_an_sdtm_home() -> None:
    omop = {c.code for c in concepts().concepts if c.domain != "Unit"}
    sm = sdtm_map()
    sdtm = (
        {c for tests in sm.tests.values() for c in tests.values()}
        | set(sm.cmcat.values())
        | set(sm.prcat.values())
        | set(sm.hodecod.values())
    )
    codes = {s.name for s in vocabulary().codes}
    # age is PERSON's birth date / DM.AGE; infusion is DRUG_EXPOSURE / EX; death is DEATH / DS+DD
    assert sorted(codes - omop - {"age"}) == []
    assert sorted(codes - sdtm - {"age", "infusion", "death"}) == []
    assert {"tsh", "rash_bsa", "stools_over_baseline", "ecg_new_abnormality"} <= codes


@pytest.mark.parametrize("standard", ["omop", "omop_fallback_ids", "sdtm"])
def test_one_row_of_every_code_comes_back_unchanged(tmp_path: Path, standard: str) -> None:
    rows = _one_row_per_code()
    if standard.startswith("omop"):
        write_omop(rows, tmp_path)
        if standard == "omop_fallback_ids":  # no CONCEPT table: the ids of omop_concepts.toml
            (tmp_path / "concept.csv").unlink()
        read = read_omop(tmp_path)
    else:
        write_sdtm(rows, tmp_path)
        read = read_sdtm(tmp_path)
    assert read.rejected_rows == 0
    assert _codes_values(read.observations) == _codes_values(rows)
