"""The observation contract, as the simulator writes it: codes, units, value kinds and tokens.

This mirrors the frozen observation contract shared with the timeline engine (``docs/simulator.md``
lists it). Numeric values are written with a fixed number of decimals per code and are always
inside the code's physiological range below (the generator clips to it; tests check it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

ValueKind = Literal["number", "token"]


@dataclass(frozen=True)
class CodeSpec:
    """One canonical code: its UCUM unit ("" when unitless), value kind and, for numbers, the
    decimals written and the physiological range the generator stays in."""

    code: str
    unit: str
    kind: ValueKind
    decimals: int = 0
    low: float = 0.0
    high: float = 0.0
    tokens: tuple[str, ...] = ()


DEVICES = (
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
)
VASOPRESSORS = ("norepinephrine", "epinephrine", "phenylephrine", "dopamine", "vasopressin", "angiotensin_ii")
ANTIPYRETICS = ("paracetamol", "ibuprofen", "metamizole")
STEROIDS = ("dexamethasone", "methylprednisolone", "prednisone", "hydrocortisone")
FLUIDS = ("crystalloid",)
CONSCIOUSNESS = ("awake", "awakens_spontaneously", "awakens_to_voice", "awakens_to_tactile", "unarousable")
SEIZURE = ("none", "clinical_resolved", "eeg_resolved_with_intervention", "prolonged", "repetitive")
MOTOR = ("none", "deep_focal_weakness")
EDEMA = ("none", "focal", "diffuse")
BOOL = ("true", "false")
PRODUCTS = (
    "axi-cel",
    "tisa-cel",
    "liso-cel",
    "brexu-cel",
    "ide-cel",
    "cilta-cel",
    "pembrolizumab",
    "nivolumab",
    "ipilimumab",
    "atezolizumab",
    "cd19-car-t",
)
DEATH_CAUSES = ("crs", "icans", "infection", "progression", "other")

_N: ValueKind = "number"
_T: ValueKind = "token"

CODES: tuple[CodeSpec, ...] = (
    # vitals
    CodeSpec("temperature", "Cel", _N, 1, 34.0, 42.0),
    CodeSpec("sbp", "mm[Hg]", _N, 0, 60, 220),
    CodeSpec("dbp", "mm[Hg]", _N, 0, 30, 130),
    CodeSpec("map", "mm[Hg]", _N, 0, 40, 160),
    CodeSpec("heart_rate", "/min", _N, 0, 35, 190),
    CodeSpec("resp_rate", "/min", _N, 0, 6, 45),
    CodeSpec("spo2", "%", _N, 0, 70, 100),
    # respiratory support
    CodeSpec("oxygen", "", _T, tokens=DEVICES),
    CodeSpec("o2_flow", "L/min", _N, 0, 0.5, 80),
    CodeSpec("fio2", "%", _N, 0, 21, 100),
    # administrations (value = drug token; dose in the dose columns)
    CodeSpec("vasopressor", "", _T, tokens=VASOPRESSORS),
    CodeSpec("antipyretic", "", _T, tokens=ANTIPYRETICS),
    CodeSpec("tocilizumab", "", _T, tokens=("tocilizumab",)),
    CodeSpec("corticosteroid", "", _T, tokens=STEROIDS),
    CodeSpec("anakinra", "", _T, tokens=("anakinra",)),
    CodeSpec("fluid_bolus", "", _T, tokens=FLUIDS),
    # neuro
    CodeSpec("ice_score", "", _N, 0, 0, 10),
    CodeSpec("ice_orientation", "", _N, 0, 0, 4),
    CodeSpec("ice_naming", "", _N, 0, 0, 3),
    CodeSpec("ice_commands", "", _N, 0, 0, 1),
    CodeSpec("ice_writing", "", _N, 0, 0, 1),
    CodeSpec("ice_attention", "", _N, 0, 0, 1),
    CodeSpec("capd_score", "", _N, 0, 0, 32),
    CodeSpec("consciousness", "", _T, tokens=CONSCIOUSNESS),
    CodeSpec("seizure", "", _T, tokens=SEIZURE),
    CodeSpec("motor", "", _T, tokens=MOTOR),
    CodeSpec("cerebral_edema", "", _T, tokens=EDEMA),
    CodeSpec("raised_icp_signs", "", _T, tokens=BOOL),
    # labs
    CodeSpec("anc", "10*9/L", _N, 2, 0.0, 40),
    CodeSpec("wbc", "10*9/L", _N, 2, 0.01, 60),
    CodeSpec("lymphocytes", "10*9/L", _N, 2, 0.0, 20),
    CodeSpec("platelets", "10*9/L", _N, 0, 2, 800),
    CodeSpec("hemoglobin", "g/dL", _N, 1, 5.0, 18.0),
    CodeSpec("crp", "mg/L", _N, 1, 0.1, 500),
    CodeSpec("ferritin", "ug/L", _N, 0, 10, 60000),
    CodeSpec("ldh", "U/L", _N, 0, 80, 3000),
    CodeSpec("creatinine", "mg/dL", _N, 2, 0.3, 8.0),
    CodeSpec("alt", "U/L", _N, 0, 5, 2000),
    CodeSpec("ast", "U/L", _N, 0, 5, 2000),
    CodeSpec("bilirubin", "mg/dL", _N, 1, 0.1, 20),
    CodeSpec("fibrinogen", "mg/dL", _N, 0, 50, 900),
    CodeSpec("il6", "pg/mL", _N, 1, 0.5, 50000),
    # events and attributes
    CodeSpec("infusion", "", _T, tokens=PRODUCTS),
    CodeSpec("death", "", _T, tokens=DEATH_CAUSES),
    CodeSpec("age", "a", _N, 0, 18, 100),
    CodeSpec("weight", "kg", _N, 1, 35, 200),
)

SPEC: dict[str, CodeSpec] = {c.code: c for c in CODES}

# LOINC aliases the simulator may write instead of the canonical code (same unit). Several LOINC
# codes for one concept: the first is used, the second for every other alias row.
LOINC: dict[str, tuple[str, ...]] = {
    "temperature": ("8310-5",),
    "sbp": ("8480-6",),
    "dbp": ("8462-4",),
    "map": ("8478-0",),
    "heart_rate": ("8867-4",),
    "spo2": ("59408-5", "2708-6"),
    "o2_flow": ("3151-8",),
    "fio2": ("3150-0",),
    "anc": ("751-8", "26499-4"),
    "platelets": ("777-3", "26515-7"),
    "hemoglobin": ("718-7",),
    "crp": ("1988-5",),
    "ferritin": ("2276-4",),
    "ldh": ("2532-0",),
    "creatinine": ("2160-0",),
    "alt": ("1742-6",),
    "ast": ("1920-8",),
    "bilirubin": ("1975-2",),
    "fibrinogen": ("3255-7",),
}
LOINC_TO_CODE: dict[str, str] = {alias: code for code, aliases in LOINC.items() for alias in aliases}

# Every code string the simulator can write, in sorted (string) order: the index is the code id, so
# integer order equals string order and rows sort by (patient, time, code) on integers.
ALL_CODES: tuple[str, ...] = tuple(sorted([c.code for c in CODES] + list(LOINC_TO_CODE)))
CODE_ID: dict[str, int] = {c: i for i, c in enumerate(ALL_CODES)}

# Every value token, one table: token id -> string.
ALL_TOKENS: tuple[str, ...] = tuple(dict.fromkeys(t for c in CODES for t in c.tokens))
TOKEN_ID: dict[str, int] = {t: i for i, t in enumerate(ALL_TOKENS)}

UNITS: tuple[str, ...] = tuple(dict.fromkeys(["", *(c.unit for c in CODES)]))
UNIT_ID: dict[str, int] = {u: i for i, u in enumerate(UNITS)}

DOSE_UNITS: tuple[str, ...] = ("mg", "mL", "ug/kg/min", "ug/min", "[iU]/min", "mg/kg")
DOSE_UNIT_ID: dict[str, int] = {u: i for i, u in enumerate(DOSE_UNITS)}

TIMESTAMP = pa.timestamp("us", tz="UTC")

OBSERVATION_SCHEMA = pa.schema(
    [
        pa.field("patient_id", pa.string(), nullable=False),
        pa.field("time", TIMESTAMP),
        pa.field("code", pa.string(), nullable=False),
        pa.field("value", pa.string(), nullable=False),
        pa.field("unit", pa.string(), nullable=False),
        pa.field("end_time", TIMESTAMP),
        pa.field("dose", pa.float64()),
        pa.field("dose_unit", pa.string()),
    ]
)
"""The contract columns, in order. ``time`` is nullable only for rows of the bad-row injector."""

TRUTH_SCHEMA = pa.schema(
    [
        pa.field("patient_id", pa.string(), nullable=False),
        pa.field("profile", pa.string(), nullable=False),
        pa.field("product", pa.string(), nullable=False),
        pa.field("infusion_time", TIMESTAMP, nullable=False),
        pa.field("age_years", pa.float64(), nullable=False),
        pa.field("weight_kg", pa.float64(), nullable=False),
        pa.field("crs_grade", pa.int8(), nullable=False),
        pa.field("crs_driver", pa.string()),
        pa.field("crs_onset", TIMESTAMP),
        pa.field("crs_peak_time", TIMESTAMP),
        pa.field("crs_resolution", TIMESTAMP),
        pa.field("crs_fever_masked_at_peak", pa.bool_()),
        pa.field("tocilizumab_doses", pa.int8(), nullable=False),
        pa.field("crs_corticosteroids", pa.bool_(), nullable=False),
        pa.field("icans_grade", pa.int8(), nullable=False),
        pa.field("icans_onset", TIMESTAMP),
        pa.field("icans_peak_time", TIMESTAMP),
        pa.field("icans_resolution", TIMESTAMP),
        pa.field("hepatitis_grade", pa.int8(), nullable=False),
        pa.field("hepatitis_onset", TIMESTAMP),
        pa.field("alt_max_ctcae_grade", pa.int8(), nullable=False),
        pa.field("death_time", TIMESTAMP),
        pa.field("death_cause", pa.string()),
        pa.field("followup_end", TIMESTAMP, nullable=False),
    ]
)
"""One row per patient: the latent course the observations were generated from (see docs)."""

BAD_ROW_KINDS: tuple[str, ...] = ("unparseable_time", "unknown_code", "impossible_value", "unknown_unit")

BAD_ROWS_SCHEMA = pa.schema(
    [
        pa.field("row", pa.int64(), nullable=False),
        pa.field("patient_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("column", pa.string(), nullable=False),
        pa.field("written", pa.string(), nullable=False),
        pa.field("source_row", pa.int64(), nullable=False),
    ]
)
"""Ground truth of the injected bad rows: ``row`` is the 0-based row of the bad row in the
observations (file order), ``source_row`` the valid row it was copied from, ``written`` what the
corrupted cell holds (``not-a-time`` for a time written to CSV, null in Arrow/Parquet)."""

BAD_TIME_TEXT = "not-a-time"
BAD_CODES: tuple[str, ...] = ("temprature", "bp_systolic", "xyz_lab")
BAD_UNIT = "zorkmid"
