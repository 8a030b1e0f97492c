"""The bad-row injector: copies of valid rows, each corrupted in one known way.

For the rejects tests of the timeline engine. Valid rows are never altered or removed: each bad
row is an extra row inserted right after the valid row it was copied from, so the engine's result
on the valid rows is the same with or without injection. Kinds:

* ``unparseable_time`` - ``time`` is null in Arrow/Parquet and written ``not-a-time`` in CSV;
* ``unknown_code`` - a code outside the contract (``temprature``, ``bp_systolic``, ``xyz_lab``);
* ``impossible_value`` - a non-zero numeric value made negative (``-38.6`` for a temperature);
* ``unknown_unit`` - the unit ``zorkmid`` on a row that has a unit.

Each patient gets Binomial(rows, fraction) bad rows from its own random generator (drawn after
everything else), kinds taken in turn from the requested ones starting at a random kind.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _vocab as V
from ._latent import Arr


def inject(
    obs: Any, row_patient: Arr, gens: list[np.random.Generator], fraction: float, kinds: tuple[str, ...]
) -> tuple[Any, Any]:
    """Insert bad rows into ``obs`` (rows sorted by patient); returns the new table and the
    ground truth (schema ``BAD_ROWS_SCHEMA``, ``row`` relative to this table)."""
    n_rows = obs.num_rows
    codes = obs.column("code").to_numpy(zero_copy_only=False)
    is_num = np.array([V.SPEC[V.LOINC_TO_CODE.get(c, c)].kind == "number" for c in codes])
    # a zero negated is still zero, a valid value: only non-zero numbers can be made impossible
    values = obs.column("value").to_numpy(zero_copy_only=False)
    is_num[is_num] = np.array([float(v) != 0 for v in values[is_num]], bool)
    has_unit = pc.not_equal(obs.column("unit"), "").to_numpy(zero_copy_only=False)
    bounds = np.searchsorted(row_patient, np.arange(len(gens) + 1))
    src: list[int] = []
    kind_of: list[str] = []
    pick: list[int] = []
    for j, g in enumerate(gens):
        a, b = int(bounds[j]), int(bounds[j + 1])
        if b <= a:
            continue
        k = int(g.binomial(b - a, fraction))
        start = int(g.integers(len(kinds)))
        for m in range(k):
            kind = kinds[(start + m) % len(kinds)]
            pool = np.arange(a, b)
            if kind == "impossible_value":
                pool = pool[is_num[a:b]]
            elif kind == "unknown_unit":
                pool = pool[has_unit[a:b]]
            if pool.size == 0:
                continue
            src.append(int(pool[g.integers(pool.size)]))
            kind_of.append(kind)
            pick.append(int(g.integers(len(V.BAD_CODES))))
    if not src:
        return obs, V.BAD_ROWS_SCHEMA.empty_table()
    records = obs.take(pa.array(src)).to_pylist()
    written: list[str] = []
    column: list[str] = []
    for rec, kind, c in zip(records, kind_of, pick, strict=True):
        if kind == "unparseable_time":
            rec["time"] = None
            column.append("time")
            written.append(V.BAD_TIME_TEXT)
        elif kind == "unknown_code":
            rec["code"] = V.BAD_CODES[c]
            column.append("code")
            written.append(rec["code"])
        elif kind == "impossible_value":
            rec["value"] = "-" + rec["value"]
            column.append("value")
            written.append(rec["value"])
        else:
            rec["unit"] = V.BAD_UNIT
            column.append("unit")
            written.append(V.BAD_UNIT)
    bad = pa.Table.from_pylist(records, schema=V.OBSERVATION_SCHEMA)
    # valid row i keeps its place; bad rows follow their source row, in draw order
    src_arr = np.array(src, dtype=np.int64)
    key_valid = np.arange(n_rows, dtype=np.int64) * 2
    key_bad = src_arr * 2 + 1
    order = np.argsort(np.concatenate([key_valid, key_bad]), kind="stable")
    merged = pa.concat_tables([obs, bad]).take(pa.array(order))
    position = np.empty(order.size, dtype=np.int64)
    position[order] = np.arange(order.size)
    bad_pos = position[n_rows:]
    src_pos = position[src_arr]
    truth = pa.Table.from_arrays(
        [
            pa.array(bad_pos),
            pa.array([r["patient_id"] for r in records]),
            pa.array(kind_of),
            pa.array(column),
            pa.array(written),
            pa.array(src_pos),
        ],
        schema=V.BAD_ROWS_SCHEMA,
    )
    return merged, truth
