"""API models (pydantic): what the service accepts (``*In``, ``*Create``, ``*Update``) and
returns (``*Public``, ``*Out``).

Times: ISO 8601; an offset is converted to UTC, a naive time is read as UTC (the observation
contract's rule); responses are always UTC with an offset. Identifiers of patients and units
are short tokens (letters, digits, ``_ . -``).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from ..messages import Refused
from ..messages import error as E
from ..result import Status, Texts
from .db import as_utc

Role = Literal["admin", "physician", "nurse", "patient"]
TherapyClass = Literal["car_t", "bispecific", "checkpoint_inhibitor"]
Locale = Literal["fr", "en"]
Sex = Literal["female", "male", "other", "unknown"]

Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Token = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
Username = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{1,63}$")]
Password = Annotated[str, StringConstraints(min_length=8, max_length=256)]
ShortText = Annotated[str, StringConstraints(max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=2000)]
ISO_DATETIME = re.compile(r"^\s*\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_text(value: Any) -> Any:
    """Only an ISO 8601 date and time is a time (pydantic alone would read ``12345`` or ``0.5``
    as seconds since 1970, and a bare date as its midnight)."""
    if isinstance(value, dt.datetime) or (isinstance(value, str) and ISO_DATETIME.match(value)):
        return value
    raise Refused(E("validation.iso_datetime"))


UtcDatetime = Annotated[dt.datetime, BeforeValidator(_iso_text), AfterValidator(as_utc)]


def _known_phase(value: str) -> str:
    """A phase of the CAR-T pathway (``immunotox.pathway``, ``data/pathway/phases.toml``)."""
    from ..pathway import check_phase

    return check_phase(value, "pathway_phase")


def _phase_enum() -> list[str]:
    from ..pathway import phases

    return list(phases())


PathwayPhase = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,31}$"),
    AfterValidator(_known_phase),
    Field(
        description="Current phase of the CAR-T pathway (immunotox.pathway.phases()), e.g. follow_up",
        json_schema_extra={"enum": _phase_enum()},
    ),
]
IdempotencyKey = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,200}$")]
MAX_ID = 2**63 - 1  # database ids are 64-bit integers


class Model(BaseModel):
    """Base of every input model: unknown fields are refused, and so are NUL characters (which
    no database text column can store) anywhere in a string."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # per field, so that the error names the field and quotes only its own value
        if _has_nul(value):
            raise Refused(E("service.nul"))
        return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, (list, tuple)):
        return any(_has_nul(item) for item in value)
    return False


# ----------------------------------------------------------------------------- auth & users
class LoginIn(Model):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class ThrottlePublic(BaseModel):
    """Failed logins counted for throttling (see docs/security.md)."""

    id: int
    scope: Literal["name", "address"] = Field(
        description="'name': one user name from one address; 'address': one address, any user name"
    )
    username: str | None = Field(description="The user name tried (None for scope 'address')")
    address: str
    failures: int
    first_failure_at: dt.datetime
    last_failure_at: dt.datetime
    blocked_until: dt.datetime | None
    retry_after: int = Field(description="Seconds the next attempt must still wait (0: it may go ahead)")


class UserPublic(BaseModel):
    id: int
    username: str
    role: Role
    display_name: str
    unit_ids: list[str]
    patient_id: str | None
    locale: Locale
    active: bool


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: dt.datetime
    user: UserPublic


class UserCreate(Model):
    username: Username
    password: Password
    role: Role
    display_name: ShortText = ""
    unit_ids: list[Ident] = Field(default_factory=list, max_length=50)
    patient_id: Ident | None = None
    locale: Locale = "fr"


class UserUpdate(Model):
    display_name: ShortText | None = None
    role: Role | None = None
    unit_ids: list[Ident] | None = Field(default=None, max_length=50)
    active: bool | None = None
    locale: Locale | None = None
    password: Password | None = None


class PasswordChangeIn(Model):
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    new_password: Password


class UnitCreate(Model):
    id: Ident
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    phone: Annotated[str, StringConstraints(max_length=40)] | None = None


class UnitPublic(BaseModel):
    id: str
    name: str
    phone: str | None


# ----------------------------------------------------------------------------- patients
class PatientCreate(Model):
    id: Ident = Field(description="The patient identifier (the contract's patient_id)")
    unit_id: Ident
    display_name: ShortText = ""
    birth_date: dt.date | None = None
    sex: Sex | None = None
    therapy_class: TherapyClass
    product: Token | None = Field(default=None, description="e.g. axi-cel, tisa-cel, pembrolizumab")
    indication: Token | None = Field(default=None, description="e.g. lbcl, all, mm, melanoma, sle (lupus)")
    indication_text: ShortText | None = None
    weight_kg: Annotated[float, Field(ge=0.3, le=400)] | None = None
    infusion_at: UtcDatetime | None = Field(default=None, description="Day 0: infusion or first dose")
    pathway_phase: PathwayPhase | None = None

    @model_validator(mode="after")
    def _birth(self) -> PatientCreate:
        if self.birth_date is not None and not dt.date(1900, 1, 1) <= self.birth_date <= dt.date(2200, 1, 1):
            raise Refused(E("validation.birth_date"))
        return self


class PatientUpdate(Model):
    """Only the fields given change; ``null`` clears a field that may be empty (the others are
    declared without ``null``, and a ``null`` there is refused naming the field)."""

    unit_id: Ident | SkipJsonSchema[None] = None
    display_name: ShortText | SkipJsonSchema[None] = None
    birth_date: dt.date | None = None
    sex: Sex | None = None
    therapy_class: TherapyClass | SkipJsonSchema[None] = None
    product: Token | None = None
    indication: Token | None = None
    indication_text: ShortText | None = None
    weight_kg: Annotated[float, Field(ge=0.3, le=400)] | None = None
    infusion_at: UtcDatetime | None = None
    pathway_phase: PathwayPhase | None = None
    active: bool | SkipJsonSchema[None] = None


class PatientPublic(BaseModel):
    id: str
    unit_id: str
    display_name: str
    birth_date: dt.date | None
    sex: str | None
    therapy_class: str
    product: str | None
    indication: str | None
    indication_text: str | None
    weight_kg: float | None
    infusion_at: dt.datetime | None
    day: int | None = Field(description="Days since day 0 (infusion), by the service clock")
    pathway_phase: str | None
    active: bool
    created_at: dt.datetime
    updated_at: dt.datetime


# ----------------------------------------------------------------------------- event stream
Value = str | int | float | bool


class ObservationIn(Model):
    """One row of the observation contract (an observation, administration or item)."""

    code: Annotated[str, StringConstraints(min_length=1, max_length=32)] = Field(
        description="Canonical code (temperature, sbp, oxygen, ...) or a LOINC alias"
    )
    time: UtcDatetime
    value: Value = Field(description="A number, a token, or true/false")
    unit: Annotated[str, StringConstraints(max_length=32)] | None = Field(
        default=None, description="UCUM code; required for quantities, empty for tokens"
    )
    end_time: UtcDatetime | None = None
    ref_low: float | None = Field(
        default=None,
        description="Laboratory results: lower limit of the reference interval reported with the "
        "result, in the result's unit (FHIR Observation.referenceRange.low)",
    )
    ref_high: float | None = Field(
        default=None,
        description="Laboratory results: upper limit of the reference interval reported with the "
        "result, in the result's unit (FHIR Observation.referenceRange.high)",
    )
    dose: float | None = None
    dose_unit: Annotated[str, StringConstraints(max_length=32)] | None = None
    supersedes: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="Id of the event this one corrects"
    )
    status: Literal["final", "entered_in_error"] = "final"
    note: LongText | None = None
    external_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


class BatchObservationIn(ObservationIn):
    patient_id: Ident


class ObservationBatchIn(Model):
    observations: list[BatchObservationIn] = Field(min_length=1, max_length=1000)


class EventPublic(BaseModel):
    id: int
    patient_id: str
    kind: str
    code: str
    time: dt.datetime
    end_time: dt.datetime | None
    value: str
    value_num: float | None
    unit: str
    dose: float | None
    dose_unit: str | None
    source_value: str | None
    source_unit: str | None
    ref_low: float | None = Field(default=None, description="Reference interval, in `unit`")
    ref_high: float | None = Field(default=None, description="Reference interval, in `unit`")
    source: str
    status: str
    supersedes_id: int | None
    assessment_id: int | None
    external_id: str | None
    note: str | None
    recorded_at: dt.datetime
    recorded_by: int | None


class RuleHitPublic(BaseModel):
    rule: str
    domain: str
    grade: int | None
    text: str


class GradePublic(BaseModel):
    scale: str
    title: str
    version: str
    time: dt.datetime = Field(description="Evaluation time: the patient's latest relevant event")
    computed_at: dt.datetime
    grade: int | None
    grade_range: tuple[int, int] | None = Field(description="None when the scale does not apply")
    complete: bool
    status: Status
    deciding_domains: list[str]
    missing: list[str]
    reasons: list[str]
    fired: list[RuleHitPublic]
    notes: list[str]
    sources: list[str]
    inputs: dict[str, Any] = Field(description="How each finding was reconstructed (rule, event ids)")
    engine: str
    episode_id: int | None
    texts: Texts | None = Field(
        default=None,
        description="Title, reasons and notes as data (ids of texts in the rule files, with their "
        "parameters), to show them in French or English (immunotox.messages)",
    )


class GradeHistoryItem(BaseModel):
    id: int
    scale: str
    time: dt.datetime
    computed_at: dt.datetime
    grade: int | None
    grade_range: tuple[int, int] | None
    status: Status
    complete: bool
    missing: list[str]
    engine: str
    episode_id: int | None


class EpisodePublic(BaseModel):
    id: int
    scale: str
    onset_at: dt.datetime
    peak_grade: int
    peak_at: dt.datetime
    last_positive_at: dt.datetime
    resolved_at: dt.datetime | None
    active: bool


class AlertPublic(BaseModel):
    id: int
    patient_id: str
    kind: str
    priority: Literal["critical", "high", "normal", "low"]
    status: Literal["open", "acknowledged", "resolved"]
    title: str
    message: str
    title_fr: str
    message_fr: str
    scale: str | None
    grade: int | None
    episode_id: int | None
    params: dict[str, Any]
    recommendation: dict[str, Any] | None
    target_role: str
    triggered_at: dt.datetime
    created_at: dt.datetime
    acknowledged_at: dt.datetime | None
    acknowledged_by: int | None
    ack_comment: str | None
    escalation_level: int
    escalated_at: dt.datetime | None
    resolved_at: dt.datetime | None
    resolved_reason: str | None


SingleGrading = Literal["done", "queued", "off"]
SINGLE_GRADING = (
    "done: regraded in the write's transaction, grades stored and alerts raised before the answer "
    "(?regrade=now, or no background regrader); queued: the regrade was queued in the write's "
    "transaction for the background regrader, which stores the grades and raises their alerts within "
    "IMMUNOTOX_REGRADE_SECONDS (grades is then empty and alerts lists only the dose-limit alerts, "
    "checked at once; GET /patients/{id}/grades recomputes the grades from the stored events at "
    "once); off: grading disabled"
)


class IngestOut(BaseModel):
    """What a write stored and what it changed."""

    stored: list[EventPublic]
    grades: list[GradePublic] = Field(
        description="Grades of the patient after the write, every scale (empty when the write "
        "touched no graded code, when grading is off, or when the regrade is queued: see grading)"
    )
    alerts: list[AlertPublic] = Field(description="Alerts raised by the write")
    grading: SingleGrading = Field(description=SINGLE_GRADING)


class BatchOut(BaseModel):
    stored: int
    ids: list[int] = Field(description="Ids of the stored rows, in the order of the request")
    grading: Literal["done", "queued", "off"] = Field(
        description="done: regraded in the request; queued: by the background regrader within "
        "regrade_seconds (readers always see grades recomputed from the stored events); off: grading disabled"
    )
    patients_regraded: list[str]
    patients_queued: list[str]
    alerts_raised: int


# ----------------------------------------------------------------------------- assessments
class IceItemsIn(Model):
    orientation: Annotated[int, Field(ge=0, le=4)] | None = None
    naming: Annotated[int, Field(ge=0, le=3)] | None = None
    commands: Annotated[int, Field(ge=0, le=1)] | None = None
    writing: Annotated[int, Field(ge=0, le=1)] | None = None
    attention: Annotated[int, Field(ge=0, le=1)] | None = None


Consciousness = Literal[
    "awake", "awakens_spontaneously", "awakens_to_voice", "awakens_to_tactile", "unarousable"
]
Seizure = Literal["none", "clinical_resolved", "eeg_resolved_with_intervention", "prolonged", "repetitive"]


class AssessmentIn(Model):
    """A bedside neurological assessment, entered item by item."""

    kind: Literal["ice", "capd", "neuro"] = "ice"
    time: UtcDatetime
    items: IceItemsIn | None = None
    ice_score: Annotated[int, Field(ge=0, le=10)] | None = None
    capd_score: Annotated[int, Field(ge=0, le=32)] | None = None
    consciousness: Consciousness | None = None
    seizure: Seizure | None = None
    motor: Literal["none", "deep_focal_weakness"] | None = None
    cerebral_edema: Literal["none", "focal", "diffuse"] | None = None
    raised_icp_signs: bool | None = None
    comment: LongText | None = None


class AssessmentPublic(BaseModel):
    id: int
    patient_id: str
    kind: str
    time: dt.datetime
    ice_score: int | None
    items: dict[str, int]
    capd_score: int | None
    consciousness: str | None
    seizure: str | None
    motor: str | None
    cerebral_edema: str | None
    raised_icp_signs: bool | None
    comment: str | None
    recorded_at: dt.datetime
    recorded_by: int | None
    event_ids: list[int]


class AssessmentOut(BaseModel):
    assessment: AssessmentPublic
    grades: list[GradePublic]
    alerts: list[AlertPublic]
    grading: SingleGrading = Field(description=SINGLE_GRADING)


# ----------------------------------------------------------------------------- administrations
AdministrationCode = Literal[
    "tocilizumab", "corticosteroid", "antipyretic", "vasopressor", "oxygen", "anakinra", "fluid_bolus"
]


class AdministrationIn(Model):
    code: AdministrationCode
    value: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="Drug token (dexamethasone, norepinephrine, ...) or oxygen device"
    )
    time: UtcDatetime
    end_time: UtcDatetime | None = None
    dose: float | None = None
    dose_unit: Annotated[str, StringConstraints(max_length=32)] | None = None
    o2_flow_l_min: Annotated[float, Field(ge=0, le=80)] | None = Field(
        default=None, description="Oxygen only: flow, stored as an o2_flow observation at the same time"
    )
    note: LongText | None = None


class StopIn(Model):
    end_time: UtcDatetime


# ----------------------------------------------------------------------------- self-reports
def _known_symptom(value: str) -> str:
    """A symptom token of the portal (``immunotox.handouts``, ``data/handouts/symptoms.toml``);
    whether the patient's therapy class offers it is checked by the route."""
    from ..handouts import symptom_tokens

    if value not in symptom_tokens():
        raise Refused(
            E("validation.unknown_symptom", symptom=repr(value), values=str(list(symptom_tokens())))
        )
    return value


def _symptom_enum() -> list[str]:
    from ..handouts import symptom_tokens

    return list(symptom_tokens())


Symptom = Annotated[
    str,
    AfterValidator(_known_symptom),
    Field(
        description="A symptom token of the patient's therapy class (immunotox.handouts)",
        json_schema_extra={"enum": _symptom_enum()},
    ),
]


class SelfReportIn(Model):
    time: UtcDatetime | None = Field(default=None, description="Defaults to now")
    temperature: float | None = Field(default=None, description="Temperature in temperature_unit")
    temperature_unit: Literal["Cel", "[degF]"] = "Cel"
    symptoms: list[Symptom] = Field(default_factory=list, max_length=16)
    note: LongText | None = None

    @model_validator(mode="after")
    def _something(self) -> SelfReportIn:
        if self.temperature is None and not self.symptoms and not self.note:
            raise Refused(E("validation.report_empty"))
        if len(set(self.symptoms)) != len(self.symptoms):
            raise Refused(E("validation.symptom_twice"))
        return self


class TriagePublic(BaseModel):
    decision: Literal["call_now", "noted"]
    priority: str | None
    answer: str
    answer_fr: str
    detail: str
    detail_fr: str
    reasons: list[str]
    reasons_fr: list[str]
    sources: list[str]
    unit_phone: str | None


class SelfReportOut(BaseModel):
    stored: list[EventPublic]
    triage: TriagePublic
    alert: AlertPublic | None


# ----------------------------------------------------------------------------- alerts, audit
class AckIn(Model):
    comment: LongText | None = None


class ResolveIn(Model):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class AuditPublic(BaseModel):
    id: int
    at: dt.datetime
    actor_username: str
    actor_role: str
    action: str
    outcome: str
    entity_type: str | None
    entity_id: str | None
    patient_id: str | None
    request_id: str | None
    client_ip: str | None
    user_agent: str | None
    payload_sha256: str | None
    details: dict[str, Any]


class RecommendationsOut(BaseModel):
    patient_id: str
    available: bool
    engine: str | None
    items: list[dict[str, Any]] = Field(
        description="One recommendation per current grade >= 1 (management module output)"
    )
    tocilizumab: dict[str, Any] | None = Field(
        default=None, description="Tocilizumab dose for the weight and whether the limits allow it now"
    )
    notes: list[str]


class MetaOut(BaseModel):
    name: str
    version: str
    database: str
    grading: bool
    grading_engine: str
    scales: list[str]
    now: dt.datetime
    demo: bool


class HealthOut(BaseModel):
    status: Literal["ok"]
    database: str
    migration: str | None
    regrade_queue: int = Field(description="(patient, scale) pairs waiting for the background regrader")
