"""The timeline engine on Apache Spark: the same partition function, run per group of patients.

Spark reads the file and numbers its rows; rows are grouped by a hash bucket of ``patient_id``
(every row of a patient lands in the same group) and each group is handed, as an Arrow table, to
exactly the function the embedded engine runs on a partition: :func:`~._read.normalize` then
:func:`~._engine.grade_partition` (``groupBy(...).applyInArrow``). The groups' outputs travel
back as one union table (a ``kind`` column says which output a row belongs to), are written by
Spark to a temporary Parquet folder, then split into the usual output files.

Needs ``pip install 'immunotox[spark]'`` (PySpark, pandas) and Java 17+ (``JAVA_HOME`` or
``java`` on the ``PATH``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from ._engine import SCHEMAS, Params, grade_partition
from ._read import READ_COLUMNS, REJECTS_SCHEMA, ObservationFileError, missing_columns, normalize
from ._snapshot import Grader, codes_read, plan
from .output import open_writers

KINDS = ("grades", "daily_max", "episodes", "patients", "rejects")


def _union_schema() -> pa.Schema:
    fields: dict[str, pa.Field] = {"kind": pa.field("kind", pa.string())}
    for k in KINDS:
        schema = REJECTS_SCHEMA if k == "rejects" else SCHEMAS[k]
        for f in schema:
            if f.name in fields and fields[f.name].type != f.type:
                raise AssertionError(f"column {f.name} has two types in the outputs")
            fields.setdefault(f.name, pa.field(f.name, f.type, True))
    return pa.schema(list(fields.values()))


UNION_SCHEMA = _union_schema()


def spark_unavailable() -> str | None:
    """Why the Spark engine cannot run here (None when it can)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "PySpark is not installed (pip install 'immunotox[spark]')"
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and Path(java_home, "bin", "java").exists()) and shutil.which("java") is None:
        return "Java is not installed (Spark needs Java 17+: apt-get install default-jre-headless)"
    return None


def _to_union(kind: str, table: pa.Table) -> pa.Table:
    n = table.num_rows
    cols = []
    for f in UNION_SCHEMA:
        if f.name == "kind":
            cols.append(pa.array([kind] * n, pa.string()))
        elif f.name in table.column_names:
            cols.append(table.column(f.name).cast(f.type))
        else:
            cols.append(pa.nulls(n, f.type))
    return pa.table(cols, schema=UNION_SCHEMA)


def partition_function(
    scale_ids: list[str], resolution_hours: float, label: str
) -> Any:  # the Arrow UDF: (pa.Table) -> pa.Table
    """The function Spark runs on each group: normalise, grade, return the union of the outputs."""

    def run(table: pa.Table) -> pa.Table:
        from ..catalogue import all_scales

        plans = [plan(all_scales()[s]) for s in scale_ids]
        rows = table.column("row").to_numpy()
        raw = table.select([c for c in READ_COLUMNS if c in table.column_names])
        n = normalize(raw, file=label, rows=rows, keep=codes_read(plans))
        po = grade_partition(n.obs, plans, Params(resolution_hours=resolution_hours), "embedded", Grader())
        parts = [_to_union(k, po.table(k)) for k in SCHEMAS]
        parts.append(_to_union("rejects", n.rejects))
        return pa.concat_tables(parts)

    return run


def session(memory_limit: int | None = None) -> Any:
    """A local Spark session (``local[2]``, UTC, no UI) or the active one."""
    import sys

    from pyspark.sql import SparkSession

    # the Python workers must be this interpreter (the one with immunotox installed)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    b = (
        SparkSession.builder.master(os.environ.get("IMMUNOTOX_SPARK_MASTER", "local[2]"))
        .appName("immunotox-timeline")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
    )
    if memory_limit:
        b = b.config("spark.driver.memory", f"{max(memory_limit // 2**20, 512)}m")
    return b.getOrCreate()


def _spark_type(t: pa.DataType) -> str:
    if pa.types.is_string(t):
        return "string"
    if pa.types.is_int8(t):
        return "tinyint"
    if pa.types.is_int32(t):
        return "int"
    if pa.types.is_int64(t):
        return "bigint"
    if pa.types.is_float64(t):
        return "double"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_timestamp(t):
        return "timestamp"
    raise AssertionError(t)


def union_ddl() -> str:
    """The Spark DDL of :data:`UNION_SCHEMA`."""
    return ", ".join(f"`{f.name}` {_spark_type(f.type)}" for f in UNION_SCHEMA)


def run_spark(
    src: Any,
    ids: list[str],
    params: Params,
    out: Path,
    fmt: str,
    summary: Any,
    memory_limit: int | None,
) -> pa.Table:
    """Grade ``src`` on Spark and write the outputs like the embedded run (returns ``patients``).

    The caller (:func:`~._run.run_timeline`) has checked :func:`spark_unavailable` first."""
    from pyspark.sql import functions as F

    spark = session(memory_limit)
    tmp = Path(tempfile.mkdtemp(prefix=".spark-", dir=out))
    try:
        path = src.path
        if src.kind == "table":
            import pyarrow.parquet as pq

            path = tmp / "input.parquet"
            pq.write_table(src.table, path)
        assert path is not None
        if src.kind == "csv":
            df = spark.read.csv(
                str(path),
                header=True,
                schema=None,
                inferSchema=False,
                mode="PERMISSIVE",
                sep="\t" if str(path).lower().endswith(".tsv") else ",",
            )
        else:
            df = spark.read.parquet(str(path))
        missing = [c for c in ("patient_id", "time", "code", "value", "unit") if c not in df.columns]
        if missing:
            raise ObservationFileError(src.label, missing_columns(missing, df.columns))
        cols = [c for c in READ_COLUMNS if c in df.columns]
        df = df.select(*cols)
        # exact 1-based row numbers in file order: offsets of Spark's input partitions
        df = df.withColumn("_part", F.spark_partition_id()).withColumn(
            "_mid", F.monotonically_increasing_id()
        )
        counts = sorted((r["_part"], r["count"]) for r in df.groupBy("_part").count().collect())
        offsets, acc = {}, 0
        for part, cnt in counts:
            offsets[part] = acc
            acc += cnt
        summary.input_rows = acc
        off = spark.createDataFrame(list(offsets.items()), "_part int, _off long")
        df = df.join(F.broadcast(off), "_part").withColumn(
            "row", F.col("_off") + (F.col("_mid") - F.shiftleft(F.col("_part").cast("long"), 33)) + F.lit(1)
        )
        n_buckets = max(2, int(spark.sparkContext.defaultParallelism) * 2)
        df = df.withColumn("_bucket", F.pmod(F.xxhash64("patient_id"), F.lit(n_buckets))).drop(
            "_part", "_mid", "_off"
        )
        fn = partition_function(ids, params.resolution_hours, src.label)
        result = df.groupBy("_bucket").applyInArrow(lambda t: fn(t.drop(["_bucket"])), schema=union_ddl())
        result.write.mode("overwrite").parquet(str(tmp / "union"))
        patients = _split(tmp / "union", out, fmt, summary)
        summary.accepted_rows = summary.input_rows - summary.rejected_rows
        summary.partitions = n_buckets
        return patients
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _split(folder: Path, out: Path, fmt: str, summary: Any) -> pa.Table:
    """Split the union table written by Spark into the output files; fill the summary."""
    import pyarrow.compute as pc

    writers = open_writers(out, fmt)
    patients: list[pa.Table] = []
    try:
        for batch in ds.dataset(folder, format="parquet").to_batches():
            t = pa.Table.from_batches([batch])
            kinds = t.column("kind")
            for k in KINDS:
                sub = t.filter(pc.equal(kinds, k))
                if sub.num_rows == 0:
                    continue
                schema = REJECTS_SCHEMA if k == "rejects" else SCHEMAS[k]
                part = sub.select(schema.names).cast(schema)
                writers[k].write(part)
                if k == "patients":
                    patients.append(part)
                    for s, n in zip(
                        part.column("scale").to_pylist(),
                        part.column("n_assessments").to_pylist(),
                        strict=True,
                    ):
                        summary.assessments[s] = summary.assessments.get(s, 0) + int(n)
                if k == "rejects":
                    for r in part.column("reason").to_pylist():
                        summary.rejected_by_reason[r] = summary.rejected_by_reason.get(r, 0) + 1
                    summary.rejected_rows += part.num_rows
    finally:
        for w in writers.values():
            w.close()
    for name, w in writers.items():
        summary.outputs[name] = str(w.path)
    table = pa.concat_tables(patients) if patients else pa.Table.from_batches([], schema=SCHEMAS["patients"])
    return table
