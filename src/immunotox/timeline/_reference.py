"""The reference (scalar) timeline engine: one patient at a time, plain Python, grading core.

This is the oracle of the cohort engine and the path of the live service: a patient's
observations are scanned with ``bisect``; at every assessment time the findings are
reconstructed by the rules of ``data/observations.toml`` and handed to
``immunotox.get_scale(id).grade(findings)``. Episodes, daily maxima and the patient summary are
computed here with simple loops, independently of the vectorised engine, so that the
differential tests compare two implementations of every rule.
"""

from __future__ import annotations

import bisect
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..catalogue import all_scales
from ..scales import astct2019_spec
from ..vocabulary import Derivation, Vocabulary, vocabulary
from ._course import Course, episode_step, masked_at
from ._labs import add_reference, lab_findings, lab_inputs, organ_refs, references
from ._read import NO_END, Obs
from ._snapshot import Grader, GradeRow, ScalePlan, findings_from_raw

INF = 1 << 62
DAY_US = 86_400_000_000


@dataclass
class _Series:
    t: list[int] = field(default_factory=list)
    v: list[float] = field(default_factory=list)
    end: list[int | None] = field(default_factory=list)


_NONE = _Series()
"""The series of a code without rows (read only)."""
_TIME_CODE = operator.itemgetter(0, 1)


class PatientRecord:
    """One patient's accepted observations, by code, in time order."""

    def __init__(
        self, rows: Sequence[tuple[int, int, float, int | None]], voc: Vocabulary | None = None
    ) -> None:
        self.voc = voc or vocabulary()
        self.rows = sorted(rows, key=_TIME_CODE)
        self.raw: dict[str, _Series] = {}
        names = [x.name for x in self.voc.codes]
        for t, c, v, e in self.rows:
            s = self.raw.get(names[c])
            if s is None:
                s = self.raw[names[c]] = _Series()
            s.t.append(t)
            s.v.append(v)
            s.end.append(e)
        self._dedup: dict[str, tuple[list[int], list[float]]] = {}
        #: (code, time) -> the reference interval (low, high) of the result the code's ``ties``
        #: rule picks at that time (see :func:`records`); absent: none reported
        self.ref_at: dict[tuple[str, int], tuple[float | None, float | None]] = {}
        self._intervals: dict[tuple[str, bool], list[tuple[int, int, int]]] = {}

    def series(self, code: str) -> tuple[list[int], list[float]]:
        """One value per time: the worst of simultaneous rows (the code's ``ties`` rule)."""
        if code not in self._dedup:
            spec = self.voc.code(code)
            s = self.raw.get(code, _NONE)
            worst = max if (spec.ties == "max" or spec.kind in ("token", "bool")) else min
            ts: list[int] = []
            vs: list[float] = []
            for t, v in zip(s.t, s.v, strict=True):
                if ts and ts[-1] == t:
                    vs[-1] = worst(vs[-1], v)
                else:
                    ts.append(t)
                    vs.append(v)
            self._dedup[code] = (ts, vs)
        return self._dedup[code]

    def intervals(self, code: str, per_token: bool) -> list[tuple[int, int, int]]:
        """(start, end, token) of each row; an open row runs until the next row of the same code
        (and token) at a later time, else forever."""
        key = (code, per_token)
        if key not in self._intervals:
            self._intervals[key] = self._make_intervals(code, per_token)
        return self._intervals[key]

    def _make_intervals(self, code: str, per_token: bool) -> list[tuple[int, int, int]]:
        s = self.raw.get(code, _NONE)
        out = []
        for i, (t, v, e) in enumerate(zip(s.t, s.v, s.end, strict=True)):
            if e is None:
                later = [
                    s.t[j]
                    for j in range(len(s.t))
                    if s.t[j] > t and (not per_token or int(s.v[j]) == int(v)) and j != i
                ]
                e = min(later) if later else INF
            out.append((t, e, int(v)))
        return out


class PatientState:
    """Reconstructs findings at any time for one patient (the rules of ``data/observations.toml``)."""

    def __init__(self, rec: PatientRecord, resolution_us: int, day0_t: int | None = None) -> None:
        self.rec = rec
        self.voc = rec.voc
        self.resolution_us = resolution_us
        self.day0_t = day0_t
        self._masked: dict[int, bool] = {}

    # ------------------------------------------------------------------ methods
    def window(self, code: str, w: int, t: int, how: Any) -> float | None:
        ts, vs = self.rec.series(code)
        lo = bisect.bisect_right(ts, t - w)
        hi = bisect.bisect_right(ts, t)
        return how(vs[lo:hi]) if hi > lo else None

    def last(self, code: str, w: int, t: int) -> tuple[float, int] | None:
        ts, vs = self.rec.series(code)
        j = bisect.bisect_right(ts, t) - 1
        if j >= 0 and ts[j] > t - w:
            return vs[j], ts[j]
        return None

    def record(self, d: Derivation, t: int) -> tuple[tuple[float | None, ...], bool]:
        """(the item values of the latest record of ``d`` at ``t``, True when that record is later
        than the latest row of ``d.unless``) — the ``record_last`` rule."""
        lasts = [self.last(code, d.window_us, t) for code in d.codes]
        k = max((g[1] for g in lasts if g is not None), default=None)
        if k is None:
            return tuple(None for _ in d.codes), False
        if d.unless is not None:
            u = self.voc.derivation(d.unless)
            got = self.last(u.codes[0], u.window_us, t)
            if got is not None and got[1] >= k:
                return tuple(None for _ in d.codes), False
        return tuple(g[0] if g is not None and g[1] == k else None for g in lasts), True

    def device(self, code: str, t: int) -> tuple[int, int | None]:
        spec = self.voc.code(code)
        best_rank, best_start = 0, None
        for s, e, tok in self.rec.intervals(code, per_token=False):
            if s <= t < e:
                r = spec.intensity.index(spec.tokens[tok])
                if r > best_rank:
                    best_rank, best_start = r, s
                elif r == best_rank and r > 0 and best_start is not None:
                    best_start = max(best_start, s)
        return spec.tokens.index(spec.intensity[best_rank]), best_start

    def active_set(self, code: str, t: int) -> int:
        mask = 0
        for s, e, tok in self.rec.intervals(code, per_token=True):
            if s <= t < e:
                mask |= 1 << tok
        return mask

    def active_hours(self, code: str, t: int) -> float:
        spans = sorted((s, min(e, t)) for s, e, _ in self.rec.intervals(code, per_token=False) if s <= t)
        total, cur_s, cur_e = 0, None, None
        for s, e in spans:
            if cur_e is None or cur_s is None or s > cur_e:
                if cur_e is not None and cur_s is not None:
                    total += cur_e - cur_s
                cur_s, cur_e = s, e
            else:
                cur_e = max(cur_e, e)
        if cur_e is not None and cur_s is not None:
            total += cur_e - cur_s
        return total / 3_600_000_000

    def patient_last(self, code: str) -> float | None:
        _ts, vs = self.rec.series(code)
        return vs[-1] if vs else None

    def event_since(self, code: str, token: str, t: int) -> bool:
        tok = self.voc.code(code).tokens.index(token)
        ts, vs = self.rec.series(code)
        return any(tt <= t and int(v) == tok for tt, v in zip(ts, vs, strict=True))

    def series_until(self, code: str, t: int) -> tuple[tuple[int, float], ...]:
        """(day, value) of every value of ``code`` at or before ``t`` (days from day 0)."""
        if self.day0_t is None:
            raise AssertionError("a 'series' derivation needs the patient's day 0")
        ts, vs = self.rec.series(code)
        n = bisect.bisect_right(ts, t)
        return tuple(((tt - self.day0_t) // DAY_US, v) for tt, v in zip(ts[:n], vs[:n], strict=True))

    def raw(self, d: Derivation, t: int) -> Any:
        m = d.method
        c = d.codes[0] if d.codes else ""
        if m == "window_max":
            return self.window(c, d.window_us, t, max)
        if m == "window_min":
            return self.window(c, d.window_us, t, min)
        if m == "last":
            got = self.last(c, d.window_us, t)
            record = self.voc.record_of(d.finding)
            if got is not None and record is not None and self.record(record, t)[1]:
                return None  # a later record of items supersedes it
            return None if got is None else got[0]
        if m == "device":
            return self.device(c, t)[0]
        if m == "device_last":
            dev_d = next(x for x in self.voc.derivations.values() if x.method == "device")
            dev, start = self.device(dev_d.codes[0], t)
            if dev == self.voc.code(dev_d.codes[0]).tokens.index("none") or start is None:
                return None
            got = self.last(c, d.window_us, t)
            return None if got is None or got[1] < start else got[0]
        if m == "active_set":
            return self.active_set(c, t)
        if m == "active_hours":
            return self.active_hours(c, t) if self.active_set(c, t) else None
        if m == "masking":
            return self._masked[t]
        if m == "patient_last":
            return self.patient_last(c)
        if m == "event_since":
            assert d.token is not None
            return self.event_since(c, d.token, t)
        if m == "series":
            return self.series_until(c, t)
        if m == "record_last":
            return self.record(d, t)[0]
        raise AssertionError(m)

    def raw_state(self, findings: Sequence[str], t: int) -> dict[str, Any]:
        return {k: self.raw(self.voc.derivations[k], t) for k in findings}

    # ------------------------------------------------------------------ masking
    def compute_masking(self, times: Sequence[int], grader: Grader) -> None:
        """fever_masked at each of ``times`` (the rule in ``data/observations.toml`` [masking])."""
        # the masking rule is ASTCT 2019's: its fever threshold from the typed table, as the
        # cohort engine (``_astct.masking``) and the scale itself read it
        assert self.voc.masking_scale == "astct2019", "[masking] scale must be astct2019"
        scale = all_scales()[f"{self.voc.masking_scale}:crs"]
        fever_min = astct2019_spec.table().crs.fever_min_c
        keys = [
            k for k in ("temperature_c", "sbp_mmhg", "vasopressors", "oxygen", "o2_flow_l_min", "age_years")
        ]
        keys = [k for k in keys if k in scale.findings and k in self.voc.derivations]
        mplan = ScalePlan(scale.id, tuple(keys), frozenset(), frozenset())
        activity, fever = [], []
        for t in times:
            raw = self.raw_state(keys, t)
            f = findings_from_raw(mplan, raw, self.voc)
            f["fever_masked"] = True
            activity.append(grader.grade(scale, f).lo >= 1)
            temp = raw.get("temperature_c")
            fever.append(temp is not None and temp >= fever_min)
        therapy = sorted(
            {t for code in self.voc.derivation("fever_masked").codes for t in self.rec.series(code)[0]}
        )
        self._masked = {t: False for t in times}
        for ep in episodes_py(times, activity, self.resolution_us):
            onset = next((i for i in range(ep.start, ep.stop) if fever[i]), None)
            if onset is None:
                continue
            for i in range(onset, ep.stop):
                self._masked[times[i]] = masked_at(times[onset], therapy, times[i])


@dataclass
class EpisodePy:
    start: int
    stop: int
    last_pos: int
    resolved: bool
    resolution: int | None


def episodes_py(times: Sequence[int], pos: Sequence[bool], resolution_us: int) -> list[EpisodePy]:
    """The episode rule (:func:`._course.episode_step`) over one patient's assessments, as row
    indices (see :func:`immunotox.timeline._state.episodes`)."""
    out: list[EpisodePy] = []
    course: Course | None = None
    start = last = quiet = 0
    for i, (t, p) in enumerate(zip(times, pos, strict=True)):
        step = episode_step(course, t, 1 if p else 0, resolution_us)
        if step.closed is not None:
            out.append(EpisodePy(start, quiet, last, True, step.closed.resolved_at))
        if step.opened:
            start = i
        if p:
            last = i
        elif (
            step.course is not None
            and step.course.quiet_since == t
            and (course is None or course.quiet_since is None)
        ):
            quiet = i
        course = step.course
    if course is not None:
        out.append(EpisodePy(start, len(times), last, False, None))
    return out


def grid_times(rec: PatientRecord, p: ScalePlan) -> list[int]:
    """Assessment times of ``p`` for one patient (rows of its codes and ends of interval rows)."""
    times: set[int] = set()
    for code in p.grid_codes:
        s = rec.raw.get(code)
        if s is None:
            continue
        times.update(s.t)
        if code in p.interval_codes:
            times.update(e for e in s.end if e is not None)
    return sorted(times)


@dataclass
class PatientGrades:
    """Reference results of one patient for one scale."""

    times: list[int]
    rows: list[GradeRow]
    episodes: list[EpisodePy]


def grade_patient(
    rec: PatientRecord,
    plans: Sequence[ScalePlan],
    resolution_us: int,
    grader: Grader | None = None,
    day0_t: int | None = None,
) -> dict[str, PatientGrades]:
    """Grade one patient with every plan (the reference engine); ``day0_t`` (see :func:`day0`)
    is needed by the plans that read a ``series`` derivation (days from day 0)."""
    g = grader or Grader()
    out: dict[str, PatientGrades] = {}
    for p in plans:
        st = PatientState(rec, resolution_us, day0_t)
        times = grid_times(rec, p)
        if "fever_masked" in p.findings:
            st.compute_masking(times, g)
        rows = []
        for t in times:
            if p.lab is not None:  # a CTCAE laboratory term: its inputs at the result (_labs)
                q = lab_inputs(rec, p.scale_id, p.lab, t)
                f = lab_findings(q, rec.voc.code(p.lab).unit)
            else:
                f = findings_from_raw(p, st.raw_state(p.findings, t), rec.voc, with_units=True)
                for c in organ_refs(p.scale_id):  # an ASCO laboratory value: its reference (_labs)
                    got = st.last(c.code, rec.voc.derivations[c.finding].window_us, t)
                    if c.finding in f and got is not None:
                        x = references(rec, c.code, (c.ref_name,), got[1]).get(c.ref_name)
                        add_reference(f, c, None if x is None else float(x))
            rows.append(g.grade(p.scale, f))
        pos = [r.grade is not None and r.grade >= 1 for r in rows]
        out[p.scale_id] = PatientGrades(times, rows, episodes_py(times, pos, resolution_us))
    return out


def records(obs: Obs) -> list[tuple[str, PatientRecord]]:
    """One :class:`PatientRecord` per patient of ``obs``."""
    voc = vocabulary()
    b = obs.patient_bounds()
    out = []
    for i, pid in enumerate(obs.patient_ids):
        lo, hi = int(b[i]), int(b[i + 1])
        rows = [
            (
                int(obs.t[j]),
                int(obs.code[j]),
                float(obs.num[j]),
                None if obs.end[j] == NO_END else int(obs.end[j]),
            )
            for j in range(lo, hi)
        ]
        rec = PatientRecord(rows, voc)
        if obs.ref_low is not None and obs.ref_high is not None:
            rec.ref_at = _ref_at(
                rows, [float(x) for x in obs.ref_low[lo:hi]], [float(x) for x in obs.ref_high[lo:hi]], voc
            )
        out.append((pid, rec))
    return out


def _ref_at(
    rows: Sequence[tuple[int, int, float, int | None]],
    low: Sequence[float],
    high: Sequence[float],
    voc: Vocabulary,
) -> dict[tuple[str, int], tuple[float | None, float | None]]:
    """Per (code, time): the interval of the result the code's ``ties`` rule picks (the worst
    value; of equal values the last row, as the service picks the latest stored) — one patient's
    rows in input order within a time."""
    best: dict[tuple[int, int], tuple[float, int]] = {}
    for i, (t, c, v, _e) in enumerate(rows):
        spec = voc.codes[c]
        if spec.kind != "quantity":
            continue
        sign = 1.0 if spec.ties == "max" else -1.0  # the rule of PatientRecord.series
        cur = best.get((c, t))
        if cur is None or sign * v >= sign * cur[0]:
            best[(c, t)] = (v, i)
    out: dict[tuple[str, int], tuple[float | None, float | None]] = {}
    for (c, t), (_v, i) in best.items():
        lo_i, hi_i = low[i], high[i]
        if not (math.isnan(lo_i) and math.isnan(hi_i)):
            out[(voc.codes[c].name, t)] = (
                None if math.isnan(lo_i) else lo_i,
                None if math.isnan(hi_i) else hi_i,
            )
    return out


def day0(rec: PatientRecord, first_t: int) -> tuple[int, str]:
    """Day 0 of a patient: the first ``infusion`` row, else the first observation (``first_t``)."""
    inf = rec.raw.get("infusion")
    if inf is not None and inf.t:
        return inf.t[0], "infusion"
    return first_t, "first_observation"
