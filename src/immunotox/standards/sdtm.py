"""CDISC SDTM: a folder of domains in, the observation contract out (and the way back).

DM (age), VS and LB (``--STRESN`` / ``--STRESU``), FA (ICE items, ICANS findings, CRS findings),
EX (the first infusion is day 0), CM (drug start and end), PR (oxygen support), HO (ICU stays),
DS + DD (death and its cause) become contract rows through ``sdtm_map.toml`` (shown in
``docs/standards.md``); AE and CE rows are kept beside the grades (the reported toxicity grade,
``--TOXGR``). Dates are ISO 8601
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

import polars as pl
import pyarrow as pa

from ..errors import RuleSpecError
from ..timeline import RunSummary, TimelineResult
from ..vocabulary import vocabulary
from ._source import (
    Frames,
    StandardRead,
    StandardsError,
    grade_read,
    iso_utc,
    parse_when,
    run_read,
)
from ._source import write_table as _write_csv
from ._tables import FolderTables

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


def _c(df: pl.DataFrame, name: str) -> pl.Expr:
    """Variable ``name`` (lower case) of ``df``, stripped ("" for every row when absent)."""
    return (pl.col(name) if name in df.columns else pl.lit("", pl.Utf8)).str.strip_chars()


def _dtc_reason(text: pl.Expr) -> pl.Expr:
    """:func:`dtc` on a whole column: null when usable, else the reason."""
    return (
        pl.when(text == "")
        .then(pl.lit("missing_time"))
        .when(~text.str.contains(_DTC.pattern))
        .then(None)
        .when(text.str.contains(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}"))
        .then(None)
        .when(text.str.contains(r"^\d{4}-\d{2}-\d{2}$"))
        .then(pl.lit("date_only"))
        .otherwise(pl.lit("partial_date"))
    )


def _dtc_detail(var: str, reason: pl.Expr) -> pl.Expr:
    return pl.lit(f"{var}: ") + reason.replace_strict(_DTC_DETAIL, default="")


def _null_if_empty(e: pl.Expr) -> pl.Expr:
    return pl.when(e == "").then(None).otherwise(e)


def read_sdtm(folder: str | Path) -> SdtmRead:
    """Read a folder of SDTM domains (CSV or Parquet, one file per domain: ``vs.csv``,
    ``LB.parquet``). Vectorised (Polars): the checks run on whole columns, each distinct time
    text is parsed once."""
    root = Path(folder)
    if not root.is_dir():
        raise StandardsError(str(root), "not a folder of SDTM domains")
    tables = FolderTables(root)
    dm_file = tables.find("DM")
    if dm_file is None:
        raise StandardsError(str(root), "no DM domain (dm.csv or dm.parquet)")
    sm, voc = sdtm_map(), vocabulary()
    interval = sorted(c.name for c in voc.codes if c.interval)
    col = Frames()
    dm_df = tables.read("DM").with_row_index("row", offset=1)
    col.table(dm_file, dm_df.height)
    dm: dict[str, tuple[int, dict[str, str]]] = {}
    for r in dm_df.to_dicts():
        dm[r.get("usubjid", "").strip()] = (int(r["row"]), r)
    births: dict[str, dt.datetime] = {}
    for pid, (_, r) in dm.items():
        b, why = dtc(r.get("brthdtc", ""))
        full = b or (r.get("brthdtc", "").strip() if why == "date_only" else "")
        w = _when(full) if full else None
        if w is not None:
            births[pid] = w
    subjects = pl.DataFrame(
        {"_pid": list(dm), "_birth": [births.get(p) for p in dm]},
        schema={"_pid": pl.Utf8, "_birth": pl.Datetime("us", "UTC")},
    )
    infusions: list[pl.DataFrame] = []

    def unit(e: pl.Expr) -> pl.Expr:
        return e.replace(sm.units)

    def event(
        file: str,
        df: pl.DataFrame,
        var: str,
        end_var: str | None = None,
        open_ok: bool = False,
    ) -> None:
        """Check and add rows that already hold ``code``, ``value``, ``unit``, ``dose``,
        ``dose_unit`` (the subject, the time, the end of an interval, the birth)."""
        df = df.with_columns(pl.col("usubjid").str.strip_chars().alias("_pid")).join(
            subjects, on="_pid", how="left"
        )
        known = df["_pid"].is_in(list(dm))
        col.reject(df.filter(~known), file, "USUBJID", pl.col("_pid"), "unknown_subject", "USUBJID not in DM")
        df = df.filter(known)
        raw = _c(df, var.lower())
        df = df.with_columns(raw.alias("time"), _dtc_reason(raw).alias("_why"))
        bad = df.filter(pl.col("_why").is_not_null())
        col.reject(
            bad, file, var, _null_if_empty(pl.col("time")), pl.col("_why"), _dtc_detail(var, pl.col("_why"))
        )
        df = df.filter(pl.col("_why").is_null())
        is_interval = pl.col("code").is_in(interval)
        if end_var is not None:
            raw_end = _c(df, end_var.lower())
            df = df.with_columns(
                raw_end.alias("_end"),
                pl.when(is_interval).then(_dtc_reason(raw_end)).otherwise(None).alias("_ewhy"),
            )
            if open_ok:
                df = df.with_columns(
                    pl.when(pl.col("_ewhy") == "missing_time")
                    .then(None)
                    .otherwise(pl.col("_ewhy"))
                    .alias("_ewhy")
                )
            bad = df.filter(pl.col("_ewhy").is_not_null())
            missing = pl.col("_ewhy") == "missing_time"
            col.reject(
                bad,
                file,
                end_var,
                _null_if_empty(pl.col("_end")),
                pl.when(missing).then(pl.lit("missing_end")).otherwise(pl.col("_ewhy")),
                pl.when(missing)
                .then(pl.format(f"{{}} without {end_var}: how long it ran is unknown (not imputed)", "value"))
                .otherwise(_dtc_detail(end_var, pl.col("_ewhy"))),
            )
            df = df.filter(pl.col("_ewhy").is_null()).with_columns(
                pl.when(is_interval).then(pl.col("_end")).otherwise(None).alias("end_time")
            )
        else:
            df = df.with_columns(pl.lit(None, pl.Utf8).alias("end_time"))
        df = col.after_birth(df, file, var, "")
        inf = df.filter((pl.col("code") == "infusion") & pl.col("_when").is_not_null())
        if inf.height:
            infusions.append(inf.select("_pid", "_when", "time"))
        col.add(df.with_columns(pl.col("_pid").alias("patient_id"), pl.lit(file).alias("file")))

    reported: list[pl.DataFrame] = []
    deaths: dict[str, str] = {}
    dd_file = tables.find("DD")
    if dd_file is not None:  # auxiliary: the cause of the DS death row (counted as ignored rows)
        dd = tables.read("DD")
        col.table(dd_file, dd.height)
        col.ignore("DD", dd.height)
        for pid, test, cause in dd.select(
            _c(dd, "usubjid"), _c(dd, "ddtestcd"), _c(dd, "ddstresc")
        ).iter_rows():
            if test == "PRCDTH":
                deaths[pid] = cause.lower()
    for domain in ("VS", "LB", "FA", "EX", "CM", "PR", "HO", "DS", "AE", "CE"):
        file = tables.find(domain)
        if file is None:
            continue
        df = tables.read(domain).with_row_index("row", offset=1)
        col.table(file, df.height)
        if "usubjid" not in df.columns:
            df = df.with_columns(pl.lit("").alias("usubjid"))
        none = pl.lit(None, pl.Utf8)
        if domain in ("VS", "LB", "FA"):
            p = domain.lower()
            df = df.with_columns(
                _c(df, f"{p}testcd").alias("_test"),
                _c(df, f"{p}testcd").replace_strict(sm.tests[domain], default=None).alias("code"),
            )
            bad = df.filter(pl.col("code").is_null())
            col.reject(
                bad,
                file,
                f"{domain}TESTCD",
                pl.col("_test"),
                "unmapped_test",
                pl.format("'{}' is not in the " + domain + " table", "_test"),
            )
            df = df.filter(pl.col("code").is_not_null())
            n = _c(df, f"{p}stresn")
            df = df.with_columns(
                pl.when(n != "").then(n).otherwise(_c(df, f"{p}stresc")).alias("value"),
                unit(_c(df, f"{p}stresu")).alias("unit"),
                none.alias("dose"),
                none.alias("dose_unit"),
            )
            event(file, df, f"{domain}DTC")
        elif domain == "EX":
            df = df.with_columns(
                pl.lit("infusion").alias("code"),
                _c(df, "extrt").str.to_lowercase().alias("value"),
                pl.lit("").alias("unit"),
                (pl.col("exdose") if "exdose" in df.columns else none).alias("dose"),
                _null_if_empty(unit(_c(df, "exdosu"))).alias("dose_unit"),
            )
            event(file, df, "EXSTDTC")
        elif domain in ("CM", "PR"):
            p = domain.lower()
            table = sm.cmcat if domain == "CM" else sm.prcat
            df = df.with_columns(
                _c(df, f"{p}cat").alias("_cat"),
                _c(df, f"{p}cat").replace_strict(table, default=None).alias("code"),
            )
            bad = df.filter(pl.col("code").is_null())
            col.reject(
                bad,
                file,
                f"{domain}CAT",
                pl.col("_cat"),
                "unmapped_category",
                pl.format("'{}' is not in the " + domain + "CAT table", "_cat"),
            )
            df = df.filter(pl.col("code").is_not_null())
            if domain == "CM":
                d = _c(df, "cmdecod")
                df = df.with_columns(
                    pl.when(d != "").then(d).otherwise(_c(df, "cmtrt")).str.to_lowercase().alias("value"),
                    pl.lit("").alias("unit"),
                    (pl.col("cmdose") if "cmdose" in df.columns else none).alias("dose"),
                    _null_if_empty(unit(_c(df, "cmdosu"))).alias("dose_unit"),
                )
                event(file, df, "CMSTDTC", "CMENDTC")
            else:
                df = df.with_columns(
                    _c(df, "prdecod").str.to_lowercase().alias("value"),
                    pl.lit("").alias("unit"),
                    none.alias("dose"),
                    none.alias("dose_unit"),
                )
                event(file, df, "PRSTDTC", "PRENDTC", open_ok=True)
        elif domain == "HO":
            df = df.with_columns(
                _c(df, "hodecod").str.to_uppercase().replace_strict(sm.hodecod, default=None).alias("code")
            )
            col.ignore("HO", int(df["code"].null_count()))  # another encounter: not a contract row
            df = df.filter(pl.col("code").is_not_null()).with_columns(
                pl.col("code").alias("value"),
                pl.lit("").alias("unit"),
                none.alias("dose"),
                none.alias("dose_unit"),
            )
            event(file, df, "HOSTDTC", "HOENDTC", open_ok=True)
        elif domain == "DS":
            death = _c(df, "dsdecod").str.to_uppercase() == "DEATH"
            col.ignore("DS", int((~df.select(death).to_series()).sum()))
            df = df.filter(death).with_columns(
                pl.col("usubjid").str.strip_chars().replace_strict(deaths, default=None).alias("value")
            )
            bad = df.filter(pl.col("value").is_null() | (pl.col("value") == ""))
            col.reject(
                bad, file, "DSDECOD", pl.lit("DEATH"), "missing_cause", "no DD row PRCDTH gives the cause"
            )
            df = df.filter(pl.col("value").is_not_null() & (pl.col("value") != "")).with_columns(
                pl.lit("death").alias("code"),
                pl.lit("").alias("unit"),
                none.alias("dose"),
                none.alias("dose_unit"),
            )
            event(file, df, "DSSTDTC")
        else:  # AE, CE: kept beside the grades (the reported toxicity grade), counted as ignored
            p = domain.lower()
            col.ignore(domain, df.height)
            dec = _c(df, f"{p}decod")
            reported.append(
                df.select(
                    _c(df, "usubjid").alias("patient_id"),
                    pl.when(dec != "").then(dec).otherwise(_c(df, f"{p}term")).alias("term"),
                    _null_if_empty(_c(df, f"{p}toxgr")).alias("reported_grade"),
                    _null_if_empty(_c(df, f"{p}stdtc")).alias("start"),
                    _null_if_empty(_c(df, f"{p}endtc")).alias("end"),
                    pl.lit(file).alias("file"),
                    pl.col("row").cast(pl.Int64),
                )
            )
    day0 = {pid: text for pid, (_, text) in col.day0(infusions).items()}
    ages: list[dict[str, Any]] = []
    for pid, (i, r) in dm.items():
        age, ageu = r.get("age", "").strip(), r.get("ageu", "").strip()
        if pid not in day0:
            col.reject_one(
                dm_file, i, "USUBJID", pid, "no_infusion", "no EX infusion (day 0) to state the age at"
            )
        elif not age:
            col.reject_one(dm_file, i, "AGE", None, "missing_age", "AGE is empty")
        else:
            u = ageu.strip()
            ages.append(
                {
                    "patient_id": pid,
                    "time": day0[pid],
                    "code": "age",
                    "value": age,
                    "unit": sm.units.get(u, u),
                    "file": dm_file,
                    "row": i,
                }
            )
    if ages:
        col.add(pl.DataFrame(ages))
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
    rep = pl.concat(reported).to_arrow().cast(schema) if reported else schema.empty_table()
    return SdtmRead(**vars(base), reported_ae=rep)


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
    "FA": ("STUDYID", "DOMAIN", "USUBJID", "FASEQ", "FATESTCD", "FASTRESC", "FASTRESN", "FASTRESU", "FADTC"),
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
                    add(
                        "FA",
                        pid,
                        FATESTCD=testcd,
                        FASTRESC=value,
                        FASTRESN=value if spec.numeric else None,
                        FASTRESU=cu if spec.kind == "quantity" else None,
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
