"""The id a write answers is the id of the row it stored: a single write (on SQLite one INSERT,
its id from the cursor) and a batch (on SQLite the ids above the largest before the insert;
on PostgreSQL INSERT ... RETURNING), interleaved, on both databases."""

from __future__ import annotations

import datetime as dt

from tests.service.conftest import Service

M = dt.timedelta(minutes=1)


def test_single_and_batch_writes_answer_the_ids_of_their_rows(svc: Service) -> None:
    t0 = svc.clock.now() - 60 * M
    answered: list[tuple[int, str, str]] = []  # (id, patient, value) as each write answered

    def single(pid: str, value: float, k: int) -> None:
        r = svc.obs("nurse_a", pid, "heart_rate", value, "/min", at=t0 + k * M)
        assert r.status_code == 201, r.text
        (event,) = r.json()["stored"]
        answered.append((event["id"], event["patient_id"], event["value"]))

    def batch(values: list[float], k: int) -> None:
        at = (t0 + k * M).isoformat()
        rows = [
            {"patient_id": "P-A2", "code": "heart_rate", "value": v, "unit": "/min", "time": at}
            for v in values
        ]
        r = svc.post("nurse_a", "/api/v1/observations/batch", {"observations": rows})
        assert r.status_code == 201, r.text
        ids = r.json()["ids"]
        assert len(ids) == len(values)
        answered.extend((i, "P-A2", str(int(v))) for i, v in zip(ids, values, strict=True))

    single("P-A1", 81, 1)
    batch([91, 92, 93], 2)
    single("P-A1", 82, 3)
    single("P-A2", 83, 4)
    batch([94], 5)
    batch([95, 96], 6)
    single("P-A1", 84, 7)
    ids = [i for i, _, _ in answered]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    stored = {
        i: (pid, value)
        for i, pid, value in svc.sql(
            "SELECT id, patient_id, value FROM clinical_event WHERE code = 'heart_rate' ORDER BY id"
        )
    }
    assert sorted(stored) == ids
    assert [(pid, value) for _, pid, value in answered] == [stored[i] for i in ids]
