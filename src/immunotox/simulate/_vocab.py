"""The observation contract, as the simulator writes it: codes, units, value kinds and tokens.

Units, tokens and LOINC aliases come from the one observation vocabulary
(:mod:`immunotox.vocabulary`, ``data/observations.toml``) that the timeline engine and the
service read; this module adds only what is the simulator's own: the decimals written and the
physiological range the generator stays in (always inside the vocabulary's possible range; the
import checks it), and the subsets of tokens it draws from (drugs, fluids, products).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from ..errors import RuleSpecError
from ..vocabulary import vocabulary

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


def _tokens(code: str) -> tuple[str, ...]:
    return vocabulary().code(code).tokens


# the latent model's device levels (_latent.DEV_*), in this order; the same set as the vocabulary's
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
VASOPRESSORS = _tokens("vasopressor")
CONSCIOUSNESS = _tokens("consciousness")
SEIZURE = _tokens("seizure")
MOTOR = _tokens("motor")
EDEMA = _tokens("cerebral_edema")
BOOL = _tokens("raised_icp_signs")
DEATH_CAUSES = _tokens("death")
# what the generator draws from (subsets of what the vocabulary accepts)
ANTIPYRETICS = ("paracetamol", "ibuprofen", "metamizole")
STEROIDS = ("dexamethasone", "methylprednisolone", "prednisone", "hydrocortisone")
FLUIDS = ("crystalloid",)
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


def _n(code: str, decimals: int, low: float, high: float) -> CodeSpec:
    """A number code: the vocabulary's unit; the generator's range must lie inside its range."""
    spec = vocabulary().code(code)
    lo, hi = spec.range or (low, high)
    if not (spec.numeric and lo <= low <= high <= hi):
        raise RuleSpecError(f"simulator: {code} range [{low}, {high}] is outside the possible [{lo}, {hi}]")
    return CodeSpec(code, spec.unit, "number", decimals, low, high)


def _t(code: str, tokens: tuple[str, ...] | None = None) -> CodeSpec:
    """A token code: the vocabulary's tokens, or a subset it accepts."""
    spec = vocabulary().code(code)
    drawn = spec.tokens if tokens is None else tokens
    if spec.numeric or not drawn or any(spec.accepts_token(t) != t for t in drawn):
        raise RuleSpecError(f"simulator: {code} draws {drawn}, which the vocabulary does not accept")
    return CodeSpec(code, spec.unit, "token", tokens=drawn)


CODES: tuple[CodeSpec, ...] = (
    # vitals
    _n("temperature", 1, 34.0, 42.0),
    _n("sbp", 0, 60, 220),
    _n("dbp", 0, 30, 130),
    _n("map", 0, 40, 160),
    _n("heart_rate", 0, 35, 190),
    _n("resp_rate", 0, 6, 45),
    _n("spo2", 0, 70, 100),
    # respiratory support
    _t("oxygen", DEVICES),
    _n("o2_flow", 0, 0.5, 80),
    _n("fio2", 0, 21, 100),
    # administrations (value = drug token; dose in the dose columns)
    _t("vasopressor"),
    _t("antipyretic", ANTIPYRETICS),
    _t("tocilizumab"),
    _t("corticosteroid", STEROIDS),
    _t("anakinra"),
    _t("fluid_bolus", FLUIDS),
    # neuro
    _n("ice_score", 0, 0, 10),
    _n("ice_orientation", 0, 0, 4),
    _n("ice_naming", 0, 0, 3),
    _n("ice_commands", 0, 0, 1),
    _n("ice_writing", 0, 0, 1),
    _n("ice_attention", 0, 0, 1),
    _n("capd_score", 0, 0, 32),
    _t("consciousness"),
    _t("seizure"),
    _t("motor"),
    _t("cerebral_edema"),
    _t("raised_icp_signs"),
    # labs
    _n("anc", 2, 0.0, 40),
    _n("wbc", 2, 0.01, 60),
    _n("lymphocytes", 2, 0.0, 20),
    _n("platelets", 0, 2, 800),
    _n("hemoglobin", 1, 5.0, 18.0),
    _n("crp", 1, 0.1, 500),
    _n("ferritin", 0, 10, 60000),
    _n("ldh", 0, 80, 3000),
    _n("creatinine", 2, 0.3, 8.0),
    _n("alt", 0, 5, 2000),
    _n("ast", 0, 5, 2000),
    _n("bilirubin", 1, 0.1, 20),
    _n("fibrinogen", 0, 50, 900),
    _n("il6", 1, 0.5, 50000),
    # checkpoint-inhibitor labs and bedside findings (immune-related adverse events)
    _n("tsh", 2, 0.01, 100),
    _n("free_t4", 1, 2.0, 100),
    _n("cortisol", 0, 10, 2000),
    _n("fasting_glucose", 0, 40, 800),
    _n("troponin", 0, 1, 50000),
    _n("stools_over_baseline", 0, 0, 20),
    # events and attributes
    _t("infusion", PRODUCTS),
    _t("death"),
    _n("age", 0, 18, 100),
    _n("weight", 1, 35, 200),
    _t("icu"),
)

SPEC: dict[str, CodeSpec] = {c.code: c for c in CODES}

# LOINC aliases the simulator may write instead of the canonical code (same unit): the
# vocabulary's; alias rows cycle through a code's LOINC codes.
LOINC: dict[str, tuple[str, ...]] = {
    c.code: vocabulary().code(c.code).loinc for c in CODES if vocabulary().code(c.code).loinc
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
        pa.field("colitis_grade", pa.int8(), nullable=False),
        pa.field("colitis_onset", TIMESTAMP),
        pa.field("stools_max_asco_grade", pa.int8(), nullable=False),
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
