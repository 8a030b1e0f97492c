"""The demo ward of ``immunotox serve --demo``: a simulated CAR-T unit whose data keep arriving.

* A fresh SQLite database in a temporary folder (never the production database), two units,
  demo accounts with **printed demo passwords** (created only here, never in normal mode).
* Patients and observations from the synthetic generator (:func:`immunotox.simulate.simulate_cohort`)
  — or, when it is not installed, a small built-in scenario — placed around the demo clock:
  each patient's record is shifted so that the ward holds patients at different days after
  infusion, and one patient's CRS starts about 30 simulated minutes after the start; a patient on a
  checkpoint inhibitor (pembrolizumab or nivolumab) has an immune colitis at ASCO 2021 grade 1
  when the demo starts, which rises to grade 2 (its alert carrying the corticosteroid dose for
  the patient's weight) at the bedside round 30 simulated minutes after the start; another
  one's liver tests 45 simulated minutes after the start show an immune hepatitis at ASCO 2021
  grade 2 (AST or ALT more than 3 times the upper limit of normal), charted at grade 1 before.
* Every simulated patient has the sex and age the generator drew, and every laboratory result
  carries the reference interval the laboratory reports with it: the site's default interval
  for that patient's sex and age (:func:`immunotox.labs.default_interval`, the one table of
  ``data/reference_intervals.toml``), so the grades relative to the upper limit of normal are
  complete grades, not ranges.
* A :class:`~immunotox.service.db.SimulatedClock` runs ``speed`` times faster than real time
  (default 120: one hour in 30 s). A background task feeds the rows whose time has come through
  the normal ingest path (checks, grading, alerts, audit), so grades change and alerts fire
  while a person watches; the periodic sweep (overdue ICE, escalation) runs on the same clock.

Synthetic data for demonstration only — not patients, not a clinical model.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
from fastapi import FastAPI
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from .. import labs
from ..errors import ImmunotoxError
from . import audit, bootstrap, codes, ingest
from .config import Settings
from .db import Clock, Database, SimulatedClock, migrate
from .models import Patient

log = logging.getLogger("immunotox.demo")

UNITS = (
    ("hemato-a", "Hématologie A — unité CAR-T", "+33 1 00 00 00 01"),
    ("hemato-b", "Hématologie B — hôpital de jour", "+33 1 00 00 00 02"),
)


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    role: str
    units: tuple[str, ...]
    display_name: str
    patient: bool = False


ACCOUNTS = (
    DemoAccount("medecin", "medecin-demo", "physician", ("hemato-a", "hemato-b"), "Dr Demo (médecin)"),
    DemoAccount("infirmiere", "infirmiere-demo", "nurse", ("hemato-a",), "Infirmière démo (unité A)"),
    DemoAccount("infirmier-b", "infirmier-demo", "nurse", ("hemato-b",), "Infirmier démo (unité B)"),
    DemoAccount("admin", "admin-demo", "admin", (), "Administrateur démo"),
    DemoAccount("patient", "patient-demo", "patient", (), "Patient démo", patient=True),
)


@dataclass
class PatientSeed:
    id: str
    unit_id: str
    display_name: str
    therapy_class: str
    product: str | None
    weight_kg: float | None
    infusion_at: dt.datetime
    indication: str | None = None
    # the patient's birth date: the management module gives a dose only for the population its
    # source is written for (adults), so an unknown age withholds every amount
    birth_date: dt.date | None = None
    sex: str | None = None  # "female" / "male" (reference intervals of ALT, AST, creatinine ...)


@dataclass
class Ward:
    patients: list[PatientSeed]
    rows: list[dict[str, Any]]  # contract rows, sorted by time
    source: str
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- ward data
def simulated_ward(
    start: dt.datetime, *, n_patients: int = 12, seed: int = 7, horizon_days: float = 7
) -> Ward:
    """A ward from the synthetic generator, placed around ``start`` (the built-in one if it refuses)."""
    from ..simulate import simulate_cohort, simulated_sex

    try:
        cohort = simulate_cohort(max(n_patients, 2), days=12, seed=seed)
    except ImmunotoxError as exc:  # pragma: no cover - generator refused its own defaults
        log.warning("simulator refused: %s; using the built-in scenario", exc)
        return builtin_ward(start)
    truth = sorted(
        ({**t, "sex": simulated_sex(t["patient_id"], seed)} for t in cohort.truth.to_pylist()),
        key=lambda r: r["patient_id"],
    )
    rows_by_patient: dict[str, list[dict[str, Any]]] = {}
    for r in cohort.observations.to_pylist():
        rows_by_patient.setdefault(r["patient_id"], []).append(r)
    for irae in _irae_patients(simulate_cohort, seed):
        truth.append(irae[0])
        rows_by_patient[irae[0]["patient_id"]] = irae[1]
    # order: severe CRS first (the one that starts during the demo), then the checkpoint-inhibitor
    # colitis and hepatitis that rise during the demo, then the others
    with_crs = [t for t in truth if (t.get("crs_grade") or 0) >= 2 and t.get("crs_onset") is not None]
    with_irae = [t for t in truth if t.get("irae_onset") is not None]
    others = [t for t in truth if t not in with_crs and t not in with_irae]
    ordered = with_crs[:2] + with_irae + others + with_crs[2:]
    offsets_days = [0.6, 1.5, 2.2, 3.0, 3.8, 4.5, 5.2, 6.0, 1.0, 2.6, 4.0, 5.6]
    patients: list[PatientSeed] = []
    rows: list[dict[str, Any]] = []
    for k, t in enumerate(ordered[:n_patients]):
        infusion: dt.datetime = t["infusion_time"]
        if k < 2 and t.get("crs_onset") is not None:
            # CRS onset 30 min (then 3 h) of simulated time after the demo starts
            lead = dt.timedelta(minutes=30) if k == 0 else dt.timedelta(hours=3)
            target = start + lead - (t["crs_onset"] - infusion)
        elif t.get("irae_onset") is not None:
            # the first bedside round that shows the colitis at grade 2 (the one whose alert carries
            # the corticosteroid dose): 30 min of simulated time after the start, its grade 1
            # charted before the start; the hepatitis's first liver tests at grade 2: 45 min after it
            lead = dt.timedelta(minutes=t["irae_lead_min"])
            target = start + lead - (t["irae_onset"] - infusion)
        else:
            target = start - dt.timedelta(days=offsets_days[k % len(offsets_days)])
        shift = target - infusion
        pid = f"DEMO-{k + 1:02d}"
        product = t.get("product")
        ici = product == "anti-pd1" or t.get("profile") == "anti-pd1"
        own = rows_by_patient.get(t["patient_id"], [])
        for r in own:
            if r["code"] == "infusion" and ici:
                product = r["value"]
        patients.append(
            PatientSeed(
                id=pid,
                unit_id=UNITS[k % 2][0],
                display_name=f"Patient démo {k + 1}",
                therapy_class="checkpoint_inhibitor" if ici else "car_t",
                product=product,
                weight_kg=t.get("weight_kg"),
                infusion_at=target,
                indication="solid_tumour" if ici else None,
                birth_date=_birth_date(target, t.get("age_years")),
                sex=_SEX.get(t.get("sex") or ""),
            )
        )
        refs = _References(patients[-1].sex, t.get("age_years"))
        for r in own:
            time = r["time"] + shift
            if time > start + dt.timedelta(days=horizon_days):
                continue
            end = r["end_time"] + shift if r.get("end_time") is not None else None
            rows.append({**r, "patient_id": pid, "time": time, "end_time": end, **refs.of(r)})
    rows.sort(key=lambda r: (r["time"], r["patient_id"], r["code"]))
    return Ward(patients, rows, "immunotox.simulate", [f"{len(patients)} simulated patients (seed {seed})"])


def _birth_date(infusion: dt.datetime, age_years: float | None) -> dt.date | None:
    """A birth date giving the simulated age (whole years) on the day of infusion (1 July)."""
    if age_years is None:
        return None
    before_july = (infusion.month, infusion.day) < (7, 1)
    return dt.date(infusion.year - int(age_years) - (1 if before_july else 0), 7, 1)


_SEX = {"F": "female", "M": "male"}


@dataclass(frozen=True)
class _References:
    """The reference interval a laboratory reports with each result of one patient: the site's
    default for the patient's sex and age (:func:`immunotox.labs.default_interval`), given when
    the result is in the interval's unit (the code's canonical unit, the generator's)."""

    sex: str | None
    age_years: float | None

    def of(self, row: dict[str, Any]) -> dict[str, float]:
        iv = labs.default_interval(str(row["code"]), self.sex, self.age_years)
        if iv is None or (row.get("unit") or "") != iv.unit:
            return {}
        return {"ref_low": iv.low, "ref_high": iv.high}


def _irae_patients(simulate_cohort: Any, seed: int) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Checkpoint-inhibitor patients of the generator: one whose immune colitis reaches grade 2
    (by stools per day over baseline), one whose liver tests reach the hepatitis grade 2 (AST or ALT
    more than 3 times the upper limit of normal of the site's interval for the patient's sex and
    age), each
    with ``irae_onset`` = its first result at grade 2 (the ASCO 2021 bands of the typed rule table,
    :mod:`immunotox.scales.asco2021_spec`) and ``irae_lead_min`` = when the demo shows it."""
    from ..scales.asco2021_spec import table
    from ..simulate import simulated_sex

    organs = table().organs
    stools2 = min(b.comparison[1] for b in organs["colitis"].criteria["stools"].bands if b.grade == 2)
    # another seed: patient k of two cohorts of one seed shares its draws (weight, age, …); 150
    # patients hold a hepatitis above 3 x ULN of the site's interval (the generator's latent
    # ULN is lower than the site's for men)
    cohort = simulate_cohort(150, days=30, seed=seed + 17, products=["anti-pd1"])
    obs = cohort.observations
    truth = sorted(cohort.truth.to_pylist(), key=lambda t: t["patient_id"])
    out: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []

    def rows_of(pid: str, code: str | None = None) -> list[dict[str, Any]]:
        mask = pc.equal(obs.column("patient_id"), pid)
        if code is not None:
            mask = pc.and_(mask, pc.equal(obs.column("code"), code))
        rows: list[dict[str, Any]] = obs.filter(mask).to_pylist()
        return rows

    def pick(kind: str, lead_min: int, onset: Any) -> None:
        for t in truth:
            if t[f"{kind}_grade"] != 2 or any(o[0]["patient_id"] == f"irae-{t['patient_id']}" for o in out):
                continue
            sex = simulated_sex(t["patient_id"], seed + 17)
            first = onset(t, _SEX[sex])
            if first is not None:
                pid = f"irae-{t['patient_id']}"
                seen = {**t, "patient_id": pid, "sex": sex, "irae_onset": first, "irae_lead_min": lead_min}
                out.append((seen, rows_of(t["patient_id"])))
                return
        log.info("no simulated %s at grade 2 for the demo", kind)

    def colitis(t: dict[str, Any], sex: str) -> Any:
        rows = rows_of(t["patient_id"], "stools_over_baseline")
        return min((r["time"] for r in rows if float(r["value"]) >= stools2), default=None)

    def hepatitis(t: dict[str, Any], sex: str) -> Any:
        # the first result of a laboratory criterion (ALT, AST, bilirubin) above its grade-2 band
        first = []
        for crit in organs["hepatitis"].criteria.values():
            iv = labs.default_interval(crit.finding, sex, t["age_years"]) if crit.ref else None
            if iv is None:
                continue
            grade2 = min(b.comparison[1] for b in crit.bands if b.grade == 2)
            rows = rows_of(t["patient_id"], crit.finding)
            first += [r["time"] for r in rows if float(r["value"]) > grade2 * iv.high]
        return min(first, default=None)

    pick("colitis", 30, colitis)
    pick("hepatitis", 45, hepatitis)
    return out


def builtin_ward(start: dt.datetime) -> Ward:
    """A small scripted ward (used when the synthetic generator is not installed)."""
    h = dt.timedelta(hours=1)
    pats = [
        PatientSeed(
            "DEMO-01", "hemato-a", "Patient démo 1", "car_t", "axi-cel", 72.0, start - 30 * h, "lbcl"
        ),
        PatientSeed(
            "DEMO-02", "hemato-a", "Patient démo 2", "car_t", "tisa-cel", 64.0, start - 3 * 24 * h, "lbcl"
        ),
        PatientSeed(
            "DEMO-03",
            "hemato-b",
            "Patient démo 3",
            "car_t",
            "cart-cd19-other",
            58.0,
            start - 2 * 24 * h,
            "sle",
        ),
        PatientSeed(
            "DEMO-04",
            "hemato-b",
            "Patient démo 4",
            "checkpoint_inhibitor",
            "pembrolizumab",
            80.0,
            start - 9 * 24 * h,
            "melanoma",
        ),
    ]
    rows: list[dict[str, Any]] = []

    def add(pid: str, t: dt.datetime, code: str, value: Any, unit: str = "", **kw: Any) -> None:
        rows.append({"patient_id": pid, "time": t, "code": code, "value": str(value), "unit": unit, **kw})

    ages = {"DEMO-01": 61, "DEMO-02": 54, "DEMO-03": 35, "DEMO-04": 70}
    sexes = {"DEMO-01": "male", "DEMO-02": "female", "DEMO-03": "female", "DEMO-04": "male"}
    for p in pats:
        p.birth_date = _birth_date(p.infusion_at, ages[p.id])
        p.sex = sexes[p.id]
    for p in pats:
        add(p.id, p.infusion_at, "infusion", p.product)
        add(p.id, p.infusion_at, "age", ages[p.id], "a")
        add(p.id, p.infusion_at, "weight", p.weight_kg, "kg")
        t = p.infusion_at
        i = 0
        while t < start + 48 * h:
            stage = (t - start) / h  # hours since the demo start
            temp, sbp = 37.0, 122.0
            if p.id == "DEMO-01" and stage >= 0.5:
                temp = 38.9 if stage < 6 else 37.6
                sbp = 84.0 if 1.0 <= stage < 8 else 118.0
            add(p.id, t, "temperature", temp, "Cel")
            add(p.id, t, "sbp", sbp, "mm[Hg]")
            add(p.id, t, "heart_rate", 118 if temp > 38 else 82, "/min")
            add(p.id, t, "spo2", 95, "%")
            if p.therapy_class == "car_t" and i % 3 == 0:
                ice = 10 if not (p.id == "DEMO-01" and 2 <= stage < 12) else 6
                add(p.id, t, "ice_score", ice)
                add(p.id, t, "consciousness", "awake")
                add(p.id, t, "seizure", "none")
                add(p.id, t, "motor", "none")
                add(p.id, t, "cerebral_edema", "none")
                add(p.id, t, "raised_icp_signs", "false")
            t += (0.5 if p.id == "DEMO-01" and -4 <= stage < 12 else 4) * h
            i += 1
    add("DEMO-01", start + 1.5 * h, "antipyretic", "paracetamol", dose=1000.0, dose_unit="mg")
    add("DEMO-01", start + 2.5 * h, "oxygen", "low_flow_nasal_cannula", end_time=start + 9 * h)
    add("DEMO-01", start + 2.5 * h, "o2_flow", 3, "L/min")
    add(
        "DEMO-01",
        start + 3 * h,
        "vasopressor",
        "norepinephrine",
        end_time=start + 7 * h,
        dose=0.1,
        dose_unit="ug/kg/min",
    )
    add("DEMO-01", start + 3.2 * h, "tocilizumab", "tocilizumab", dose=576.0, dose_unit="mg")
    add("DEMO-01", start + 4 * h, "corticosteroid", "dexamethasone", dose=10.0, dose_unit="mg")
    rows.sort(key=lambda r: (r["time"], r["patient_id"], r["code"]))
    return Ward(
        pats, rows, "built-in scenario", ["the synthetic generator is not installed: built-in scenario"]
    )


# ----------------------------------------------------------------------------- feeding
@dataclass
class OpenIntervals:
    """Interval rows (infusions, oxygen) fed open because their end was still to come, as a ward
    charts them live: each is stopped (a superseding copy with its ``end_time``, like
    ``POST /administrations/{id}/stop``) when the clock reaches that end."""

    pending: list[tuple[dt.datetime, int, ingest.Row]] = field(default_factory=list)

    def due(self, now: dt.datetime, settings: Settings) -> list[ingest.Row]:
        due = sorted((p for p in self.pending if p[0] <= now), key=lambda p: (p[0], p[1]))
        self.pending = [p for p in self.pending if p[0] > now]
        out = []
        for end, event_id, row in due:
            raw = {
                "code": row.code,
                "time": row.time,
                "value": row.value,
                "unit": row.unit or None,
                "end_time": end,
                "dose": row.dose,
                "dose_unit": row.dose_unit,
                "supersedes": event_id,
            }
            out.append(ingest.prepare(row.patient_id, raw, now=now, settings=settings))
        return out


def _prepare(
    rows: Sequence[dict[str, Any]], now: dt.datetime, settings: Settings
) -> tuple[list[ingest.Row], dict[int, dt.datetime]]:
    """Rows the service accepts, and the index of those fed open (their end still to come)."""
    out = []
    open_ends: dict[int, dt.datetime] = {}
    for r in rows:
        try:
            spec = codes.resolve(str(r["code"]))
        except ImmunotoxError:
            continue
        end = r.get("end_time") if spec.interval else None
        raw = {
            "code": spec.name,
            "time": r["time"],
            "value": r["value"],
            "unit": r.get("unit") or None,
            "end_time": end if end is None or end <= now else None,
            "dose": r.get("dose"),
            "dose_unit": r.get("dose_unit") or None,
            "ref_low": r.get("ref_low"),
            "ref_high": r.get("ref_high"),
        }
        try:
            out.append(ingest.prepare(str(r["patient_id"]), raw, now=now, settings=settings))
        except ImmunotoxError as exc:  # a row the service refuses: skipped, as a device gateway would
            log.debug("demo row refused: %s", exc)
            continue
        if end is not None and end > now:
            open_ends[len(out) - 1] = end
    return out, open_ends


def feed(
    db: Database,
    settings: Settings,
    rows: Sequence[dict[str, Any]],
    now: dt.datetime,
    intervals: OpenIntervals | None = None,
) -> int:
    """Ingest ``rows`` whose time has come as a ward would chart them live (one transaction,
    grading and alerting on): an interval whose end is after ``now`` is stored open and stopped
    later (``intervals``, which also supplies the stops now due); return the rows stored."""
    intervals = intervals if intervals is not None else OpenIntervals()
    stops = intervals.due(now, settings)
    fresh, open_ends = _prepare(rows, now, settings)
    prepared = stops + fresh
    if not prepared:
        return 0
    with db.writing() as s:
        ids = sorted({r.patient_id for r in prepared})
        patients = list(s.scalars(select(Patient).where(Patient.id.in_(ids))))
        events = ingest.store(s, prepared, user_id=None, source="demo", now=now)
        ingest.after_write(s, patients, events, now=now, settings=settings, ctx=audit.SYSTEM)
        audit.record(
            s,
            actor=None,
            actor_name="demo-feed",
            action="observation.batch",
            ctx=audit.SYSTEM,
            now=now,
            entity_type="clinical_event",
            entity_id=f"{events[0].id}-{events[-1].id}",
            details={"count": len(events), "source": "demo"},
        )
    for i, end in open_ends.items():
        intervals.pending.append((end, events[len(stops) + i].id, fresh[i]))
    return len(prepared)


def seed(
    db: Database,
    settings: Settings,
    ward: Ward,
    start: dt.datetime,
    intervals: OpenIntervals | None = None,
) -> int:
    """Units, accounts, patients, and the history before ``start`` (fed two hours at a time;
    intervals still running at ``start`` are left in ``intervals``)."""
    with db.writing() as s:
        for uid, name, phone in UNITS:
            bootstrap.ensure_unit(s, uid, name, now=start, phone=phone)
        for p in ward.patients:
            s.add(
                Patient(
                    id=p.id,
                    unit_id=p.unit_id,
                    display_name=p.display_name,
                    therapy_class=p.therapy_class,
                    product=p.product,
                    weight_kg=p.weight_kg,
                    infusion_at=p.infusion_at,
                    indication=p.indication,
                    birth_date=p.birth_date,
                    sex=p.sex,
                    created_at=start,
                    updated_at=start,
                )
            )
        s.flush()
        for a in ACCOUNTS:
            bootstrap.create_user(
                s,
                a.username,
                a.password,
                a.role,
                now=start,
                unit_ids=a.units,
                patient_id=ward.patients[0].id if a.patient else None,
                display_name=a.display_name,
            )
    history = [r for r in ward.rows if r["time"] <= start]
    stored = 0
    if history:
        t = history[0]["time"]
        i = 0
        while i < len(history):
            t += dt.timedelta(hours=2)
            chunk = []
            while i < len(history) and history[i]["time"] <= t:
                chunk.append(history[i])
                i += 1
            stored += feed(db, settings, chunk, min(t, start), intervals)
    return stored


class Replayer:
    """Feeds the rows whose time has come, every ``tick`` seconds of real time."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        rows: Sequence[dict[str, Any]],
        start: dt.datetime,
        intervals: OpenIntervals | None = None,
    ):
        self.db, self.settings, self.clock = db, settings, clock
        self.rows = [r for r in rows if r["time"] > start]
        self.intervals = intervals if intervals is not None else OpenIntervals()
        self.pos = 0
        self.fed = 0

    def step(self) -> int:
        now = self.clock.now()
        chunk = []
        while self.pos < len(self.rows) and self.rows[self.pos]["time"] <= now:
            chunk.append(self.rows[self.pos])
            self.pos += 1
        n = feed(self.db, self.settings, chunk, now, self.intervals)
        self.fed += n
        return n

    async def run(self, tick: float = 1.0) -> None:
        while self.pos < len(self.rows) or self.intervals.pending:
            await asyncio.sleep(tick)
            try:
                await run_in_threadpool(self.step)
            except Exception:  # keep the demo alive
                log.exception("demo feed step failed")


@dataclass
class Demo:
    settings: Settings
    clock: SimulatedClock
    ward: Ward
    start: dt.datetime
    folder: Path
    intervals: OpenIntervals = field(default_factory=OpenIntervals)

    def startup_hook(self, app: FastAPI) -> asyncio.Task[None]:
        replayer = Replayer(
            app.state.db, self.settings, self.clock, self.ward.rows, self.start, self.intervals
        )
        app.state.demo_replayer = replayer
        return asyncio.get_event_loop().create_task(replayer.run())


def prepare_demo(
    *, speed: float = 120.0, n_patients: int = 12, seed_value: int = 7, folder: Path | None = None
) -> Demo:
    """Create the demo database, seed it, and return what ``serve`` needs to run it."""
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    folder = folder or Path(tempfile.mkdtemp(prefix="immunotox-demo-"))
    url = f"sqlite:///{folder / 'immunotox-demo.db'}"
    settings = Settings.from_env(
        database_url=url, demo=True, sweep_seconds=5.0, max_future_minutes=5.0, escalation_minutes=30.0
    )
    migrate(url)
    ward = simulated_ward(start, n_patients=n_patients, seed=seed_value)
    db = Database(settings)
    intervals = OpenIntervals()
    try:
        seed(db, settings, ward, start, intervals)
    finally:
        db.dispose()
    return Demo(
        settings=settings,
        clock=SimulatedClock(start, speed),
        ward=ward,
        start=start,
        folder=folder,
        intervals=intervals,
    )
