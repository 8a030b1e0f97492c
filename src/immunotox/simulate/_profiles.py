"""The product toxicity profiles of the simulator, read from ``data/simulation/profiles.toml``.

Every number carries its verification tag (V, V2, M, D; see the header of the TOML file).
Profiles are validated on load: probabilities in [0, 1], grade >= 3 not above "any", a source
key that exists in ``data/sources.toml``.
"""

from __future__ import annotations

import functools
import tomllib
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from ..errors import RuleSpecError
from ..sources import all_sources

Tag = Literal["V", "V2", "M", "D"]


class Tagged(BaseModel):
    """A number with its verification tag (and an optional note)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float | list[float]
    tag: Tag
    note: str | None = None

    @property
    def x(self) -> float:
        """The value as one float (a list is refused)."""
        if isinstance(self.value, list):
            raise RuleSpecError("expected one number, found a list")
        return float(self.value)


class Toxicity(BaseModel):
    """Incidence, grade split and timing of one toxicity for one product."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    any: Tagged
    grade3plus: Tagged
    grade4_share: Tagged
    grade2_share: Tagged
    onset_median_days: Tagged
    onset_sigma: Tagged
    duration_median_days: Tagged
    duration_sigma: Tagged

    @model_validator(mode="after")
    def _check(self) -> Toxicity:
        for name in ("any", "grade3plus", "grade4_share", "grade2_share"):
            v = getattr(self, name).x
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} = {v}: a probability must lie in [0, 1]")
        if self.grade3plus.x > self.any.x:
            raise ValueError(f"grade3plus = {self.grade3plus.x} exceeds any = {self.any.x}")
        for name in ("onset_median_days", "duration_median_days"):
            if getattr(self, name).x <= 0:
                raise ValueError(f"{name} must be > 0")
        return self


class Hepatitis(BaseModel):
    """Immune-related ALT rise (checkpoint inhibitors), CTCAE v5 grades."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    any: Tagged
    grade3plus: Tagged
    onset_min_days: Tagged
    onset_max_days: Tagged

    @model_validator(mode="after")
    def _check(self) -> Hepatitis:
        if not 0.0 <= self.grade3plus.x <= self.any.x <= 1.0:
            raise ValueError("need 0 <= grade3plus <= any <= 1")
        if not 0 < self.onset_min_days.x <= self.onset_max_days.x:
            raise ValueError("need 0 < onset_min_days <= onset_max_days")
        return self


class Colitis(Hepatitis):
    """Immune-related colitis (checkpoint inhibitors), ASCO 2021 grades by stools over baseline."""


class Outcome(BaseModel):
    """Response and survival numbers that drive the clinical table (``--clinical-out``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    indication: str
    orr: Tagged
    cr: Tagged
    dor_median_months: Tagged
    nrm_1y: Tagged

    @model_validator(mode="after")
    def _check(self) -> Outcome:
        if not 0.0 <= self.cr.x <= self.orr.x <= 1.0:
            raise ValueError("need 0 <= cr <= orr <= 1")
        if not 0.0 <= self.nrm_1y.x < 1.0 or self.dor_median_months.x <= 0:
            raise ValueError("need 0 <= nrm_1y < 1 and dor_median_months > 0")
        return self


class Profile(BaseModel):
    """One product (or product class) the simulator can give."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    title: str
    kind: Literal["car-t", "ici"]
    default: bool
    infusion: list[str]
    infusion_dose_mg: Tagged | None = None
    source: str
    trial: str
    crs_grading: str
    neuro_grading: str
    lymphodepletion: bool
    age_mean: Tagged
    age_sd: Tagged
    other_death: Tagged
    crs: Toxicity
    icans: Toxicity
    hepatitis: Hepatitis | None = None
    colitis: Colitis | None = None
    outcome: Outcome

    @model_validator(mode="after")
    def _check(self) -> Profile:
        if not self.infusion:
            raise ValueError("infusion: at least one token")
        if self.infusion_dose_mg is not None:
            doses = self.infusion_dose_mg.value
            if not isinstance(doses, list) or len(doses) != len(self.infusion):
                raise ValueError("infusion_dose_mg: one dose per infusion token")
        return self

    def tagged_numbers(self) -> dict[str, Tagged]:
        """Every tagged number of the profile, by dotted name (``crs.any`` …)."""
        out: dict[str, Tagged] = {}
        for name in ("age_mean", "age_sd", "other_death", "infusion_dose_mg"):
            t = getattr(self, name)
            if t is not None:
                out[name] = t
        for group in ("crs", "icans", "hepatitis", "colitis", "outcome"):
            sub = getattr(self, group)
            if sub is None:
                continue
            for field in type(sub).model_fields:
                value = getattr(sub, field)
                if isinstance(value, Tagged):
                    out[f"{group}.{field}"] = value
        return out


class Profiles(BaseModel):
    """The whole profiles file: management policy and products."""

    model_config = ConfigDict(frozen=True)

    version: str
    unverified_note: str
    policy_source: str
    policy: dict[str, Tagged]
    profiles: dict[str, Profile]

    def p(self, name: str) -> float:
        """The policy number ``name``."""
        return self.policy[name].x

    def unverified(self, keys: list[str] | None = None) -> list[str]:
        """``profile.field`` names tagged M (from memory, unverified), for ``keys`` or all."""
        out = [f"policy.{k}" for k, t in self.policy.items() if t.tag == "M"]
        for key, prof in self.profiles.items():
            if keys is not None and key not in keys:
                continue
            out += [f"{key}.{n}" for n, t in prof.tagged_numbers().items() if t.tag == "M"]
        return out


@functools.cache
def load_profiles() -> Profiles:
    """The validated profiles shipped in ``data/simulation/profiles.toml`` (cached)."""
    where = "data/simulation/profiles.toml"
    text = resources.files("immunotox").joinpath(where).read_text("utf-8")
    try:
        raw: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleSpecError(f"{where}: {exc}") from None
    sources = all_sources()
    try:
        policy = dict(raw["policy"])
        policy_source = policy.pop("source")
        profiles = {k: Profile(key=k, **v) for k, v in raw["profiles"].items()}
        out = Profiles(
            version=raw["meta"]["version"],
            unverified_note=raw["meta"]["unverified_note"],
            policy_source=policy_source,
            policy={k: Tagged(**v) for k, v in policy.items()},
            profiles=profiles,
        )
    except (KeyError, TypeError, ValidationError) as exc:
        raise RuleSpecError(f"{where}: {exc}") from None
    for key in [out.policy_source, *(p.source for p in out.profiles.values())]:
        if key not in sources:
            raise RuleSpecError(f"{where}: source {key!r} is not in data/sources.toml")
    return out
