"""What a batch stores, queues, audits and answers, pinned value by value on SQLite and
PostgreSQL: every column of every stored row (conversions, reference intervals, doses,
intervals, tokens, a correction, a retraction, text that needs quoting), the regrade queue's
rows, the audit entry and the answer; and a single write's answer byte for byte. The insert is
tuned per database (docs/benchmarks.md, lane svcover): what it stores must not move."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Table, select
from sqlalchemy.exc import DataError

from immunotox.service import db, queue
from immunotox.service.models import AuditEvent, ClinicalEvent, RegradeQueue
from immunotox.service.schemas import ObservationBatchIn
from tests.service.conftest import Service, Template, make_service

M = dt.timedelta(minutes=1)
NOTE = 'a "quoted" {braced}, back\\slash, NULL, é 中'


def _rows(svc: Service, table: Any, *where: Any) -> list[tuple[Any, ...]]:
    t = cast(Table, table.__table__)
    with svc.db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(t).where(*where).order_by(t.c.id))]


@pytest.fixture(params=["queued", "now"])
def svc(request: pytest.FixtureRequest, template: Template, tmp_path: Path) -> Iterator[Service]:
    """The deployed setting (regrades queued for a background regrader the test never runs) and
    the regrade in the write's transaction."""
    seconds = 3600 if request.param == "queued" else 0
    for svc in make_service(template, tmp_path, regrade_seconds=seconds):
        svc.db.on_regrade_queued = None
        yield svc


def test_a_batch_stores_queues_audits_and_answers_exactly_this(svc: Service) -> None:
    t0 = svc.clock.now()
    nurse = svc.user_id("nurse_a")
    # two single writes, corrected and retracted by the batch; the first one's answer, byte for byte
    r = svc.obs("nurse_a", "P-A1", "temperature", 38, "Cel", at=t0 - 60 * M)
    assert r.status_code == 201, r.text
    first = r.json()["stored"][0]["id"]
    stored_part = (
        b'{"stored":[{"id":%d,"patient_id":"P-A1","kind":"observation","code":"temperature",'
        b'"time":"2025-03-10T11:00:00Z","end_time":null,"value":"38","value_num":38.0,"unit":"Cel",'
        b'"dose":null,"dose_unit":null,"source_value":null,"source_unit":null,"ref_low":null,'
        b'"ref_high":null,"source":"api","status":"final","supersedes_id":null,"assessment_id":null,'
        b'"external_id":null,"note":null,"recorded_at":"2025-03-10T12:00:00Z","recorded_by":%d}],'
        % (first, nurse)
    )
    deferred = svc.settings.regrade_seconds > 0
    if deferred:
        assert r.content == stored_part + b'"grades":[],"alerts":[],"grading":"queued"}'
    else:  # the grades' explanations follow (pinned by the grading tests)
        assert r.content.startswith(stored_part + b'"grades":[{"scale":"astct2019:crs",')
    second = svc.obs("nurse_a", "P-A1", "sbp", 121, "mm[Hg]", at=t0 - 59 * M).json()["stored"][0]["id"]
    svc.clock.advance(minutes=1)
    now = svc.clock.now()

    def at(minutes: int) -> str:
        return (t0 - minutes * M).isoformat()

    rows: list[dict[str, Any]] = [
        {"patient_id": "P-A1", "code": "8310-5", "value": "101.3", "unit": "[degF]", "time": at(50)},
        {"patient_id": "P-A1", "code": "heart_rate", "value": 112, "unit": "/min", "time": at(50)},
        {"patient_id": "P-A2", "code": "ice_score", "value": 7, "time": at(45)},
        {"patient_id": "P-A2", "code": "consciousness", "value": "awakens_to_voice", "time": at(45)},
        {"patient_id": "P-A2", "code": "raised_icp_signs", "value": False, "time": at(45)},
        {
            "patient_id": "P-A1",
            "code": "vasopressor",
            "value": "noradrenaline",
            "time": at(40),
            "end_time": at(20),
            "dose": 0.1,
            "dose_unit": "ug/kg/min",
        },
        {
            "patient_id": "P-A1",
            "code": "tocilizumab",
            "value": "tocilizumab",
            "time": at(35),
            "dose": 560,
            "dose_unit": "mg",
        },
        {
            "patient_id": "P-A2",
            "code": "creatinine",
            "value": 97.2,
            "unit": "umol/L",
            "ref_low": 45,
            "ref_high": 90,
            "time": at(30),
        },
        {
            "patient_id": "P-A1",
            "code": "fluid_bolus",
            "value": " crystalloid ",
            "time": at(25),
            "note": NOTE,
            "external_id": "ext-1",
        },
        {
            "patient_id": "P-A1",
            "code": "temperature",
            "value": 37.25,
            "unit": "Cel",
            "time": at(60),
            "supersedes": first,
        },
        {
            "patient_id": "P-A1",
            "code": "sbp",
            "value": 121,
            "unit": "mm[Hg]",
            "time": at(59),
            "status": "entered_in_error",
            "supersedes": second,
        },
    ]
    body = {"observations": rows}
    r = svc.post("nurse_a", "/api/v1/observations/batch", body)
    assert r.status_code == 201, r.text
    answer = r.json()
    ids = answer["ids"]
    assert ids == list(range(ids[0], ids[0] + len(rows))) and ids[0] > second
    assert answer == {
        "stored": 11,
        "ids": ids,
        "grading": "queued" if deferred else "done",
        "patients_regraded": [] if deferred else ["P-A1", "P-A2"],
        "patients_queued": ["P-A1", "P-A2"] if deferred else [],
        "alerts_raised": 0 if deferred else 2,
    }

    def t(minutes: int) -> dt.datetime:
        return t0 - minutes * M

    # fmt: off
    expected = [
        # patient, kind, code, time, end_time, value, value_num, unit, dose, dose_unit,
        # source_value, source_unit, ref_low, ref_high, status, supersedes_id, external_id, note
        ("P-A1", "observation", "temperature", t(50), None, "38.5", 38.5, "Cel", None, None,
         "101.3", "[degF]", None, None, "final", None, None, None),
        ("P-A1", "observation", "heart_rate", t(50), None, "112", 112.0, "/min", None, None,
         None, None, None, None, "final", None, None, None),
        ("P-A2", "assessment", "ice_score", t(45), None, "7", 7.0, "", None, None,
         None, None, None, None, "final", None, None, None),
        ("P-A2", "assessment", "consciousness", t(45), None, "awakens_to_voice", None, "", None, None,
         None, None, None, None, "final", None, None, None),
        ("P-A2", "assessment", "raised_icp_signs", t(45), None, "false", None, "", None, None,
         None, None, None, None, "final", None, None, None),
        ("P-A1", "administration", "vasopressor", t(40), t(20), "norepinephrine", None, "", 0.1, "ug/kg/min",
         "noradrenaline", None, None, None, "final", None, None, None),
        ("P-A1", "administration", "tocilizumab", t(35), None, "tocilizumab", None, "", 560.0, "mg",
         None, None, None, None, "final", None, None, None),
        ("P-A2", "observation", "creatinine", t(30), None, "1.0995264", 1.0995264, "mg/dL", None, None,
         "97.2", "umol/L", 0.50904, 1.01808, "final", None, None, None),
        ("P-A1", "administration", "fluid_bolus", t(25), None, "crystalloid", None, "", None, None,
         None, None, None, None, "final", None, "ext-1", NOTE),
        ("P-A1", "observation", "temperature", t(60), None, "37.25", 37.25, "Cel", None, None,
         None, None, None, None, "final", first, None, None),
        ("P-A1", "observation", "sbp", t(59), None, "121", 121.0, "mm[Hg]", None, None,
         None, None, None, None, "entered_in_error", second, None, None),
    ]
    # fmt: on
    want = [
        (i, *row[:14], "api", row[14], row[15], None, row[16], row[17], now, nurse)
        for i, row in zip(ids, expected, strict=True)
    ]
    assert _rows(svc, ClinicalEvent, ClinicalEvent.id.in_(ids)) == want

    audit = _rows(svc, AuditEvent, AuditEvent.action == "observation.batch")
    payload = ObservationBatchIn.model_validate(body).model_dump_json().encode()
    assert [a[1:] for a in audit] == [
        (
            now,
            nurse,
            "nurse_a",
            "nurse",
            "observation.batch",
            "ok",
            "clinical_event",
            f"{ids[0]}-{ids[-1]}",
            None,
            audit[0][10],  # the request id the middleware drew
            "testclient",
            "testclient",
            hashlib.sha256(payload).hexdigest(),
            {"count": 11, "patients": ["P-A1", "P-A2"]},
        )
    ]

    queued = [r[1:] for r in _rows(svc, RegradeQueue)]
    queued_now = t0 + M
    assert queued == (
        [
            ("P-A1", "astct2019:crs", t(60), None, False, t0),  # the two single writes
            ("P-A1", "astct2019:crs", t(59), None, False, t0),
            ("P-A1", "astct2019:crs", t(20), t(40), True, queued_now),  # the vasopressor's interval
            ("P-A2", "astct2019:icans", t(45), None, False, queued_now),
            ("P-A2", "ctcae5:creatinine-increased", t(30), None, False, queued_now),
        ]
        if deferred
        else []
    )
    if deferred:  # the background regrader's pass
        assert queue.drain_all(svc.db, svc.clock) == 3  # pairs
        assert svc.sql("SELECT count(*) FROM regrade_queue") == [(0,)]
    grades = svc.sql("SELECT patient_id, scale, grade FROM current_grade ORDER BY patient_id, scale")
    alerts = svc.sql("SELECT patient_id, kind, priority, scale, grade, dedup_key FROM alert ORDER BY id")
    history = svc.sql("SELECT patient_id, scale, grade FROM grade_record ORDER BY patient_id, scale, id")
    actions = svc.sql(
        "SELECT action, patient_id FROM audit_event"
        " WHERE action NOT IN ('unit.create', 'user.create') ORDER BY id"
    )
    assert grades == [
        ("P-A1", "astct2019:crs", 1),
        ("P-A1", "astct2019:icans", None),
        ("P-A2", "astct2019:crs", 0),
        ("P-A2", "astct2019:icans", 2),
        ("P-A2", "ctcae5:creatinine-increased", 1),
    ]
    crs_a1 = [("P-A1", "astct2019:crs", g) for g in ((3, 1) if deferred else (1, 1, 3, 1))]
    assert history == [
        *crs_a1,
        ("P-A1", "astct2019:icans", None),
        ("P-A2", "astct2019:crs", 0),
        ("P-A2", "astct2019:icans", 2),
        ("P-A2", "ctcae5:creatinine-increased", 1),
    ]
    icans = ("P-A2", "new_toxicity", "high", "astct2019:icans", 2, "new_toxicity:P-A2:astct2019:icans:2")
    writes = [("observation.create", "P-A1"), ("observation.create", "P-A1")]
    if deferred:  # one pass: the batch's CRS grade 3 is the patient's first toxicity
        assert alerts == [
            ("P-A1", "new_toxicity", "critical", "astct2019:crs", 3, "new_toxicity:P-A1:astct2019:crs:1"),
            icans,
        ]
        assert actions == [
            *writes,
            ("observation.batch", None),
            ("alert.create", "P-A1"),
            ("alert.create", "P-A2"),
        ]
    else:  # the first single write raised grade 1, the batch grade 3
        assert alerts == [
            ("P-A1", "new_toxicity", "normal", "astct2019:crs", 1, "new_toxicity:P-A1:astct2019:crs:1"),
            (
                "P-A1",
                "grade_increase",
                "critical",
                "astct2019:crs",
                3,
                "grade_increase:P-A1:astct2019:crs:1:3",
            ),
            icans,
        ]
        assert actions == [
            ("alert.create", "P-A1"),
            *writes,
            ("alert.create", "P-A1"),
            ("alert.create", "P-A2"),
            ("observation.batch", None),
        ]


def test_the_one_statement_insert_refuses_a_value_too_long_instead_of_cutting_it(
    pg_template: Template, tmp_path: Path
) -> None:
    """PostgreSQL's array insert casts to unbounded types: the column's own length refuses."""
    table = cast(Table, RegradeQueue.__table__)
    for svc in make_service(pg_template, tmp_path):
        row = {"patient_id": "P-A1", "latest": None, "interval_start": None, "full": False}
        with svc.db.writing() as s:
            conn = s.connection()
            db.insert_rows(conn, table, [{**row, "scale": "s" * 64, "queued_at": svc.clock.now()}])
        with pytest.raises(DataError), svc.db.writing() as s:
            conn = s.connection()
            db.insert_rows(conn, table, [{**row, "scale": "s" * 65, "queued_at": svc.clock.now()}])
        assert svc.sql("SELECT scale FROM regrade_queue") == [("s" * 64,)]
