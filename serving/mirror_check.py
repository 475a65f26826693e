"""PostgreSQL `gold.*` versus the Delta gold tables, row for row, as comparable Python values.

Both sides are read in the column order of serving/tables.py and normalised so that equal data
compares equal and unequal data does not:
- timestamps: aware UTC datetimes (Delta through unix_micros, so the Python process' time zone
  plays no part; PostgreSQL timestamptz converted to UTC), microsecond precision on both sides;
- numeric: normalised Decimals (trailing zeros do not matter);
- doubles: Python floats, NaN as the string "NaN" (NaN != NaN would fail equal rows);
- quarantine_reasons (Delta map<string,bigint>, PostgreSQL jsonb): sorted (code, count) tuples;
- text, bigint and boolean values as they are.
Tables are compared as multisets (sorted lists of tuples), so a duplicated row is a difference.
Used by the integration tests and by the fault campaign (fleetlake/campaign/checks.py).
"""
from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from decimal import Decimal
from typing import Any

from psycopg2 import sql
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from infra.settings import Settings
from serving.db import query_rows
from serving.tables import LEDGER, SCHEMA, TABLES

GOLD_TABLES = tuple(TABLES)  # alerts, device_minute_kpis, fleet_minute_kpis, device_latest, dq
UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


def normalise(pg_type: str, value: Any) -> Any:
    """One cell in its comparable form (see the module docstring); None stays None."""
    if value is None:
        return None
    if pg_type == "timestamptz":
        if isinstance(value, int):  # unix microseconds from Delta
            return EPOCH + dt.timedelta(microseconds=value)
        return value.astimezone(UTC)
    if pg_type == "double precision":
        return "NaN" if math.isnan(value) else float(value)
    if pg_type == "numeric":  # Delta decimal(38,9) and PostgreSQL numeric: the same number
        return Decimal(value).normalize()
    if pg_type == "jsonb":
        return tuple(sorted((str(k), int(v)) for k, v in dict(value).items()))
    return value


def sorted_rows(rows: list[tuple]) -> list[tuple]:
    """Rows sorted by their text form (None, str and float may share a column)."""
    return sorted(rows, key=repr)


def delta_gold_rows(spark: SparkSession, settings: Settings, name: str) -> list[tuple]:
    """Normalised rows of the Delta table gold/<name>, sorted."""
    spec = TABLES[name]
    frame = spark.read.format("delta").load(settings.table_path("gold", name))
    columns = [F.unix_micros(F.col(c)).alias(c) if t == "timestamptz" else F.col(c)
               for c, t in spec.columns]
    return sorted_rows([tuple(normalise(t, v) for (_, t), v in zip(spec.columns, row))
                        for row in frame.select(*columns).collect()])


def pg_query(dsn: str, statement: str | sql.Composable, params: tuple = ()) -> list[tuple]:
    """Rows of one statement in its own committed transaction, session time zone UTC ([] for a
    statement that returns no rows)."""
    return query_rows(dsn, statement, params, "fleetlake-check")


def pg_gold_rows(dsn: str, name: str) -> list[tuple]:
    """Normalised rows of the PostgreSQL table gold.<name> (read through psycopg2), sorted."""
    spec = TABLES[name]
    statement = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in spec.column_names),
        sql.Identifier(SCHEMA, name))
    return sorted_rows([tuple(normalise(t, v) for (_, t), v in zip(spec.columns, row))
                        for row in pg_query(dsn, statement)])


def pg_ledger(dsn: str) -> list[tuple[str, int]]:
    """(app_id, batch_id) of every row of gold.sync_ledger, sorted (duplicates kept)."""
    return sorted(pg_query(dsn, sql.SQL("SELECT app_id, batch_id FROM {}").format(
        LEDGER)))


def difference(expected: list[tuple], actual: list[tuple], limit: int = 5) -> str:
    """Readable multiset difference: rows only in `expected` and rows only in `actual`."""
    missing = Counter(expected) - Counter(actual)
    extra = Counter(actual) - Counter(expected)
    return (f"{sum(missing.values())} row(s) missing, e.g. {list(missing.elements())[:limit]}; "
            f"{sum(extra.values())} unexpected, e.g. {list(extra.elements())[:limit]}")


def compare_mirror(spark: SparkSession, settings: Settings, tables: tuple[str, ...] = GOLD_TABLES
                   ) -> tuple[dict[str, list[tuple]], dict[str, str]]:
    """(the normalised Delta rows per table, the difference per table whose PostgreSQL rows
    differ from them)."""
    rows, found = {}, {}
    for name in tables:
        rows[name] = delta_gold_rows(spark, settings, name)
        pg = pg_gold_rows(settings.effective_pg_dsn, name)
        if pg != rows[name]:
            found[name] = difference(rows[name], pg)
    return rows, found


def mirror_differences(spark: SparkSession, settings: Settings,
                       tables: tuple[str, ...] = GOLD_TABLES) -> dict[str, str]:
    """Per gold table whose PostgreSQL rows differ from its Delta rows: the difference."""
    return compare_mirror(spark, settings, tables)[1]
