"""Observation input: rejects with file, row, column, value and reason; reconciliation; LOINC
aliases; unit conversion; time zones; CSV and Parquet; the vocabulary against the findings."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immunotox import units
from immunotox.findings import vocabulary as findings_vocabulary
from immunotox.timeline import REASONS, ObservationFileError, read_observations
from immunotox.timeline._arrow import valid_indices
from immunotox.timeline._read import NO_END, normalize
from immunotox.timeline._values import parse_times
from immunotox.vocabulary import vocabulary

COLS = ("patient_id", "time", "code", "value", "unit", "end_time", "dose", "dose_unit", "ref_low", "ref_high")


def table(rows: list[tuple[str | None, ...]]) -> pa.Table:
    padded = [tuple(r) + (None,) * (len(COLS) - len(r)) for r in rows]
    return pa.table({c: pa.array([r[i] for r in padded], pa.string()) for i, c in enumerate(COLS)})


GOOD = ("P1", "2024-03-01T10:00:00Z", "temperature", "38.2", "Cel")

# one row per reason, with the column and value the rejects table must name
BAD_ROWS: list[tuple[tuple[str | None, ...], str, str, str | None]] = [
    (("", "2024-03-01T10:00Z", "temperature", "38", "Cel"), "missing_patient_id", "patient_id", ""),
    (("P1", "2024-13-01T10:00Z", "temperature", "38", "Cel"), "bad_time", "time", "2024-13-01T10:00Z"),
    (("P1", None, "temperature", "38", "Cel"), "bad_time", "time", None),
    (
        ("P1", "1900-01-01T00:00Z", "temperature", "38", "Cel"),
        "implausible_time",
        "time",
        "1900-01-01T00:00Z",
    ),
    (
        ("P1", "9999-12-31T23:59:59Z", "sbp", "120", "mm[Hg]"),
        "implausible_time",
        "time",
        "9999-12-31T23:59:59Z",
    ),
    (("P1", "2024-03-01T10:00Z", "temp", "38", "Cel"), "unknown_code", "code", "temp"),
    (("P1", "2024-03-01T10:00Z", "temperature", "38,5", "Cel"), "bad_value", "value", "38,5"),
    (("P1", "2024-03-01T10:00Z", "ice_score", "7.5", ""), "bad_value", "value", "7.5"),
    (("P1", "2024-03-01T10:00Z", "oxygen", "hood", ""), "bad_value", "value", "hood"),
    (("P1", "2024-03-01T10:00Z", "vasopressor", "dobutamine", ""), "bad_value", "value", "dobutamine"),
    (("P1", "2024-03-01T10:00Z", "temperature", "38", "mg/dL"), "bad_unit", "unit", "mg/dL"),
    (("P1", "2024-03-01T10:00Z", "temperature", "38", ""), "bad_unit", "unit", ""),
    (("P1", "2024-03-01T10:00Z", "ice_score", "7", "mg"), "bad_unit", "unit", "mg"),
    (("P1", "2024-03-01T10:00Z", "temperature", "55", "Cel"), "impossible_value", "value", "55"),
    (("P1", "2024-03-01T10:00Z", "temperature", "131", "[degF]"), "impossible_value", "value", "131"),
    (("P1", "2024-03-01T10:00Z", "ice_score", "11", ""), "impossible_value", "value", "11"),
    (("P1", "2024-03-01T10:00Z", "o2_flow", "-1", "L/min"), "impossible_value", "value", "-1"),
    (
        ("P1", "2024-03-01T10:00Z", "vasopressor", "norepinephrine", "", "2024-03-01T09:00Z"),
        "bad_end_time",
        "end_time",
        "2024-03-01T09:00Z",
    ),
    (("P1", "2024-03-01T10:00Z", "oxygen", "cpap", "", "soon"), "bad_end_time", "end_time", "soon"),
    (
        ("P1", "2024-03-01T10:00Z", "oxygen", "cpap", "", "9999-12-31T23:59:59Z"),
        "bad_end_time",
        "end_time",
        "9999-12-31T23:59:59Z",
    ),
    (
        ("P1", "2024-03-01T10:00Z", "tocilizumab", "tocilizumab", "", None, "-8", "mg"),
        "bad_dose",
        "dose",
        "-8",
    ),
    (
        ("P1", "2024-03-01T10:00Z", "tocilizumab", "tocilizumab", "", None, "560", ""),
        "bad_dose",
        "dose",
        "560",
    ),
    (
        ("P1", "2024-03-01T10:00Z", "alt", "250", "U/L", None, None, None, "50", "40"),
        "bad_reference",
        "ref_low",
        "50",
    ),
]


@pytest.mark.parametrize(("row", "reason", "column", "value"), BAD_ROWS, ids=[b[1] for b in BAD_ROWS])
def test_each_reason_is_reported_with_row_column_and_value(
    row: tuple[str | None, ...], reason: str, column: str, value: str | None
) -> None:
    n = normalize(table([GOOD, row, GOOD]), file="obs.csv")
    assert n.rejects.num_rows == 1
    rej = n.rejects.to_pylist()[0]
    assert (rej["file"], rej["row"], rej["reason"], rej["column"], rej["value"]) == (
        "obs.csv",
        2,
        reason,
        column,
        value,
    )
    assert rej["detail"]
    assert len(n.obs) == 2


def test_every_reason_is_covered_by_a_case() -> None:
    assert {b[1] for b in BAD_ROWS} == set(REASONS)


def test_first_failing_check_wins() -> None:
    # an empty patient id and an unknown code: the patient id is reported
    n = normalize(table([("", "bad", "foo", "x", "")]), file="f")
    assert n.rejects.column("reason").to_pylist() == ["missing_patient_id"]


def test_row_numbers_continue_across_batches() -> None:
    n = normalize(table([GOOD, ("P1", "x", "temperature", "38", "Cel")]), file="f", row0=1000)
    assert n.rejects.column("row").to_pylist() == [1002]


def test_detail_names_the_plausible_range() -> None:
    n = normalize(table([("P1", "2024-03-01T10:00Z", "temperature", "3.9", "Cel")]), file="f")
    detail = n.rejects.column("detail").to_pylist()[0]
    assert "25–45 Cel" in detail and "check the unit" in detail


def test_placeholder_dates_are_refused_with_the_window_named() -> None:
    """Dates that extracts write for a missing or open-ended date never set day 0 or assessments."""
    rows = [
        GOOD,
        ("P1", "1970-01-01T00:00:00Z", "temperature", "38", "Cel"),  # an empty timestamp read as 0
        ("P1", "0001-01-01", "temperature", "38", "Cel"),
        ("P1", "2024-03-01T10:00Z", "vasopressor", "norepinephrine", "", "9999-12-31"),
        ("P1", "2024-03-01T10:00Z", "vasopressor", "norepinephrine", "", "1900-01-01"),
    ]
    n = normalize(table(rows), file="f")
    got = [(r["row"], r["reason"], r["column"], r["detail"]) for r in n.rejects.to_pylist()]
    window = "1980-01-01 – 2100-01-01"
    assert [g[:3] for g in got] == [
        (2, "implausible_time", "time"),
        (3, "implausible_time", "time"),
        (4, "bad_end_time", "end_time"),
        (5, "bad_end_time", "end_time"),  # before time, and outside: "before time" is said first
    ]
    assert window in got[0][3] and "placeholder" in got[0][3]
    assert window in got[2][3] and "leave end_time empty for an interval still running" in got[2][3]
    assert got[3][3] == "end_time is before time"
    assert len(n.obs) == 1 and n.obs.first_t.tolist() == [n.obs.t[0]]  # day 0 from the good row


def test_the_window_bounds_are_inclusive_then_exclusive() -> None:
    rows = [
        ("P1", "1979-12-31T23:59:59Z", "temperature", "38", "Cel"),
        ("P1", "1980-01-01T00:00:00Z", "temperature", "38", "Cel"),
        ("P1", "2099-12-31T23:59:59Z", "temperature", "38", "Cel"),
        ("P1", "2100-01-01T00:00:00Z", "temperature", "38", "Cel"),
    ]
    n = normalize(table(rows), file="f")
    assert n.rejects.column("row").to_pylist() == [1, 4]
    assert len(n.obs) == 2


def test_typed_timestamps_at_the_epoch_are_refused() -> None:
    """A Parquet timestamp column whose empty cells were written as 0 (1970-01-01)."""
    t = pa.array([0, 1_709_287_200_000_000], pa.timestamp("us", tz="UTC"))
    raw = pa.table(
        {
            "patient_id": ["P1", "P1"],
            "time": t,
            "code": ["temperature", "temperature"],
            "value": ["38.2", "38.4"],
            "unit": ["Cel", "Cel"],
        }
    )
    n = normalize(raw, file="f.parquet")
    assert n.rejects.column("reason").to_pylist() == ["implausible_time"]
    assert n.rejects.column("value").to_pylist() == ["1970-01-01T00:00:00+00:00"]


@pytest.mark.parametrize("offset", [0, 3, 8, 13])
def test_valid_indices_are_the_non_null_slots(offset: int) -> None:
    """The bitmap scan of an optional column: sliced arrays (bitmap offsets), bytes with no
    valid slot, all valid, all null."""
    rng = np.random.default_rng(offset)
    for p_null in (0.0, 0.5, 0.97, 1.0):
        values = [None if rng.random() < p_null else float(i) for i in range(200)]
        arr = pa.array(values, pa.float64()).slice(offset, 200 - 2 * offset)
        want = [i for i, v in enumerate(arr.to_pylist()) if v is not None]
        got = valid_indices(arr)
        assert got.dtype == np.int64
        assert got.tolist() == want


def test_typed_end_times_and_doses_are_checked_where_given() -> None:
    """Typed (timestamp, double) optional columns, mostly empty: only the given cells are checked,
    and a bad one rejects its own row."""
    hour = 3_600_000_000
    t0 = 1_709_287_200_000_000
    n_rows = 40
    end = [None] * n_rows
    dose = [None] * n_rows
    end[9] = t0 + 9 * hour - hour  # before its time
    end[17] = t0 + 17 * hour + hour
    dose[25] = -1.0
    dose[33] = 2.0
    raw = pa.table(
        {
            "patient_id": ["P1"] * n_rows,
            "time": pa.array([t0 + i * hour for i in range(n_rows)], pa.timestamp("us", tz="UTC")),
            "code": ["oxygen"] * 20 + ["tocilizumab"] * 20,
            "value": ["cpap"] * 20 + ["tocilizumab"] * 20,
            "unit": [""] * n_rows,
            "end_time": pa.array(end, pa.timestamp("us", tz="UTC")).slice(0),
            "dose": pa.array(dose, pa.float64()),
            "dose_unit": [None] * 33 + ["mg"] + [None] * 6,
        }
    )
    n = normalize(raw, file="f.parquet")
    assert n.rejects.column("row").to_pylist() == [10, 26]
    assert n.rejects.column("reason").to_pylist() == ["bad_end_time", "bad_dose"]
    assert int((n.obs.end != NO_END).sum()) == 1


def test_every_bad_end_time_row_gets_its_own_detail() -> None:
    """Details are not capped: the 1,500th interval ending before it starts says so too."""
    rows = [("P1", "2024-03-02T10:00Z", "oxygen", "cpap", "", "2024-03-01T10:00Z")] * 1500
    rows.append(("P1", "2024-03-02T10:00Z", "oxygen", "cpap", "", "2100-06-01T00:00Z"))
    n = normalize(table(rows), file="f")
    details = n.rejects.column("detail").to_pylist()
    assert details[:1500] == ["end_time is before time"] * 1500
    assert "leave end_time empty" in details[-1]


def test_a_malformed_time_window_is_a_packaging_error() -> None:
    import datetime as dt

    from immunotox.errors import RuleSpecError
    from immunotox.plausibility import parse_time_window

    utc = dt.UTC
    d1980, d2100 = dt.datetime(1980, 1, 1, tzinfo=utc), dt.datetime(2100, 1, 1, tzinfo=utc)
    with pytest.raises(RuleSpecError, match="plausible_from and plausible_until"):
        parse_time_window({"plausible_from": d2100, "plausible_until": d1980})
    with pytest.raises(RuleSpecError, match="with an offset"):
        parse_time_window(
            {"plausible_from": dt.datetime(1980, 1, 1), "plausible_until": dt.datetime(2100, 1, 1)}
        )
    assert parse_time_window({"plausible_from": d1980, "plausible_until": d2100}) == (d1980, d2100)
    from immunotox.plausibility import time_window

    assert time_window() == (d1980, d2100)


def _random_rows(draw: st.DrawFn) -> list[tuple[str | None, ...]]:
    patients = st.sampled_from(["P1", "P2", "", "P3"])
    times = st.sampled_from(
        [
            "2024-03-01T10:00Z",
            "2024-03-01T11:30:00+01:00",
            "2024-03-02",
            "nope",
            None,
            "1900-01-01",
            "9999-12-31",
        ]
    )
    codes = st.sampled_from(
        ["temperature", "8310-5", "sbp", "oxygen", "ice_score", "anc", "junk", "infusion"]
    )
    values = st.sampled_from(["38.5", "101", "7", "high_flow_nasal_cannula", "", "abc", "1500", "axi-cel"])
    units_ = st.sampled_from(["Cel", "[degF]", "", "10*9/L", "/uL", "mm[Hg]", "L"])
    ends = st.sampled_from([None, "", "2024-03-01T12:00Z", "2024-02-01T00:00Z", "later", "9999-12-31"])
    n = draw(st.integers(0, 25))
    return [
        (draw(patients), draw(times), draw(codes), draw(values), draw(units_), draw(ends)) for _ in range(n)
    ]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_nothing_is_silently_dropped(data: st.DataObject) -> None:
    """accepted + rejected == input rows, and every rejected row is listed once."""
    rows = _random_rows(data.draw)
    n = normalize(table(rows), file="f")
    assert len(n.obs) + n.rejects.num_rows == len(rows)
    assert sorted(n.rejects.column("row").to_pylist()) == sorted(set(n.rejects.column("row").to_pylist()))
    assert set(n.rejects.column("reason").to_pylist()) <= set(REASONS)


def test_loinc_aliases_resolve_to_canonical_codes() -> None:
    voc = vocabulary()
    expected = {
        "8310-5": "temperature",
        "8480-6": "sbp",
        "8462-4": "dbp",
        "8478-0": "map",
        "8867-4": "heart_rate",
        "59408-5": "spo2",
        "2708-6": "spo2",
        "3151-8": "o2_flow",
        "3150-0": "fio2",
        "751-8": "anc",
        "26499-4": "anc",
        "777-3": "platelets",
        "26515-7": "platelets",
        "718-7": "hemoglobin",
        "1988-5": "crp",
        "2276-4": "ferritin",
        "2532-0": "ldh",
        "2160-0": "creatinine",
        "1742-6": "alt",
        "1920-8": "ast",
        "1975-2": "bilirubin",
        "3255-7": "fibrinogen",
    }
    for loinc, code in expected.items():
        spec = voc.lookup(loinc)
        assert spec is not None and spec.name == code, loinc
    n = normalize(table([("P1", "2024-03-01T10:00Z", "8310-5", "38.2", "Cel")]), file="f")
    assert voc.codes[int(n.obs.code[0])].name == "temperature"


@pytest.mark.parametrize(
    ("value", "expected_c"),
    [("100.4", 38.0), ("100.2", 37.88888889), ("98.6", 37.0), ("104", 40.0)],
)
def test_fahrenheit_temperatures_are_converted(value: str, expected_c: float) -> None:
    n = normalize(table([("P1", "2024-03-01T10:00Z", "8310-5", value, "[degF]")]), file="f")
    assert n.obs.num[0] == pytest.approx(expected_c, abs=1e-9)
    assert n.obs.num[0] == units.convert("temperature", float(value), "[degF]", "Cel")


def test_fahrenheit_fever_boundary_grades_like_the_core() -> None:
    """100.4 °F is exactly 38.0 °C: fever (ASTCT 'Temp >= 38.0 °C'); 100.2 °F is not."""
    from immunotox.timeline import grade_observations

    rows = [
        ("P1", "2024-03-01T10:00Z", "temperature", "100.4", "°F"),
        ("P1", "2024-03-01T10:00Z", "age", "50", "a"),
        ("P1", "2024-03-01T10:00Z", "sbp", "120", "mm[Hg]"),
        ("P2", "2024-03-01T10:00Z", "temperature", "100.2", "[degF]"),
        ("P2", "2024-03-01T10:00Z", "age", "50", "a"),
        ("P2", "2024-03-01T10:00Z", "sbp", "120", "mm[Hg]"),
    ]
    r = grade_observations(table(rows), ["astct2019:crs"])
    assert {g["patient_id"]: g["grade"] for g in r.grades.to_pylist()} == {"P1": 1, "P2": 0}


@pytest.mark.parametrize(
    ("code", "value", "unit", "expected"),
    [
        ("anc", "1500", "/uL", 1.5),
        ("26499-4", "800", "/uL", 0.8),
        ("anc", "0.5", "10*3/uL", 0.5),
        ("platelets", "75000", "/mm3", 75.0),
        ("creatinine", "88.4", "umol/L", units.convert("c", 88.4, "umol/L", "mg/dL", 113.12)),
        ("crp", "3.0", "mg/dL", 30.0),
        ("fio2", "0.4", "1", 40.0),
    ],
)
def test_units_are_converted_to_the_canonical_unit(code: str, value: str, unit: str, expected: float) -> None:
    n = normalize(table([("P1", "2024-03-01T10:00Z", code, value, unit)]), file="f")
    assert n.rejects.num_rows == 0
    assert n.obs.num[0] == pytest.approx(expected, rel=1e-12)


def test_many_distinct_values_convert_like_units_convert() -> None:
    """Above the distinct-value limit a linear conversion uses the factor; results still agree."""
    rng = np.random.default_rng(1)
    vals = np.round(rng.uniform(0, 20000, 6000), 1)
    rows = [("P1", "2024-03-01T10:00Z", "anc", f"{v}", "/uL") for v in vals]
    n = normalize(table(rows), file="f")
    got = np.sort(n.obs.num)
    want = np.sort([units.convert("anc", float(v), "/uL", "10*9/L") for v in vals])
    assert np.allclose(got, want, rtol=1e-12, atol=0)


def test_times_offsets_are_converted_and_naive_times_are_utc() -> None:
    got = parse_times(
        pa.array(
            [
                "2024-03-01T10:00:00Z",
                "2024-03-01T12:00:00+02:00",
                "2024-03-01T10:00:00",
                "2024-03-01 10:00",
                "2024-03-01T05:30-04:30",
                "2024-03-01",
                "2024-02-30T00:00:00",
                "",
            ]
        )
    )
    ten = 1709287200000000  # 2024-03-01T10:00:00Z in microseconds
    assert got.tolist()[:5] == [ten] * 5
    assert got[5] == ten - 10 * 3_600_000_000
    assert got[6] == NO_END and got[7] == NO_END


def test_parquet_and_csv_give_the_same_observations(tmp_path: Path) -> None:
    rows = [
        ("P2", "2024-03-01T10:00:00Z", "temperature", "38.2", "Cel"),
        ("P1", "2024-03-01T11:00:00Z", "8310-5", "101", "[degF]"),
        ("P1", "2024-03-01T09:00:00Z", "oxygen", "facemask", "", "2024-03-01T12:00:00Z"),
        ("P1", "2024-03-01T09:00:00Z", "bogus", "1", ""),
    ]
    t = table(rows)
    pq.write_table(t, tmp_path / "obs.parquet")
    import pyarrow.csv as pacsv

    pacsv.write_csv(t, tmp_path / "obs.csv")
    a = read_observations(tmp_path / "obs.parquet")
    b = read_observations(tmp_path / "obs.csv")
    for x in (a, b):
        assert x.obs.patient_ids == ["P1", "P2"]
        assert x.rejects.column("row").to_pylist() == [4]
        assert x.n_input == 4
    assert np.array_equal(a.obs.t, b.obs.t) and np.array_equal(a.obs.num, b.obs.num)
    assert np.array_equal(a.obs.end, b.obs.end)


def test_missing_columns_are_a_structural_error(tmp_path: Path) -> None:
    with pytest.raises(ObservationFileError) as err:
        normalize(pa.table({"patient_id": ["P1"], "time": ["2024-01-01"]}), file="obs.csv")
    assert str(err.value).startswith("obs.csv: missing columns ['code', 'value', 'unit']")
    with pytest.raises(ObservationFileError, match="no such file"):
        read_observations(tmp_path / "nope.parquet")


def test_vocabulary_ranges_equal_the_findings_ranges() -> None:
    """Ranges restated in data/observations.toml for codes whose finding uses another unit must equal the
    finding's range converted with units.convert (the file must not drift from the findings)."""
    fv = findings_vocabulary()
    checked = 0
    for spec in vocabulary().codes:
        f = fv.get(spec.finding) if spec.finding else None
        if f is None or f.range is None or spec.item is not None or f.kind != "quantity":
            continue
        lo = units.convert(spec.name, f.range[0], str(f.unit), spec.unit, f.molar_mass)
        hi = units.convert(spec.name, f.range[1], str(f.unit), spec.unit, f.molar_mass)
        assert spec.range is not None
        assert math.isclose(spec.range[0], lo, abs_tol=1e-9) and math.isclose(spec.range[1], hi), spec.name
        checked += 1
    assert checked >= 5


def test_every_contract_code_is_in_the_vocabulary() -> None:
    contract = """temperature sbp dbp map heart_rate resp_rate spo2 oxygen o2_flow fio2 vasopressor
    antipyretic tocilizumab corticosteroid anakinra fluid_bolus ice_score ice_orientation ice_naming
    ice_commands ice_writing ice_attention capd_score consciousness seizure motor cerebral_edema
    raised_icp_signs anc wbc lymphocytes platelets hemoglobin crp ferritin ldh creatinine alt ast
    bilirubin fibrinogen il6 infusion death age weight icu
    tsh free_t4 cortisol fasting_glucose troponin stools_over_baseline stool_mucus_or_blood
    abdominal_pain rash_bsa skin_blisters mucosal_involvement dyspnea cough endocrine_symptoms
    joint_symptoms ecg_new_abnormality"""
    voc = vocabulary()
    assert sorted(c.name for c in voc.codes) == sorted(contract.split())
    units_ = {c.name: c.unit for c in voc.codes if c.kind == "quantity"}
    assert units_["temperature"] == "Cel" and units_["anc"] == "10*9/L" and units_["crp"] == "mg/L"
    assert units_["fibrinogen"] == "mg/dL" and units_["ferritin"] == "ug/L" and units_["age"] == "a"


def test_rejects_read_each_column_once_whatever_their_number(monkeypatch: pytest.MonkeyPatch) -> None:
    """Details quote each out-of-range value with its unit, taken in one pass per column: the
    cost of a rejects table does not grow with rejects x rows (a multi-chunk table used to be
    recombined for every rejected row)."""
    import immunotox.timeline._read as r

    calls: list[str] = []
    column = r._column

    def counting(raw: pa.Table, name: str) -> pa.Array | None:
        calls.append(name)
        return column(raw, name)

    monkeypatch.setattr(r, "_column", counting)
    chunk = table([GOOD, ("P1", "2024-03-01T11:00Z", "temperature", "55", "Cel")] * 300)
    raw = pa.concat_tables([chunk, chunk, chunk])  # three chunks per column
    n = normalize(raw, file="f")
    details = n.rejects.column("detail").to_pylist()
    assert len(details) == 900
    assert set(details) == {
        "temperature = 55 Cel: outside the plausible range 25–45 Cel; check the unit and the decimal point"
    }
    assert len(calls) < 20, calls


def test_the_reader_takes_a_vocabulary_of_more_than_64_codes() -> None:
    """The row state holds any code index (issue 17): with 16 codes appended to the vocabulary
    (80 in all), rows of the codes beyond the 64th are accepted with their code and value, a bad
    value of one is rejected naming it, and the codes of the packaged vocabulary read as before."""
    import dataclasses

    base = vocabulary()
    like = base.code("ice_score")  # an integer 0-10, no unit
    extra = [
        dataclasses.replace(like, name=f"extra_{k:02d}", index=len(base.codes) + k, loinc=())
        for k in range(16)
    ]
    codes = (*base.codes, *extra)
    voc = dataclasses.replace(
        base,
        codes=codes,
        _lookup={**base._lookup, **{c.name: c.index for c in extra}},
        all_codes={**base.all_codes, **{c.name: c for c in extra}},
    )
    assert len(voc.codes) == len(base.codes) + 16 and len(voc.codes) > 64
    rows = [
        GOOD,
        ("P1", "2024-03-01T11:00:00Z", "extra_15", "7", ""),
        ("P1", "2024-03-01T12:00:00Z", "extra_00", "3", ""),
        ("P2", "2024-03-01T12:00:00Z", "extra_15", "eleven", ""),
        ("P2", "2024-03-01T13:00:00Z", "extra_15", "99", ""),
    ]
    n = normalize(table(rows), file="f", vocab=voc)
    got = [(voc.codes[int(c)].name, float(v)) for c, v in zip(n.obs.code, n.obs.num, strict=True)]
    assert got == [("temperature", 38.2), ("extra_15", 7.0), ("extra_00", 3.0)]
    assert [(r["row"], r["reason"], r["value"]) for r in n.rejects.to_pylist()] == [
        (4, "bad_value", "eleven"),
        (5, "impossible_value", "99"),
    ]
    kept = normalize(table(rows), file="f", vocab=voc, keep=frozenset({"extra_15"}))
    assert [voc.codes[int(c)].name for c in kept.obs.code] == ["extra_15"]
