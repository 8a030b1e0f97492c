"""Loading and checking of ``data/pathway/*.toml`` (phases, labels, monitoring, visits, info).

Everything clinical about the pathway is data. This module turns the files into frozen
dataclasses and refuses, with :class:`~immunotox.errors.RuleSpecError`, any file that breaks its
grammar: a transition to an unknown phase, a phase without patient or clinician text in both
languages, a monitoring item without its basis, a source key missing from ``sources.toml``.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from ..errors import RuleSpecError
from ..sources import source

Lang = Literal["fr", "en"]
Audience = Literal["patient", "clinician"]
Side = Literal["pre", "day0", "post", "terminal"]
LANGS: tuple[Lang, ...] = ("fr", "en")
AUDIENCES: tuple[Audience, ...] = ("patient", "clinician")
_BASES = ("V", "V2", "M", "D")


@dataclass(frozen=True)
class Text:
    """A text in both languages."""

    fr: str
    en: str

    def get(self, lang: Lang) -> str:
        return self.fr if lang == "fr" else self.en


@dataclass(frozen=True)
class Phase:
    """One state of the pathway."""

    id: str
    title: Text
    side: Side
    next: tuple[str, ...]
    basis: str
    note: Text
    plan_start: int | None = None
    plan_end: int | None = None
    plan_start_months: int | None = None
    plan_end_months: int | None = None
    plan_end_years: int | None = None
    ends_with_label: bool = False
    earliest_day: int | None = None
    latest_day: int | None = None


PERIODS: tuple[str, ...] = ("daily_monitoring", "monitoring", "proximity", "no_driving")


@dataclass(frozen=True)
class Period:
    """A label period in days after infusion, with how it was verified.

    ``days`` is None for a period not verified from the product information ([M]): it is shown
    without a number.
    """

    days: int | None
    verification: str
    source: str
    note: str


@dataclass(frozen=True)
class LabelVersion:
    """One label version of one jurisdiction and the products it describes."""

    id: str
    jurisdiction: str
    title: Text
    in_force: str
    current: bool
    products: tuple[str, ...]


@dataclass(frozen=True)
class Label:
    """The periods one label version sets for one product in its jurisdiction."""

    version: LabelVersion
    product: str
    daily_monitoring: Period
    monitoring: Period
    proximity: Period
    no_driving: Period

    @property
    def id(self) -> str:
        return self.version.id

    @property
    def jurisdiction(self) -> str:
        return self.version.jurisdiction

    @property
    def title(self) -> Text:
        return self.version.title

    def periods(self) -> dict[str, Period]:
        return {
            "daily_monitoring": self.daily_monitoring,
            "monitoring": self.monitoring,
            "proximity": self.proximity,
            "no_driving": self.no_driving,
        }


@dataclass(frozen=True)
class Item:
    """One monitoring instruction with its basis (V, V2, M or D) and source key."""

    text: Text
    basis: str
    source: str | None = None


@dataclass(frozen=True)
class MonitoringRule:
    """The monitoring a phase implies, or the escalation a toxicity grade implies."""

    setting: str
    items: tuple[Item, ...]
    vitals_every_h: float | None = None
    ice_every_h: float | None = None
    level: int = 0
    toxicity: str | None = None
    grade: int = 0


@dataclass(frozen=True)
class Visit:
    """A scheduled visit, counted from infusion in days, calendar months or calendar years."""

    id: str
    title: Text
    checks: Text
    basis: str
    day: int | None = None
    months: int | None = None
    years: tuple[int, ...] = ()


@dataclass(frozen=True)
class Indication:
    id: str
    title: Text
    bridging: Text
    response: Text
    note: Text


@dataclass(frozen=True)
class PhaseInfo:
    """Patient text and clinician checklist of one phase, in both languages."""

    patient_title: Text
    patient: Text
    call: bool
    clinician_title: Text
    clinician_fr: tuple[str, ...]
    clinician_en: tuple[str, ...]


@dataclass(frozen=True)
class PathwayData:
    """The whole pathway definition."""

    id: str
    version: str
    start: str
    order: tuple[str, ...]
    phases: Mapping[str, Phase]
    label_versions: Mapping[str, LabelVersion]
    labels: Mapping[tuple[str, str], Label]
    period_titles: Mapping[str, Text]
    label_texts: Mapping[str, Text]
    settings: tuple[str, ...]
    setting_titles: Mapping[str, Text]
    baseline: Mapping[str, MonitoringRule]
    escalation: tuple[MonitoringRule, ...]
    visits: tuple[Visit, ...]
    indications: Mapping[str, Indication]
    info: Mapping[str, PhaseInfo]


# ---------------------------------------------------------------------------------------- helpers
def _load(name: str) -> dict[str, Any]:
    path = resources.files("immunotox").joinpath(f"data/pathway/{name}.toml")
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise RuleSpecError(f"data/pathway/{name}.toml is missing") from None
    except tomllib.TOMLDecodeError as exc:
        raise RuleSpecError(f"data/pathway/{name}.toml: {exc}") from None


def _text(where: str, t: Mapping[str, Any], key: str = "") -> Text:
    """``key`` + ``key_fr`` (or ``fr``/``en`` when key is empty, ``key_fr``/``key_en`` otherwise)."""
    if key == "":
        fr, en = t.get("fr"), t.get("en")
    elif f"{key}_en" in t:
        fr, en = t.get(f"{key}_fr"), t.get(f"{key}_en")
    else:
        fr, en = t.get(f"{key}_fr"), t.get(key)
    if not isinstance(fr, str) or not isinstance(en, str) or not fr.strip() or not en.strip():
        raise RuleSpecError(f"{where}: {key or 'text'} needs both French and English")
    return Text(fr=fr, en=en)


def _basis(where: str, basis: Any, src: Any) -> None:
    if basis not in _BASES:
        raise RuleSpecError(f"{where}: basis must be one of {_BASES}, got {basis!r}")
    if src is not None:
        source(src)


def _phases(doc: Mapping[str, Any]) -> tuple[Mapping[str, Any], dict[str, Phase]]:
    meta = doc["pathway"]
    phases: dict[str, Phase] = {}
    for pid, t in doc["phase"].items():
        where = f"data/pathway/phases.toml [phase.{pid}]"
        if t.get("side") not in ("pre", "day0", "post", "terminal"):
            raise RuleSpecError(f"{where}: side must be pre, day0, post or terminal")
        _basis(where, t.get("basis"), None)
        phases[pid] = Phase(
            id=pid,
            title=_text(where, t, "title"),
            side=t["side"],
            next=tuple(t.get("next", ())),
            basis=t["basis"],
            note=_text(where, t, "note"),
            plan_start=t.get("plan_start"),
            plan_end=t.get("plan_end"),
            plan_start_months=t.get("plan_start_months"),
            plan_end_months=t.get("plan_end_months"),
            plan_end_years=t.get("plan_end_years"),
            ends_with_label=bool(t.get("ends_with_label", False)),
            earliest_day=t.get("earliest_day"),
            latest_day=t.get("latest_day"),
        )
    if sorted(phases) != sorted(meta["order"]):
        raise RuleSpecError("data/pathway/phases.toml: `order` must list every phase")
    for p in phases.values():
        for n in p.next:
            if n not in phases:
                raise RuleSpecError(f"data/pathway/phases.toml [phase.{p.id}]: next phase {n!r} is unknown")
        if p.side == "terminal" and p.next:
            raise RuleSpecError(f"data/pathway/phases.toml [phase.{p.id}]: a terminal phase has no next")
    if meta["start"] not in phases:
        raise RuleSpecError("data/pathway/phases.toml: unknown start phase")
    return meta, phases


def _labels(doc: Mapping[str, Any]) -> tuple[dict[str, LabelVersion], dict[tuple[str, str], Label]]:
    """Label versions and, per (version, product), the four periods; refuses a gap or a number
    on an unverified period."""
    from ..jurisdiction import jurisdictions

    f = "data/pathway/labels.toml"
    versions: dict[str, LabelVersion] = {}
    for vid, t in doc["version"].items():
        where = f"{f} [version.{vid}]"
        if t.get("jurisdiction") not in jurisdictions():
            raise RuleSpecError(f"{where}: jurisdiction must be one of {sorted(jurisdictions())}")
        products = tuple(t.get("products", ()))
        if not products:
            raise RuleSpecError(f"{where}: products must list the products the version describes")
        versions[vid] = LabelVersion(
            id=vid,
            jurisdiction=t["jurisdiction"],
            title=_text(where, t, "title"),
            in_force=str(t.get("in_force", "")),
            current=bool(t.get("current", False)),
            products=products,
        )
    for code in {v.jurisdiction for v in versions.values()}:
        if sum(1 for v in versions.values() if v.jurisdiction == code and v.current) != 1:
            raise RuleSpecError(f"{f}: exactly one current version is needed for jurisdiction {code}")
    periods: dict[tuple[str, str], dict[str, Period]] = {}
    for i, p in enumerate(doc.get("period", ())):
        where = f"{f} [[period]] #{i}"
        v = versions.get(p.get("version"))
        if v is None:
            raise RuleSpecError(f"{where}: unknown version {p.get('version')!r}")
        name = p.get("name")
        if name not in PERIODS:
            raise RuleSpecError(f"{where}: name must be one of {PERIODS}")
        ver = p.get("verification")
        if ver not in ("V", "V2", "M"):
            raise RuleSpecError(f"{where}: verification must be V, V2 or M")
        days = p.get("days")
        if ver == "M" and days is not None:
            raise RuleSpecError(f"{where}: an unverified [M] period has no number of days")
        if ver != "M" and (not isinstance(days, int) or isinstance(days, bool) or days < 0):
            raise RuleSpecError(f"{where}: a verified period needs a whole number of days")
        source(p["source"])
        for prod in p.get("products", ()):
            if prod not in v.products:
                raise RuleSpecError(f"{where}: product {prod!r} is not listed by version {v.id}")
            slot = periods.setdefault((v.id, prod), {})
            if name in slot:
                raise RuleSpecError(f"{where}: {v.id}/{prod} has period {name!r} twice")
            slot[name] = Period(days, ver, p["source"], str(p.get("note", "")))
    labels: dict[tuple[str, str], Label] = {}
    for v in versions.values():
        for prod in v.products:
            got = periods.get((v.id, prod), {})
            missing = [n for n in PERIODS if n not in got]
            if missing:
                raise RuleSpecError(f"{f}: {v.id}/{prod} has no period {missing}")
            labels[(v.id, prod)] = Label(version=v, product=prod, **got)
    return versions, labels


def _items(where: str, raw: Any) -> tuple[Item, ...]:
    items: list[Item] = []
    for i, it in enumerate(raw or ()):
        w = f"{where}.items[{i}]"
        _basis(w, it.get("basis"), it.get("source"))
        items.append(Item(_text(w, it), it["basis"], it.get("source")))
    return tuple(items)


def _rule(where: str, t: Mapping[str, Any], settings: tuple[str, ...]) -> MonitoringRule:
    if t.get("setting") not in settings:
        raise RuleSpecError(f"{where}: setting must be one of {settings}")
    return MonitoringRule(
        setting=t["setting"],
        items=_items(where, t.get("items")),
        vitals_every_h=t.get("vitals_every_h"),
        ice_every_h=t.get("ice_every_h"),
        level=int(t.get("level", 0)),
        toxicity=t.get("toxicity"),
        grade=int(t.get("grade", 0)),
    )


def _info(doc: Mapping[str, Any], phases: Mapping[str, Phase]) -> dict[str, PhaseInfo]:
    out: dict[str, PhaseInfo] = {}
    for pid in phases:
        where = f"data/pathway/info.toml [phase.{pid}]"
        t = doc.get("phase", {}).get(pid)
        if not isinstance(t, dict) or "patient" not in t or "clinician" not in t:
            raise RuleSpecError(f"{where}: patient and clinician texts are required")
        pat, cli = t["patient"], t["clinician"]
        cfr, cen = tuple(cli.get("fr", ())), tuple(cli.get("en", ()))
        if not cfr or not cen or len(cfr) != len(cen):
            raise RuleSpecError(f"{where}.clinician: the checklist needs the same items in fr and en")
        out[pid] = PhaseInfo(
            patient_title=_text(f"{where}.patient", pat, "title"),
            patient=_text(f"{where}.patient", pat),
            call=bool(pat.get("call", False)),
            clinician_title=_text(f"{where}.clinician", cli, "title"),
            clinician_fr=cfr,
            clinician_en=cen,
        )
    return out


@functools.cache
def data() -> PathwayData:
    """The pathway definition, read once from ``data/pathway/*.toml`` and checked."""
    meta, phases = _phases(_load("phases"))
    mon = _load("monitoring")
    settings = tuple(mon["settings"])
    setting_titles = {
        s: _text(f"data/pathway/monitoring.toml [setting.{s}]", mon["setting"][s], "title") for s in settings
    }
    baseline = {
        pid: _rule(f"data/pathway/monitoring.toml [phase.{pid}]", mon["phase"][pid], settings)
        for pid in phases
        if pid in mon["phase"]
    }
    missing = [p for p in phases if p not in baseline]
    if missing:
        raise RuleSpecError(f"data/pathway/monitoring.toml: no baseline for phases {missing}")
    escalation = tuple(
        _rule(f"data/pathway/monitoring.toml [[escalation]] #{i}", t, settings)
        for i, t in enumerate(mon["escalation"])
    )
    for tox in ("crs", "icans"):
        grades = sorted(r.grade for r in escalation if r.toxicity == tox)
        if grades != [1, 2, 3, 4]:
            raise RuleSpecError(f"data/pathway/monitoring.toml: {tox} escalation needs grades 1-4")
    visits: list[Visit] = []
    for i, v in enumerate(_load("visits")["visit"]):
        where = f"data/pathway/visits.toml [[visit]] #{i}"
        _basis(where, v.get("basis"), None)
        years = v.get("years", [])
        visits.append(
            Visit(
                id=v["id"],
                title=_text(where, v, "title"),
                checks=_text(where, v, "checks"),
                basis=v["basis"],
                day=v.get("day"),
                months=v.get("months"),
                years=tuple(int(y) for y in years) if isinstance(years, list) else (int(years),),
            )
        )
    indications = {
        k: Indication(
            id=k,
            title=_text(f"indications.toml [{k}]", t, "title"),
            bridging=_text(f"indications.toml [{k}]", t, "bridging"),
            response=_text(f"indications.toml [{k}]", t, "response"),
            note=_text(f"indications.toml [{k}]", t, "note"),
        )
        for k, t in _load("indications")["indication"].items()
    }
    info = _info(_load("info"), phases)
    labels_doc = _load("labels")
    versions, labels = _labels(labels_doc)
    return PathwayData(
        id=meta["id"],
        version=meta["version"],
        start=meta["start"],
        order=tuple(meta["order"]),
        phases=phases,
        label_versions=versions,
        labels=labels,
        period_titles={
            n: _text(f"labels.toml [period_title.{n}]", labels_doc["period_title"][n]) for n in PERIODS
        },
        label_texts={k: _text(f"labels.toml [text.{k}]", t) for k, t in labels_doc["text"].items()},
        settings=settings,
        setting_titles=setting_titles,
        baseline=baseline,
        escalation=escalation,
        visits=tuple(visits),
        indications=indications,
        info=info,
    )
