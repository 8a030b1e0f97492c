"""CDISC SDTM: a folder of domains in, the observation contract out (and the way back).

DM (age), VS and LB (``--STRESN`` / ``--STRESU``), FA (ICE items, ICANS findings), EX (the first
infusion is day 0), CM (drug start and end), PR (oxygen support), DS + DD (death and its cause)
become contract rows through ``sdtm_map.toml`` (shown in ``docs/standards.md``); AE rows are kept
beside the grades (the reported toxicity grade, ``AETOXGR``), CE rows counted. Dates are ISO 8601
``--DTC``: a date-time to the minute at least; a date alone or a partial date is rejected with its
reason (no imputation).

>>> from immunotox.standards.sdtm import dtc
>>> dtc("2024-03-01T10:30"), dtc("2024-03-01"), dtc("2024-03")
(('2024-03-01T10:30', ''), ('', 'date_only'), ('', 'partial_date'))
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import RuleSpecError
from ..timeline import RunSummary, TimelineResult
from ..vocabulary import vocabulary
from ._source import (
    Collector,
    StandardRead,
    StandardsError,
    find_table,
    grade_read,
    iso_utc,
    parse_when,
    read_table,
    run_read,
)
from ._source import write_table as _write_csv

STUDY = "IMMUNOTOX-SIM"
_DTC = re.compile(r"^(\d{4})(-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)?)?)?$")


@dataclass(frozen=True)
class SdtmMap:
    """The loaded ``sdtm_map.toml``."""

    tests: dict[str, dict[str, str]]  # domain -> TESTCD -> code
    units: dict[str, str]  # CDISC unit -> UCUM
    cmcat: dict[str, str]
    prcat: dict[str, str]
    hodecod: dict[str, str]

    def testcd(self, domain: str, code: str) -> str | None:
        """The first test code of ``domain`` that maps to ``code`` (the writer's choice)."""
        return next((t for t, c in self.tests[domain].items() if c == code), None)


@functools.cache
def sdtm_map() -> SdtmMap:
    """The SDTM mapping table (loaded once; every code checked against the timeline vocabulary)."""
    doc = tomllib.loads(resources.files("immunotox.standards").joinpath("sdtm_map.toml").read_text("utf-8"))
    voc = vocabulary()
    for section in (*doc["test"].values(), doc["cmcat"], doc["prcat"], doc["hodecod"]):
        for key, code in section.items():
            voc.code(code)  # a packaging error if the timeline vocabulary lost it
            if len(key) > 8 and section in doc["test"].values():
                raise RuleSpecError(f"sdtm_map.toml: test code {key!r} is longer than 8 characters")
    return SdtmMap(
        tests={d: dict(t) for d, t in doc["test"].items()},
        units=dict(doc["unit"]),
        cmcat=dict(doc["cmcat"]),
        prcat=dict(doc["prcat"]),
        hodecod=dict(doc["hodecod"]),
    )


def dtc(text: str) -> tuple[str, str]:
    """(date-time, "") for an ISO 8601 ``--DTC`` to the minute at least, else ("", reason):
    ``missing_time`` (empty), ``date_only`` (a whole date), ``partial_date`` (year, month, or the
    hour without minutes). Text that is not ISO 8601 is passed on (the timeline rejects it)."""
    t = text.strip()
    if not t:
        return "", "missing_time"
    m = _DTC.match(t)
    if m is None:
        return t, ""
    if m.group(5) is not None:
        return t, ""
    if m.group(3) is not None and m.group(4) is None:
        return "", "date_only"
    return "", "partial_date"


_DTC_DETAIL = {
    "missing_time": "empty",
    "date_only": "a date without a time of day: the time is not imputed",
    "partial_date": "a partial date (year, month or hour only): not imputed",
}


_when = parse_when


# the SDTM variable a contract column came from, per domain (rejects name the source variable)
COLUMNS: dict[str, dict[str, str]] = {
    "VS": {
        "patient_id": "USUBJID",
        "time": "VSDTC",
        "code": "VSTESTCD",
        "value": "VSSTRESN",
        "unit": "VSSTRESU",
    },
    "LB": {
        "patient_id": "USUBJID",
        "time": "LBDTC",
        "code": "LBTESTCD",
        "value": "LBSTRESN",
        "unit": "LBSTRESU",
    },
    "FA": {"patient_id": "USUBJID", "time": "FADTC", "code": "FATESTCD", "value": "FASTRESC"},
    "EX": {
        "patient_id": "USUBJID",
        "time": "EXSTDTC",
        "value": "EXTRT",
        "dose": "EXDOSE",
        "dose_unit": "EXDOSU",
    },
    "CM": {
        "patient_id": "USUBJID",
        "time": "CMSTDTC",
        "end_time": "CMENDTC",
        "code": "CMCAT",
        "value": "CMDECOD",
        "dose": "CMDOSE",
        "dose_unit": "CMDOSU",
    },
    "PR": {
        "patient_id": "USUBJID",
        "time": "PRSTDTC",
        "end_time": "PRENDTC",
        "code": "PRCAT",
        "value": "PRDECOD",
    },
    "DS": {"patient_id": "USUBJID", "time": "DSSTDTC", "value": "DSDECOD"},
    "HO": {"patient_id": "USUBJID", "time": "HOSTDTC", "end_time": "HOENDTC", "code": "HODECOD"},
    "DM": {"patient_id": "USUBJID", "value": "AGE", "unit": "AGEU"},
}


@dataclass
class SdtmRead(StandardRead):
    """:class:`StandardRead` plus the adverse events as reported (``AETOXGR`` beside our grades)."""

    reported_ae: pa.Table | None = None


def read_sdtm(folder: str | Path) -> SdtmRead:
    """Read a folder of SDTM domains (CSV or Parquet, one file per domain: ``vs.csv``, ``LB.parquet``)."""
    root = Path(folder)
    if not root.is_dir():
        raise StandardsError(str(root), "not a folder of SDTM domains")
    dm_path = find_table(root, "DM")
    if dm_path is None:
        raise StandardsError(str(root), "no DM domain (dm.csv or dm.parquet)")
    sm, voc = sdtm_map(), vocabulary()
    interval = {c.name for c in voc.codes if c.interval}
    col = Collector()
    dm: dict[str, tuple[int, dict[str, str]]] = {}
    for i, r in enumerate(read_table(dm_path), start=1):
        col.source_rows += 1
        dm[r.get("usubjid", "").strip()] = (i, r)
    births: dict[str, dt.datetime] = {}
    for pid, (_, r) in dm.items():
        b, why = dtc(r.get("brthdtc", ""))
        full = b or (r.get("brthdtc", "").strip() if why == "date_only" else "")
        w = _when(full) if full else None
        if w is not None:
            births[pid] = w
    day0: dict[str, tuple[dt.datetime, str]] = {}

    def unit(raw: str | None) -> str:
        u = (raw or "").strip()
        return sm.units.get(u, u)

    def event(
        file: str,
        i: int,
        r: dict[str, str],
        var: str,
        end_var: str | None = None,
        open_ok: bool = False,
        **values: Any,
    ) -> None:
        pid = r.get("usubjid", "").strip()
        if pid not in dm:
            col.rejects.add(file, i, "USUBJID", pid, "unknown_subject", "USUBJID not in DM")
            return
        t, why = dtc(r.get(var.lower(), ""))
        if why:
            col.rejects.add(file, i, var, r.get(var.lower()) or None, why, f"{var}: {_DTC_DETAIL[why]}")
            return
        end = ""
        if end_var is not None and values["code"] in interval:
            raw_end = r.get(end_var.lower(), "")
            end, why = dtc(raw_end)
            if why and not (why == "missing_time" and open_ok):
                reason = "missing_end" if why == "missing_time" else why
                detail = (
                    f"{values['value']} without {end_var}: how long it ran is unknown (not imputed)"
                    if why == "missing_time"
                    else f"{end_var}: {_DTC_DETAIL[why]}"
                )
                col.rejects.add(file, i, end_var, raw_end or None, reason, detail)
                return
        when = _when(t)
        if when is not None and pid in births and when < births[pid]:
            col.rejects.add(file, i, var, t, "before_birth", f"before the birth of {pid}")
            return
        if values["code"] == "infusion" and when is not None and (pid not in day0 or when < day0[pid][0]):
            day0[pid] = (when, t)
        col.add(
            file, i, patient_id=pid, time=t, end_time=end if values["code"] in interval else None, **values
        )

    reported: list[dict[str, Any]] = []
    deaths: dict[str, str] = {}
    dd = find_table(root, "DD")
    if dd is not None:  # auxiliary: the cause of the DS death row (counted as ignored rows)
        rows = read_table(dd)
        col.source_rows += len(rows)
        col.ignored["DD"] = len(rows)
        for r in rows:
            if r.get("ddtestcd", "").strip() == "PRCDTH":
                deaths[r.get("usubjid", "").strip()] = r.get("ddstresc", "").strip().lower()
    for domain in ("VS", "LB", "FA", "EX", "CM", "PR", "HO", "DS", "AE", "CE"):
        path = find_table(root, domain)
        if path is None:
            continue
        name = path.name
        rows = read_table(path)
        col.source_rows += len(rows)
        for i, r in enumerate(rows, start=1):
            if domain in ("VS", "LB", "FA"):
                p = domain.lower()
                testcd = r.get(f"{p}testcd", "").strip()
                code = sm.tests[domain].get(testcd)
                if code is None:
                    col.rejects.add(
                        name,
                        i,
                        f"{domain}TESTCD",
                        testcd,
                        "unmapped_test",
                        f"{testcd!r} is not in the {domain} table",
                    )
                    continue
                value = r.get(f"{p}stresn", "").strip() or r.get(f"{p}stresc", "").strip()
                u = unit(r.get(f"{p}stresu")) if domain != "FA" else ""
                event(name, i, r, f"{domain}DTC", code=code, value=value, unit=u)
            elif domain == "EX":
                event(
                    name,
                    i,
                    r,
                    "EXSTDTC",
                    code="infusion",
                    value=r.get("extrt", "").strip().lower(),
                    unit="",
                    dose=r.get("exdose"),
                    dose_unit=unit(r.get("exdosu")) or None,
                )
            elif domain == "CM":
                cat = r.get("cmcat", "").strip()
                code = sm.cmcat.get(cat)
                if code is None:
                    col.rejects.add(
                        name, i, "CMCAT", cat, "unmapped_category", f"{cat!r} is not in the CMCAT table"
                    )
                    continue
                drug = (r.get("cmdecod", "").strip() or r.get("cmtrt", "").strip()).lower()
                event(
                    name,
                    i,
                    r,
                    "CMSTDTC",
                    "CMENDTC",
                    code=code,
                    value=drug,
                    unit="",
                    dose=r.get("cmdose"),
                    dose_unit=unit(r.get("cmdosu")) or None,
                )
            elif domain == "PR":
                cat = r.get("prcat", "").strip()
                code = sm.prcat.get(cat)
                if code is None:
                    col.rejects.add(
                        name, i, "PRCAT", cat, "unmapped_category", f"{cat!r} is not in the PRCAT table"
                    )
                    continue
                event(
                    name,
                    i,
                    r,
                    "PRSTDTC",
                    "PRENDTC",
                    open_ok=True,
                    code=code,
                    value=r.get("prdecod", "").strip().lower(),
                    unit="",
                )
            elif domain == "HO":
                code = sm.hodecod.get(r.get("hodecod", "").strip().upper())
                if code is None:  # another encounter (a ward stay, a visit): not a contract row
                    col.ignored["HO"] = col.ignored.get("HO", 0) + 1
                    continue
                event(name, i, r, "HOSTDTC", "HOENDTC", open_ok=True, code=code, value=code, unit="")
            elif domain == "DS":
                if r.get("dsdecod", "").strip().upper() != "DEATH":
                    col.ignored["DS"] = col.ignored.get("DS", 0) + 1
                    continue
                pid = r.get("usubjid", "").strip()
                cause = deaths.get(pid)
                if not cause:
                    col.rejects.add(
                        name, i, "DSDECOD", "DEATH", "missing_cause", "no DD row PRCDTH gives the cause"
                    )
                    continue
                event(name, i, r, "DSSTDTC", code="death", value=cause, unit="")
            elif domain == "AE":
                col.ignored["AE"] = col.ignored.get("AE", 0) + 1
                reported.append(
                    {
                        "patient_id": r.get("usubjid", "").strip(),
                        "term": r.get("aedecod", "").strip() or r.get("aeterm", "").strip(),
                        "reported_grade": r.get("aetoxgr", "").strip() or None,
                        "start": r.get("aestdtc", "").strip() or None,
                        "end": r.get("aeendtc", "").strip() or None,
                        "file": name,
                        "row": i,
                    }
                )
            else:
                col.ignored[domain] = col.ignored.get(domain, 0) + 1
    for pid, (i, r) in dm.items():
        age, ageu = r.get("age", "").strip(), r.get("ageu", "").strip()
        if pid not in day0:
            col.rejects.add(
                dm_path.name, i, "USUBJID", pid, "no_infusion", "no EX infusion (day 0) to state the age at"
            )
        elif not age:
            col.rejects.add(dm_path.name, i, "AGE", None, "missing_age", "AGE is empty")
        else:
            col.add(
                dm_path.name, i, patient_id=pid, time=day0[pid][1], code="age", value=age, unit=unit(ageu)
            )
    base = col.result()
    schema = pa.schema(
        [
            ("patient_id", pa.string()),
            ("term", pa.string()),
            ("reported_grade", pa.string()),
            ("start", pa.string()),
            ("end", pa.string()),
            ("file", pa.string()),
            ("row", pa.int64()),
        ]
    )
    return SdtmRead(**vars(base), reported_ae=pa.Table.from_pylist(reported, schema=schema))


def _columns() -> dict[str, dict[str, str]]:
    return {d.lower(): v for d, v in COLUMNS.items()}


def grade_sdtm(folder: str | Path, scales: str | Sequence[str], **kwargs: Any) -> TimelineResult:
    """Grade an SDTM folder in memory; the rejects name the domain file, row and variable."""
    return grade_read(read_sdtm(folder), scales, _columns(), **kwargs)


def run_timeline_sdtm(
    folder: str | Path, scales: str | Sequence[str], out_dir: str | Path, **kwargs: Any
) -> RunSummary:
    """:func:`immunotox.timeline.run_timeline` on an SDTM folder (``immunotox timeline DIR``)."""
    return run_read(read_sdtm(folder), str(folder), scales, out_dir, _columns(), **kwargs)


# ------------------------------------------------------------------------------------- writer
def _dtc_out(t: Any) -> str:
    return iso_utc(t, "")


_LAYOUT: dict[str, tuple[str, ...]] = {
    "DM": ("STUDYID", "DOMAIN", "USUBJID", "AGE", "AGEU", "RFXSTDTC"),
    "VS": ("STUDYID", "DOMAIN", "USUBJID", "VSSEQ", "VSTESTCD", "VSSTRESN", "VSSTRESU", "VSDTC"),
    "LB": ("STUDYID", "DOMAIN", "USUBJID", "LBSEQ", "LBTESTCD", "LBSTRESN", "LBSTRESU", "LBDTC"),
    "FA": ("STUDYID", "DOMAIN", "USUBJID", "FASEQ", "FATESTCD", "FASTRESC", "FASTRESN", "FADTC"),
    "EX": ("STUDYID", "DOMAIN", "USUBJID", "EXSEQ", "EXTRT", "EXDOSE", "EXDOSU", "EXSTDTC"),
    "CM": (
        "STUDYID",
        "DOMAIN",
        "USUBJID",
        "CMSEQ",
        "CMTRT",
        "CMDECOD",
        "CMCAT",
        "CMDOSE",
        "CMDOSU",
        "CMSTDTC",
        "CMENDTC",
    ),
    "PR": ("STUDYID", "DOMAIN", "USUBJID", "PRSEQ", "PRTRT", "PRDECOD", "PRCAT", "PRSTDTC", "PRENDTC"),
    "DS": ("STUDYID", "DOMAIN", "USUBJID", "DSSEQ", "DSTERM", "DSDECOD", "DSSTDTC"),
    "HO": ("STUDYID", "DOMAIN", "USUBJID", "HOSEQ", "HOTERM", "HODECOD", "HOSTDTC", "HOENDTC"),
    "DD": ("STUDYID", "DOMAIN", "USUBJID", "DDSEQ", "DDTESTCD", "DDTEST", "DDORRES", "DDSTRESC"),
}


def write_sdtm(observations: pa.Table, folder: str | Path) -> dict[str, int]:
    """Write contract rows (e.g. the simulator's cohort) as SDTM domains (CSV); the rows written
    per domain. A row no domain can hold raises :class:`StandardsError` naming it."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    sm, voc = sdtm_map(), vocabulary()
    to_cdisc: dict[str, str] = {}
    for k, v in sm.units.items():
        to_cdisc.setdefault(v, k)
    cat_of = {v: k for k, v in reversed(sm.cmcat.items())}
    pr_of = {v: k for k, v in reversed(sm.prcat.items())}
    ho_of = {v: k for k, v in reversed(sm.hodecod.items())}
    doms: dict[str, list[dict[str, Any]]] = {d: [] for d in _LAYOUT}
    ages: dict[str, str] = {}
    day0: dict[str, Any] = {}

    def add(domain: str, pid: str, **values: Any) -> None:
        rows = doms[domain]
        rows.append(
            {"STUDYID": STUDY, "DOMAIN": domain, "USUBJID": pid, f"{domain}SEQ": len(rows) + 1, **values}
        )

    for n, r in enumerate(observations.to_pylist(), start=1):
        spec = voc.lookup(str(r["code"]))
        if spec is None:
            raise StandardsError(f"row {n}", f"code {r['code']!r} is not an observation code")
        pid, t, end = str(r["patient_id"]), r["time"], r.get("end_time")
        value = "" if r["value"] is None else str(r["value"])
        u = "" if r["unit"] is None else str(r["unit"])
        cu = to_cdisc.get(u, u)
        dose_u = to_cdisc.get(r.get("dose_unit") or "", r.get("dose_unit"))
        code = spec.name
        if code == "age":
            ages[pid] = value
            continue
        if code == "infusion":
            if pid not in day0 or t < day0[pid]:
                day0[pid] = t
            add("EX", pid, EXTRT=value, EXDOSE=r.get("dose"), EXDOSU=dose_u, EXSTDTC=_dtc_out(t))
        elif code == "death":
            add("DS", pid, DSTERM="DEATH", DSDECOD="DEATH", DSSTDTC=_dtc_out(t))
            add(
                "DD",
                pid,
                DDTESTCD="PRCDTH",
                DDTEST="Primary Cause of Death",
                DDORRES=value,
                DDSTRESC=value.upper(),
            )
        elif code in ho_of:
            add(
                "HO",
                pid,
                HOTERM=ho_of[code].title(),
                HODECOD=ho_of[code],
                HOSTDTC=_dtc_out(t),
                HOENDTC=_dtc_out(end),
            )
        elif code in cat_of:
            add(
                "CM",
                pid,
                CMTRT=value,
                CMDECOD=value.upper(),
                CMCAT=cat_of[code],
                CMDOSE=r.get("dose"),
                CMDOSU=dose_u,
                CMSTDTC=_dtc_out(t),
                CMENDTC=_dtc_out(end),
            )
        elif code in pr_of:
            add(
                "PR",
                pid,
                PRTRT=value,
                PRDECOD=value.upper(),
                PRCAT=pr_of[code],
                PRSTDTC=_dtc_out(t),
                PRENDTC=_dtc_out(end),
            )
        else:
            for domain in ("VS", "LB", "FA"):
                testcd = sm.testcd(domain, code)
                if testcd is None:
                    continue
                if end is not None:
                    raise StandardsError(f"row {n}", f"{code} with an end: {domain} has no end")
                if domain == "FA":
                    number = spec.kind == "integer"
                    add(
                        "FA",
                        pid,
                        FATESTCD=testcd,
                        FASTRESC=value,
                        FASTRESN=value if number else None,
                        FADTC=_dtc_out(t),
                    )
                else:
                    add(
                        domain,
                        pid,
                        **{
                            f"{domain}TESTCD": testcd,
                            f"{domain}STRESN": value,
                            f"{domain}STRESU": cu,
                            f"{domain}DTC": _dtc_out(t),
                        },
                    )
                break
            else:
                raise StandardsError(f"row {n}", f"code {code!r} has no SDTM domain in sdtm_map.toml")
    for pid in sorted(set(ages) | set(day0)):
        doms["DM"].append(
            {
                "STUDYID": STUDY,
                "DOMAIN": "DM",
                "USUBJID": pid,
                "AGE": ages.get(pid),
                "AGEU": "YEARS",
                "RFXSTDTC": _dtc_out(day0.get(pid)),
            }
        )
    for d, rows in doms.items():
        _write_csv(rows, _LAYOUT[d], out / f"{d.lower()}.csv")
    return {d: len(v) for d, v in doms.items()}
