"""Raw strings checked per *distinct* value: times, decimal numbers, unit conversions to the
canonical unit, and the (code, value) tables of states and canonical values that
:func:`._read.normalize` gathers back to the rows."""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from .. import units
from ..errors import UnitError
from ..vocabulary import OPEN_TOKEN, CodeSpec, Vocabulary, unitless, vocabulary
from ._arrow import indices, to_np
from ._contract import F64, I32, I64, NO_END, REASONS

# above this many distinct values of a (code, unit) pair, a linear conversion is applied as a
# factor (rounded to 10 significant digits like units.convert) instead of value by value
_DISTINCT_CONVERSION_LIMIT = 4000


# ----------------------------------------------------------------------------------- helpers
def _column(raw: pa.Table, name: str) -> pa.Array | None:
    if name not in raw.column_names:
        return None
    col = raw.column(name)
    if isinstance(col, pa.ChunkedArray):
        return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    return col


def _as_string(arr: pa.Array) -> pa.Array:
    t = arr.type
    if pa.types.is_dictionary(t):
        if not (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)):
            return arr.cast(pa.string())
        return arr
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return arr
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.string())
    return arr.cast(pa.string())


def _encode(arr: pa.Array) -> tuple[I32, pa.Array]:
    """Dictionary-encode a string column: (indices with -1 for null, dictionary of strings)."""
    arr = _as_string(arr)
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    idx: I32 = to_np(arr.indices, np.int32, fill=-1)
    dictionary = arr.dictionary
    if not pa.types.is_string(dictionary.type):
        dictionary = dictionary.cast(pa.string())
    return idx, dictionary


_TZ_SUFFIX = r"T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|z|[+-]\d{2}(:?\d{2})?)$"


def parse_times(arr: pa.Array) -> I64:
    """Times as int64 microseconds since the epoch, UTC; ``NO_END`` where empty or unparseable.

    Accepted: Arrow timestamps (naive = UTC) and dates; strings in ISO 8601 —
    ``YYYY-MM-DD[(T| )hh:mm[:ss[.ffffff]]][Z|±hh[:mm]]``. A time without offset is read as UTC;
    an offset is converted to UTC; a date alone is midnight UTC.
    """
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = arr.type
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        target = pa.timestamp("us", tz="UTC") if getattr(t, "tz", None) else pa.timestamp("us")
        us = arr.cast(target).cast(pa.int64())
        got: I64 = to_np(us, np.int64, fill=NO_END)
        return got
    if pa.types.is_null(t):
        return np.full(len(arr), NO_END, np.int64)
    s = pl.col("s").str.strip_chars().str.replace(r"^(\d{4}-\d{2}-\d{2})[ t]", "${1}T")
    z = s.str.replace(r"(Z|z)$", "+00:00").str.replace(r"([+-]\d{2})$", "${1}:00")
    aware = pl.coalesce(
        z.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", strict=False, time_unit="us", time_zone="UTC"),
        z.str.to_datetime("%Y-%m-%dT%H:%M%#z", strict=False, time_unit="us", time_zone="UTC"),
    ).dt.replace_time_zone(None)
    naive = pl.coalesce(
        s.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us"),
        s.str.to_datetime("%Y-%m-%dT%H:%M", strict=False, time_unit="us"),
        s.str.to_datetime("%Y-%m-%d", strict=False, time_unit="us"),
    )
    frame = pl.DataFrame({"s": pl.Series(_as_string(arr).cast(pa.string()))})
    parsed = frame.select(
        pl.when(s.str.contains(_TZ_SUFFIX)).then(aware).otherwise(naive).dt.epoch("us").alias("t")
    )["t"]
    out: I64 = parsed.fill_null(NO_END).to_numpy().astype(np.int64, copy=True)
    return out


def _numbers(dictionary: pa.Array) -> F64:
    """Every dictionary string parsed as a decimal number (NaN when it is not one), plus a NaN
    for the empty-value slot."""
    s = pl.Series(dictionary).str.strip_chars()
    out: F64 = np.append(s.cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy(), np.nan)
    out[~np.isfinite(out)] = np.nan
    return out


def _sig10(x: F64) -> F64:
    """Round to 10 significant digits, as :func:`immunotox.units.convert` does."""
    out = x.copy()
    nz = np.isfinite(out) & (out != 0)
    mag = np.floor(np.log10(np.abs(out[nz])))
    scale = 10.0 ** (9 - mag)
    out[nz] = np.round(out[nz] * scale) / scale
    return out


class _Conversion:
    """Conversion of one (code, unit) pair to the code's canonical unit."""

    def __init__(self, spec: CodeSpec, unit: str) -> None:
        self.spec = spec
        self.unit = unit
        self.error: str | None = None
        self.identity = False
        self.affine = False
        self.factor = 1.0
        if spec.kind != "quantity":
            if not unitless(unit):
                self.error = f"{spec.name} is unitless; got unit {unit!r}"
            self.identity = True
            return
        u = unit.strip()
        if u == "":
            self.error = f"{spec.name} needs a unit; expected {spec.unit!r} or a convertible UCUM code"
            return
        if units._normalise_code(u) == units._normalise_code(spec.unit):
            self.identity = True
            return
        try:
            zero = units.convert(spec.name, 0.0, u, spec.unit, spec.molar_mass)
            one = units.convert(spec.name, 1.0, u, spec.unit, spec.molar_mass)
        except UnitError as exc:
            self.error = exc.problem
            return
        self.affine = zero != 0.0
        self.factor = one

    @property
    def state(self) -> int:
        """0 = already canonical, 1 = to convert, 2 = not convertible."""
        return 2 if self.error is not None else 0 if self.identity else 1

    def apply(self, raw_values: F64) -> F64:
        """Convert raw numbers (NaN stays NaN): value by value through units.convert when the
        conversion is affine (°F) or the values are few, else by the factor rounded like it."""
        out = np.full(raw_values.shape[0], np.nan)
        finite = np.isfinite(raw_values)
        distinct = np.unique(raw_values[finite])
        if self.affine or distinct.shape[0] <= _DISTINCT_CONVERSION_LIMIT:
            conv = np.array(
                [
                    units.convert(self.spec.name, float(x), self.unit, self.spec.unit, self.spec.molar_mass)
                    for x in distinct
                ]
            )
            if distinct.shape[0]:
                out[finite] = conv[np.searchsorted(distinct, raw_values[finite])]
            return out
        out[finite] = _sig10(raw_values[finite] * self.factor)
        return out


def _conversion(voc: Vocabulary, code: int, unit: str) -> _Conversion:
    """The conversion of ``unit`` to the canonical unit of code ``code`` of ``voc`` (cached for the
    packaged vocabulary)."""
    if voc is vocabulary():
        return _packaged_conversion(code, unit)
    return _Conversion(voc.codes[code], unit)


@functools.cache
def _packaged_conversion(code: int, unit: str) -> _Conversion:
    return _Conversion(vocabulary().codes[code], unit)


_R = {name: i + 1 for i, name in enumerate(REASONS)}
_KEPT = 64  # state of an accepted row of a kept code: _KEPT + code index
# The row state is one int16 per row (a reject reason below _KEPT, or _KEPT + code index): any
# vocabulary of up to MAX_CODES codes, the cost of one byte more per row than an int8.
State = npt.NDArray[np.int16]
MAX_CODES = int(np.iinfo(np.int16).max) - _KEPT + 1


def _value_tables(
    voc: Vocabulary,
    code_of: I32,
    v_dict: pa.Array,
    numbers: F64,
    keep: frozenset[int] | None = None,
    open_values: I64 | None = None,
) -> tuple[State, F64]:
    """Per (code dictionary entry, value dictionary entry): the state and the canonical value.

    The state is a reject reason (1-8: bad_value, impossible_value as if in the canonical unit,
    unknown_code), 0 for an accepted row of a code not kept, or ``_KEPT + code`` for an accepted
    row of a kept code (so one gather gives validity, keeping and the code). ``code_of`` maps each
    code dictionary entry to a code index (``len(voc.codes)`` = unknown); the last value column
    stands for an empty value. ``open_values``: the value entries that occur with an ``open``
    code (only those are matched against the open-token pattern, the others are never gathered
    for an open code; default: every entry)."""
    ncodes = len(voc.codes)
    nv = len(v_dict) + 1
    reason = np.zeros((code_of.shape[0], nv), np.int16)
    num = np.zeros((code_of.shape[0], nv), np.float64)
    # token candidates: the strings that are not numbers, and "0"/"1" (boolean aliases)
    cand = np.flatnonzero(np.isnan(numbers[:-1]) | (numbers[:-1] == 0) | (numbers[:-1] == 1))
    words = [str(w).strip().lower() for w in v_dict.take(indices(cand)).to_pylist()] if cand.shape[0] else []
    # the value entries of each candidate word (several raw spellings may give one word): a token
    # code looks up its own tokens and aliases here, not every word of the batch
    entries_of: dict[str, list[int]] = {}
    for entry, w in zip(cand.tolist(), words, strict=True):
        entries_of.setdefault(w, []).append(entry)
    open_ok = np.zeros(nv, bool)
    if any(voc.codes[c].kind == "open" for c in set(code_of.tolist()) if c < ncodes):
        which = np.arange(nv - 1) if open_values is None else open_values[open_values < nv - 1]
        if which.shape[0]:
            texts = v_dict.take(indices(which)).to_pylist()
            open_ok[which] = [bool(OPEN_TOKEN.match(str(w).strip().lower())) for w in texts]
    done: dict[int, int] = {}
    for d, c in enumerate(code_of.tolist()):
        if c in done:  # the same code under another spelling (LOINC alias)
            reason[d] = reason[done[c]]
            num[d] = num[done[c]]
            continue
        done[c] = d
        if c >= ncodes:
            reason[d] = _R["unknown_code"]
            continue
        spec = voc.codes[c]
        if spec.numeric:
            x = numbers
            bad = np.isnan(x)
            if spec.kind == "integer":
                bad |= x != np.round(x)
            r = np.where(bad, _R["bad_value"], 0)
            if spec.range is not None:
                out = ~bad & ((x < spec.range[0]) | (x > spec.range[1]))
                r = np.where(out, _R["impossible_value"], r)
            reason[d] = r
            num[d] = np.where(bad, 0.0, x)
        elif spec.kind in ("token", "bool"):
            ranks = np.full(nv, -1, np.int64)
            for w, rank in spec.token_map().items():
                if w in entries_of:
                    ranks[entries_of[w]] = rank
            reason[d] = np.where(ranks < 0, _R["bad_value"], 0)
            num[d] = np.maximum(ranks, 0)
        else:  # open: a free token (vocabulary.OPEN_TOKEN after lower-casing), numbers included
            reason[d] = np.where(open_ok, 0, _R["bad_value"])
        if keep is None or c in keep:
            reason[d] = np.where(reason[d] == 0, _KEPT + c, reason[d])
    return reason, num
