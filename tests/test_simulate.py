"""The synthetic cohort generator (immunotox.simulate): contract, determinism, clinical coherence.

The contract vocabulary below is written out again on purpose (from the frozen observation
contract), so that a drift of the generator's own vocabulary fails these tests.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import itertools
import json
import math
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import immunotox
from immunotox.simulate import (
    BAD_ROW_KINDS,
    OBSERVATION_SCHEMA,
    TRUTH_SCHEMA,
    Schedule,
    SimulationError,
    expected_rows_per_patient,
    iter_cohort_batches,
    load_profiles,
    simulate_cohort,
    summarize_truth,
    write_cohort,
    write_observations,
)
from immunotox.sources import all_sources

# ------------------------------------------------------------------ the contract, written out
UNITS = {
    "temperature": "Cel",
    "sbp": "mm[Hg]",
    "dbp": "mm[Hg]",
    "map": "mm[Hg]",
    "heart_rate": "/min",
    "resp_rate": "/min",
    "spo2": "%",
    "o2_flow": "L/min",
    "fio2": "%",
    "anc": "10*9/L",
    "wbc": "10*9/L",
    "lymphocytes": "10*9/L",
    "platelets": "10*9/L",
    "hemoglobin": "g/dL",
    "crp": "mg/L",
    "ferritin": "ug/L",
    "ldh": "U/L",
    "creatinine": "mg/dL",
    "alt": "U/L",
    "ast": "U/L",
    "bilirubin": "mg/dL",
    "fibrinogen": "mg/dL",
    "il6": "pg/mL",
    "age": "a",
    "weight": "kg",
}
UNITLESS_NUMBERS = {
    "ice_score": (0, 10),
    "ice_orientation": (0, 4),
    "ice_naming": (0, 3),
    "ice_commands": (0, 1),
    "ice_writing": (0, 1),
    "ice_attention": (0, 1),
    "capd_score": (0, 32),
    "stools_over_baseline": (0, 12),
}
TOKENS = {
    "oxygen": {
        "none",
        "low_flow_nasal_cannula",
        "blow_by",
        "high_flow_nasal_cannula",
        "facemask",
        "nonrebreather_mask",
        "venturi_mask",
        "cpap",
        "bipap",
        "mechanical_ventilation",
    },
    "vasopressor": {
        "norepinephrine",
        "epinephrine",
        "phenylephrine",
        "dopamine",
        "vasopressin",
        "angiotensin_ii",
    },
    "antipyretic": {"paracetamol", "ibuprofen", "metamizole"},
    "tocilizumab": {"tocilizumab"},
    "corticosteroid": {"dexamethasone", "methylprednisolone", "prednisone", "hydrocortisone"},
    "anakinra": {"anakinra"},
    "fluid_bolus": {"crystalloid"},
    "icu": {"icu"},
    "consciousness": {
        "awake",
        "awakens_spontaneously",
        "awakens_to_voice",
        "awakens_to_tactile",
        "unarousable",
    },
    "seizure": {"none", "clinical_resolved", "eeg_resolved_with_intervention", "prolonged", "repetitive"},
    "motor": {"none", "deep_focal_weakness"},
    "cerebral_edema": {"none", "focal", "diffuse"},
    "raised_icp_signs": {"true", "false"},
    "infusion": {
        "axi-cel",
        "tisa-cel",
        "liso-cel",
        "brexu-cel",
        "ide-cel",
        "cilta-cel",
        "pembrolizumab",
        "nivolumab",
    },
    "death": {"crs", "icans", "infection", "progression", "other"},
}
LOINC = {
    "8310-5": "temperature",
    "8331-1": "temperature",
    "8332-9": "temperature",
    "8328-7": "temperature",
    "8333-7": "temperature",
    "8480-6": "sbp",
    "8462-4": "dbp",
    "8478-0": "map",
    "8867-4": "heart_rate",
    "9279-1": "resp_rate",
    "59408-5": "spo2",
    "2708-6": "spo2",
    "3151-8": "o2_flow",
    "3150-0": "fio2",
    "751-8": "anc",
    "26499-4": "anc",
    "6690-2": "wbc",
    "26464-8": "wbc",
    "731-0": "lymphocytes",
    "26474-7": "lymphocytes",
    "777-3": "platelets",
    "26515-7": "platelets",
    "718-7": "hemoglobin",
    "1988-5": "crp",
    "2276-4": "ferritin",
    "2532-0": "ldh",
    "14804-9": "ldh",
    "2160-0": "creatinine",
    "38483-4": "creatinine",
    "1742-6": "alt",
    "1920-8": "ast",
    "1975-2": "bilirubin",
    "3255-7": "fibrinogen",
    "26881-3": "il6",
    "30525-0": "age",
    "29463-7": "weight",
    "3141-9": "weight",
}
# physiological ranges a human observation must respect (independent of the generator's clips)
PHYSIOLOGY = {
    "temperature": (33, 43),
    "sbp": (50, 250),
    "dbp": (20, 150),
    "map": (30, 180),
    "heart_rate": (30, 220),
    "resp_rate": (4, 60),
    "spo2": (60, 100),
    "o2_flow": (0.5, 80),
    "fio2": (21, 100),
    "anc": (0, 50),
    "wbc": (0, 100),
    "lymphocytes": (0, 50),
    "platelets": (1, 1000),
    "hemoglobin": (4, 20),
    "crp": (0, 600),
    "ferritin": (5, 100000),
    "ldh": (50, 5000),
    "creatinine": (0.2, 15),
    "alt": (3, 3000),
    "ast": (3, 3000),
    "bilirubin": (0.1, 30),
    "fibrinogen": (30, 1000),
    "il6": (0, 100000),
    "age": (18, 100),
    "weight": (30, 250),
}
CONTRACT_CODES = set(UNITS) | set(UNITLESS_NUMBERS) | set(TOKENS) | set(LOINC)
ADMIN_DOSE_UNITS = {"mg", "mL", "ug/kg/min", "ug/min", "[iU]/min", "mg/kg"}


def canonical(code: str) -> str:
    return LOINC.get(code, code)


# ------------------------------------------------------------------ shared cohorts


@pytest.fixture(scope="module")
def small() -> Any:
    return simulate_cohort(60, days=20, seed=11, loinc_fraction=0.2)


@pytest.fixture(scope="module")
def cart() -> Any:
    """CAR-T patients only, for the grading checks (about 400 CRS courses)."""
    return simulate_cohort(
        450, days=30, seed=5, products=["axi-cel", "tisa-cel", "liso-cel", "ide-cel", "cilta-cel"]
    )


def rows_by_patient(table: Any, codes: set[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    if codes is not None:
        table = table.filter(pc.is_in(table.column("code"), value_set=pa.array(sorted(codes))))
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in table.to_pylist():
        out[r["patient_id"]].append(r)
    return out


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------ schema and vocabulary


def test_observation_columns_are_exactly_the_contract(small: Any) -> None:
    schema = small.observations.schema
    assert schema.names == ["patient_id", "time", "code", "value", "unit", "end_time", "dose", "dose_unit"]
    expected = [
        pa.string(),
        pa.timestamp("us", tz="UTC"),
        pa.string(),
        pa.string(),
        pa.string(),
        pa.timestamp("us", tz="UTC"),
        pa.float64(),
        pa.string(),
    ]
    assert [f.type for f in schema] == expected
    assert schema.equals(OBSERVATION_SCHEMA)
    assert small.truth.schema.equals(TRUTH_SCHEMA)
    assert small.truth.num_rows == 60
    assert small.observations.column("time").null_count == 0  # only the bad-row injector makes nulls


def test_every_code_is_in_the_contract_and_loinc_aliases_appear(small: Any) -> None:
    codes = set(small.observations.column("code").to_pylist())
    assert codes <= CONTRACT_CODES, codes - CONTRACT_CODES
    assert codes & set(LOINC), "loinc_fraction=0.2 must write some LOINC aliases"
    clean = simulate_cohort(20, days=5, seed=11)
    assert not set(clean.observations.column("code").to_pylist()) & set(LOINC), "no alias by default"


def test_values_parse_and_stay_physiological(small: Any) -> None:
    t = small.observations
    for code, value, unit, dose, dose_unit in zip(
        *(t.column(c).to_pylist() for c in ("code", "value", "unit", "dose", "dose_unit")), strict=True
    ):
        c = canonical(code)
        if c in UNITS:
            x = float(value)
            lo, hi = PHYSIOLOGY[c]
            assert math.isfinite(x) and lo <= x <= hi, (code, value)
            assert unit == UNITS[c], (code, unit)
            assert value == value.strip() and "e" not in value.lower(), value  # plain decimal
        elif c in UNITLESS_NUMBERS:
            x = float(value)
            lo, hi = UNITLESS_NUMBERS[c]
            assert x == int(x) and lo <= x <= hi, (code, value)
            assert unit == ""
        else:
            assert value in TOKENS[c], (code, value)
            assert unit == ""
        if dose is not None:
            assert dose > 0 and dose_unit in ADMIN_DOSE_UNITS, (code, dose, dose_unit)
        else:
            assert dose_unit is None


def test_rows_are_sorted_by_patient_time_code(small: Any) -> None:
    t = small.observations
    keys = list(
        zip(
            t.column("patient_id").to_pylist(),
            t.column("time").to_pylist(),
            t.column("code").to_pylist(),
            strict=True,
        )
    )
    assert keys == sorted(keys)


def test_intervals_end_after_they_start_and_open_intervals_exist() -> None:
    c = simulate_cohort(150, days=4, seed=2, products=["axi-cel"])
    t = c.observations.filter(
        pc.is_in(c.observations.column("code"), value_set=pa.array(["oxygen", "vasopressor"]))
    )
    rows = t.to_pylist()
    assert rows
    ends = [r["end_time"] for r in rows]
    assert all(e is None or e > r["time"] for r, e in zip(rows, ends, strict=True))
    assert any(e is None for e in ends), "a 4-day horizon must leave some support still running"


def test_ice_items_add_up_to_the_score(small: Any) -> None:
    by = rows_by_patient(
        small.observations,
        {"ice_score", *[f"ice_{i}" for i in ("orientation", "naming", "commands", "writing", "attention")]},
    )
    n = 0
    for rows in by.values():
        at: dict[Any, dict[str, int]] = defaultdict(dict)
        for r in rows:
            at[r["time"]][r["code"]] = int(r["value"])
        for items in at.values():
            assert len(items) == 6
            assert items.pop("ice_score") == sum(items.values())
            n += 1
    assert n > 1000


def test_one_infusion_age_and_weight_row_per_patient_at_day_0(small: Any) -> None:
    truth = {r["patient_id"]: r for r in small.truth.to_pylist()}
    by = rows_by_patient(small.observations, {"infusion", "age", "weight"})
    assert set(by) == set(truth)
    for pid, rows in by.items():
        assert sorted(r["code"] for r in rows) == ["age", "infusion", "weight"]
        assert {r["time"] for r in rows} == {truth[pid]["infusion_time"]}
        inf = next(r for r in rows if r["code"] == "infusion")
        assert inf["value"] == truth[pid]["product"]
        assert float(next(r for r in rows if r["code"] == "age")["value"]) == truth[pid]["age_years"]


def test_nothing_is_observed_after_death() -> None:
    c = simulate_cohort(400, days=30, seed=9, products=["axi-cel", "tisa-cel"])
    dead = {r["patient_id"]: r for r in c.truth.to_pylist() if r["death_time"] is not None}
    assert dead, "some deaths expected in 400 patients"
    obs = c.observations
    by = rows_by_patient(obs.filter(pc.is_in(obs.column("patient_id"), value_set=pa.array(sorted(dead)))))
    for pid, tr in dead.items():
        deaths = [r for r in by[pid] if r["code"] == "death"]
        assert len(deaths) == 1 and deaths[0]["value"] == tr["death_cause"]
        assert deaths[0]["time"] == tr["death_time"]
        assert max(r["time"] for r in by[pid]) == tr["death_time"]
        assert all(r["end_time"] is None or r["end_time"] <= tr["death_time"] for r in by[pid])
    death_rows = obs.filter(pc.equal(obs.column("code"), "death"))
    assert sorted(death_rows.column("patient_id").to_pylist()) == sorted(dead)


# ------------------------------------------------------------------ determinism


def test_same_arguments_give_byte_identical_files(tmp_path: Path) -> None:
    hashes = []
    for k in range(2):
        c = simulate_cohort(40, days=10, seed=123, bad_rows_fraction=0.01)
        write_observations(c.observations, tmp_path / f"a{k}.parquet")
        write_observations(c.observations, tmp_path / f"a{k}.csv")
        hashes.append((sha(tmp_path / f"a{k}.parquet"), sha(tmp_path / f"a{k}.csv")))
    assert hashes[0] == hashes[1]
    other = simulate_cohort(40, days=10, seed=124, bad_rows_fraction=0.01)
    write_observations(other.observations, tmp_path / "b.parquet")
    assert sha(tmp_path / "b.parquet") != hashes[0][0]


def test_output_does_not_depend_on_chunking() -> None:
    kw: dict[str, Any] = {"days": 8, "seed": 4, "bad_rows_fraction": 0.005, "loinc_fraction": 0.1}
    a = simulate_cohort(37, chunk_patients=500, **kw)
    b = simulate_cohort(37, chunk_patients=6, **kw)
    assert a.observations.equals(b.observations)
    assert a.truth.equals(b.truth)
    assert a.bad_rows.equals(b.bad_rows)
    # a patient's course depends on its number only: a bigger cohort starts with the same patients
    c = simulate_cohort(50, chunk_patients=13, **kw)
    first = c.truth.slice(0, 37)
    assert first.equals(a.truth)


def test_streamed_file_equals_the_in_memory_cohort(tmp_path: Path) -> None:
    kw: dict[str, Any] = {"days": 6, "seed": 8, "bad_rows_fraction": 0.01}
    c = simulate_cohort(30, **kw)
    done: list[int] = []
    s = write_cohort(
        tmp_path / "obs.parquet",
        30,
        truth_path=tmp_path / "truth.parquet",
        bad_rows_path=tmp_path / "bad.parquet",
        progress=lambda d, n: done.append(d),
        chunk_patients=7,
        **kw,
    )
    assert done == [7, 14, 21, 28, 30]
    got = pq.read_table(tmp_path / "obs.parquet")
    assert got.equals(c.observations.replace_schema_metadata(got.schema.metadata))
    assert s.rows == c.observations.num_rows and s.bad_rows == c.bad_rows.num_rows > 0
    assert pq.read_table(tmp_path / "truth.parquet").to_pylist() == c.truth.to_pylist()
    meta = json.loads(got.schema.metadata[b"immunotox.simulate"])
    assert meta["seed"] == 8 and meta["n_patients"] == 30 and meta["unverified_numbers"]
    bad = pq.read_table(tmp_path / "bad.parquet")
    assert bad.equals(c.bad_rows.replace_schema_metadata(bad.schema.metadata))
    assert bad.schema.field("row").nullable is False


def test_csv_times_are_iso_8601_with_z_and_round_trip(tmp_path: Path) -> None:
    c = simulate_cohort(5, days=3, seed=1)
    write_observations(c.observations, tmp_path / "o.csv")
    text = (tmp_path / "o.csv").read_text()
    header = text.splitlines()[0]
    assert header == '"patient_id","time","code","value","unit","end_time","dose","dose_unit"'
    back = pacsv.read_csv(
        tmp_path / "o.csv",
        convert_options=pacsv.ConvertOptions(
            column_types={
                "time": pa.string(),
                "end_time": pa.string(),
                "value": pa.string(),
                "unit": pa.string(),
            },
            strings_can_be_null=True,
        ),
    )
    times = back.column("time").to_pylist()
    assert all(len(s) == 20 and s.endswith("Z") and s[10] == "T" for s in times)
    parsed = [dt.datetime.fromisoformat(s) for s in times]
    assert parsed == c.observations.column("time").to_pylist()
    ends = [e for e in back.column("end_time").to_pylist() if e is not None]
    assert ends == [
        e.strftime("%Y-%m-%dT%H:%M:%SZ") for e in c.observations.column("end_time").to_pylist() if e
    ]


# ------------------------------------------------------------------ published profiles


@pytest.mark.slow
def test_crs_and_icans_incidence_follow_the_product_profiles() -> None:
    """2,000 patients: each product's CRS (any, >= 3) and ICANS rates within 4 binomial SE (+2 %)."""
    c = simulate_cohort(2000, days=30, seed=2024)
    profiles = load_profiles().profiles
    summary = {r["product"]: r for r in summarize_truth(c.truth)}
    assert set(summary) == {k for k, p in profiles.items() if p.default}

    def within(observed: float, p: float, n: int) -> bool:
        return abs(observed - p) <= 4 * math.sqrt(p * (1 - p) / n) + 0.02

    for key, r in summary.items():
        p, n = profiles[key], r["patients"]
        assert n > 250
        assert within(r["crs_any"], p.crs.any.x, n), (key, r)
        assert within(r["crs_grade3plus"], p.crs.grade3plus.x, n), (key, r)
        assert within(r["icans_any"], p.icans.any.x, n), (key, r)
        assert within(r["icans_grade3plus"], p.icans.grade3plus.x, n), (key, r)
    # the bound has power: axi-cel's rate is far outside tisa-cel's profile
    ax = summary["axi-cel"]
    assert not within(ax["crs_any"], profiles["tisa-cel"].crs.any.x, ax["patients"])
    hep = c.truth.filter(pc.equal(c.truth.column("profile"), "anti-pd1"))
    rate = pc.mean(pc.greater(hep.column("hepatitis_grade"), 0).cast(pa.int8())).as_py()
    assert within(rate, profiles["anti-pd1"].hepatitis.any.x, hep.num_rows)  # type: ignore[union-attr]


def test_crs_onset_follows_the_product_median() -> None:
    c = simulate_cohort(600, days=30, seed=3, products=["ide-cel", "cilta-cel"])
    t = c.truth.to_pylist()
    onset = defaultdict(list)
    for r in t:
        if r["crs_onset"] is not None:
            onset[r["profile"]].append((r["crs_onset"] - r["infusion_time"]).total_seconds() / 86400)
    med = {k: float(np.median(v)) for k, v in onset.items()}
    # KarMMa median onset 1 day, CARTITUDE-1 7 days (first febrile vitals round: up to 4 h later)
    assert 0.7 <= med["ide-cel"] <= 1.6, med
    assert 6.0 <= med["cilta-cel"] <= 8.0, med


def test_ici_hepatitis_alt_reaches_the_latent_ctcae_grade() -> None:
    """CTCAE v5 ALT bands (ULN 40 U/L): latent grade >= 2 is what the daily ALT values show."""
    c = simulate_cohort(600, days=30, seed=12, products=["anti-pd1"])
    t = c.truth.to_pylist()
    hep = [r for r in t if r["hepatitis_grade"] >= 2]
    assert len(hep) >= 5
    for r in hep:
        assert r["alt_max_ctcae_grade"] == r["hepatitis_grade"], r
    steroids = c.observations.filter(pc.equal(c.observations.column("code"), "corticosteroid"))
    treated = set(steroids.column("patient_id").to_pylist())
    due = {r["patient_id"] for r in hep if r["hepatitis_onset"] + dt.timedelta(days=4) < r["followup_end"]}
    assert due and due <= treated


def test_every_profile_cites_a_known_source_and_unverified_numbers_are_reported() -> None:
    profiles = load_profiles()
    sources = all_sources()
    for p in profiles.profiles.values():
        assert p.source in sources
        for name, tagged in p.tagged_numbers().items():
            assert tagged.tag in ("V", "V2", "M", "D"), name
    unverified = profiles.unverified()
    assert "axi-cel.crs.any" in unverified and "tisa-cel.crs.any" not in unverified
    c = simulate_cohort(3, days=2, seed=0, products=["tisa-cel"])
    assert c.provenance["unverified_numbers"] == profiles.unverified(["tisa-cel"])


# ------------------------------------------------------------------ latent course -> ASTCT grade


CRS_CODES = {
    "temperature",
    "sbp",
    "antipyretic",
    "tocilizumab",
    "corticosteroid",
    "vasopressor",
    "oxygen",
    "o2_flow",
}


def crs_findings_at(
    rows: list[dict[str, Any]], peak: dt.datetime, onset: dt.datetime, age: float
) -> dict[str, Any]:
    """ASTCT CRS findings at ``peak``, built by hand from the rows (the test's own small engine)."""

    def at(code: str) -> float:
        return float(next(r["value"] for r in rows if r["code"] == code and r["time"] == peak))

    def active(r: dict[str, Any]) -> bool:
        return bool(r["time"] <= peak and (r["end_time"] is None or peak < r["end_time"]))

    f: dict[str, Any] = {"age_years": age, "temperature_c": at("temperature"), "sbp_mmhg": at("sbp")}
    f["fever_masked"] = any(
        r["code"] in ("antipyretic", "tocilizumab", "corticosteroid") and onset <= r["time"] <= peak
        for r in rows
    )
    f["vasopressors"] = sorted({r["value"] for r in rows if r["code"] == "vasopressor" and active(r)})
    devices = [r for r in rows if r["code"] == "oxygen" and active(r)]
    f["oxygen"] = devices[-1]["value"] if devices else "none"
    if devices:
        flows = [r for r in rows if r["code"] == "o2_flow" and devices[-1]["time"] <= r["time"] <= peak]
        if flows:
            f["o2_flow_l_min"] = float(flows[-1]["value"])
    return f


def test_astct_grade_at_the_latent_peak_is_the_latent_crs_grade(cart: Any) -> None:
    by = rows_by_patient(cart.observations, CRS_CODES)
    seen: dict[int, int] = defaultdict(int)
    masked = 0
    for tr in cart.truth.to_pylist():
        g = tr["crs_grade"]
        if g == 0:
            assert tr["crs_peak_time"] is None
            continue
        f = crs_findings_at(by[tr["patient_id"]], tr["crs_peak_time"], tr["crs_onset"], tr["age_years"])
        result = immunotox.grade("astct2019:crs", f)
        assert result.complete and result.grade == min(g, 4), (tr, f, result.summary)
        seen[min(g, 4)] += 1
        if f["temperature_c"] < 38.0:
            masked += 1
            assert tr["crs_fever_masked_at_peak"] and f["fever_masked"] and g >= 2
    assert all(seen[k] > 0 for k in (1, 2, 3, 4)), seen
    assert masked > 5, "the ASTCT masking case (fever gone after tocilizumab, organ support persists)"


def test_astct_grade_elsewhere_never_exceeds_the_latent_grade(cart: Any) -> None:
    """At every vitals round of 60 CRS patients, grade <= latent grade (no spurious escalation)."""
    by = rows_by_patient(cart.observations, CRS_CODES)
    checked = 0
    for tr in cart.truth.to_pylist()[:80]:
        rows = by[tr["patient_id"]]
        onset = tr["crs_onset"] or dt.datetime.max.replace(tzinfo=dt.UTC)
        times = sorted({r["time"] for r in rows if r["code"] == "temperature"})
        for t in times[::3]:
            f = crs_findings_at(rows, t, onset, tr["age_years"])
            if t < onset:
                f["fever_masked"] = False
            assert immunotox.grade("astct2019:crs", f).grade <= min(tr["crs_grade"], 4)
            checked += 1
    assert checked > 1000


def test_astct_icans_grade_at_the_latent_peak_is_the_latent_icans_grade(cart: Any) -> None:
    codes = {"ice_score", "consciousness", "seizure", "motor", "cerebral_edema", "raised_icp_signs"}
    by = rows_by_patient(cart.observations, codes)
    seen: set[int] = set()
    for tr in cart.truth.to_pylist():
        g = tr["icans_grade"]
        if g == 0:
            continue
        f: dict[str, Any] = {
            "age_years": tr["age_years"],
            "cerebral_edema": "none",
            "raised_icp_signs": False,
        }
        for r in by[tr["patient_id"]]:
            if r["time"] == tr["icans_peak_time"]:
                v = r["value"]
                f[r["code"]] = (
                    int(v)
                    if r["code"] == "ice_score"
                    else (v == "true" if r["code"] == "raised_icp_signs" else v)
                )
        result = immunotox.grade("astct2019:icans", f)
        assert result.grade == min(g, 4), (tr, f)
        seen.add(min(g, 4))
    assert seen == {1, 2, 3, 4}


def test_tocilizumab_respects_the_label_limits(cart: Any) -> None:
    """8 mg/kg (max 800 mg), >= 8 h apart, <= 3 doses in any 24 h, <= 4 doses in total."""
    by = rows_by_patient(cart.observations, {"tocilizumab", "weight"})
    truth = {r["patient_id"]: r for r in cart.truth.to_pylist()}
    patients = 0
    for pid, rows in by.items():
        doses = sorted((r for r in rows if r["code"] == "tocilizumab"), key=lambda r: r["time"])
        assert len(doses) == truth[pid]["tocilizumab_doses"]
        if not doses:
            continue
        patients += 1
        weight = float(next(r["value"] for r in rows if r["code"] == "weight"))
        times = [r["time"] for r in doses]
        assert len(doses) <= 4
        for r in doses:
            assert r["dose_unit"] == "mg" and r["dose"] <= 800
            assert r["dose"] == min(round(8 * weight), 800)
        for a, b in itertools.pairwise(times):
            assert b - a >= dt.timedelta(hours=8)
        for i, t in enumerate(times):
            window = bisect.bisect_right(times, t + dt.timedelta(hours=24)) - i
            assert window <= 3
    assert patients > 50


# ------------------------------------------------------------------ bad rows


@pytest.mark.parametrize("kinds", [None, ("unknown_code", "unknown_unit"), ("unparseable_time",)])
def test_bad_row_injector_produces_exactly_the_requested_kinds(kinds: tuple[str, ...] | None) -> None:
    clean = simulate_cohort(25, days=10, seed=6)
    dirty = simulate_cohort(25, days=10, seed=6, bad_rows_fraction=0.01, bad_row_kinds=kinds)
    bad = dirty.bad_rows
    wanted = set(kinds or BAD_ROW_KINDS)
    assert set(bad.column("kind").to_pylist()) == wanted
    n_bad = bad.num_rows
    assert 0.005 * clean.observations.num_rows < n_bad < 0.02 * clean.observations.num_rows
    obs = dirty.observations
    assert obs.num_rows == clean.observations.num_rows + n_bad
    bad_idx = set(bad.column("row").to_pylist())
    keep = pa.array([i not in bad_idx for i in range(obs.num_rows)])
    assert obs.filter(keep).equals(clean.observations), "valid rows are untouched"
    for r in bad.to_pylist():
        row = obs.slice(r["row"], 1).to_pylist()[0]
        src = obs.slice(r["source_row"], 1).to_pylist()[0]
        assert (
            r["source_row"] == r["row"] - 1
            or obs.slice(r["row"] - 1, 1).to_pylist()[0]["patient_id"] == src["patient_id"]
        )
        assert row["patient_id"] == r["patient_id"] == src["patient_id"]
        if r["kind"] == "unparseable_time":
            assert row["time"] is None and r["written"] == "not-a-time"
        elif r["kind"] == "unknown_code":
            assert row["code"] == r["written"] and row["code"] not in CONTRACT_CODES
        elif r["kind"] == "impossible_value":
            assert row["value"] == r["written"] == "-" + src["value"] and float(row["value"]) < 0
        else:
            assert row["unit"] == r["written"] == "zorkmid" and src["unit"] != ""
        others = {k: v for k, v in row.items() if k != r["column"]}
        assert others == {k: v for k, v in src.items() if k != r["column"]}


def test_bad_time_is_written_as_text_in_csv(tmp_path: Path) -> None:
    c = simulate_cohort(10, days=5, seed=3, bad_rows_fraction=0.02, bad_row_kinds=["unparseable_time"])
    write_observations(c.observations, tmp_path / "o.csv")
    lines = (tmp_path / "o.csv").read_text().splitlines()
    for row in c.bad_rows.column("row").to_pylist():
        assert lines[row + 1].split(",")[1] == '"not-a-time"'


# ------------------------------------------------------------------ schedule, arguments


def test_expected_rows_per_patient_matches_a_quiet_cohort() -> None:
    c = simulate_cohort(200, days=30, seed=1, products=["anti-pd1"])
    actual = c.observations.num_rows / 200
    assert abs(actual - expected_rows_per_patient(30)) / actual < 0.03
    dense = Schedule(inpatient_days=30)
    c2 = simulate_cohort(20, days=30, seed=1, products=["anti-pd1"], schedule=dense)
    assert (
        abs(c2.observations.num_rows / 20 - expected_rows_per_patient(30, dense))
        / expected_rows_per_patient(30, dense)
        < 0.03
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_patients": 0}, "n_patients = 0: must be a positive integer"),
        ({"days": 0}, "days = 0: must be a positive integer"),
        ({"days": 400}, "days = 400: must be at most 366"),
        ({"seed": -1}, "seed = -1: must be an integer >= 0"),
        ({"products": ["axi-cel", "zzz"]}, "products = 'zzz': unknown product"),
        ({"products": "axi-cel"}, "products = 'axi-cel': give a non-empty list"),
        ({"id_format": "P"}, "id_format = 'P': must give a distinct"),
        ({"id_format": "{x}"}, "id_format = '{x}': cannot format"),
        ({"loinc_fraction": 0.9}, "loinc_fraction = 0.9: must be a number between 0 and 0.5"),
        ({"bad_rows_fraction": -0.1}, "bad_rows_fraction = -0.1"),
        ({"bad_row_kinds": ["typo"]}, "bad_row_kinds = 'typo': choose among"),
        ({"schedule": Schedule(outpatient_vitals_every_h=6)}, "schedule.outpatient_vitals_every_h = 6"),
    ],
)
def test_bad_arguments_are_refused_by_name(kwargs: dict[str, Any], message: str) -> None:
    args = {"n_patients": 3, "days": 2} | kwargs
    n = args.pop("n_patients")
    with pytest.raises(SimulationError) as err:
        simulate_cohort(n, **args)
    assert str(err.value).startswith(message), str(err.value)


def test_writers_refuse_an_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(SimulationError, match=r"path = '.*obs\.txt': must end in \.parquet"):
        write_cohort(tmp_path / "obs.txt", 3)
    with pytest.raises(SimulationError, match="truth_path"):
        write_cohort(tmp_path / "obs.parquet", 3, truth_path=tmp_path / "t.json")
    c = simulate_cohort(2, days=2)
    with pytest.raises(SimulationError, match="missing contract columns"):
        write_observations(c.observations.drop(["unit"]), tmp_path / "o.parquet")


def test_iter_batches_concatenate_to_the_cohort() -> None:
    batches = list(iter_cohort_batches(23, days=4, seed=5, chunk_patients=10))
    assert [b.truth.num_rows for b in batches] == [10, 10, 3]
    sizes = [b.observations.num_rows for b in batches]
    assert [b.first_row for b in batches] == [0, sizes[0], sizes[0] + sizes[1]]
    whole = simulate_cohort(23, days=4, seed=5)
    assert pa.concat_tables([b.observations for b in batches]).equals(whole.observations)


def test_start_and_id_format_are_honoured() -> None:
    start = dt.datetime(2025, 6, 1, 15, 30)  # naive = UTC; infusions on days from 2025-06-01
    c = simulate_cohort(30, days=2, seed=0, start=start, id_format="SIM-{:03d}")
    inf = c.truth.column("infusion_time").to_pylist()
    day0 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    assert all(day0 <= t < day0 + dt.timedelta(days=366) and 10 <= t.hour < 16 for t in inf)
    assert c.truth.column("patient_id").to_pylist() == [f"SIM-{i:03d}" for i in range(1, 31)]


def test_ids_are_sorted_as_strings_when_the_format_is_not_padded() -> None:
    c = simulate_cohort(12, days=1, seed=0, id_format="p{}")
    ids = c.truth.column("patient_id").to_pylist()
    assert ids == sorted(ids) == sorted(f"p{i}" for i in range(1, 13))


# ------------------------------------------------------------------ CLI


def test_cli_writes_files_and_prints_a_summary(cli: Callable[..., Any], tmp_path: Path) -> None:
    out, truth = tmp_path / "obs.csv", tmp_path / "truth.parquet"
    p = cli(
        "simulate",
        "--patients",
        "20",
        "--days",
        "5",
        "--seed",
        "3",
        "--out",
        str(out),
        "--truth",
        str(truth),
        "--json",
    )
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["patients"] == 20 and res["rows"] > 1000 and out.exists() and truth.exists()
    assert pq.read_table(truth).num_rows == 20
    c = simulate_cohort(20, days=5, seed=3)
    assert res["rows"] == c.observations.num_rows
    p = cli("simulate", "--patients", "30", "--days", "3", "--products", "tisa-cel,ide-cel")
    assert p.returncode == 0, p.stderr
    assert "tisa-cel" in p.stdout and "axi-cel" not in p.stdout and "[M]" in p.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--patients", "0"], "error: --patients = '0': must be >= 1"),
        (["--patients", "ten"], "error: --patients = 'ten': not an integer"),
        ([], "error: --patients is required"),
        (["--patients", "5", "--products", "axi-cel,nope"], "error: --products = 'nope': unknown product"),
        (["--patients", "5", "--out", "obs.json"], "error: --out = 'obs.json': must end in .parquet"),
        (["--patients", "5", "--days", "999"], "error: --days = 999: must be at most 366"),
        (
            ["--patients", "5", "--bad-rows-fraction", "2"],
            "error: --bad-rows-fraction = 2.0: must be a number",
        ),
        (["--patients", "5", "--start", "yesterday"], "error: --start = 'yesterday': expected a date"),
        (
            ["--patients", "5", "--truth", "t.parquet"],
            "error: --out = None: --truth, --bad-rows and --clinical-out need --out",
        ),
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(
    cli: Callable[..., Any], args: list[str], message: str
) -> None:
    p = cli("simulate", *args)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), p.stderr


def test_ici_colitis_stools_reach_the_latent_asco_grade_and_the_timeline_grades_them() -> None:
    """Issue 17: a checkpoint-inhibitor colitis evolves by stools per day over baseline, charted
    at a daily bedside round; the timeline engine grades asco2021:colitis from those rows alone
    (a lower bound: the other colitis findings are not charted) to the latent grade."""
    from immunotox.timeline import grade_observations

    c = simulate_cohort(160, days=30, seed=12, products=["anti-pd1"])
    truth = {r["patient_id"]: r for r in c.truth.to_pylist()}
    assert {r["colitis_grade"] for r in truth.values()} >= {0, 1, 2}
    for r in truth.values():
        assert r["stools_max_asco_grade"] == r["colitis_grade"], r
        assert (r["colitis_onset"] is None) == (r["colitis_grade"] == 0), r
    stools = rows_by_patient(c.observations, {"stools_over_baseline"})
    assert set(stools) == set(truth)  # every patient of the profile is charted, from 0
    sick = next(p for p, r in truth.items() if r["colitis_grade"] == 2)
    values = [int(r["value"]) for r in sorted(stools[sick], key=lambda r: r["time"])]
    assert values[0] == 0 and max(values) in (4, 5, 6)
    rise = values.index(max(values))
    assert all(a <= b for a, b in itertools.pairwise(values[: rise + 1]))  # rises over days
    res = grade_observations(c.observations, "asco2021:colitis")
    got = {r["patient_id"]: r["max_grade"] for r in res.patients.to_pylist()}
    assert got == {p: r["colitis_grade"] for p, r in truth.items()}


def test_car_t_patients_have_no_bedside_colitis_round() -> None:
    c = simulate_cohort(40, days=10, seed=3, products=["axi-cel"])
    assert "stools_over_baseline" not in set(c.observations.column("code").to_pylist())
    assert set(c.truth.column("colitis_grade").to_pylist()) == {0}


def test_the_timeline_grades_irae_organ_scales_from_bedside_rows() -> None:
    """Issue 17: TSH, rash BSA and stools charted at the bedside reach the ASCO 2021 organ scales
    through the one vocabulary's derivations (lower bounds: the other inputs are not charted)."""
    from immunotox.timeline import grade_observations

    rows = [
        ("2025-01-01T10:00:00Z", "infusion", "pembrolizumab", ""),
        ("2025-01-20T08:00:00Z", "tsh", "7.2", "mIU/L"),
        ("2025-01-21T09:00:00Z", "rash_bsa", "35", "%"),
        ("2025-01-22T09:00:00Z", "stools_over_baseline", "2", ""),
        ("2025-01-22T09:00:00Z", "stool_mucus_or_blood", "true", ""),
    ]
    obs = pa.table(
        {
            "patient_id": ["P1"] * len(rows),
            "time": [r[0] for r in rows],
            "code": [r[1] for r in rows],
            "value": [r[2] for r in rows],
            "unit": [r[3] for r in rows],
        }
    )
    res = grade_observations(obs, "asco2021:hypothyroidism,asco2021:rash,asco2021:colitis")
    got = {r["scale"]: (r["max_grade"], r["max_grade_hi"]) for r in res.patients.to_pylist()}
    assert got == {
        "asco2021:hypothyroidism": (1, 4),  # TSH > 4.5 mIU/L
        "asco2021:rash": (2, 4),  # > 30 % BSA: 3 only with moderate or severe symptoms
        "asco2021:colitis": (2, 4),  # mucus or blood in the stool (CTCAE v5.0 colitis)
    }
    assert res.rejects.num_rows == 0
