"""Reference intervals of laboratory results: a result's own, or the site's default.

The defaults and the CTCAE terms of each laboratory code are data (``data/reference_intervals.toml``);
this module reads them once, checks them, and checks the interval a result carries
(:func:`check_reference`, the same check for the API, FHIR and files).
"""

from __future__ import annotations

import functools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from .. import units
from ..errors import FindingError, RuleSpecError, UnitError
from ..messages import Catalogue, Msg, error, name
from ..sources import source
from ..vocabulary import CodeSpec, vocabulary

T = Catalogue("reference_intervals")
SexBand = Literal["female", "male", "any"]
_FILE = "data/reference_intervals.toml"


@dataclass(frozen=True)
class Interval:
    """One default reference interval, in the code's canonical unit (``low``, ``high``)."""

    code: str
    sex: SexBand
    age: tuple[float, float]
    low: float
    high: float
    unit: str
    source: str
    verification: str
    given: tuple[float, float, str]  # as written in the data file: low, high, unit
    note: str | None = None
    cited: str | None = None  # a site file's own citation (its source is then "site")

    def population(self) -> Msg:
        """« femmes, âgées de 18 ans ou plus »."""
        lo, hi = self.age
        age = T.m("age_band", lo=_num(lo)) if hi >= 150 else T.m("age_band_closed", lo=_num(lo), hi=_num(hi))
        return T.m("population", sex=T(f"messages.sex.{self.sex}"), age=age)

    def citation(self) -> str:
        return self.cited if self.cited else source(self.source).citation()

    def public(self) -> dict[str, Any]:
        """The interval as a grade's inputs show it (JSON)."""
        return {
            "low": self.low,
            "high": self.high,
            "unit": self.unit,
            "sex": self.sex,
            "age_years": list(self.age),
            "source": self.source,
            "citation": self.citation(),
            "verification": self.verification,
            "as_published": {"low": self.given[0], "high": self.given[1], "unit": self.given[2]},
        }


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x


@dataclass(frozen=True)
class Table:
    """The parsed ``data/reference_intervals.toml``."""

    terms: Mapping[str, tuple[str, ...]]  # observation code -> scale ids
    intervals: tuple[Interval, ...]

    def code_of(self, scale_id: str) -> str | None:
        """The observation code a CTCAE laboratory term is graded from."""
        for code, scales in self.terms.items():
            if scale_id in scales:
                return code
        return None


def _lab_spec(code: str, where: str) -> CodeSpec:
    spec = vocabulary().all_codes.get(code)
    if spec is None:
        raise RuleSpecError(f"{where}: {code!r} is not an observation code")
    if spec.kind != "quantity" or spec.category != "laboratory":
        raise RuleSpecError(f"{where}: {code!r} is not a laboratory quantity")
    return spec


_site: dict[str, tuple[Interval, ...]] = {}
"""The site's own intervals when a site file is in use (:func:`use_site_intervals`)."""


@functools.cache
def _packaged() -> Table:
    raw = tomllib.loads(resources.files("immunotox").joinpath(_FILE).read_text("utf-8"))
    terms: dict[str, tuple[str, ...]] = {}
    for code, scales in raw.get("terms", {}).items():
        _lab_spec(code, f"{_FILE} [terms]")
        terms[code] = tuple(scales)
    return Table(terms=terms, intervals=_intervals(raw, _FILE))


def table() -> Table:
    """The reference-interval table, read and checked once: the shipped terms, and the site's
    intervals when a site file is in use, else the shipped defaults."""
    packaged = _packaged()
    if "intervals" in _site:
        return Table(terms=packaged.terms, intervals=_site["intervals"])
    return packaged


def use_site_intervals(path: str | None) -> None:
    """Use the ``[[interval]]`` entries of the TOML file ``path`` (the grammar of
    ``data/reference_intervals.toml``) instead of the shipped defaults; None: the shipped ones.

    A site's interval names its source with ``source`` (a key of ``data/sources.toml``) or
    ``citation`` (free text: the laboratory's own catalogue). One site per process: the monitoring
    service calls this at start-up (``IMMUNOTOX_REFERENCE_INTERVALS``).

    Raises
    ------
    RuleSpecError
        The file is missing, unreadable or breaks the grammar (naming the entry).
    """
    if path is None:
        _site.clear()
        return
    _site["intervals"] = load_site_intervals(path)


def load_site_intervals(path: str) -> tuple[Interval, ...]:
    """The checked ``[[interval]]`` entries of a site file (see :func:`use_site_intervals`)."""
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RuleSpecError(f"{path}: {exc}") from None
    return _intervals(raw, path)


def _intervals(raw: dict[str, Any], where_file: str) -> tuple[Interval, ...]:
    out: list[Interval] = []
    for i, t in enumerate(raw.get("interval", [])):
        where = f"{where_file} interval {i}"
        try:
            out.append(_interval(t, where))
        except RuleSpecError:
            raise
        except KeyError as exc:
            raise RuleSpecError(f"{where}: missing {exc} (see the grammar of {_FILE})") from None
        except (TypeError, ValueError) as exc:  # a FindingError (unit) included: its message
            raise RuleSpecError(f"{where}: {exc} (see the grammar of {_FILE})") from None
    for a in out:
        for b in out:
            if a is not b and a.code == b.code and _overlap(a, b):
                raise RuleSpecError(f"{where_file}: two default intervals of {a.code} apply to one patient")
    return tuple(out)


def _interval(t: dict[str, Any], where: str) -> Interval:
    spec = _lab_spec(t["code"], where)
    if t["sex"] not in ("female", "male", "any"):
        raise RuleSpecError(f"{where}: sex must be female, male or any")
    if t.get("verification") not in ("V", "V2", "M"):
        raise RuleSpecError(f"{where}: verification must be V, V2 or M")
    if "source" in t:
        source(t["source"])  # a key of data/sources.toml
    elif not str(t.get("citation", "")).strip():
        raise RuleSpecError(f"{where}: give its source (a key of data/sources.toml) or its citation")
    lo_age, hi_age = (float(a) for a in t["age"])
    low = units.convert(spec.name, float(t["low"]), t["unit"], spec.unit, spec.molar_mass)
    high = units.convert(spec.name, float(t["high"]), t["unit"], spec.unit, spec.molar_mass)
    if not (0 <= lo_age < hi_age and 0 <= low < high):
        raise RuleSpecError(f"{where}: expected 0 <= age min < age max and 0 <= low < high")
    return Interval(
        code=spec.name,
        sex=t["sex"],
        age=(lo_age, hi_age),
        low=low,
        high=high,
        unit=spec.unit,
        source=t.get("source", "site"),
        verification=t["verification"],
        given=(float(t["low"]), float(t["high"]), t["unit"]),
        note=t.get("note"),
        cited=t.get("citation"),
    )


def _overlap(a: Interval, b: Interval) -> bool:
    sexes = a.sex == b.sex or "any" in (a.sex, b.sex)
    return sexes and a.age[0] < b.age[1] and b.age[0] < a.age[1]


def lab_terms() -> dict[str, tuple[str, ...]]:
    """Observation code -> the CTCAE laboratory terms (scale ids) graded from its results."""
    return dict(table().terms)


def default_interval(code: str, sex: str | None, age_years: float | None) -> Interval | None:
    """The site's default interval of ``code`` for a patient of ``sex`` and ``age_years``.

    None when none applies: age unknown, an age outside every band, or a sex-specific interval
    and a sex other than female or male — never a guess.

    >>> default_interval("alt", "male", 64).high
    70.0
    >>> default_interval("alt", "unknown", 64) is None, default_interval("alt", "male", 8) is None
    (True, True)
    """
    if age_years is None:
        return None
    for iv in table().intervals:
        if iv.code != code or not iv.age[0] <= age_years < iv.age[1]:
            continue
        if iv.sex == "any" or iv.sex == sex:
            return iv
    return None


def population_msg(sex: str | None, age_years: float | None) -> Msg:
    """The patient as the explanation names them: « hommes, âgé(e) de 64 ans »."""
    sex_msg = T(f"messages.sex.{sex}") if sex in ("female", "male") else T("messages.sex.unknown")
    age = T.m("age_unknown") if age_years is None else T.m("age_years", age=_num(float(int(age_years))))
    return T.m("population", sex=sex_msg, age=age)


def ref_name(ref: str) -> Msg:
    return T(f"messages.ref.{ref}")


@dataclass(frozen=True)
class Reference:
    """A result's own reference interval, checked, in the code's canonical unit."""

    low: float | None
    high: float | None


def check_reference(
    spec: CodeSpec, ref_low: Any, ref_high: Any, unit: Any, prefix: str = ""
) -> Reference | None:
    """Check the reference interval a result carries (``ref_low``/``ref_high``, in the result's
    ``unit``); return it in the canonical unit, None when neither bound is given.

    Refused, naming the field: a bound on a code that is not a laboratory quantity, a bound
    that is not a finite number, a bound without the result's unit or in a unit that does not fit
    the analyte, a negative bound, ``ref_low >= ref_high``.

    >>> from immunotox.vocabulary import vocabulary
    >>> check_reference(vocabulary().code("alt"), 7, 40, "U/L")
    Reference(low=7.0, high=40.0)
    >>> check_reference(vocabulary().code("alt"), 50, 40, "U/L")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    immunotox.errors.FindingError: ref_low = 50.0: is not below ref_high (40)...
    """
    if ref_low is None and ref_high is None:
        return None
    given = "ref_low" if ref_low is not None else "ref_high"
    if spec.kind != "quantity" or spec.category != "laboratory":
        raw = ref_low if ref_low is not None else ref_high
        raise FindingError(
            f"{prefix}{given}",
            _shown(raw),
            T.e("not_laboratory", name=spec.name),
            T.e("not_laboratory_hint"),
        )
    if unit is None or (isinstance(unit, str) and unit.strip() == ""):
        raise FindingError(
            f"{prefix}unit",
            unit,
            T.e("needs_unit"),
            T.e("needs_unit_hint", unit=repr(spec.unit)),
        )
    out: dict[str, float | None] = {}
    given_x: dict[str, float] = {}
    for key, raw in (("ref_low", ref_low), ("ref_high", ref_high)):
        if raw is None:
            out[key] = None
            continue
        x = given_x[key] = _finite(raw, f"{prefix}{key}")
        if x < 0:
            raise FindingError(f"{prefix}{key}", x, T.e("negative"))
        try:
            out[key] = units.convert(spec.name, x, str(unit), spec.unit, spec.molar_mass)
        except UnitError as exc:
            raise UnitError(f"{prefix}unit", unit, *exc.texts()) from None
    low, high = out["ref_low"], out["ref_high"]
    if low is not None and high is not None and low >= high:
        raise FindingError(
            f"{prefix}ref_low",
            given_x["ref_low"],
            T.e("low_not_below_high", high=given_x["ref_high"]),
            T.e("low_high_hint"),
        )
    return Reference(low, high)


def _shown(raw: Any) -> Any:
    """A limit as an error shows it: the number when it reads as one (a file's "36" and an API's
    36.0 are shown alike), else as given."""
    try:
        return _finite(raw, "")
    except FindingError:
        return raw


def _finite(raw: Any, field: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise FindingError(field, raw, T.e("number"))
    try:
        x = float(raw.strip() if isinstance(raw, str) else raw)
    except ValueError:
        raise FindingError(field, raw, T.e("number_plain")) from None
    if not math.isfinite(x):
        raise FindingError(field, x, error("not_finite"))
    return x


def interval_msg(ref: str, iv: Interval) -> Msg:
    """« LSN 70 U/L : l'intervalle de référence par défaut du site … (citation) »."""
    return T.m(
        "default_interval",
        ref=ref_name(ref),
        value=iv.high if ref == "uln" else iv.low,
        unit=name(iv.unit),
        low=iv.low,
        high=iv.high,
        population=iv.population(),
        citation=name(iv.citation()),
        unverified=T.m("unverified") if iv.verification == "M" else "",
    )
