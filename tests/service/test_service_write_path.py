"""Single writes with a background regrader (the deployed setting): by default the write, its
audit entry and its idempotency record commit with the regrade queued, and the regrader stores
the grades and raises the alerts; ``?regrade=now`` regrades in the write's transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from immunotox.service import queue
from tests.service.conftest import Service, Template, make_service

H = dt.timedelta(hours=1)
CRS = "SELECT grade FROM current_grade WHERE patient_id = 'P-A1' AND scale = 'astct2019:crs'"


@pytest.fixture
def deployed(template: Template, tmp_path: Path) -> Iterator[Service]:
    """A background regrader runs (one pass at start-up, then every hour: the test drives it;
    single writes do not wake it here, see ``woken``)."""
    for svc in make_service(template, tmp_path, regrade_seconds=3600):
        svc.db.on_regrade_queued = None
        yield svc


@pytest.fixture
def pg_deployed(pg_template: Template, tmp_path: Path) -> Iterator[Service]:
    """``deployed`` on PostgreSQL only: for what only concurrent writers can show (SQLite
    serialises writers, so no write lands during another's transaction there)."""
    for svc in make_service(pg_template, tmp_path, regrade_seconds=3600):
        svc.db.on_regrade_queued = None
        yield svc


@pytest.fixture
def woken(template: Template, tmp_path: Path) -> Iterator[Service]:
    """A background regrader whose cycle is an hour: only a single write's wake-up makes it run."""
    yield from make_service(template, tmp_path, regrade_seconds=3600)


def test_a_single_write_wakes_the_regrader_and_its_alert_follows(woken: Service) -> None:
    svc = woken
    wakeup: queue.Wakeup = svc.client.app.state.regrade_wakeup  # type: ignore[attr-defined]
    assert svc.db.on_regrade_queued is wakeup
    t = svc.clock.now()
    r = single(svc, "temperature", 38.9, "Cel", t - H, "k-w1")
    assert r.status_code == 201, r.text
    assert (r.json()["grading"], r.json()["alerts"]) == ("queued", [])
    # the next cycle is an hour away: only the wake-up can have regraded it (the timeout is a
    # safety net for a broken wake-up, not a measure)
    assert wakeup.wait_passes(1, timeout=60)
    assert alerts(svc) == [("new_toxicity", 1)]
    assert svc.sql(CRS) == [(1,)]
    assert svc.sql("SELECT count(*) FROM regrade_queue") == [(0,)]
    # a batch does not wake it: its pairs wait for the cycle, to coalesce with others
    row = {"patient_id": "P-A1", "code": "sbp", "value": 84, "unit": "mm[Hg]", "time": (t - H).isoformat()}
    assert svc.post("nurse_a", "/api/v1/observations/batch", {"observations": [row]}).status_code == 201
    assert svc.sql("SELECT count(*) FROM regrade_queue") == [(1,)]
    assert wakeup.passes == 1


def alerts(svc: Service) -> list[tuple[str, int]]:
    out = svc.get("doc_a", "/api/v1/alerts", params={"status": "all"}).json()
    return [(a["kind"], a["grade"]) for a in out]


def single(
    svc: Service, code: str, value: float, unit: str, at: dt.datetime, key: str, query: str = ""
) -> Any:
    body = {"code": code, "value": value, "unit": unit, "time": at.isoformat()}
    path = f"/api/v1/patients/P-A1/observations{query}"
    return svc.post("nurse_a", path, body, headers={"Idempotency-Key": key})


def test_single_write_queues_its_regrade_and_the_regrader_alerts(deployed: Service) -> None:
    svc = deployed
    t = svc.clock.now()
    r = single(svc, "temperature", 38.9, "Cel", t - H, "k-1")
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["grading"], out["grades"], out["alerts"]) == ("queued", [], [])
    assert [e["code"] for e in out["stored"]] == ["temperature"]
    # queued with the write, in its transaction: a crash now would not lose the regrade
    assert [tuple(x) for x in svc.sql("SELECT patient_id, scale FROM regrade_queue")] == [
        ("P-A1", "astct2019:crs")
    ]
    # readers see the grade at once (recomputed from the stored events)
    grades = {g["scale"]: g["grade"] for g in svc.get("doc_a", "/api/v1/patients/P-A1/grades").json()}
    assert grades["astct2019:crs"] == 1  # fever alone (ASTCT 2019)
    # a replay answers the same and stores nothing
    again = single(svc, "temperature", 38.9, "Cel", t - H, "k-1")
    assert (again.headers.get("Idempotent-Replayed"), again.json()) == ("true", out)
    assert svc.sql("SELECT count(*) FROM clinical_event WHERE code = 'temperature'") == [(1,)]
    assert alerts(svc) == []
    assert queue.drain_all(svc.db, svc.clock) == 1
    assert alerts(svc) == [("new_toxicity", 1)]
    assert svc.sql(CRS) == [(1,)]
    assert svc.sql("SELECT count(*) FROM regrade_queue") == [(0,)]


def test_regrade_now_answers_with_grades_and_alerts(deployed: Service) -> None:
    svc = deployed
    t = svc.clock.now()
    assert (
        single(svc, "temperature", 38.9, "Cel", t - 2 * H, "k-3", "?regrade=now").json()["grading"] == "done"
    )
    r = single(svc, "sbp", 84, "mm[Hg]", t - H, "k-4", "?regrade=now")
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["grading"] == "done"
    assert {g["scale"]: g["grade"] for g in out["grades"]}["astct2019:crs"] == 2  # fever with hypotension
    assert [(a["kind"], a["grade"]) for a in out["alerts"]] == [("grade_increase", 2)]
    assert svc.sql(CRS) == [(2,)]
    assert svc.sql("SELECT count(*) FROM regrade_queue") == [(0,)]


def test_assessment_queues_its_regrade(deployed: Service) -> None:
    svc = deployed
    at = (svc.clock.now() - H).isoformat()
    r = svc.post("nurse_a", "/api/v1/patients/P-A1/assessments", {"kind": "ice", "time": at, "ice_score": 5})
    assert r.status_code == 201, r.text
    assert (r.json()["grading"], r.json()["grades"]) == ("queued", [])
    assert queue.drain_all(svc.db, svc.clock) >= 1
    assert alerts(svc) == [("new_toxicity", 2)]  # ICE 3-6: ICANS grade 2 (ASTCT 2019)


def test_dose_limit_alert_is_raised_with_the_queued_write(deployed: Service) -> None:
    """Dose limits are checked in the write's transaction whatever the regrade: the answer has them."""
    svc = deployed
    body = {
        "code": "tocilizumab",
        "time": (svc.clock.now() - H).isoformat(),
        "value": "tocilizumab",
        "dose": 840,
        "dose_unit": "mg",
    }
    r = svc.post("nurse_a", "/api/v1/patients/P-A1/administrations", body)
    assert r.status_code == 201, r.text
    assert r.json()["grading"] == "queued"
    assert {a["kind"] for a in r.json()["alerts"]} == {"dose_limit"}


def _ward_alerts(svc: Service, monkeypatch: pytest.MonkeyPatch, ahead: bool) -> list[Any]:
    """Queue a course (CRS grade 1, then 2 with hypotension, ICANS) and drain it; the alerts
    and audit entries it left. ``ahead=False``: every recommendation computed under the lock."""
    if not ahead:
        monkeypatch.setattr(queue, "recommend_ahead", lambda *a, **k: {})
    t = svc.clock.now()
    rows = [
        ("P-A1", "temperature", 38.9, "Cel", 3),
        ("P-A2", "temperature", 39.2, "Cel", 3),
        ("P-A1", "sbp", 84, "mm[Hg]", 2),
        ("P-A1", "ice_score", 7, None, 2),
    ]
    for pid, code, value, unit, hours in rows:
        body: dict[str, Any] = {
            "patient_id": pid,
            "code": code,
            "value": value,
            "time": (t - hours * H).isoformat(),
        }
        if unit is not None:
            body["unit"] = unit
        r = svc.post("nurse_a", "/api/v1/observations/batch", {"observations": [body]})
        assert r.status_code == 201, r.text
        queue.drain_all(svc.db, svc.clock)
    monkeypatch.undo()
    alerts = svc.get("doc_a", "/api/v1/alerts", params={"status": "all"}).json()
    keep = (
        "kind",
        "patient_id",
        "scale",
        "grade",
        "title",
        "title_fr",
        "message",
        "params",
        "recommendation",
    )
    audit = svc.sql("SELECT action, entity_type, patient_id FROM audit_event ORDER BY id")
    return [sorted(({k: a.get(k) for k in keep} for a in alerts), key=str), [tuple(x) for x in audit]]


def test_recommendations_computed_before_the_lock_are_those_computed_under_it(
    template: Template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = []
    for ahead in (True, False):
        for svc in make_service(template, tmp_path, regrade_seconds=3600):
            svc.db.on_regrade_queued = None
            results.append(_ward_alerts(svc, monkeypatch, ahead))
    with_ahead, under_lock = results
    assert with_ahead == under_lock
    kinds = [(a["kind"], a["grade"]) for a in with_ahead[0]]
    assert ("new_toxicity", 1) in kinds and ("grade_increase", 2) in kinds
    assert all(a["recommendation"] for a in with_ahead[0] if a["scale"] == "astct2019:crs")


def test_the_regrade_is_queued_by_the_last_statement_before_the_commit(deployed: Service) -> None:
    """The queue's (patient, scale) rows are upserted just before the commit, in the write's
    transaction (PostgreSQL locks them until the commit: a batch that upserted them first thing
    made every other write of those pairs wait for the rest of its work), and never on rollback."""
    from immunotox.service import grading

    pair = ("P-A1", "astct2019:crs")
    touch = grading.Touch({pair: deployed.clock.now()}, set())
    count = text("SELECT count(*) FROM regrade_queue")
    with deployed.db.writing() as s:
        queue.enqueue_at_commit(s, touch, now=deployed.clock.now())
        assert s.execute(count).scalar() == 0  # not yet: the write's other statements come first
    assert [tuple(x) for x in deployed.sql("SELECT patient_id, scale FROM regrade_queue")] == [pair]
    assert queue.drain_all(deployed.db, deployed.clock) == 1

    with pytest.raises(RuntimeError), deployed.db.writing() as s:
        queue.enqueue_at_commit(s, touch, now=deployed.clock.now())
        raise RuntimeError("the write fails")
    with deployed.db.writing() as s:  # a later transaction does not inherit the failed one's pairs
        assert s.execute(count).scalar() == 0
    assert deployed.sql("SELECT count(*) FROM regrade_queue") == [(0,)]


def test_a_pairs_rows_are_coalesced_by_the_regrader(deployed: Service) -> None:
    """Each write appends its own row (no row shared by two writers); the regrader reads a pair's
    rows as one: the latest of their times, the 'full' flag of any of them, every row's id."""
    from immunotox.service import grading

    pair = ("P-A1", "astct2019:crs")
    t = deployed.clock.now()
    for touch in (
        grading.Touch({pair: t - H}, set(), {pair: t - 3 * H}),
        grading.Touch({pair: None}, {pair}),
        grading.Touch({pair: t - 2 * H}, set(), {pair: t - 4 * H}),
    ):
        with deployed.db.writing() as s:
            queue.enqueue(s, touch, now=t)
    assert deployed.sql("SELECT count(*) FROM regrade_queue") == [(3,)]
    assert queue.pending(deployed.db) == 1
    with deployed.db.session() as s:
        (row,) = queue._peek(s, 10, None, None)
    ids = {i for (i,) in deployed.sql("SELECT id FROM regrade_queue")}
    assert (row.patient_id, row.scale, row.latest, row.interval_start, row.full, row.ids) == (
        *pair,
        t - H,
        t - 3 * H,
        True,
        ids,
    )
    assert queue.drain_all(deployed.db, deployed.clock) == 1
    assert deployed.sql("SELECT count(*) FROM regrade_queue") == [(0,)]


def test_a_write_after_the_regraders_plan_leaves_its_pair_queued(
    deployed: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write of a pair between the regrader's read (its plan) and its chunk: the plan is out of
    date, so the pair is not stored from it and stays queued, with both writes' rows; the next
    pass grades it from both."""
    svc = deployed
    t = svc.clock.now()
    assert single(svc, "temperature", 38.9, "Cel", t - 2 * H, "k-p1").status_code == 201
    plan_ahead = queue.recommend_ahead

    def write_then_recommend(*args: Any, **kw: Any) -> Any:
        monkeypatch.setattr(queue, "recommend_ahead", plan_ahead)
        assert single(svc, "sbp", 84, "mm[Hg]", t - H, "k-p2").status_code == 201
        return plan_ahead(*args, **kw)

    monkeypatch.setattr(queue, "recommend_ahead", write_then_recommend)
    assert queue.drain(svc.db, svc.clock) == 1
    assert svc.sql(CRS) == []  # not stored from the out-of-date plan
    assert svc.sql("SELECT count(*) FROM regrade_queue") == [(2,)]
    assert alerts(svc) == []
    assert queue.drain_all(svc.db, svc.clock) == 1
    assert svc.sql(CRS) == [(2,)]  # fever with hypotension
    assert alerts(svc) == [("new_toxicity", 2)]
    assert svc.sql("SELECT count(*) FROM regrade_queue") == [(0,)]


def test_a_write_during_a_regrader_chunk_waits_for_nothing_and_is_regraded_again(
    pg_deployed: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL (SQLite serialises writers: no write lands during a chunk): a single write of a
    pair whose rows a regrader chunk has claimed but not yet committed is stored at once (its
    queue row is its own: nothing of the chunk's to wait for), and its pair is regraded again by
    the next pass, from the new data. The chunk is suspended while the write runs in the same
    test: a write that waited for the chunk would time out (``lock_timeout``) instead."""
    svc = pg_deployed
    name = svc.db.engine.url.database
    with svc.db.engine.begin() as conn:
        conn.execute(text(f"ALTER DATABASE \"{name}\" SET lock_timeout = '10s'"))
    svc.db.engine.dispose()  # the pooled connections take the setting when they reconnect
    t = svc.clock.now()
    assert single(svc, "temperature", 38.9, "Cel", t - 2 * H, "k-c1").status_code == 201
    alert_ahead = queue.raise_transition_alerts

    def write_during_the_chunk(*args: Any, **kw: Any) -> Any:
        monkeypatch.setattr(queue, "raise_transition_alerts", alert_ahead)
        r = single(svc, "sbp", 84, "mm[Hg]", t - H, "k-c2")
        assert r.status_code == 201, r.text
        return alert_ahead(*args, **kw)

    monkeypatch.setattr(queue, "raise_transition_alerts", write_during_the_chunk)
    assert queue.drain(svc.db, svc.clock) == 1
    assert svc.sql(CRS) == [(1,)]  # stored from the plan (fever alone)
    assert alerts(svc) == [("new_toxicity", 1)]
    assert queue.pending(svc.db) == 1  # the write of the chunk's time is still queued
    assert queue.drain_all(svc.db, svc.clock) == 1
    assert svc.sql(CRS) == [(2,)]
    assert sorted(alerts(svc)) == [("grade_increase", 2), ("new_toxicity", 1)]
    assert svc.sql("SELECT count(*) FROM regrade_queue") == [(0,)]
