"""The single write path with a background regrader (the deployed setting): the write and its
idempotency record commit first with the regrade queued, the regrade follows in a second short
transaction before the answer; a failure between the two loses no grade and no alert."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from immunotox.service import queue
from tests.service.conftest import Service, Template, make_service

H = dt.timedelta(hours=1)


@pytest.fixture
def deployed(template: Template, tmp_path: Path) -> Iterator[Service]:
    """A background regrader runs (one pass at start-up, then every hour): single writes queue
    their regrade and do it after their commit."""
    yield from make_service(template, tmp_path, regrade_seconds=3600)


def alerts(svc: Service) -> list[tuple[str, int]]:
    out = svc.get("doc_a", "/api/v1/alerts", params={"status": "all"}).json()
    return [(a["kind"], a["grade"]) for a in out]


def single(svc: Service, code: str, value: float, unit: str, at: dt.datetime, key: str) -> Any:
    body = {"code": code, "value": value, "unit": unit, "time": at.isoformat()}
    return svc.post("nurse_a", "/api/v1/patients/P-A1/observations", body, headers={"Idempotency-Key": key})


def fever_and_hypotension(svc: Service, key: str) -> Any:
    t = svc.clock.now()
    r = svc.obs("nurse_a", "P-A1", "temperature", 38.9, "Cel", at=t - 2 * H)
    assert (r.status_code, r.json()["grading"]) == (201, "done"), r.text
    return single(svc, "sbp", 84, "mm[Hg]", t - H, key)


def test_single_write_answers_with_grades_and_alerts_stored_after_its_commit(deployed: Service) -> None:
    svc = deployed
    r = fever_and_hypotension(svc, "k-1")
    assert r.status_code == 201, r.text
    out = r.json()
    grades = {g["scale"]: g for g in out["grades"]}
    assert out["grading"] == "done"
    assert grades["astct2019:crs"]["grade"] == 2  # fever with hypotension, no vasopressor (ASTCT 2019)
    assert grades["astct2019:crs"]["episode_id"] is not None  # the episode the second transaction opened
    assert [(a["kind"], a["grade"]) for a in out["alerts"]] == [("grade_increase", 2)]
    # stored, alerted, nothing left in the queue
    assert svc.sql(
        "SELECT grade FROM current_grade WHERE patient_id = 'P-A1' AND scale = 'astct2019:crs'"
    ) == [(2,)]
    assert alerts(svc) == [("grade_increase", 2), ("new_toxicity", 1)]
    assert svc.sql("SELECT count(*) FROM regrade_queue") == [(0,)]
    # a replay answers the same (the stored response was completed in the second transaction)
    again = single(svc, "sbp", 84, "mm[Hg]", svc.clock.now() - H, "k-1")
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == out
    assert svc.sql("SELECT count(*) FROM clinical_event WHERE code = 'sbp'") == [(1,)]


def test_assessment_is_graded_after_its_commit(deployed: Service) -> None:
    svc = deployed
    at = (svc.clock.now() - H).isoformat()
    r = svc.post("nurse_a", "/api/v1/patients/P-A1/assessments", {"kind": "ice", "time": at, "ice_score": 5})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["grading"] == "done"
    assert {g["scale"]: g["grade"] for g in out["grades"]}["astct2019:icans"] == 2  # ICE 3-6: grade 2
    assert [(a["kind"], a["grade"]) for a in out["alerts"]] == [("new_toxicity", 2)]


def test_a_failure_between_the_two_transactions_loses_no_grade_nor_alert(
    deployed: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write is acknowledged as stored (grading queued, no grades yet), its replay answers the
    same, and the regrader (at start-up after a crash) stores the grade and raises the alert."""
    svc = deployed

    def crash(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("process died between the write and its regrade")

    with monkeypatch.context() as m:
        m.setattr(queue, "regrade_queued", crash)
        t = svc.clock.now()
        r = single(svc, "temperature", 39.0, "Cel", t - H, "k-2")
        assert r.status_code == 201, r.text
        out = r.json()
        assert (out["grading"], out["grades"], out["alerts"]) == ("queued", [], [])
        assert [e["code"] for e in out["stored"]] == ["temperature"]
    assert [tuple(x) for x in svc.sql("SELECT patient_id, scale FROM regrade_queue")] == [
        ("P-A1", "astct2019:crs")
    ]
    assert alerts(svc) == []
    again = single(svc, "temperature", 39.0, "Cel", t - H, "k-2")
    assert (again.headers.get("Idempotent-Replayed"), again.json()) == ("true", out)
    assert queue.drain_all(svc.db, svc.clock) == 1
    assert alerts(svc) == [("new_toxicity", 1)]
    assert svc.sql(
        "SELECT grade FROM current_grade WHERE patient_id = 'P-A1' AND scale = 'astct2019:crs'"
    ) == [(1,)]
