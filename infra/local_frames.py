"""Small DataFrames made on the driver without Python workers.

`spark.createDataFrame(list_of_tuples)` ships pickled rows to Python worker processes, which
Spark then forks and keeps (measured: three ~50 MB workers per pipeline, more under load, counted
in the process tree's memory). From an Arrow table, the rows go to the JVM directly.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable, Sequence

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F, types as T
from pyspark.sql.pandas.types import to_arrow_schema


def arrow_schema(schema: T.StructType) -> pa.Schema:
    """The Arrow schema Spark converts `schema` from (timestamps as UTC microseconds)."""
    return to_arrow_schema(schema, timezone="UTC")


def local_frame(spark: SparkSession, rows: Iterable[Sequence] | pa.Table,
                schema: T.StructType) -> DataFrame:
    """A DataFrame of `rows` (tuples in schema order, or an Arrow table) with `schema`."""
    if isinstance(rows, pa.Table):
        table = rows.select(schema.fieldNames()).cast(arrow_schema(schema))
    else:
        columns = list(zip(*rows)) or [()] * len(schema.fields)
        target = arrow_schema(schema)
        table = pa.Table.from_arrays(
            [pa.array(list(values), type=target.field(i).type)
             for i, values in enumerate(columns)], schema=target)
    return spark.createDataFrame(table, schema=schema)


def with_constant(frame: DataFrame, name: str, value: datetime) -> DataFrame:
    """`frame` with a timestamp column `name` holding `value` on every row, taken from a
    one-row local relation joined to it: a per-batch value as data, not as a literal, so the
    generated code of the stage stays the same from batch to batch (a literal is compiled into
    the code: every batch would compile, and JIT-compile, a new class)."""
    stamp = value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    one_row = frame.sparkSession.sql(
        f"SELECT * FROM VALUES (TIMESTAMP '{stamp}+00:00') AS constants(`{name}`)")
    return frame.crossJoin(F.broadcast(one_row))
