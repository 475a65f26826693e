"""The lake's tables as data: contract name, key, clustering, and how the pipeline writes each.

Audits, maintenance, data-quality reports and replay all look tables up here. A table is named
by its path under the lake root (`silver/telemetry` is `<lake_root>/silver/telemetry`).
To have `maintain` look after a new table, add a `LakeTable` to `PIPELINE_TABLES` (internal
tables of the pipeline, under `_pipeline/`); Delta tables found under `_pipeline/` that are not
listed are maintained too, as tables the pipeline rewrites (compaction only).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pyspark.sql import SparkSession

from gold.schema import GOLD_KEYS
from infra.settings import Settings
from ops.errors import OpsError

KAFKA_COORDINATES = ("topic", "partition", "offset")
PIPELINE_DIR = "_pipeline"
_NAME = re.compile(r"^[A-Za-z0-9_]+/[A-Za-z0-9_]+$")


class UnknownTableError(OpsError):
    """A table name that is not in the catalog; the message lists the known names."""


@dataclass(frozen=True)
class LakeTable:
    """One Delta table of the lake.

    `keys`: the columns that identify a row (audit diff, replay, dq uniqueness).
    `cluster_by`: liquid-clustering columns `maintain` sets (what dashboards and audits filter
    on); empty = compaction only.
    `pipeline_appends_only`: a running pipeline only blind-appends to it, so an OPTIMIZE can
    commit beside it; for tables the pipeline MERGEs or overwrites, a concurrent OPTIMIZE commit
    would fail the pipeline's commit (Delta: ConcurrentDeleteReadException), so `maintain`
    leaves them alone while the pipeline runs.
    """

    name: str
    keys: tuple[str, ...]
    cluster_by: tuple[str, ...] = ()
    pipeline_appends_only: bool = False

    @property
    def layer(self) -> str:
        return self.name.split("/", 1)[0]

    def path(self, settings: Settings) -> str:
        return f"{settings.lake_root.rstrip('/')}/{self.name}"


def _gold(name: str, cluster_by: tuple[str, ...] = (), appends_only: bool = False) -> LakeTable:
    return LakeTable(f"gold/{name}", tuple(GOLD_KEYS[name]), cluster_by, appends_only)


CONTRACT_TABLES: tuple[LakeTable, ...] = (
    LakeTable("bronze/telemetry_raw", KAFKA_COORDINATES, pipeline_appends_only=True),
    # the gold query only blind-appends first copies to silver (de-duplication is its state)
    LakeTable("silver/telemetry", ("event_id",), ("car_id", "event_ts"),
              pipeline_appends_only=True),
    LakeTable("silver/quarantine", KAFKA_COORDINATES, pipeline_appends_only=True),
    _gold("alerts", ("car_id", "event_ts")),
    _gold("device_minute_kpis", ("car_id", "window_start")),
    _gold("fleet_minute_kpis"),
    _gold("device_latest"),
    _gold("dq_batch_metrics", appends_only=True),
)

# The pipeline's internal tables (under _pipeline/): the hot query appends each validated Kafka
# batch to `validated`, the gold query streams from it.
PIPELINE_TABLES: tuple[LakeTable, ...] = (
    LakeTable("_pipeline/validated", KAFKA_COORDINATES, pipeline_appends_only=True),
)

_BY_NAME = {table.name: table for table in CONTRACT_TABLES + PIPELINE_TABLES}


def known_tables() -> tuple[LakeTable, ...]:
    return CONTRACT_TABLES + PIPELINE_TABLES


def lake_table(name: str) -> LakeTable:
    """The catalog entry of a contract name such as `silver/telemetry` (or any `_pipeline/x`:
    an internal table without a declared key)."""
    name = name.strip().strip("/")
    table = _BY_NAME.get(name)
    if table is None and name.startswith(f"{PIPELINE_DIR}/") and _NAME.match(name):
        table = LakeTable(name, ())
    if table is None:
        raise UnknownTableError(f"unknown table {name!r}: use one of "
                                f"{', '.join(t.name for t in known_tables())}")
    return table


def table_exists(spark: SparkSession, path: str) -> bool:
    """True when `path` holds a Delta table (any file system Spark can reach)."""
    jvm = spark.sparkContext._jvm
    return bool(jvm.io.delta.tables.DeltaTable.isDeltaTable(spark._jsparkSession, path))


def discovered_pipeline_tables(spark: SparkSession, settings: Settings) -> list[LakeTable]:
    """Delta tables under `<lake_root>/_pipeline/` that PIPELINE_TABLES does not list."""
    root = f"{settings.lake_root.rstrip('/')}/{PIPELINE_DIR}"
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(root)
    fs = hadoop_path.getFileSystem(spark._jsc.hadoopConfiguration())
    if not fs.exists(hadoop_path):
        return []
    found = []
    for status in fs.listStatus(hadoop_path):
        name = f"{PIPELINE_DIR}/{status.getPath().getName()}"
        if status.isDirectory() and name not in _BY_NAME and table_exists(
                spark, f"{root}/{status.getPath().getName()}"):
            found.append(LakeTable(name, ()))
    return sorted(found, key=lambda t: t.name)
