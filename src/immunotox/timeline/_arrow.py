"""numpy <-> Arrow without going through ``pa.array``/``to_numpy``.

Those two entry points make pyarrow import pandas (about 0.2-0.3 s) the first time they run in a
process, whenever pandas is installed; the engine moves fixed-width buffers directly instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa


def valid(arr: pa.Array) -> npt.NDArray[np.bool_]:
    """Validity of each slot (True = not null)."""
    n = len(arr)
    if arr.null_count == 0:
        return np.ones(n, bool)
    bitmap = arr.buffers()[0]
    bits = np.unpackbits(np.frombuffer(bitmap, np.uint8), bitorder="little")
    return bits[arr.offset : arr.offset + n].astype(bool)


def valid_indices(arr: pa.Array) -> npt.NDArray[np.int64]:
    """Indices of the slots that are not null, in order. Reads the validity bitmap a byte at a
    time: only the bytes with a valid slot are unpacked (an optional column is mostly null)."""
    n = len(arr)
    if arr.null_count == 0:
        return np.arange(n, dtype=np.int64)
    if arr.null_count == n:
        return np.zeros(0, np.int64)
    first = arr.offset // 8
    data = np.frombuffer(arr.buffers()[0], np.uint8)[first : (arr.offset + n + 7) // 8]
    nz = np.flatnonzero(data)
    byte, bit = np.nonzero(np.unpackbits(data[nz], bitorder="little").reshape(-1, 8))
    out = (nz[byte] + first) * 8 + bit - arr.offset
    return np.ascontiguousarray(out[(out >= 0) & (out < n)], np.int64)


def to_np(arr: pa.Array, dtype: Any, fill: Any = None) -> Any:
    """A fixed-width Arrow array as numpy (null slots set to ``fill`` when given)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    dt = np.dtype(dtype)
    n = len(arr)
    if pa.types.is_boolean(arr.type):
        bits = np.unpackbits(np.frombuffer(arr.buffers()[1], np.uint8), bitorder="little")
        out: Any = bits[arr.offset : arr.offset + n].astype(bool)
    else:
        buf = arr.buffers()[1]
        width = arr.type.bit_width // 8
        raw = np.frombuffer(
            buf, dtype=np.dtype(f"<i{width}") if dt.kind in "iu" else dt, count=n, offset=arr.offset * width
        )
        out = raw.astype(dt, copy=False)
    if fill is not None and arr.null_count:
        out = np.where(valid(arr), out, fill).astype(dt, copy=False)
    return out


def from_np(values: Any, type_: pa.DataType, mask_valid: Any = None) -> pa.Array:
    """A numpy array as an Arrow array of ``type_`` (fixed width or bool), nulls where
    ``mask_valid`` is False."""
    x = np.ascontiguousarray(values)
    n = int(x.shape[0])
    validity = None
    nulls = 0
    if mask_valid is not None:
        mv = np.asarray(mask_valid, bool)
        nulls = int(n - mv.sum())
        if nulls:
            validity = pa.py_buffer(np.packbits(mv, bitorder="little"))
    if pa.types.is_boolean(type_):
        data = pa.py_buffer(np.packbits(x.astype(bool), bitorder="little"))
    else:
        width = type_.bit_width // 8
        kind = "f" if pa.types.is_floating(type_) else "i"
        storage = np.dtype(f"<{kind}{width}")
        data = pa.py_buffer(np.ascontiguousarray(x.astype(storage, copy=False)))
    return pa.Array.from_buffers(type_, n, [validity, data], null_count=nulls)


def strings(values: Sequence[str]) -> pa.Array:
    """A list of Python strings as an Arrow ``string`` array (offsets and UTF-8 data built
    directly: no Polars round trip, no pandas import)."""
    encoded = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, np.int32)
    if encoded:
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
    data = b"".join(encoded)
    return pa.Array.from_buffers(
        pa.string(), len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(data)], null_count=0
    )


def indices(values: Any) -> pa.Array:
    """Row indices (numpy) as an Arrow int64 array, for ``take``."""
    return from_np(np.asarray(values, np.int64), pa.int64())
