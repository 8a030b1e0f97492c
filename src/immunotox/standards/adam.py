"""ADaM ADTTE (time-to-event) from the timeline outputs, and its reader (the round trip).

One row per subject and parameter (docs/standards.md):

* ``<P>G<k>`` (``CRSG1``, ``CRSG2``, ``CRSG3``, ``ICANSG1``, ...): time from day 0 to the first
  assessment graded at least *k* (the grade's lower bound, so an incomplete grade never makes an
  event it might not be);
* ``<P>DUR``: duration of the first episode (onset to resolution), censored when unresolved;
* ``TTTOCI``: time from day 0 to the first tocilizumab (needs the observations).

``AVAL`` is in days (hours / 24, six decimals), ``CNSR`` 0 = event, 1 = censored at the end of
follow-up (the last assessment), 2 = censored at a **competing event** (death before the event:
ADaM has no competing-event variable, so the censoring code and ``CNSDTDSC`` say it).

>>> from immunotox.standards.adam import ADTTE_COLUMNS
>>> ADTTE_COLUMNS[:6]
('STUDYID', 'USUBJID', 'PARAMCD', 'PARAM', 'AVAL', 'CNSR')
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..timeline import TimelineResult
from ..vocabulary import vocabulary
from ._folder import read_folder
from ._source import StandardsError, iso_utc, parse_when, read_table, write_table

ADTTE_COLUMNS = (
    "STUDYID",
    "USUBJID",
    "PARAMCD",
    "PARAM",
    "AVAL",
    "CNSR",
    "STARTDT",
    "STARTDTM",
    "ADT",
    "ADTM",
    "EVNTDESC",
    "CNSDTDSC",
    "SRCSCALE",
)
ADTTE_SCHEMA = pa.schema(
    [
        ("STUDYID", pa.string()),
        ("USUBJID", pa.string()),
        ("PARAMCD", pa.string()),
        ("PARAM", pa.string()),
        ("AVAL", pa.float64()),
        ("CNSR", pa.int8()),
        ("STARTDT", pa.string()),
        ("STARTDTM", pa.string()),
        ("ADT", pa.string()),
        ("ADTM", pa.string()),
        ("EVNTDESC", pa.string()),
        ("CNSDTDSC", pa.string()),
        ("SRCSCALE", pa.string()),
    ]
)
DEFAULT_PARAMS: Mapping[str, str] = {"astct2019:crs": "CRS", "astct2019:icans": "ICANS"}
CENSORED_END = "END OF FOLLOW-UP (LAST ASSESSMENT)"
CENSORED_DEATH = "DEATH BEFORE EVENT (COMPETING EVENT)"


def _days(start: dt.datetime, end: dt.datetime) -> float:
    return round((end - start).total_seconds() / 86400.0, 6)


def _first_times(obs: pa.Table | None, codes: set[str]) -> dict[tuple[str, str], dt.datetime]:
    """(patient, code) -> first time of an accepted-looking row of ``codes`` in ``obs``."""
    out: dict[tuple[str, str], dt.datetime] = {}
    if obs is None:
        return out
    voc = vocabulary()
    for r in obs.select(["patient_id", "time", "code"]).to_pylist():
        spec = voc.lookup(str(r["code"]))
        if spec is None or spec.name not in codes:
            continue
        t = r["time"] if isinstance(r["time"], dt.datetime) else parse_when(str(r["time"]))
        if t is None:
            continue
        key = (str(r["patient_id"]), spec.name)
        if key not in out or t < out[key]:
            out[key] = t
    return out


def _record(
    base: dict[str, Any],
    code: str,
    param: str,
    start: dt.datetime,
    when: dt.datetime,
    cnsr: int,
    evnt: str,
    cns: str,
) -> dict[str, Any]:
    return base | {
        "PARAMCD": code,
        "PARAM": param,
        "AVAL": _days(start, when),
        "CNSR": cnsr,
        "ADT": iso_utc(when)[:10],
        "ADTM": iso_utc(when),
        "EVNTDESC": evnt or None,
        "CNSDTDSC": cns or None,
    }


def adtte(
    result: TimelineResult | Outputs,
    observations: pa.Table | None = None,
    *,
    params: Mapping[str, str] = DEFAULT_PARAMS,
    thresholds: tuple[int, ...] = (1, 2, 3),
    study: str = "IMMUNOTOX-SIM",
) -> pa.Table:
    """The ADTTE rows of a timeline result (``params``: scale id -> PARAMCD prefix, at most 5
    letters so that ``<P>G<k>`` and ``<P>DUR`` fit the 8 characters of PARAMCD)."""
    for prefix in params.values():
        if not (prefix.isalpha() and prefix.isupper() and len(prefix) <= 5):
            raise StandardsError("params", f"PARAMCD prefix {prefix!r}: 1-5 upper-case letters")
    firsts = _first_times(observations, {"tocilizumab", "death"})
    rows: list[dict[str, Any]] = []
    grades = result.grades
    for scale, prefix in params.items():
        g = (
            grades.filter(pc.equal(grades.column("scale"), scale))
            .select(["patient_id", "time", "grade"])
            .to_pylist()
        )
        by_patient: dict[str, list[tuple[dt.datetime, int]]] = {}
        for r in g:
            by_patient.setdefault(r["patient_id"], []).append((r["time"], r["grade"]))
        pts = result.patients.filter(pc.equal(result.patients.column("scale"), scale)).to_pylist()
        eps = {
            r["patient_id"]: r
            for r in result.episodes.filter(pc.equal(result.episodes.column("scale"), scale)).to_pylist()
            if r["episode"] == 1
        }
        for p in pts:
            pid, day0 = p["patient_id"], p["day0"]
            if day0 is None:
                continue
            seq = sorted(by_patient.get(pid, []))
            if not seq:
                continue
            last = seq[-1][0]
            death = firsts.get((pid, "death"))
            base = {
                "STUDYID": study,
                "USUBJID": pid,
                "STARTDT": iso_utc(day0)[:10],
                "STARTDTM": iso_utc(day0),
                "SRCSCALE": scale,
            }

            for k in thresholds:
                hit = next((t for t, grade in seq if grade is not None and grade >= k), None)
                param = f"Time to first {prefix} grade >= {k} ({scale}) (days)"
                if hit is not None and (death is None or hit <= death):
                    rows.append(
                        _record(base, f"{prefix}G{k}", param, day0, hit, 0, f"{prefix} GRADE >= {k}", "")
                    )
                elif death is not None and death <= last:
                    rows.append(_record(base, f"{prefix}G{k}", param, day0, death, 2, "", CENSORED_DEATH))
                else:
                    rows.append(_record(base, f"{prefix}G{k}", param, day0, last, 1, "", CENSORED_END))
            ep = eps.get(pid)
            if ep is not None:
                param = f"Duration of the first {prefix} episode ({scale}) (days)"
                if ep["resolved"]:
                    rows.append(
                        _record(
                            base,
                            f"{prefix}DUR",
                            param,
                            ep["onset"],
                            ep["resolution"],
                            0,
                            f"{prefix} RESOLVED",
                            "",
                        )
                    )
                else:
                    rows.append(_record(base, f"{prefix}DUR", param, ep["onset"], last, 1, "", CENSORED_END))
    # time to tocilizumab, once per subject (from the first scale's day 0 and follow-up)
    if observations is not None and params:
        seen: set[str] = set()
        for r in list(rows):
            pid = r["USUBJID"]
            if pid in seen or r["SRCSCALE"] != next(iter(params)):
                continue
            seen.add(pid)
            day0 = parse_when(r["STARTDTM"])
            assert day0 is not None
            ends = [parse_when(x["ADTM"]) for x in rows if x["USUBJID"] == pid and x["CNSR"] != 0]
            toci, death = firsts.get((pid, "tocilizumab")), firsts.get((pid, "death"))
            last = max([e for e in ends if e is not None] or [day0])
            base = {k: r[k] for k in ("STUDYID", "USUBJID", "STARTDT", "STARTDTM")} | {"SRCSCALE": None}
            param = "Time to first tocilizumab (days)"
            if toci is not None and toci >= day0:
                when, cnsr, evnt, cns = toci, 0, "TOCILIZUMAB GIVEN", ""
            elif death is not None:
                when, cnsr, evnt, cns = death, 2, "", CENSORED_DEATH
            else:
                when, cnsr, evnt, cns = last, 1, "", CENSORED_END
            rows.append(_record(base, "TTTOCI", param, day0, when, cnsr, evnt, cns))
    rows.sort(key=lambda r: (r["USUBJID"], r["PARAMCD"]))
    return pa.Table.from_pylist(rows, schema=ADTTE_SCHEMA)


@dataclass
class Outputs:
    """The timeline outputs ADTTE reads (a :class:`~immunotox.timeline.TimelineResult` has them)."""

    grades: pa.Table
    patients: pa.Table
    episodes: pa.Table


def load_outputs(out_dir: str | Path) -> Outputs:
    """The Parquet outputs of :func:`immunotox.timeline.run_timeline` in ``out_dir``."""
    d = Path(out_dir)
    try:
        return Outputs(*(pq.read_table(d / f"{n}.parquet") for n in ("grades", "patients", "episodes")))
    except (OSError, pa.ArrowException) as exc:
        raise StandardsError(str(d), f"no Parquet timeline outputs to read ({exc})") from None


def contract_rows(source: str | Path) -> pa.Table:
    """The ``patient_id, time, code`` rows of an observation file or a standard folder (for the
    tocilizumab and death times of :func:`adtte`)."""
    p = Path(source)
    if p.is_dir():
        return read_folder(p).observations
    cols = ["patient_id", "time", "code"]
    if p.suffix.lower() in (".parquet", ".pq"):
        return pq.read_table(p, columns=cols)
    opts = pacsv.ConvertOptions(column_types=dict.fromkeys(cols, pa.string()), include_columns=cols)
    parse = pacsv.ParseOptions(delimiter="\t" if p.suffix.lower() == ".tsv" else ",")
    return pacsv.read_csv(p, parse_options=parse, convert_options=opts)


def write_adtte(table: pa.Table, path: str | Path) -> None:
    """Write an ADTTE table as CSV (columns in :data:`ADTTE_COLUMNS` order)."""
    write_table(table.to_pylist(), ADTTE_COLUMNS, Path(path))


def read_adtte(path: str | Path) -> pa.Table:
    """Read an ADTTE CSV back (the round trip of :func:`write_adtte`); a missing column or a
    CNSR outside 0/1/2 raises :class:`StandardsError` naming it."""
    p = Path(path)
    rows = read_table(p)
    if rows and (missing := [c for c in ADTTE_COLUMNS if c.lower() not in rows[0]]):
        raise StandardsError(p.name, f"missing ADTTE columns {missing}")
    out: list[dict[str, Any]] = []
    for i, r in enumerate(rows, start=1):
        rec: dict[str, Any] = {c: (r[c.lower()] or None) for c in ADTTE_COLUMNS}
        try:
            rec["AVAL"] = float(r["aval"])
            rec["CNSR"] = int(r["cnsr"])
        except ValueError:
            raise StandardsError(
                p.name, f"row {i}: AVAL {r['aval']!r} / CNSR {r['cnsr']!r} not numbers"
            ) from None
        if rec["CNSR"] not in (0, 1, 2):
            raise StandardsError(
                p.name, f"row {i}: CNSR = {rec['CNSR']}; expected 0 (event), 1 or 2 (censored)"
            )
        out.append(rec)
    return pa.Table.from_pylist(out, schema=ADTTE_SCHEMA)
