"""The incremental per-patient entry point: one patient's observations -> one scale's findings at t.

The live service (:mod:`immunotox.service.grading`) grades a patient as each row arrives; it
cannot regrade a whole history per write. This module gives it the timeline engine's rules for
one patient at one time, with the evidence behind each finding:

* :func:`live_plan` — what a scale reads, from the vocabulary's derivations
  (``data/observations.toml``): the codes read in a validity window and how far back
  (``windows``), the interval codes (``intervals``, the whole record up to t), the codes read over
  the whole record (``record``: age, death), the masking therapies (``masking``, since the onset
  of the CRS course) and every code whose rows change the grade (``reads``). A caller loads the
  rows these name, nothing else;
* :func:`derive` — the findings at ``t`` from those rows, computed by the scalar reference
  engine's :class:`~._reference.PatientState` (the same typed :class:`~immunotox.vocabulary.Derivation`
  rules the cohort engine vectorises in :mod:`._state`), turned into findings by
  :func:`._snapshot.findings_from_raw`, with, for each finding, the rule and the rows it came from;
* :func:`episode_step` (from :mod:`._course`) — the episode rule, one assessment at a time.

Two inputs are the caller's, because they are not observations of the record: the patient's age
when it comes from a birth date (otherwise the latest ``age`` row), and the onset of the CRS course
in progress for fever masking (the timeline engine finds it from the whole history; a live caller
keeps it, as its open CRS episode). Rows after ``t`` are ignored (the record is read as it stood
at ``t``), except patient attributes (age: the patient's latest row, as in the cohort engine).
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from ..catalogue import get_scale
from ..messages import Catalogue, Msg, render
from ..vocabulary import Derivation, vocabulary
from ._course import Course, Step, episode_step, masked_at
from ._reference import PatientRecord, PatientState
from ._snapshot import ScalePlan, findings_from_raw, plan

__all__ = [
    "COURSE_SCALE",
    "Course",
    "Evidence",
    "LivePlan",
    "Row",
    "Snapshot",
    "Step",
    "derive",
    "episode_step",
    "from_us",
    "live_plan",
    "lookback",
    "rule_msg",
    "spans",
    "step_episode",
    "to_us",
]

COURSE_SCALE = f"{vocabulary().masking_scale}:crs"
"""The scale whose episode in progress is the CRS course that bounds fever masking."""
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)
_H = 3_600_000_000


_US_OF: dict[dt.datetime, int] = {}


def to_us(t: dt.datetime) -> int:
    """Microseconds since the epoch (the timeline engine's time; a naive time is UTC). Memoised:
    the rows of a patient are read again at every write."""
    got = _US_OF.get(t)
    if got is None:
        if len(_US_OF) > 200_000:
            _US_OF.clear()
        d = (t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)) - _EPOCH
        got = _US_OF[t] = (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds
    return got


def from_us(us: int) -> dt.datetime:
    """The UTC time of :func:`to_us`."""
    return _EPOCH + us * _US


class Row(Protocol):
    """One stored observation row (the service's event rows have these attributes)."""

    @property
    def id(self) -> int: ...
    @property
    def code(self) -> str: ...
    @property
    def time(self) -> dt.datetime: ...
    @property
    def end_time(self) -> dt.datetime | None: ...
    @property
    def value(self) -> str: ...
    @property
    def value_num(self) -> float | None: ...


@dataclass(frozen=True)
class Evidence:
    """How one finding was obtained: its value, the rule in English and in French (the texts of
    the derivation's method, ``[derive_text]`` of ``data/observations.toml``) and the ids of the
    rows it came from."""

    value: Any
    rule: str
    rule_fr: str
    rows: tuple[int, ...] = ()

    @classmethod
    def of(cls, value: Any, rule: Msg | Derivation, rows: tuple[int, ...] = ()) -> Evidence:
        """The evidence of ``value`` obtained by ``rule`` (a message, or a derivation's rule)."""
        en, fr = _rule_texts(rule) if isinstance(rule, Derivation) else (render(rule), render(rule, "fr"))
        return cls(value, en, fr, rows)


@dataclass(frozen=True)
class Snapshot:
    """The findings of one scale at ``t`` and the evidence behind each."""

    t: dt.datetime
    findings: dict[str, Any]
    evidence: dict[str, Evidence]


@dataclass(frozen=True)
class LivePlan:
    """What one scale reads for a live grade (see the module docstring)."""

    scale_id: str
    plan: ScalePlan
    windows: dict[str, dt.timedelta]
    intervals: frozenset[str]
    record: frozenset[str]
    masking: frozenset[str]
    reads: frozenset[str]


@functools.cache
def live_plan(scale_id: str) -> LivePlan:
    """The :class:`LivePlan` of ``scale_id`` (from the vocabulary's derivations)."""
    v = vocabulary()
    p = plan(get_scale(scale_id), v)
    windows: dict[str, dt.timedelta] = {}
    intervals: set[str] = set()
    record: set[str] = set()
    masking: set[str] = set()
    for name in p.findings:
        d = v.derivation(name)
        if d.method == "masking":
            masking.update(d.codes)
        elif d.method in ("patient_last", "event_since", "series"):
            record.update(d.codes)
        elif d.method in ("device", "active_set", "active_hours"):
            intervals.update(d.codes)
        else:
            assert d.window_h is not None  # checked when the vocabulary is loaded
            for c in d.codes:
                windows[c] = max(windows.get(c, dt.timedelta(0)), dt.timedelta(hours=d.window_h))
    reads = frozenset({*windows, *intervals, *record, *masking, *p.grid_codes})
    return LivePlan(scale_id, p, windows, frozenset(intervals), frozenset(record), frozenset(masking), reads)


# ------------------------------------------------------------------------------------ evidence
#: how each derivation method is said, in English and French (``[derive_text]``)
_SAY = Catalogue("observations")


@functools.cache
def _rule_texts(d: Derivation) -> tuple[str, str]:
    """The rule of ``d`` in English and in French (rendered once per derivation)."""
    msg = rule_msg(d)
    return render(msg, "en"), render(msg, "fr")


@functools.cache
def rule_msg(d: Derivation) -> Msg:
    """The rule of ``d`` in words (its method, codes, window and token), as a message."""
    params: dict[str, Any] = {"code": " / ".join(d.codes)}
    if d.window_h is not None:
        params["window"] = d.window_h
    if d.token is not None:
        params["token"] = d.token
    return _SAY(f"derive_text.{d.method}", **params)


_WHOLE_RECORD = frozenset(
    c for d in vocabulary().derivations.values() if d.method == "patient_last" for c in d.codes
)
"""Codes of patient attributes (age): the patient's latest row, whenever it was recorded."""


@functools.cache
def _code_info() -> dict[str, tuple[int, bool, dict[str, int]]]:
    """Contract code name -> (index, numeric, token -> token index)."""
    return {
        c.name: (c.index, c.numeric, {tok: i for i, tok in enumerate(c.tokens)}) for c in vocabulary().codes
    }


_ORDER = operator.itemgetter(0, 1, 4)


class _Record:
    """One patient's rows up to ``t`` as the reference engine reads them, with their ids."""

    def __init__(self, rows: Iterable[Row], t: int) -> None:
        v = vocabulary()
        info = _code_info()
        kept: list[tuple[int, int, float, int | None, int]] = []
        for r in rows:
            got = info.get(r.code)
            if got is None:
                continue
            index, numeric, tokens = got
            at = to_us(r.time)
            if at > t and r.code not in _WHOLE_RECORD:
                continue
            if numeric:
                if r.value_num is None:
                    continue
                x = float(r.value_num)
            else:
                tok = tokens.get(r.value)
                if tok is None:
                    continue
                x = float(tok)
            kept.append((at, index, x, None if r.end_time is None else to_us(r.end_time), r.id))
        kept.sort(key=_ORDER)
        self.rec = PatientRecord([k[:4] for k in kept], v)
        # ids in the record's own per-code order (same stable sort: see PatientRecord)
        self.ids: dict[str, list[tuple[int, float, int]]] = {}
        names = [c.name for c in v.codes]
        for at, c, x, _e, i in kept:
            mine = self.ids.get(names[c])
            if mine is None:
                mine = self.ids[names[c]] = []
            mine.append((at, x, i))

    def at(self, code: str, t: int, value: float | None = None) -> tuple[int, ...]:
        """Ids of the rows of ``code`` at ``t`` (with ``value``: the ones of that value)."""
        return tuple(i for at, x, i in self.ids.get(code, ()) if at == t and (value is None or x == value))

    def running(self, code: str, t: int, per_token: bool, token: int | None = None) -> list[tuple[int, int]]:
        """(start, id) of the rows of ``code`` running at ``t`` (of ``token`` when given)."""
        spans = self.rec.intervals(code, per_token)
        return [
            (s, i)
            for (s, e, tok), (_at, _x, i) in zip(spans, self.ids.get(code, ()), strict=True)
            if s <= t < e and (token is None or tok == token)
        ]


def _window_rows(rec: _Record, code: str, d: Derivation, t: int, value: float) -> tuple[int, ...]:
    """The latest row of ``code`` of ``value`` in the window of ``d`` ending at ``t``."""
    ts, vs = rec.rec.series(code)
    for at, x in zip(reversed(ts), reversed(vs), strict=True):
        if at <= t - d.window_us:
            break
        if at <= t and x == value:
            return rec.at(code, at, value)[-1:]
    return ()


def derive(
    lp: LivePlan,
    rows: Iterable[Row],
    t: dt.datetime,
    *,
    age: tuple[float, str] | None = None,
    course_onset: dt.datetime | None = None,
) -> Snapshot:
    """The findings of ``lp``'s scale at ``t`` from one patient's ``rows`` (those
    :func:`live_plan` names, any superset will do), with their evidence.

    ``age``: (years, where from) when the caller knows the age otherwise than from ``age`` rows
    (``"birth_date"``: a key of ``[derive_text.age_from]``, how the evidence says it);
    ``course_onset``: the onset of the CRS course in progress (no course: fever is not masked)."""
    v = vocabulary()
    tu = to_us(t)
    rec = _Record(rows, tu)
    st = PatientState(rec.rec, int(v.episode_resolution_h * _H))
    findings: dict[str, Any] = {}
    evidence: dict[str, Evidence] = {}
    raws: dict[str, Any] = {}
    for name in lp.plan.findings:
        d = v.derivation(name)
        if d.method == "masking":
            therapy = sorted({at for c in d.codes for at in rec.rec.series(c)[0]})
            onset = None if course_onset is None else to_us(course_onset)
            masked = onset is not None and masked_at(onset, therapy, tu)
            used = [
                i for c in d.codes for at, _x, i in rec.ids.get(c, ()) if onset is not None and onset <= at
            ]
            raws[name] = masked
            rule = d if onset is not None else _SAY("derive_text.no_course")
            evidence[name] = Evidence.of(masked, rule, tuple(used) if masked else ())
            continue
        if name == "age_years" and age is not None:
            raws[name] = age[0]
            evidence[name] = Evidence.of(age[0], _SAY(f"derive_text.age_from.{age[1]}"))
            continue
        raws[name] = st.raw(d, tu)
    # sets of tokens (running drugs) in alphabetical order, as a person reads them
    findings = {
        k: sorted(x) if isinstance(x, list) else x for k, x in findings_from_raw(lp.plan, raws, v).items()
    }
    for name in lp.plan.findings:
        if name in evidence:
            continue
        d = v.derivation(name)
        c = d.codes[0] if d.codes else ""
        if name in findings:
            evidence[name] = Evidence.of(findings[name], d, _rows_of(rec, st, d, tu, raws[name]))
        elif d.method == "event_since" and rec.ids.get(c):
            # a row of the code with another token: the finding is false (the row says so)
            last = [i for _at, _x, i in rec.ids[c]]
            evidence[name] = Evidence.of(False, d, tuple(last[-1:]))
    return Snapshot(t, findings, evidence)


def _rows_of(rec: _Record, st: PatientState, d: Derivation, t: int, raw: Any) -> tuple[int, ...]:
    """The ids of the rows finding ``d`` was taken from."""
    m = d.method
    c = d.codes[0] if d.codes else ""
    if m in ("window_max", "window_min", "last"):
        return _window_rows(rec, c, d, t, float(raw))
    if m == "device_last":
        got = st.last(c, d.window_us, t)
        return () if got is None else rec.at(c, got[1], got[0])[-1:]
    if m == "record_last":
        out: list[int] = []
        for code, x in zip(d.codes, st.record(d, t)[0], strict=True):
            got = st.last(code, d.window_us, t)
            if x is not None and got is not None:
                out.extend(rec.at(code, got[1], got[0])[-1:])
        return tuple(out)
    if m == "device":
        run = rec.running(c, t, per_token=False, token=int(raw))
        return (max(run)[1],) if run else ()
    if m in ("active_set", "active_hours"):
        return tuple(sorted(i for _s, i in rec.running(c, t, per_token=True)))
    if m == "patient_last":
        return tuple(i for _at, _x, i in rec.ids.get(c, ())[-1:])
    if m == "event_since":
        assert d.token is not None
        tok = float(vocabulary().code(c).tokens.index(d.token))
        return tuple(i for _at, x, i in rec.ids.get(c, ()) if x == tok)
    return ()


@functools.cache
def _interval_codes() -> dict[str, bool]:
    """Interval code -> whether a row runs until the next row of the same token (a set of
    drugs, ``active_set``) rather than of the same code (a device, ``device``)."""
    out: dict[str, bool] = {}
    for d in vocabulary().derivations.values():
        if d.method == "device":
            out[d.codes[0]] = False
        elif d.method == "active_set":
            out[d.codes[0]] = True
    return out


def spans(rows: Iterable[Row]) -> list[tuple[Row, dt.datetime, dt.datetime | None]]:
    """(row, start, end) of every row of an interval code (oxygen, vasopressor) by the
    vocabulary's rule: ``[time, end_time)``, or without ``end_time`` until the next row of the
    same code (of the same drug for vasopressors); end None = still running. For displays."""
    kept = [r for r in rows if r.code in _interval_codes()]
    by_id = {r.id: r for r in kept}
    rec = _Record(kept, _FOREVER)
    out: list[tuple[Row, dt.datetime, dt.datetime | None]] = []
    for code, per_token in _interval_codes().items():
        for (s, e, _tok), (_at, _x, i) in zip(
            rec.rec.intervals(code, per_token), rec.ids.get(code, ()), strict=True
        ):
            out.append((by_id[i], from_us(s), None if e >= _FOREVER else from_us(e)))
    out.sort(key=lambda x: (x[1], x[0].id))
    return out


_FOREVER = 1 << 62
"""The reference engine's "until the end of the record" (``_reference.INF``)."""


def lookback(lp: LivePlan) -> dt.timedelta:
    """The longest validity window of ``lp``'s scale (how far back its point rows are read)."""
    return max(lp.windows.values(), default=dt.timedelta(0))


def course_of(
    onset: dt.datetime,
    peak: int,
    peak_at: dt.datetime,
    last_positive: dt.datetime,
    quiet_since: dt.datetime | None,
) -> Course:
    """A stored episode as a :class:`Course` (times in microseconds)."""
    return Course(
        to_us(onset),
        peak,
        to_us(peak_at),
        to_us(last_positive),
        None if quiet_since is None else to_us(quiet_since),
    )


def step_episode(course: Course | None, t: dt.datetime, grade: int | None) -> Step:
    """:func:`episode_step` at ``t`` with the vocabulary's episode resolution."""
    return episode_step(course, to_us(t), grade, int(vocabulary().episode_resolution_h * _H))
