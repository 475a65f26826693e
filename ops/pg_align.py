"""Bring PostgreSQL `gold.*` in line with the Delta gold tables (after a replay, or a repair).

Each table is read from PostgreSQL through JDBC, compared with its Delta table by key
(ops/diff.py), and the differences are sent through the sync's exactly-once path in ONE
transaction with one ledger row (`sync_batch(dsn, app_id, batch_id, upserts, deletes)`):
keys only in PostgreSQL are deleted, rows missing or different there are upserted. Comparing
the full tables (not a list of changes) makes it idempotent and crash-safe: run it again and it
finds what is still different.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from psycopg2 import extensions
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F, types as T

from infra.dsn import read_passfile
from infra.settings import Settings
from ops.diff import ADDED, AFTER, CHANGE, CHANGED, REMOVED, change_counts, diff_by_key
from serving.sync import sync_batch
from serving.tables import SCHEMA, TABLES

_JSONB_AS_MAP = T.MapType(T.StringType(), T.LongType())


def jdbc_url(dsn: str) -> tuple[str, dict[str, str]]:
    """(JDBC URL, connection properties) for a libpq DSN or URI; a `passfile=` DSN's password
    is read from that pgpass file (the JDBC driver does not read pgpass files)."""
    params = extensions.parse_dsn(dsn)
    host = params.get("host") or params.get("hostaddr") or "127.0.0.1"
    url = f"jdbc:postgresql://{host}:{params.get('port') or 5432}/{params.get('dbname', '')}"
    props = {"driver": "org.postgresql.Driver", "user": params.get("user", ""),
             "stringtype": "unspecified"}
    password = params.get("password")
    if not password and params.get("passfile"):  # the embedded cluster's DSNs (infra/dsn.py)
        password = read_passfile(Path(params["passfile"])).get(props["user"])
    if password:  # in the connection properties only: never in the URL, never printed
        props["password"] = password
    if params.get("sslmode"):
        props["sslmode"] = params["sslmode"]
    return url, props


def read_postgres(spark: SparkSession, dsn: str, name: str, like: DataFrame) -> DataFrame:
    """gold.<name> from PostgreSQL with the Delta table's column types (jsonb maps parsed)."""
    url, props = jdbc_url(dsn)
    spec = TABLES[name]
    columns = ", ".join(f"{c}::text AS {c}" if t == "jsonb" else c for c, t in spec.columns)
    frame = spark.read.jdbc(url, f"(SELECT {columns} FROM {SCHEMA}.{name}) AS t",
                            properties=props)
    types = {f.name: f.dataType for f in like.schema.fields}
    converted = []
    for column, pg_type in spec.columns:
        value = F.col(column)
        if pg_type == "jsonb":
            value = F.from_json(value, _JSONB_AS_MAP)
        converted.append(value.cast(types[column]).alias(column))
    return frame.select(*converted)


@dataclass(frozen=True)
class Alignment:
    """Per gold table: rows PostgreSQL lacked (added), had extra (removed), had different."""

    counts: dict[str, dict[str, int]]
    synced: bool

    @property
    def changed_rows(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())


def align_postgres(spark: SparkSession, settings: Settings, delta_tables: dict[str, DataFrame],
                   app_id: str, batch_id: int = 0, dry_run: bool = False) -> Alignment:
    """Make PostgreSQL gold.<name> equal `delta_tables[name]` for each name; one transaction."""
    dsn = settings.effective_pg_dsn
    upserts, deletes, counts, cached = {}, {}, {}, []
    try:
        for name, delta in delta_tables.items():
            keys = list(TABLES[name].keys)
            diff = diff_by_key(read_postgres(spark, dsn, name, delta),
                               delta.select(*TABLES[name].column_names), keys).persist()
            cached.append(diff)
            counts[name] = change_counts(diff)
            if counts[name][ADDED] or counts[name][CHANGED]:
                values = [c for c in TABLES[name].column_names if c not in keys]
                upserts[name] = (diff.where(F.col(CHANGE).isin(ADDED, CHANGED))
                                 .select(*keys, *[F.col(f"{AFTER}.`{c}`").alias(c)
                                                  for c in values]))
            if counts[name][REMOVED]:
                deletes[name] = diff.where(F.col(CHANGE) == REMOVED).select(*keys)
        needed = bool(upserts or deletes)
        if needed and not dry_run:
            sync_batch(dsn, app_id, batch_id, upserts, deletes)
        return Alignment(counts, needed and not dry_run)
    finally:
        for frame in cached:
            frame.unpersist()
