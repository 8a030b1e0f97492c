"""Guideline sets: their grammar (pydantic models), loading, derivation and validation.

A guideline set is a TOML file in ``data/guidelines/`` (or in a folder the caller adds), whose
grammar is written at the top of ``asco2021-cart.toml``. Loading checks, and refuses with a
:class:`~immunotox.errors.RuleSpecError` naming the file and the rule:

* the grammar (unknown keys, missing en/fr text, unknown action kind or verification tag);
* every source key exists in ``data/sources.toml``; every drug, dose rule, product, product
  class and specialty exists;
* every dose stays within the drug's documented maxima (``data/drugs.toml``), and local dose
  limits only tighten the documented ones;
* rules name a declared toxicity and grades inside its range; rule ids are unique;
* a derived set pins its base's id **and version** and refuses to load against another version.

Derivation (``derives_from``): base rules with the id of a local rule are replaced in place,
``remove_rules`` are dropped, new rules are appended. Every resolved rule keeps the set and
version it comes from, so each recommendation says which set produced it.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import FindingError, RuleSpecError
from ..messages import error
from ..sources import all_sources
from ._dose_expr import DoseExpr, assert_within_max
from ._drugs import drug_data
from ._population import Population
from ._vocab import Text, vocabulary

Verification = Literal["V", "V2", "M", "D"]
Lifecycle = Literal["draft", "reviewed", "released", "superseded", "retired"]
ActionKind = Literal[
    "workup",
    "monitoring",
    "supportive",
    "drug",
    "escalation",
    "referral",
    "admission",
    "ici_action",
    "hormone_replacement",
    "product_action",
    "note",
]
IciAction = Literal[
    "continue",
    "continue_or_hold",
    "consider_hold",
    "hold",
    "consider_discontinue",
    "discontinue",
    "rechallenge",
]
ContextField = Literal["concurrent_crs_grade", "concurrent_icans_grade", "product", "weight_kg"]

_STRICT = ConfigDict(frozen=True, extra="forbid")


class When(BaseModel):
    """Conditions on the context; all must hold for a rule to apply."""

    model_config = _STRICT

    product_in: tuple[str, ...] | None = None
    product_class_in: tuple[str, ...] | None = None
    concurrent_crs_grade_min: int | None = Field(default=None, ge=0, le=4)
    concurrent_crs_grade_max: int | None = Field(default=None, ge=0, le=4)
    concurrent_icans_grade_min: int | None = Field(default=None, ge=0, le=4)
    concurrent_icans_grade_max: int | None = Field(default=None, ge=0, le=4)

    def fields(self) -> list[str]:
        """Context fields the conditions read."""
        out: list[str] = []
        if self.product_in is not None or self.product_class_in is not None:
            out.append("product")
        if self.concurrent_crs_grade_min is not None or self.concurrent_crs_grade_max is not None:
            out.append("concurrent_crs_grade")
        if self.concurrent_icans_grade_min is not None or self.concurrent_icans_grade_max is not None:
            out.append("concurrent_icans_grade")
        return out

    def describe(self) -> str:
        """The conditions as text, e.g. ``product_in [axi-cel, brexu-cel]; concurrent_crs_grade_min 1``."""
        parts = []
        for k, v in self.model_dump(exclude_none=True).items():
            parts.append(f"{k} [{', '.join(v)}]" if isinstance(v, tuple) else f"{k} {v}")
        return "; ".join(parts)


class Action(BaseModel):
    """One recommended action, with its source, locator and verification tag."""

    model_config = _STRICT

    kind: ActionKind
    text: Text
    dose: DoseExpr | None = None
    escalation: Text | None = None
    referral: str | None = None
    ici_action: IciAction | None = None
    source: str
    locator: str = Field(min_length=1)
    verification: Verification

    @field_validator("dose", mode="before")
    @classmethod
    def _dose(cls, v: Any) -> Any:
        return DoseExpr(**v) if isinstance(v, dict) else v


class Rule(BaseModel):
    """Actions for a toxicity, some grades and (optionally) a context condition."""

    model_config = _STRICT

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    toxicity: str | tuple[str, ...]
    grades: tuple[int, ...] = Field(min_length=1)
    when: When = When()
    action: tuple[Action, ...] = Field(min_length=1)
    note: Text | None = None

    @property
    def toxicities(self) -> tuple[str, ...]:
        """The toxicities the rule covers (one id, or a list for an action common to several)."""
        return (self.toxicity,) if isinstance(self.toxicity, str) else self.toxicity


class Deferral(BaseModel):
    """Grades a set does not cover and for which ITS SOURCE sends the reader to another set."""

    model_config = _STRICT

    grades: tuple[int, ...] = Field(min_length=1)
    to: str
    text: Text
    source: str
    locator: str = Field(min_length=1)
    verification: Verification


class Toxicity(BaseModel):
    """A toxicity a set manages: accepted grading scales, other names, required context."""

    model_config = _STRICT

    title: Text
    grades: tuple[int, int]
    scales: tuple[str, ...] = ()
    native_scales: tuple[str, ...] | None = None
    terms: tuple[str, ...] = ()
    requires: tuple[ContextField, ...] = ()
    grading_note: Text | None = None
    defer: tuple[Deferral, ...] = ()

    def accepts_scale(self, scale_id: str) -> bool:
        return any(fnmatch.fnmatchcase(scale_id, pat) for pat in self.scales)

    def is_native(self, scale_id: str) -> bool:
        native = self.scales if self.native_scales is None else self.native_scales
        return any(fnmatch.fnmatchcase(scale_id, pat) for pat in native)


class BaseRef(BaseModel):
    model_config = _STRICT

    id: str
    version: str


class GuidelineFile(BaseModel):
    """One guideline-set file, as written (before derivation)."""

    model_config = _STRICT

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: str = Field(min_length=1)
    lifecycle: Lifecycle
    title: Text
    description: Text | None = None
    institution: str | None = None
    sources: tuple[str, ...] = ()
    default_for: tuple[str, ...] = ()
    product_classes: tuple[str, ...] = ()
    population: Population | None = None
    derives_from: BaseRef | None = None
    remove_rules: tuple[str, ...] = ()
    toxicity: dict[str, Toxicity] = {}
    rule: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class ResolvedRule:
    """A rule of a resolved set, with the set (``id@version``) that wrote it."""

    rule: Rule
    origin: str


@dataclass(frozen=True)
class GuidelineSet:
    """A guideline set ready to use: derivation applied, everything validated."""

    id: str
    version: str
    lifecycle: str
    title: Text
    description: Text | None
    institution: str | None
    sources: tuple[str, ...]
    default_for: tuple[str, ...]
    product_classes: tuple[str, ...]
    population: Population
    derives_from: str | None
    toxicities: dict[str, Toxicity]
    rules: tuple[ResolvedRule, ...]
    path: str
    sha256: str
    packaged: bool
    chain: tuple[str, ...] = field(default=())

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    def find_toxicity(self, name: str) -> str | None:
        """The toxicity id for ``name``: a toxicity id, one of its terms, or an accepted scale id."""
        key = name.strip().lower()
        if key in self.toxicities:
            return key
        for tid, tox in self.toxicities.items():
            if key in tox.terms:
                return tid
        for tid, tox in self.toxicities.items():
            if ":" in key and tox.accepts_scale(key):
                return tid
        return None


# ------------------------------------------------------------------------------ loading
def _read(path: Traversable | Path, label: str) -> tuple[GuidelineFile, str]:
    data = path.read_bytes()
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RuleSpecError(f"guideline file {label}: {exc}") from None
    try:
        spec = GuidelineFile(**raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise RuleSpecError(
            f"guideline file {label}: {loc}: {first['msg']} ({exc.error_count()} problem(s))"
        ) from None
    except TypeError as exc:
        raise RuleSpecError(f"guideline file {label}: {exc}") from None
    return spec, hashlib.sha256(data).hexdigest()


def _files_in(folder: Traversable | Path) -> list[Traversable | Path]:
    return sorted(
        (p for p in folder.iterdir() if p.name.endswith(".toml") and not p.name.startswith("_")),
        key=lambda p: p.name,
    )


@functools.cache
def _packaged() -> tuple[tuple[GuidelineFile, str, str], ...]:
    folder = resources.files("immunotox").joinpath("data/guidelines")
    return tuple(
        (*_read(p, f"data/guidelines/{p.name}"), f"data/guidelines/{p.name}") for p in _files_in(folder)
    )


def _extra(dirs: Iterable[str | Path]) -> list[tuple[GuidelineFile, str, str]]:
    out: list[tuple[GuidelineFile, str, str]] = []
    for d in dirs:
        folder = Path(d)
        if not folder.is_dir():
            raise FindingError("guideline_dir", str(d), error("mg_not_directory"))
        out += [(*_read(p, str(p)), str(p)) for p in _files_in(folder)]
    return out


def _validate(gs: GuidelineSet) -> None:
    where = f"guideline set {gs.ref} ({gs.path})"
    known_sources = all_sources()
    drugs = drug_data()
    vocab = vocabulary()
    classes = {p.product_class for p in drugs.products.values()}
    for key in gs.sources:
        if key not in known_sources:
            raise RuleSpecError(f"{where}: source {key!r} is not in data/sources.toml")
    if not gs.product_classes:
        raise RuleSpecError(
            f"{where}: product_classes is required: the product classes the set is written for"
        )
    for c in gs.product_classes:
        if c not in classes:
            raise RuleSpecError(f"{where}: unknown product class {c!r} in product_classes")
    for tid, tox in gs.toxicities.items():
        for d in tox.defer:
            if d.source not in known_sources:
                raise RuleSpecError(f"{where}: toxicity {tid!r} defers citing unknown source {d.source!r}")
    if gs.population.source not in known_sources:
        raise RuleSpecError(
            f"{where}: population source {gs.population.source!r} is not in data/sources.toml"
        )
    for tid, tox in gs.toxicities.items():
        lo, hi = tox.grades
        if not 0 <= lo <= hi <= 5:
            raise RuleSpecError(f"{where}: toxicity {tid!r} grades {tox.grades} not within 0-5")
    seen: set[str] = set()
    for rr in gs.rules:
        r = rr.rule
        rw = f"{where}, rule {r.id!r}"
        if r.id in seen:
            raise RuleSpecError(f"{rw}: rule id used twice")
        seen.add(r.id)
        for tid in r.toxicities:
            tox_ = gs.toxicities.get(tid)
            if tox_ is None:
                raise RuleSpecError(f"{rw}: toxicity {tid!r} is not declared in [toxicity]")
            bad = [g for g in r.grades if not tox_.grades[0] <= g <= tox_.grades[1]]
            if bad:
                raise RuleSpecError(f"{rw}: grades {bad} outside {tid} grades {tox_.grades}")
        for p in r.when.product_in or ():
            if p not in drugs.products:
                raise RuleSpecError(f"{rw}: unknown product {p!r} in when.product_in")
        for c in r.when.product_class_in or ():
            if c not in classes:
                raise RuleSpecError(f"{rw}: unknown product class {c!r} in when.product_class_in")
        for i, a in enumerate(r.action):
            aw = f"{rw}, action {i + 1}"
            if a.source not in known_sources:
                raise RuleSpecError(f"{aw}: source {a.source!r} is not in data/sources.toml")
            if a.referral is not None and a.referral not in vocab["specialty"]:
                raise RuleSpecError(f"{aw}: unknown specialty {a.referral!r}")
            if a.kind == "referral" and a.referral is None:
                raise RuleSpecError(f"{aw}: a referral action names its specialty (referral = ...)")
            if (a.kind == "ici_action") != (a.ici_action is not None):
                raise RuleSpecError(f"{aw}: ici_action is required for kind 'ici_action' and only there")
            if a.dose is not None:
                if a.dose.drug not in drugs.drugs:
                    raise RuleSpecError(f"{aw}: unknown drug {a.dose.drug!r}")
                assert_within_max(a.dose, aw)


def _resolve(
    files: dict[str, tuple[GuidelineFile, str, str, bool]], sid: str, stack: tuple[str, ...] = ()
) -> GuidelineSet:
    if sid in stack:
        raise RuleSpecError(f"guideline sets derive from each other in a cycle: {' -> '.join((*stack, sid))}")
    spec, sha, path, packaged = files[sid]
    base_set: GuidelineSet | None = None
    if spec.derives_from is not None:
        ref = spec.derives_from
        if ref.id not in files:
            raise RuleSpecError(f"guideline set {spec.id} ({path}) derives from unknown set {ref.id!r}")
        base_set = _resolve(files, ref.id, (*stack, sid))
        if base_set.version != ref.version:
            raise RuleSpecError(
                f"guideline set {spec.id} ({path}) derives from {ref.id} {ref.version} but version "
                f"{base_set.version} is installed; review the changes of the base, then update "
                "derives_from.version"
            )
    own = [ResolvedRule(r, f"{spec.id}@{spec.version}") for r in spec.rule]
    population = spec.population or (base_set.population if base_set is not None else None)
    product_classes = spec.product_classes or (base_set.product_classes if base_set is not None else ())
    if population is None:
        raise RuleSpecError(
            f"guideline set {spec.id} ({path}): [population] is required: declare whom its doses are "
            "written for (age_from_years, age_below_years, text, source, locator, verification)"
        )
    if base_set is not None and spec.population is not None:
        bp, sp = base_set.population, spec.population
        wider = sp.age_from_years < bp.age_from_years or (
            bp.age_below_years is not None
            and (sp.age_below_years is None or sp.age_below_years > bp.age_below_years)
        )
        if wider:
            raise RuleSpecError(
                f"guideline set {spec.id} ({path}): its population ({sp.text.en}) is wider than that of "
                f"its base {base_set.ref} ({bp.text.en}); the base's doses would reach patients they "
                "are not written for"
            )
    if base_set is None:
        if spec.remove_rules:
            raise RuleSpecError(f"guideline set {spec.id} ({path}): remove_rules needs derives_from")
        rules = own
        toxicities = dict(spec.toxicity)
        sources = spec.sources
    else:
        base_ids = {rr.rule.id for rr in base_set.rules}
        missing = [r for r in spec.remove_rules if r not in base_ids]
        if missing:
            raise RuleSpecError(
                f"guideline set {spec.id} ({path}): remove_rules {missing} not in {base_set.ref}"
            )
        local = {rr.rule.id: rr for rr in own}
        rules = [local.pop(rr.rule.id, rr) for rr in base_set.rules if rr.rule.id not in spec.remove_rules]
        rules += [rr for rr in own if rr.rule.id in local]
        toxicities = {**base_set.toxicities, **spec.toxicity}
        sources = tuple(dict.fromkeys((*base_set.sources, *spec.sources)))
    gs = GuidelineSet(
        id=spec.id,
        version=spec.version,
        lifecycle=spec.lifecycle,
        title=spec.title,
        description=spec.description,
        institution=spec.institution,
        sources=sources,
        default_for=spec.default_for,
        product_classes=product_classes,
        population=population,
        derives_from=f"{spec.derives_from.id}@{spec.derives_from.version}" if spec.derives_from else None,
        toxicities=toxicities,
        rules=tuple(rules),
        path=path,
        sha256=sha,
        packaged=packaged,
        chain=(*(base_set.chain if base_set else ()), f"{spec.id}@{spec.version}"),
    )
    _validate(gs)
    return gs


def _build(extra_dirs: tuple[str, ...]) -> dict[str, GuidelineSet]:
    files: dict[str, tuple[GuidelineFile, str, str, bool]] = {}
    entries = [(s, h, p, True) for s, h, p in _packaged()] + [
        (s, h, p, False) for s, h, p in _extra(extra_dirs)
    ]
    for spec, sha, path, packaged in entries:
        if spec.id in files:
            raise RuleSpecError(
                f"guideline set id {spec.id!r} is defined twice ({files[spec.id][2]} and {path})"
            )
        if spec.default_for and not packaged:
            raise RuleSpecError(
                f"guideline set {spec.id} ({path}): default_for is reserved for packaged sets; "
                "select a local set by id"
            )
        files[spec.id] = (spec, sha, path, packaged)
    out = {sid: _resolve(files, sid) for sid in files}
    owner: dict[tuple[str, str], str] = {}
    for gs in out.values():
        for tox in gs.default_for:
            if tox not in gs.toxicities:
                raise RuleSpecError(f"guideline set {gs.ref}: default_for names undeclared toxicity {tox!r}")
            for pc in gs.product_classes:
                if (tox, pc) in owner:
                    raise RuleSpecError(
                        f"toxicity {tox!r} has two default sets for product class {pc}: "
                        f"{owner[(tox, pc)]} and {gs.id}"
                    )
                owner[(tox, pc)] = gs.id
        for tid, tox_ in gs.toxicities.items():
            for d in tox_.defer:
                target = out.get(d.to)
                if target is None or target.find_toxicity(tid) is None:
                    raise RuleSpecError(
                        f"guideline set {gs.ref}: toxicity {tid!r} defers to {d.to!r}, "
                        "which does not manage it"
                    )
    return out


@functools.cache
def _packaged_registry() -> dict[str, GuidelineSet]:
    return _build(())


def registry(guideline_dirs: Iterable[str | Path] = ()) -> dict[str, GuidelineSet]:
    """Every guideline set by id: the packaged ones plus those in ``guideline_dirs``."""
    dirs = tuple(str(d) for d in guideline_dirs)
    return _packaged_registry() if not dirs else _build(dirs)


def load_guideline(guideline_id: str, guideline_dirs: Iterable[str | Path] = ()) -> GuidelineSet:
    """The resolved guideline set ``guideline_id``; unknown ids raise FindingError on ``guideline``."""
    reg = registry(guideline_dirs)
    if not isinstance(guideline_id, str) or guideline_id not in reg:
        raise FindingError(
            "guideline",
            guideline_id,
            error("mg_unknown_set"),
            error("mg_known_sets", sets=", ".join(sorted(reg))),
        )
    return reg[guideline_id]
