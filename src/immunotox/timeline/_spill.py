"""Spilling an input that is not sorted by patient: its patients in hash buckets (Arrow IPC files
under the output folder), read back bucket by bucket as whole patients."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from ._read import Obs


class _Buckets:
    """Patients spilled to ``n`` hash buckets (Arrow IPC files), for inputs not sorted by patient."""

    SCHEMA = pa.schema(
        [
            ("patient_id", pa.string()),
            ("t", pa.int64()),
            ("code", pa.int16()),
            ("num", pa.float64()),
            ("end", pa.int64()),
            ("ref_low", pa.float64()),
            ("ref_high", pa.float64()),
        ]
    )
    FIRST = pa.schema([("patient_id", pa.string()), ("first_t", pa.int64())])

    def __init__(self, folder: Path, n: int) -> None:
        self.n = n
        self.folder = folder
        self._rows = [ipc.new_file(folder / f"b{i}.arrow", self.SCHEMA) for i in range(n)]
        self._first = [ipc.new_file(folder / f"f{i}.arrow", self.FIRST) for i in range(n)]

    def add(self, o: Obs) -> None:
        if o.n_patients == 0:
            return
        bucket = np.array([zlib.crc32(p.encode()) % self.n for p in o.patient_ids], np.int64)
        ids = pa.array(o.patient_ids, pa.string())
        row_bucket = bucket[o.pid]
        ref_low, ref_high = o.refs()
        for b in np.unique(bucket).tolist():
            rows = np.flatnonzero(row_bucket == b)
            pats = np.flatnonzero(bucket == b)
            self._rows[b].write_table(
                pa.table(
                    [
                        ids.take(pa.array(o.pid[rows])),
                        o.t[rows],
                        o.code[rows],
                        o.num[rows],
                        o.end[rows],
                        ref_low[rows],
                        ref_high[rows],
                    ],
                    schema=self.SCHEMA,
                )
            )
            self._first[b].write_table(
                pa.table([ids.take(pa.array(pats)), o.first_t[pats]], schema=self.FIRST)
            )

    def close(self) -> None:
        for w in (*self._rows, *self._first):
            w.close()

    def read(self, i: int) -> Obs:
        rows = ipc.open_file(self.folder / f"b{i}.arrow").read_all()
        first = ipc.open_file(self.folder / f"f{i}.arrow").read_all()
        if first.num_rows == 0:
            return Obs.empty()
        ids = sorted(set(first.column("patient_id").to_pylist()))
        rank = {p: k for k, p in enumerate(ids)}
        ft = np.full(len(ids), np.iinfo(np.int64).max, np.int64)
        np.minimum.at(
            ft,
            np.array([rank[p] for p in first.column("patient_id").to_pylist()], np.int64),
            first.column("first_t").to_numpy(),
        )
        pid = np.array([rank[p] for p in rows.column("patient_id").to_pylist()], np.int32)
        t = rows.column("t").to_numpy()
        perm = np.lexsort((t, pid))
        return Obs(
            ids,
            pid[perm],
            t[perm],
            rows.column("code").to_numpy()[perm].astype(np.int16),
            rows.column("num").to_numpy()[perm],
            rows.column("end").to_numpy()[perm],
            ft,
            rows.column("ref_low").to_numpy()[perm],
            rows.column("ref_high").to_numpy()[perm],
        )
