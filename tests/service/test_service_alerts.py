"""Alerts on SQLite and PostgreSQL: firing, no repeat, acknowledgement, escalation, sweeps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from immunotox.service import queue, recommend
from immunotox.service.background import run_sweeps
from tests.service.conftest import T0, Service, Template, make_service

H = dt.timedelta(hours=1)
M = dt.timedelta(minutes=1)


def alerts(svc: Service, user: str = "doc_a", **params: str) -> list[dict]:
    out: list[dict] = svc.get(user, "/api/v1/alerts", params={"status": "all", **params}).json()
    return out


def test_new_toxicity_then_grade_increase_then_no_repeat(svc: Service) -> None:
    t = svc.clock.now()
    svc.obs("nurse_a", "P-A1", "sbp", 120, "mm[Hg]", at=t - 3 * H)
    r = svc.obs("nurse_a", "P-A1", "temperature", 38.6, "Cel", at=t - 2.5 * H)
    assert [a["kind"] for a in r.json()["alerts"]] == ["new_toxicity"]
    first = r.json()["alerts"][0]
    assert (first["priority"], first["grade"], first["scale"], first["target_role"]) == (
        "normal",
        1,
        "astct2019:crs",
        "physician",
    )
    assert first["title_fr"].startswith("Nouveau CRS")
    r = svc.obs("nurse_a", "P-A1", "sbp", 82, "mm[Hg]", at=t - 2 * H)
    assert [(a["kind"], a["grade"], a["priority"]) for a in r.json()["alerts"]] == [
        ("grade_increase", 2, "high")
    ]
    # the alert carries the recommended management when the module is installed
    rec = r.json()["alerts"][0]["recommendation"]
    assert rec is None or rec["available"] is True
    # back to grade 1, then 2 again in the same episode: no new alert (same condition)
    r = svc.obs("nurse_a", "P-A1", "sbp", 118, "mm[Hg]", at=t - 1.5 * H)
    assert r.json()["alerts"] == []
    svc.clock.t = t + 5 * H
    r = svc.obs("nurse_a", "P-A1", "sbp", 84, "mm[Hg]", at=t - 1 * H)
    r = svc.obs("nurse_a", "P-A1", "temperature", 38.8, "Cel", at=t - 0.5 * H)
    assert r.json()["alerts"] == []
    assert [a["kind"] for a in alerts(svc)] == ["grade_increase", "new_toxicity"]  # priority, then newest


def test_acknowledge_with_comment_is_audited_and_stops_escalation(svc: Service) -> None:
    a = svc.post("pat_a1", "/api/v1/patients/P-A1/self-reports", {"temperature": 38.9}).json()["alert"]
    b = svc.post("pat_a1", "/api/v1/patients/P-A1/self-reports", {"symptoms": ["seizure"]}).json()["alert"]
    assert (a["priority"], b["priority"]) == ("high", "critical")
    r = svc.post(
        "nurse_a", f"/api/v1/alerts/{a['id']}/acknowledge", {"comment": "appelé, vient aux urgences"}
    )
    assert r.status_code == 200
    acked = r.json()
    assert acked["status"] == "acknowledged" and acked["ack_comment"] == "appelé, vient aux urgences"
    assert acked["acknowledged_by"] == svc.user_id("nurse_a")
    assert svc.post("nurse_a", f"/api/v1/alerts/{a['id']}/acknowledge", {}).status_code == 409
    row = svc.sql(
        "SELECT actor_username, details FROM audit_event "
        f"WHERE action = 'alert.acknowledge' AND entity_id = '{a['id']}'"
    )
    assert row[0][0] == "nurse_a" and "vient aux urgences" in str(row[0][1])

    # escalation: the unacknowledged alert goes up one level per delay (30 min), max 2;
    # the acknowledged one stays at level 0
    def levels() -> tuple[int, int]:
        got = {x["id"]: x["escalation_level"] for x in alerts(svc, "nurse_a")}
        return got[a["id"]], got[b["id"]]

    for minutes, expected in ((29, (0, 0)), (2, (0, 1)), (15, (0, 1)), (15, (0, 2)), (300, (0, 2))):
        svc.clock.advance(minutes=minutes)
        run_sweeps(svc.db, svc.settings, svc.clock)
        assert levels() == expected, minutes
    rows = svc.sql(
        f"SELECT details FROM audit_event WHERE action = 'alert.escalate' AND entity_id = '{b['id']}'"
    )
    assert len(rows) == 2
    r = svc.post("doc_a", f"/api/v1/alerts/{b['id']}/resolve", {"reason": "seen in ER"})
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    active = [x["id"] for x in svc.get("doc_a", "/api/v1/alerts").json()]  # open or acknowledged only
    assert a["id"] in active and b["id"] not in active


def test_missing_ice_assessment_during_the_first_week(svc: Service) -> None:
    # P-A1: day 2 after infusion, no ICE ever; P-A2: day 1; P-B1: checkpoint inhibitor (not monitored)
    raised = run_sweeps(svc.db, svc.settings, svc.clock)
    assert raised["missing_assessment"] == 2
    mine = [a for a in alerts(svc) if a["kind"] == "missing_assessment"]
    assert {a["patient_id"] for a in mine} == {"P-A1", "P-A2"}
    assert all(a["target_role"] == "nurse" for a in mine)
    # same condition: no repeat
    svc.clock.advance(hours=1)
    assert run_sweeps(svc.db, svc.settings, svc.clock)["missing_assessment"] == 0
    # an ICE closes the alert; a new gap of 12 h raises a new one
    r = svc.post(
        "nurse_a", "/api/v1/patients/P-A1/assessments", {"time": svc.clock.now().isoformat(), "ice_score": 10}
    )
    assert r.status_code == 201
    state = {a["patient_id"]: a["status"] for a in alerts(svc) if a["kind"] == "missing_assessment"}
    assert state == {"P-A1": "resolved", "P-A2": "open"}
    svc.clock.advance(hours=11, minutes=59)
    assert run_sweeps(svc.db, svc.settings, svc.clock)["missing_assessment"] == 0
    svc.clock.advance(minutes=1)
    assert run_sweeps(svc.db, svc.settings, svc.clock)["missing_assessment"] == 1
    # after day 7 no ICE is expected
    svc.clock.t = T0 + dt.timedelta(days=6)
    run_sweeps(svc.db, svc.settings, svc.clock)
    n = len(alerts(svc))
    svc.clock.t = T0 + dt.timedelta(days=8)
    run_sweeps(svc.db, svc.settings, svc.clock)
    assert len(alerts(svc)) == n


def test_tocilizumab_dose_limits_raise_alerts(svc: Service) -> None:
    """Limits of data/drugs.toml (dose_rule tocilizumab-crs): <= 800 mg, >= 8 h apart,
    <= 3 in 24 h, <= 4 in total (US label; ASCO 2021)."""
    t = svc.clock.now() - 30 * H

    def give(at: dt.datetime, mg: float = 560) -> list[tuple[str, str, str]]:
        svc.clock.t = max(svc.clock.t, at)
        r = svc.post(
            "nurse_a",
            "/api/v1/patients/P-A1/administrations",
            {
                "code": "tocilizumab",
                "value": "tocilizumab",
                "time": at.isoformat(),
                "dose": mg,
                "dose_unit": "mg",
            },
        )
        assert r.status_code == 201, r.text
        return sorted((a["params"]["limit"], a["params"]["state"], a["priority"]) for a in r.json()["alerts"])

    assert give(t) == []
    assert give(t + 8 * H) == []  # exactly 8 h later is allowed
    assert give(t + 16 * H) == [("max_in_window", "reached", "high")]  # 3 in (t-24h, t]
    assert give(t + 23 * H) == [
        ("max_in_window", "exceeded", "critical"),
        ("max_total", "reached", "high"),
        ("min_interval_h", "exceeded", "critical"),
    ]
    assert give(t + 40 * H, mg=900) == [
        ("max_mg_per_kg", "exceeded", "critical"),  # 900 mg > 8 mg/kg x 70 kg = 560 mg
        ("max_per_dose_mg", "exceeded", "critical"),
        ("max_total", "exceeded", "critical"),
    ]


def test_tocilizumab_dose_in_mg_per_kg_is_checked_with_the_weight(svc: Service) -> None:
    r = svc.post(
        "nurse_a",
        "/api/v1/patients/P-A1/administrations",
        {
            "code": "tocilizumab",
            "value": "tocilizumab",
            "time": svc.clock.now().isoformat(),
            "dose": 12,
            "dose_unit": "mg/kg",
        },
    )
    # 12 mg/kg x 70 kg = 840 mg: above 800 mg per dose, and above 8 mg/kg (560 mg) from 30 kg
    assert sorted(a["params"]["detail"] for a in r.json()["alerts"]) == [
        "dose 840 mg",
        "dose 840 mg = 12 mg/kg for 70 kg; at most 560 mg for this weight",
    ]


@pytest.fixture
def queued(template: Template, tmp_path: Path) -> Iterator[Service]:
    """The service with batch ingest regraded by the background regrader (one pass at start-up,
    then every hour: the test drives the passes itself)."""
    yield from make_service(template, tmp_path, regrade_seconds=3600)


def test_batch_is_acknowledged_then_regraded_by_the_queue(queued: Service) -> None:
    svc = queued
    t = svc.clock.now()
    rows = [
        {"patient_id": "P-A1", "code": "sbp", "value": 84, "unit": "mm[Hg]", "time": (t - H).isoformat()},
        {
            "patient_id": "P-A1",
            "code": "temperature",
            "value": 38.9,
            "unit": "Cel",
            "time": (t - H).isoformat(),
        },
        {"patient_id": "P-A2", "code": "crp", "value": 40, "unit": "mg/L", "time": (t - H).isoformat()},
    ]
    r = svc.post("nurse_a", "/api/v1/observations/batch", {"observations": rows})
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["grading"], out["patients_queued"], out["patients_regraded"]) == ("queued", ["P-A1"], [])
    # the queue is written with the events (a crash now would not lose the regrade)
    assert [tuple(r) for r in svc.sql("SELECT patient_id, scale FROM regrade_queue")] == [
        ("P-A1", "astct2019:crs")
    ]
    # readers see the new grade at once (recomputed from the events); the alert follows the pass
    grades = {g["scale"]: g["grade"] for g in svc.get("doc_a", "/api/v1/patients/P-A1/grades").json()}
    assert grades["astct2019:crs"] == 2
    assert alerts(svc) == []
    assert queue.drain_all(svc.db, svc.clock) == 1
    assert [(a["kind"], a["grade"]) for a in alerts(svc)] == [("new_toxicity", 2)]
    assert {r[0] for r in svc.sql("SELECT scale FROM current_grade WHERE patient_id = 'P-A1'")} == {
        "astct2019:crs",
        "astct2019:icans",
    }
    assert svc.sql("SELECT count(*) FROM regrade_queue") == [(0,)]
    assert queue.drain_all(svc.db, svc.clock) == 0
    # queued twice before a pass: one pass, the latest time kept
    for minutes in (30, 20):
        row = {
            "patient_id": "P-A1",
            "code": "sbp",
            "value": 120,
            "unit": "mm[Hg]",
            "time": (t - minutes * M).isoformat(),
        }
        svc.post("nurse_a", "/api/v1/observations/batch", {"observations": [row]})
    # one row per write (no row shared by two writers), one pair waiting
    assert svc.sql("SELECT count(*) FROM regrade_queue") == [(2,)]
    assert queue.pending(svc.db) == 1
    assert all(latest is not None for (latest,) in svc.sql("SELECT latest FROM regrade_queue"))
    assert queue.drain_all(svc.db, svc.clock) == 1
    assert svc.sql("SELECT count(*) FROM regrade_queue") == [(0,)]


def test_batch_with_regrade_now_is_graded_and_alerted_in_the_request(queued: Service) -> None:
    """``?regrade=now`` (the bedside form): no queue, the alert exists when the answer comes."""
    svc = queued
    t = svc.clock.now()
    rows = [
        {"patient_id": "P-A1", "code": "sbp", "value": 84, "unit": "mm[Hg]", "time": (t - H).isoformat()},
        {
            "patient_id": "P-A1",
            "code": "temperature",
            "value": 38.9,
            "unit": "Cel",
            "time": (t - H).isoformat(),
        },
    ]
    r = svc.post("nurse_a", "/api/v1/observations/batch?regrade=now", {"observations": rows})
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["grading"], out["patients_regraded"], out["patients_queued"]) == ("done", ["P-A1"], [])
    assert out["alerts_raised"] == 1
    assert svc.sql("SELECT count(*) FROM regrade_queue") == [(0,)]
    assert [(a["kind"], a["grade"]) for a in alerts(svc)] == [("new_toxicity", 2)]
    bad = svc.post("nurse_a", "/api/v1/observations/batch?regrade=later", {"observations": rows})
    assert bad.status_code == 422 and "regrade" in bad.text


@pytest.fixture
def eu_svc(sqlite_template: Template, tmp_path: Path) -> Iterator[Service]:
    """The service of a French site (IMMUNOTOX_JURISDICTION=FR, i.e. EU product information)."""
    from immunotox.jurisdiction import parse_jurisdiction

    yield from make_service(sqlite_template, tmp_path, jurisdiction=parse_jurisdiction("FR"))


def test_the_stored_recommendation_is_for_the_sites_jurisdiction_in_both_languages(eu_svc: Service) -> None:
    """The alert's recommendation was computed without the jurisdiction and stored in English only."""
    s = eu_svc
    t = s.clock.now()
    s.obs("nurse_a", "P-A1", "sbp", 120, "mm[Hg]", at=t - 3 * H)
    s.obs("nurse_a", "P-A1", "temperature", 38.6, "Cel", at=t - 2.5 * H)
    r = s.obs("nurse_a", "P-A1", "sbp", 82, "mm[Hg]", at=t - 2 * H)
    rec = r.json()["alerts"][0]["recommendation"]
    assert (rec["available"], rec["jurisdiction"], rec["guideline"]) == (True, "EU", "asco2021-cart@1.0.0")
    # the tocilizumab label items are the EU SmPC's (the site's jurisdiction), not the US label's
    assert any("roactemra-eu-smpc" in w for w in rec["warnings"]), rec["warnings"]
    assert any("RCP" in w and "roactemra-eu-smpc" in w for w in rec["fr"]["warnings"])
    toci = [a for a in rec["actions"] if a["text"].startswith("Tocilizumab 8 mg/kg")]
    toci_fr = [a for a in rec["fr"]["actions"] if a["text"].startswith("Tocilizumab 8 mg/kg IV en 1 heure")]
    assert (
        len(toci) == len(toci_fr) == 1 and toci[0]["dose"] == toci_fr[0]["dose"] == "8 mg/kg × 70 kg = 560 mg"
    )
    assert [a["order"] for a in rec["actions"]] == [a["order"] for a in rec["fr"]["actions"]]
    fr = recommend.in_lang(rec, "fr")
    assert fr["actions"] == rec["fr"]["actions"] and fr["jurisdiction"] == "EU"
    assert recommend.in_lang(rec, "en")["actions"] == rec["actions"]
