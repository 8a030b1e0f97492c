"""OMOP CDM v5.4: tables in (a folder or a database URL), the observation contract out (and the
way back, as a folder).

The reader maps PERSON, MEASUREMENT, OBSERVATION, DRUG_EXPOSURE, DEVICE_EXPOSURE,
PROCEDURE_OCCURRENCE, VISIT_DETAIL (ICU stays), CONDITION_OCCURRENCE (a diagnosis that states a
graded finding) and DEATH rows to contract rows through the concept table of this package
(``omop_concepts.toml``, shown in ``docs/standards.md``); the other visits and diagnoses are
counted (``ignored``). Codes go through the timeline vocabulary (its LOINC aliases), units through UCUM
(``immunotox.units`` via the timeline checks), drugs through RxNorm ingredients - directly, or
through CONCEPT_ANCESTOR when the folder holds the vocabulary tables.

>>> from immunotox.standards.omop import concepts
>>> c = concepts()
>>> c.by_id[3020891].code, c.by_id[1321341].token
('temperature', 'norepinephrine')
"""

from __future__ import annotations

import datetime as dt
import functools
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
from ._tables import Tables, _safe_url, is_database_url, open_tables

LOCAL_VOCABULARY = "immunotox"
TABLES = (
    "PERSON",
    "MEASUREMENT",
    "OBSERVATION",
    "DRUG_EXPOSURE",
    "DEVICE_EXPOSURE",
    "PROCEDURE_OCCURRENCE",
    "VISIT_DETAIL",
    "CONDITION_OCCURRENCE",
    "DEATH",
)
_DOMAINS = (
    "Measurement",
    "Observation",
    "Drug",
    "Device",
    "Procedure",
    "Death",
    "Visit",
    "Condition",
    "Unit",
)


@dataclass(frozen=True)
class Concept:
    """One row of ``omop_concepts.toml``, its canonical code resolved."""

    concept_id: int
    vocabulary: str
    concept_code: str
    name: str
    domain: str
    code: str
    token: str | None
    verified: bool


@dataclass(frozen=True)
class Concepts:
    """The concept table, indexed by id, by (vocabulary, code) and by (code, token)."""

    concepts: tuple[Concept, ...]
    by_id: dict[int, Concept]
    by_code: dict[tuple[str, str], Concept]

    def for_row(self, domain: str, code: str, token: str | None = None) -> Concept | None:
        """The concept the writer uses for a contract row (first listed wins)."""
        for c in self.concepts:
            if c.domain == domain and c.code == code and (token is None or c.token == token):
                return c
        return None


@functools.cache
def concepts() -> Concepts:
    """The OMOP concept table of this package (loaded once and checked)."""
    text = resources.files("immunotox.standards").joinpath("omop_concepts.toml").read_text("utf-8")
    voc = vocabulary()
    out: list[Concept] = []
    for t in tomllib.loads(text)["concept"]:
        cid, vocab, ccode = int(t["concept_id"]), str(t["vocabulary"]), str(t["concept_code"])
        where = f"omop_concepts.toml: concept {cid}"
        if t["domain"] not in _DOMAINS:
            raise RuleSpecError(f"{where}: unknown domain {t['domain']!r}")
        code = str(t.get("code", ""))
        if vocab == "LOINC":
            spec = voc.lookup(ccode)
            if spec is not None and code and code != spec.name:
                raise RuleSpecError(f"{where}: code {code!r} but the timeline vocabulary reads {spec.name!r}")
            if spec is not None:
                code = spec.name
        if t["domain"] != "Unit":
            if not code:
                raise RuleSpecError(f"{where}: no canonical code (the timeline vocabulary has no alias)")
            voc.code(code)  # a packaging error if the timeline vocabulary lost it
        elif vocab != "UCUM":
            raise RuleSpecError(f"{where}: a unit concept must be UCUM")
        if vocab == LOCAL_VOCABULARY and cid < 2_000_000_000:
            raise RuleSpecError(f"{where}: local concepts take ids from 2,000,000,000")
        token = t.get("token")
        if token is not None:
            spec = voc.code(code)
            if spec.tokens and str(token).lower() not in spec.token_map():
                raise RuleSpecError(f"{where}: {token!r} is not a token of {code!r}")
        out.append(
            Concept(
                cid,
                vocab,
                ccode,
                str(t["name"]),
                str(t["domain"]),
                code,
                token,
                bool(t.get("verified", False)),
            )
        )
    by_id: dict[int, Concept] = {}
    by_code: dict[tuple[str, str], Concept] = {}
    for c in out:
        if c.concept_id in by_id or (c.vocabulary, c.concept_code) in by_code:
            raise RuleSpecError(f"omop_concepts.toml: concept {c.concept_id} is listed twice")
        by_id[c.concept_id] = c
        by_code[(c.vocabulary, c.concept_code)] = c
    return Concepts(tuple(out), by_id, by_code)


# ---------------------------------------------------------------------------------- resolving
@dataclass
class _Vocab:
    """Concept ids -> meaning, through the folder's CONCEPT table when present, else the list."""

    concept: dict[int, tuple[str, str]]  # concept_id -> (vocabulary_id, concept_code)
    ancestors: dict[int, list[int]]  # descendant -> ancestors

    def resolve(self, cid: int) -> tuple[Concept | None, str | None]:
        """(mapped concept, UCUM code for a unit concept), or (None, None) when unmapped."""
        cc = concepts()
        vc = self.concept.get(cid)
        if vc is None:
            c = cc.by_id.get(cid)
            return c, (c.concept_code if c is not None and c.domain == "Unit" else None)
        vocab, code = vc
        if vocab == "UCUM":
            return None, code
        if vocab == "LOINC":
            spec = vocabulary().lookup(code)
            if spec is not None:
                c = cc.by_code.get((vocab, code))
                return c or Concept(cid, vocab, code, code, "Measurement", spec.name, None, False), None
        c = cc.by_code.get((vocab, code))
        if c is None:  # the id under the same vocabulary (a site's concept_code may differ)
            c = cc.by_id.get(cid)
            c = c if c is not None and c.vocabulary == vocab and c.domain != "Unit" else None
        return c, None

    def drug(self, cid: int) -> tuple[Concept | None, str]:
        """A drug concept, or its ingredient through CONCEPT_ANCESTOR; with the reason if not."""
        c, _ = self.resolve(cid)
        if c is not None:
            return c, ""
        found = {}
        for a in self.ancestors.get(cid, ()):
            ca, _ = self.resolve(a)
            if ca is not None and ca.domain == "Drug":
                found[(ca.code, ca.token)] = ca
        if len(found) == 1:
            return next(iter(found.values())), ""
        if len(found) > 1:
            names = ", ".join(sorted(str(c.token) for c in found.values()))
            return None, f"drug concept {cid} has several mapped ingredients ({names}); not split"
        return None, ""


def _vocab(tables: Tables) -> _Vocab:
    concept: dict[int, tuple[str, str]] = {}
    ancestors: dict[int, list[int]] = {}
    name = tables.find("CONCEPT")
    if name is not None:
        df = tables.read("CONCEPT")
        try:
            ids = df["concept_id"].str.strip_chars().cast(pl.Int64).to_list()
            concept = dict(zip(ids, zip(df["vocabulary_id"], df["concept_code"], strict=True), strict=True))
        except (pl.exceptions.PolarsError, KeyError):
            raise StandardsError(name, "needs integer concept_id, vocabulary_id, concept_code") from None
    name = tables.find("CONCEPT_ANCESTOR")
    if name is not None:
        df = tables.read("CONCEPT_ANCESTOR")
        try:
            pairs = df.select(
                pl.col("descendant_concept_id").str.strip_chars().cast(pl.Int64),
                pl.col("ancestor_concept_id").str.strip_chars().cast(pl.Int64),
            )
        except (pl.exceptions.PolarsError, KeyError):
            raise StandardsError(name, "needs integer ancestor_concept_id, descendant_concept_id") from None
        for d, a in pairs.iter_rows():
            ancestors.setdefault(d, []).append(a)
    return _Vocab(concept, ancestors)


# ------------------------------------------------------------------------------------- reader
# the OMOP column a contract column came from, per table (rejects name the source column)
COLUMNS: dict[str, dict[str, str]] = {
    "MEASUREMENT": {
        "patient_id": "person_id",
        "time": "measurement_datetime",
        "code": "measurement_concept_id",
        "value": "value_as_number",
        "unit": "unit_concept_id",
    },
    "OBSERVATION": {
        "patient_id": "person_id",
        "time": "observation_datetime",
        "code": "observation_concept_id",
        "value": "value_as_string",
    },
    "DRUG_EXPOSURE": {
        "patient_id": "person_id",
        "time": "drug_exposure_start_datetime",
        "end_time": "drug_exposure_end_datetime",
        "code": "drug_concept_id",
        "dose": "quantity",
        "dose_unit": "dose_unit_source_value",
    },
    "DEVICE_EXPOSURE": {
        "patient_id": "person_id",
        "time": "device_exposure_start_datetime",
        "end_time": "device_exposure_end_datetime",
        "code": "device_concept_id",
    },
    "PROCEDURE_OCCURRENCE": {
        "patient_id": "person_id",
        "time": "procedure_datetime",
        "end_time": "procedure_end_datetime",
        "code": "procedure_concept_id",
    },
    "DEATH": {"patient_id": "person_id", "time": "death_datetime", "code": "cause_concept_id"},
    "VISIT_DETAIL": {
        "patient_id": "person_id",
        "time": "visit_detail_start_datetime",
        "end_time": "visit_detail_end_datetime",
        "code": "visit_detail_concept_id",
    },
    "CONDITION_OCCURRENCE": {
        "patient_id": "person_id",
        "time": "condition_start_datetime",
        "code": "condition_concept_id",
    },
    "PERSON": {"patient_id": "person_id", "time": "birth_datetime", "value": "birth_datetime"},
}


_when = parse_when


@dataclass
class _Person:
    patient_id: str
    birth: dt.datetime | None  # full date of birth
    earliest_birth: dt.datetime | None  # Jan 1 of the birth year (for the before-birth check)
    birth_problem: str


def _person(r: dict[str, str]) -> _Person:
    pid = r.get("person_source_value", "").strip() or r.get("person_id", "").strip()
    bt = r.get("birth_datetime", "").strip()
    if bt:
        b = _when(bt)
        if b is None:
            return _Person(pid, None, None, f"birth_datetime {bt!r} is not an ISO 8601 date-time")
        return _Person(pid, b, dt.datetime(b.year, 1, 1, tzinfo=dt.UTC), "")
    y, m, d = (r.get(k, "").strip() for k in ("year_of_birth", "month_of_birth", "day_of_birth"))
    if not y.isdigit():
        return _Person(pid, None, None, "no year_of_birth")
    earliest = dt.datetime(int(y), 1, 1, tzinfo=dt.UTC)
    if not (m.isdigit() and d.isdigit()):
        return _Person(pid, None, earliest, "only the year (and month) of birth: age not imputed")
    try:
        return _Person(pid, dt.datetime(int(y), int(m), int(d), tzinfo=dt.UTC), earliest, "")
    except ValueError:
        return _Person(pid, None, earliest, f"no such date of birth {y}-{m}-{d}")


def _age(birth: dt.datetime, at: dt.datetime) -> int:
    years = at.year - birth.year
    return years - 1 if (at.month, at.day) < (birth.month, birth.day) else years


def _person_frame(df: pl.DataFrame) -> tuple[dict[str, _Person], dict[str, int]]:
    persons: dict[str, _Person] = {}
    rows: dict[str, int] = {}
    for i, r in enumerate(df.to_dicts(), start=1):
        key = r.get("person_id", "").strip()
        persons[key] = _person(r)
        rows[key] = i
    return persons, rows


def _col(df: pl.DataFrame, name: str) -> pl.Expr:
    """Column ``name`` of ``df`` ("" for every row when the table lacks it)."""
    return pl.col(name) if name in df.columns else pl.lit("", pl.Utf8)


# what each event table gives: (concept column, time column, end column or None)
_EVENTS: dict[str, tuple[str, str, str | None]] = {
    "MEASUREMENT": ("measurement_concept_id", "measurement_datetime", None),
    "OBSERVATION": ("observation_concept_id", "observation_datetime", None),
    "DRUG_EXPOSURE": ("drug_concept_id", "drug_exposure_start_datetime", "drug_exposure_end_datetime"),
    "DEVICE_EXPOSURE": (
        "device_concept_id",
        "device_exposure_start_datetime",
        "device_exposure_end_datetime",
    ),
    "PROCEDURE_OCCURRENCE": ("procedure_concept_id", "procedure_datetime", "procedure_end_datetime"),
    "DEATH": ("cause_concept_id", "death_datetime", None),
    "VISIT_DETAIL": ("visit_detail_concept_id", "visit_detail_start_datetime", "visit_detail_end_datetime"),
    "CONDITION_OCCURRENCE": ("condition_concept_id", "condition_start_datetime", None),
}
# the concept domains each table maps (any other concept of VISIT_DETAIL or CONDITION_OCCURRENCE
# is a visit or a diagnosis the contract does not hold: counted in ``ignored``, not rejected)
_TABLE_DOMAINS: dict[str, tuple[str, ...]] = {
    "MEASUREMENT": ("Measurement",),
    "VISIT_DETAIL": ("Visit",),
    "CONDITION_OCCURRENCE": ("Condition",),
}
_IGNORE_UNMAPPED = ("VISIT_DETAIL", "CONDITION_OCCURRENCE")


def _concept_map(voc: _Vocab, table: str, raws: list[str]) -> pl.DataFrame:
    """Per distinct concept-id text: the mapped code and token, or why not (Python, once each)."""
    cid_col = _EVENTS[table][0]
    domains = _TABLE_DOMAINS.get(table)
    out: dict[str, list[Any]] = {"_raw": [], "_code": [], "_token": [], "_why": []}
    for raw in raws:
        code = token = why = None
        try:
            cid = int(raw.strip())
        except ValueError:
            why = f"{cid_col} {raw.strip()!r} is not a concept id"
        else:
            c, reason = voc.drug(cid) if table == "DRUG_EXPOSURE" else (voc.resolve(cid)[0], "")
            ok = c is not None and (domains is None or c.domain in domains)
            if domains is None and c is not None and c.domain in ("Visit", "Condition", "Unit"):
                ok = False
            if c is not None and ok:
                code, token = c.code, c.token
            else:
                why = reason or f"concept {raw.strip()} is not in the concept table"
        out["_raw"].append(raw)
        out["_code"].append(code)
        out["_token"].append(token)
        out["_why"].append(why)
    return pl.DataFrame(out, schema={k: pl.Utf8 for k in out})


def _unit_map(voc: _Vocab, raws: list[str]) -> pl.DataFrame:
    units: list[str | None] = []
    for raw in raws:
        u = raw.strip()
        units.append(voc.resolve(int(u))[1] if u.isdigit() and u != "0" else None)
    return pl.DataFrame({"_uraw": raws, "_unit": units}, schema={"_uraw": pl.Utf8, "_unit": pl.Utf8})


def read_omop(source: str | Path) -> StandardRead:
    """Read OMOP CDM v5.4 tables - a folder (CSV or Parquet) or a database URL (SQLAlchemy) -
    into contract rows and rejects.

    Rules (docs/standards.md): a time is the ``*_datetime`` column; a row with only a date is
    rejected (``date_only``: the time of day is not imputed); a record of a person the PERSON table
    does not list, a concept or unit outside the concept table, a vasopressor without an end, a
    record before birth and an exact duplicate go to the rejects with their reason. An ICU stay
    (VISIT_DETAIL) and a mapped diagnosis (CONDITION_OCCURRENCE) become contract rows; the other
    visits and diagnoses are counted in ``ignored``. The age is the whole years between the full
    date of birth and the first infusion (day 0). Vectorised (Polars): each distinct concept,
    unit and time text is resolved once.
    """
    tables = open_tables(source, "OMOP tables")
    try:
        return _read_omop(tables)
    finally:
        dispose = getattr(tables, "dispose", None)
        if dispose is not None:
            dispose()


def _read_omop(tables: Tables) -> StandardRead:
    person_file = tables.find("PERSON")
    if person_file is None:
        raise StandardsError(tables.label, "no PERSON table (person.csv or person.parquet)")
    voc = _vocab(tables)
    col = Frames()
    person_df = tables.read("PERSON")
    col.table(person_file, person_df.height)
    persons, person_rows = _person_frame(person_df)
    pframe = pl.DataFrame(
        {
            "_pid": list(persons),
            "patient_id": [p.patient_id for p in persons.values()],
            "_birth": [p.birth or p.earliest_birth for p in persons.values()],
        },
        schema={"_pid": pl.Utf8, "patient_id": pl.Utf8, "_birth": pl.Datetime("us", "UTC")},
    )
    interval = sorted(c.name for c in vocabulary().codes if c.interval)
    infusions: list[pl.DataFrame] = []

    for table in _EVENTS:
        file = tables.find(table)
        if file is None:
            continue
        cid_col, tcol, ecol = _EVENTS[table]
        df = tables.read(table).with_row_index("row", offset=1)
        col.table(file, df.height)
        if not df.height:
            continue
        raw = _col(df, cid_col)
        df = df.with_columns(raw.alias("_raw"))
        cmap = _concept_map(voc, table, df["_raw"].unique().to_list())
        df = df.join(cmap, on="_raw", how="left")
        bad = df.filter(pl.col("_code").is_null())
        if table in _IGNORE_UNMAPPED:
            col.ignore(table, bad.height)
        else:
            col.reject(
                bad, file, cid_col, pl.col("_raw").str.strip_chars(), "unmapped_concept", pl.col("_why")
            )
        df = df.filter(pl.col("_code").is_not_null())
        value: pl.Expr = pl.col("_token")
        unit: pl.Expr = pl.lit("")
        end: pl.Expr = pl.lit(None, pl.Utf8)
        if table == "MEASUREMENT":
            df = df.with_columns(_col(df, "unit_concept_id").str.strip_chars().alias("_uraw"))
            df = df.join(_unit_map(voc, df["_uraw"].unique().to_list()), on="_uraw", how="left")
            usv = _col(df, "unit_source_value")
            bad = df.filter(pl.col("_unit").is_null())
            detail = pl.format(
                "unit concept {} is not a UCUM unit of the concept table",
                pl.when(pl.col("_uraw") == "").then(pl.lit("(empty)")).otherwise(pl.col("_uraw")),
            ) + pl.when(usv != "").then(pl.format(" (unit_source_value '{}' is not read)", usv)).otherwise(
                pl.lit("")
            )
            col.reject(
                bad,
                file,
                "unit_concept_id",
                pl.when(pl.col("_uraw") == "").then(None).otherwise(pl.col("_uraw")),
                "unmapped_unit",
                detail,
            )
            df = df.filter(pl.col("_unit").is_not_null())
            value, unit = _col(df, "value_as_number"), pl.col("_unit")
        elif table == "OBSERVATION":
            n = _col(df, "value_as_number").str.strip_chars()
            value = pl.when(n != "").then(n).otherwise(_col(df, "value_as_string").str.strip_chars())
        elif table == "DRUG_EXPOSURE":
            e = _col(df, ecol or "").str.strip_chars()
            open_ = pl.col("_code").is_in(interval) & (e == "")
            bad = df.filter(open_)
            col.reject(
                bad,
                file,
                "drug_exposure_end_datetime",
                pl.when(_col(bad, "drug_exposure_end_date") == "")
                .then(None)
                .otherwise(_col(bad, "drug_exposure_end_date")),
                "missing_end",
                pl.format("{} without an end date-time: how long it ran is unknown (not imputed)", "_token"),
            )
            df = df.filter(~open_)
            end = pl.when(pl.col("_code").is_in(interval)).then(_col(df, ecol or "").str.strip_chars())
        elif ecol is not None:
            end = _col(df, ecol)
        df = df.with_columns(
            value.cast(pl.Utf8).alias("value"),
            unit.cast(pl.Utf8).alias("unit"),
            end.cast(pl.Utf8).alias("end_time"),
            (_col(df, "quantity") if table == "DRUG_EXPOSURE" else pl.lit(None, pl.Utf8)).alias("dose"),
            (_col(df, "dose_unit_source_value") if table == "DRUG_EXPOSURE" else pl.lit(None, pl.Utf8)).alias(
                "dose_unit"
            ),
            _col(df, "person_id").str.strip_chars().alias("_pid"),
            _col(df, tcol).str.strip_chars().alias("time"),
        )
        # the record's person, its time, and the time against the birth
        df = df.join(pframe, on="_pid", how="left")
        bad = df.filter(pl.col("patient_id").is_null())
        col.reject(
            bad, file, "person_id", pl.col("_pid"), "unknown_person", "person_id not in the PERSON table"
        )
        df = df.filter(pl.col("patient_id").is_not_null())
        dcol = tcol.removesuffix("time")
        bad = df.filter(pl.col("time") == "")
        given = _col(bad, dcol).str.strip_chars() != ""
        col.reject(
            bad,
            file,
            tcol,
            pl.when(_col(bad, dcol) == "").then(None).otherwise(_col(bad, dcol)),
            pl.when(given).then(pl.lit("date_only")).otherwise(pl.lit("missing_time")),
            pl.lit(f"{tcol} is empty")
            + pl.when(given)
            .then(pl.lit(f"; {dcol} alone does not place the record in the day (not imputed)"))
            .otherwise(pl.lit("")),
        )
        df = df.filter(pl.col("time") != "")
        df = col.after_birth(df, file, tcol, "person ")
        inf = df.filter((pl.col("_code") == "infusion") & pl.col("_when").is_not_null())
        if inf.height:
            infusions.append(inf.select("_pid", "_when", "time"))
        col.add(df.with_columns(pl.col("_code").alias("code"), pl.lit(file).alias("file")))

    # the age at day 0 (the first infusion), one row per person
    day0 = col.day0(infusions)
    ages: list[dict[str, Any]] = []
    for pid, p in persons.items():
        row = person_rows[pid]
        if pid not in day0:
            col.reject_one(
                person_file, row, "person_id", pid, "no_infusion", "no infusion (day 0) to state the age at"
            )
        elif p.birth is None:
            col.reject_one(person_file, row, "birth_datetime", None, "partial_birth_date", p.birth_problem)
        else:
            ages.append(
                {
                    "patient_id": p.patient_id,
                    "time": day0[pid][1],
                    "code": "age",
                    "value": str(_age(p.birth, day0[pid][0])),
                    "unit": "a",
                    "file": person_file,
                    "row": row,
                }
            )
    if ages:
        col.add(pl.DataFrame(ages))
    return col.result()


def _columns() -> dict[str, dict[str, str]]:
    return {t.lower(): v for t, v in COLUMNS.items()}


def grade_omop(source: str | Path, scales: str | Sequence[str], **kwargs: Any) -> TimelineResult:
    """Grade OMOP tables (a folder or a database URL) in memory
    (:func:`immunotox.timeline.grade_observations`); the rejects name the OMOP table, row and column."""
    return grade_read(read_omop(source), scales, _columns(), **kwargs)


def run_timeline_omop(
    source: str | Path, scales: str | Sequence[str], out_dir: str | Path, **kwargs: Any
) -> RunSummary:
    """:func:`immunotox.timeline.run_timeline` on OMOP tables, a folder or a database URL (what
    ``immunotox timeline DIR|URL`` runs); the rejects and ``summary.json`` count the OMOP rows."""
    label = _safe_url(str(source)) if is_database_url(source) else str(source)
    return run_read(read_omop(source), label, scales, out_dir, _columns(), **kwargs)


# ------------------------------------------------------------------------------------- writer
_MEASUREMENT_COLUMNS = (
    "measurement_id",
    "person_id",
    "measurement_concept_id",
    "measurement_date",
    "measurement_datetime",
    "measurement_type_concept_id",
    "value_as_number",
    "unit_concept_id",
    "measurement_source_value",
    "unit_source_value",
)
_OBSERVATION_COLUMNS = (
    "observation_id",
    "person_id",
    "observation_concept_id",
    "observation_date",
    "observation_datetime",
    "observation_type_concept_id",
    "value_as_number",
    "value_as_string",
    "observation_source_value",
)
_DRUG_COLUMNS = (
    "drug_exposure_id",
    "person_id",
    "drug_concept_id",
    "drug_exposure_start_date",
    "drug_exposure_start_datetime",
    "drug_exposure_end_date",
    "drug_exposure_end_datetime",
    "drug_type_concept_id",
    "quantity",
    "drug_source_value",
    "dose_unit_source_value",
)
_DEVICE_COLUMNS = (
    "device_exposure_id",
    "person_id",
    "device_concept_id",
    "device_exposure_start_date",
    "device_exposure_start_datetime",
    "device_exposure_end_date",
    "device_exposure_end_datetime",
    "device_type_concept_id",
    "device_source_value",
)
_PROCEDURE_COLUMNS = (
    "procedure_occurrence_id",
    "person_id",
    "procedure_concept_id",
    "procedure_date",
    "procedure_datetime",
    "procedure_end_date",
    "procedure_end_datetime",
    "procedure_type_concept_id",
    "procedure_source_value",
)
_PERSON_COLUMNS = (
    "person_id",
    "gender_concept_id",
    "year_of_birth",
    "month_of_birth",
    "day_of_birth",
    "birth_datetime",
    "race_concept_id",
    "ethnicity_concept_id",
    "person_source_value",
)
_DEATH_COLUMNS = (
    "person_id",
    "death_date",
    "death_datetime",
    "death_type_concept_id",
    "cause_concept_id",
    "cause_source_value",
)
_VISIT_DETAIL_COLUMNS = (
    "visit_detail_id",
    "person_id",
    "visit_detail_concept_id",
    "visit_detail_start_date",
    "visit_detail_start_datetime",
    "visit_detail_end_date",
    "visit_detail_end_datetime",
    "visit_detail_type_concept_id",
    "visit_detail_source_value",
    "visit_occurrence_id",
)
_CONCEPT_COLUMNS = (
    "concept_id",
    "concept_name",
    "domain_id",
    "vocabulary_id",
    "concept_class_id",
    "standard_concept",
    "concept_code",
    "valid_start_date",
    "valid_end_date",
    "invalid_reason",
)
# Type concept of every record written: 32817 "EHR" (Type Concept vocabulary; seen as "EHR" in
# the condition_type_concept_id counts of a published OMOP instance profile)
EHR_TYPE_CONCEPT = 32817


_iso = iso_utc


def _date(t: Any) -> str:
    s = _iso(t)
    return s[:10]


def _birth_for(age: int, day0: dt.datetime) -> dt.datetime:
    """A date of birth that makes ``age`` the whole years at ``day0`` (same day of the year)."""
    try:
        return dt.datetime(day0.year - age, day0.month, day0.day, tzinfo=dt.UTC)
    except ValueError:  # 29 February
        return dt.datetime(day0.year - age, 2, 28, tzinfo=dt.UTC)


def write_omop(observations: pa.Table, folder: str | Path) -> dict[str, int]:
    """Write contract rows (e.g. the simulator's cohort) as an OMOP CDM v5.4 folder of CSV tables
    with the CONCEPT rows they use. Returns the rows written per table.

    A row the tables cannot hold (a code or token without a concept, an age that is not a whole
    number, ``oxygen = none`` with an end) raises :class:`StandardsError` naming it.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    voc, cc = vocabulary(), concepts()
    tables: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES if t != "CONDITION_OCCURRENCE"}
    used: dict[int, Concept] = {}
    person_ids: dict[str, int] = {}
    ages: dict[str, int] = {}
    day0: dict[str, dt.datetime] = {}

    def concept(domain: str, code: str, token: str | None, n: int) -> Concept:
        c = cc.for_row(domain, code, token)
        if c is None:
            raise StandardsError(f"row {n}", f"{code} = {token!r}: no {domain} concept in omop_concepts.toml")
        used[c.concept_id] = c
        return c

    for n, r in enumerate(observations.to_pylist(), start=1):
        spec = voc.lookup(str(r["code"]))
        if spec is None:
            raise StandardsError(f"row {n}", f"code {r['code']!r} is not an observation code")
        pid = str(r["patient_id"])
        person = person_ids.setdefault(pid, len(person_ids) + 1)
        t, end = r["time"], r.get("end_time")
        value = "" if r["value"] is None else str(r["value"])
        base = {"person_id": person}
        if spec.name == "age":
            try:
                ages[pid] = int(float(value))
            except ValueError:
                raise StandardsError(f"row {n}", f"age {value!r} is not a number of years") from None
            if float(value) != ages[pid]:
                raise StandardsError(f"row {n}", f"age {value!r}: PERSON holds whole years only")
            continue
        if spec.name == "infusion" and (pid not in day0 or t < day0[pid]):
            day0[pid] = t
        if spec.kind == "quantity":
            c = concept("Measurement", spec.name, None, n)
            u = cc.by_code.get(("UCUM", str(r["unit"] or "")))
            if u is not None:
                used[u.concept_id] = u
            tables["MEASUREMENT"].append(
                {
                    **base,
                    "measurement_id": len(tables["MEASUREMENT"]) + 1,
                    "measurement_concept_id": c.concept_id,
                    "measurement_date": _date(t),
                    "measurement_datetime": _iso(t),
                    "measurement_type_concept_id": EHR_TYPE_CONCEPT,
                    "value_as_number": value,
                    "unit_concept_id": u.concept_id if u else 0,
                    "measurement_source_value": r["code"],
                    "unit_source_value": r["unit"],
                }
            )
        elif spec.name == "death":
            c = concept("Death", "death", value.lower(), n)
            tables["DEATH"].append(
                {
                    **base,
                    "death_date": _date(t),
                    "death_datetime": _iso(t),
                    "death_type_concept_id": EHR_TYPE_CONCEPT,
                    "cause_concept_id": c.concept_id,
                    "cause_source_value": value,
                }
            )
        elif spec.name == "icu":
            c = concept("Visit", "icu", value.lower(), n)
            tables["VISIT_DETAIL"].append(
                {
                    **base,
                    "visit_detail_id": len(tables["VISIT_DETAIL"]) + 1,
                    "visit_detail_concept_id": c.concept_id,
                    "visit_detail_start_date": _date(t),
                    "visit_detail_start_datetime": _iso(t),
                    "visit_detail_end_date": _date(end),
                    "visit_detail_end_datetime": _iso(end),
                    "visit_detail_type_concept_id": EHR_TYPE_CONCEPT,
                    "visit_detail_source_value": value,
                }
            )
        elif spec.name == "oxygen" and value.lower() != "none":
            proc = value.lower() == "mechanical_ventilation"
            c = concept("Procedure" if proc else "Device", "oxygen", value.lower(), n)
            if proc:
                tables["PROCEDURE_OCCURRENCE"].append(
                    {
                        **base,
                        "procedure_occurrence_id": len(tables["PROCEDURE_OCCURRENCE"]) + 1,
                        "procedure_concept_id": c.concept_id,
                        "procedure_date": _date(t),
                        "procedure_datetime": _iso(t),
                        "procedure_end_date": _date(end),
                        "procedure_end_datetime": _iso(end),
                        "procedure_type_concept_id": EHR_TYPE_CONCEPT,
                        "procedure_source_value": value,
                    }
                )
            else:
                tables["DEVICE_EXPOSURE"].append(
                    {
                        **base,
                        "device_exposure_id": len(tables["DEVICE_EXPOSURE"]) + 1,
                        "device_concept_id": c.concept_id,
                        "device_exposure_start_date": _date(t),
                        "device_exposure_start_datetime": _iso(t),
                        "device_exposure_end_date": _date(end),
                        "device_exposure_end_datetime": _iso(end),
                        "device_type_concept_id": EHR_TYPE_CONCEPT,
                        "device_source_value": value,
                    }
                )
        elif (
            c_drug := cc.for_row("Drug", spec.name, value.lower()) if spec.kind in ("token", "open") else None
        ):
            used[c_drug.concept_id] = c_drug
            tables["DRUG_EXPOSURE"].append(
                {
                    **base,
                    "drug_exposure_id": len(tables["DRUG_EXPOSURE"]) + 1,
                    "drug_concept_id": c_drug.concept_id,
                    "drug_exposure_start_date": _date(t),
                    "drug_exposure_start_datetime": _iso(t),
                    "drug_exposure_end_date": _date(end if end is not None else t),
                    "drug_exposure_end_datetime": _iso(end),
                    "drug_type_concept_id": EHR_TYPE_CONCEPT,
                    "quantity": r.get("dose"),
                    "drug_source_value": value,
                    "dose_unit_source_value": r.get("dose_unit"),
                }
            )
        else:
            if end is not None:
                raise StandardsError(
                    f"row {n}", f"{spec.name} = {value!r} with an end: OBSERVATION has no end"
                )
            c = concept("Observation", spec.name, None, n)
            number = spec.kind == "integer"
            tables["OBSERVATION"].append(
                {
                    **base,
                    "observation_id": len(tables["OBSERVATION"]) + 1,
                    "observation_concept_id": c.concept_id,
                    "observation_date": _date(t),
                    "observation_datetime": _iso(t),
                    "observation_type_concept_id": EHR_TYPE_CONCEPT,
                    "value_as_number": value if number else None,
                    "value_as_string": None if number else value,
                    "observation_source_value": spec.name,
                }
            )
    for pid, person in person_ids.items():
        row: dict[str, Any] = {
            "person_id": person,
            "gender_concept_id": 0,
            "race_concept_id": 0,
            "ethnicity_concept_id": 0,
            "person_source_value": pid,
        }
        if pid in ages and pid in day0:
            b = _birth_for(ages[pid], day0[pid])
            row |= {
                "year_of_birth": b.year,
                "month_of_birth": b.month,
                "day_of_birth": b.day,
                "birth_datetime": _iso(b),
            }
        tables["PERSON"].append(row)
    layouts = {
        "PERSON": _PERSON_COLUMNS,
        "MEASUREMENT": _MEASUREMENT_COLUMNS,
        "OBSERVATION": _OBSERVATION_COLUMNS,
        "DRUG_EXPOSURE": _DRUG_COLUMNS,
        "DEVICE_EXPOSURE": _DEVICE_COLUMNS,
        "PROCEDURE_OCCURRENCE": _PROCEDURE_COLUMNS,
        "DEATH": _DEATH_COLUMNS,
        "VISIT_DETAIL": _VISIT_DETAIL_COLUMNS,
    }
    for name, rows in tables.items():
        _write_csv(rows, layouts[name], out / f"{name.lower()}.csv")
    concept_rows = [
        {
            "concept_id": c.concept_id,
            "concept_name": c.name,
            "domain_id": c.domain,
            "vocabulary_id": c.vocabulary,
            "concept_class_id": "Ingredient" if c.domain == "Drug" and c.vocabulary == "RxNorm" else c.domain,
            "standard_concept": "" if c.vocabulary == LOCAL_VOCABULARY else "S",
            "concept_code": c.concept_code,
            "valid_start_date": "1970-01-01",
            "valid_end_date": "2099-12-31",
            "invalid_reason": "",
        }
        for c in sorted(used.values(), key=lambda c: c.concept_id)
    ]
    _write_csv(concept_rows, _CONCEPT_COLUMNS, out / "concept.csv")
    return {**{k: len(v) for k, v in tables.items()}, "CONCEPT": len(concept_rows)}
