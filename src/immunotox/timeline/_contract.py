"""The observation contract of the timeline engine: the columns of an observation file, the reject
reasons and the rejects table's schema, and the array types of the engine (see :mod:`._read`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from ..errors import ImmunotoxError

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I16 = npt.NDArray[np.int16]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]

NO_END = np.iinfo(np.int64).min
"""Sentinel in :attr:`Obs.end` for an empty ``end_time``."""


class ObservationFileError(ImmunotoxError, ValueError):
    """An observation file that cannot be read at all (missing columns, unreadable format).

    Row-level problems never raise: they go to the rejects table.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from immunotox.timeline._read import normalize
    >>> normalize(pa.table({"patient_id": ["P1"]}), file="obs.csv")
    Traceback (most recent call last):
    ...
    immunotox.timeline._contract.ObservationFileError: obs.csv: missing columns ['time', 'code', ...
    """

    def __init__(self, file: str, problem: str) -> None:
        super().__init__(file, problem)
        self.file = file
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.file}: {self.problem}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.file, self.problem))


def missing_columns(missing: Sequence[str], found: Sequence[str]) -> str:
    """The message for a file without some required columns, with a hint for the usual causes.

    >>> missing_columns(["patient_id", "time"], ["patient_id;time;code;value;unit"]).split("] (")[1]
    "the header is separated by ';': write the file comma-separated, with a decimal point)"
    >>> missing_columns(["time"], ["patient_id", "Time", "code"]).split("] (")[1]
    "column names are lower case: rename 'Time' to 'time')"
    """
    text = f"missing columns {list(missing)}; found {list(found)}"
    if len(found) == 1:
        sep = next((c for c in (";", "\t", "|") if c in found[0]), None)
        if sep is not None:
            shown = "tab" if sep == "\t" else repr(sep)
            hint = "write the file comma-separated, with a decimal point"
            return f"{text} (the header is separated by {shown}: {hint})"
    renames = [
        (f, f.strip().lower()) for f in found if f.strip().lower() in missing and f != f.strip().lower()
    ]
    if renames:
        listed = ", ".join(f"{a!r} to {b!r}" for a, b in renames)
        return f"{text} (column names are lower case: rename {listed})"
    return text


REASONS: tuple[str, ...] = (
    "missing_patient_id",
    "bad_time",
    "implausible_time",
    "unknown_code",
    "bad_value",
    "bad_unit",
    "impossible_value",
    "bad_end_time",
    "bad_dose",
    "bad_reference",
)
_REASON_COLUMN = {
    "missing_patient_id": "patient_id",
    "bad_time": "time",
    "implausible_time": "time",
    "unknown_code": "code",
    "bad_value": "value",
    "bad_unit": "unit",
    "impossible_value": "value",
    "bad_end_time": "end_time",
    "bad_dose": "dose",
    "bad_reference": "ref_low",
}
CONTRACT_COLUMNS = ("patient_id", "time", "code", "value", "unit", "end_time", "dose", "dose_unit")
REFERENCE_COLUMNS = ("ref_low", "ref_high")
"""Optional: the reference interval a laboratory result was reported with, in its ``unit``."""
READ_COLUMNS = (*CONTRACT_COLUMNS, *REFERENCE_COLUMNS)
"""The columns the reader takes from a file (any other column is ignored)."""
REQUIRED_COLUMNS = ("patient_id", "time", "code", "value", "unit")
REJECTS_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("row", pa.int64()),
        ("column", pa.string()),
        ("value", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
    ]
)
