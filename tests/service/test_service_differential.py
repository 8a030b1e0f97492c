"""Differential test: the service's incremental grading against the timeline engine.

A synthetic cohort is fed to the service hour by hour as a ward would chart it live (an
infusion or oxygen support whose end is still to come is stored open, then stopped), grading
on every write; after each hour the service's live CRS and ICANS grades must equal the
timeline engine's grades of the whole history at the same time. Both read the same validity
windows (``timeline/observations.toml``), so any difference is a bug in one of them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select

from immunotox import simulate, timeline
from immunotox.service import bootstrap, demo, grading
from immunotox.service.config import Settings
from immunotox.service.db import Database, migrate
from immunotox.service.models import Patient

SCALES = ["astct2019:crs", "astct2019:icans"]


def test_service_grades_equal_the_timeline_engine_at_every_hour(tmp_path: Path) -> None:
    cohort = simulate.simulate_cohort(6, days=5, seed=3)
    rows = sorted(cohort.observations.to_pylist(), key=lambda r: r["time"])
    reference = timeline.grade_observations(cohort.observations, SCALES, engine="scalar").grades
    at = {(r["patient_id"], r["scale"], r["time"]): r for r in reference.to_pylist()}

    url = f"sqlite:///{tmp_path / 'diff.db'}"
    migrate(url)
    settings = Settings(database_url=url, sweep_seconds=0, regrade_seconds=0)
    db = Database(settings)
    created = rows[0]["time"]
    try:
        with db.writing() as s:
            bootstrap.ensure_unit(s, "u", "Unit", now=created)
            for t in cohort.truth.to_pylist():
                ici = t["profile"] == "anti-pd1"
                s.add(
                    Patient(
                        id=t["patient_id"],
                        unit_id="u",
                        therapy_class="checkpoint_inhibitor" if ici else "car_t",
                        product=t["product"],
                        weight_kg=t["weight_kg"],
                        infusion_at=t["infusion_time"],
                        created_at=created,
                        updated_at=created,
                    )
                )
        checks: list[tuple[str, str, dt.datetime, tuple[object, ...], tuple[object, ...]]] = []

        def compare() -> None:
            with db.session() as s:
                patients = list(s.scalars(select(Patient)))
                for pid, grades in grading.compute(s, patients).items():
                    for g in grades:
                        ref = at.get((pid, g.scale, g.time))
                        if ref is None:
                            continue
                        mine = (g.result.grade, g.result.grade_range[1], g.result.complete)
                        checks.append(
                            (pid, g.scale, g.time, mine, (ref["grade"], ref["grade_hi"], ref["complete"]))
                        )

        intervals = demo.OpenIntervals()
        chunk: list[dict[str, object]] = []
        t_end = rows[0]["time"] + dt.timedelta(hours=1)
        for r in rows:
            if r["time"] > t_end:
                demo.feed(db, settings, chunk, t_end, intervals)
                compare()
                chunk, t_end = [], r["time"] + dt.timedelta(hours=1)
            chunk.append(r)
        demo.feed(db, settings, chunk, t_end, intervals)
        demo.feed(db, settings, [], t_end + dt.timedelta(days=30), intervals)  # stop what still runs
        compare()
    finally:
        db.dispose()
    assert len(checks) > 500
    assert sum(1 for c in checks if c[3][0] is not None and c[3][0] >= 3) > 0  # grade 3 CRS met
    differences = [c for c in checks if c[3] != c[4]]
    assert differences == []
