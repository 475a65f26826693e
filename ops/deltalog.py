"""Reading a Delta table's log: history with the writer of each commit, and readable versions.

Which query or batch wrote a commit: idempotent writes carry a `txn` action (appId = the
streaming query id, version = the batch id; appends set it with txnAppId/txnVersion, MERGEs
with the session confs), Delta's own streaming sink records queryId/epochId in the operation
parameters, and replay tags its commits with userMetadata. Query ids are named after the
checkpoint directory that holds them (`<lake_root>/_checkpoints/<query name>/metadata`).

Readable versions follow Delta's own rule: the log must reach the version (log retention and
checkpoints) and, unless it is the latest, its commit must be younger than the table's
delta.deletedFileRetentionDuration (older versions may reference vacuumed files).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from infra.settings import Settings

UTC = timezone.utc


@dataclass(frozen=True)
class Commit:
    """One entry of a table's history."""

    version: int
    timestamp: datetime  # aware, UTC
    operation: str
    parameters: dict[str, str]
    metrics: dict[str, str]
    user_metadata: str | None
    written_by: str = "-"


def _hadoop_fs(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path.getFileSystem(spark._jsc.hadoopConfiguration()), hadoop_path


def query_names(spark: SparkSession, settings: Settings) -> dict[str, str]:
    """Streaming query id -> query name, from the checkpoints under the lake root."""
    fs, pattern = _hadoop_fs(spark, settings.checkpoint_path("*") + "/metadata")
    statuses = fs.globStatus(pattern)
    if not statuses:
        return {}
    names = {}
    for status in statuses:
        path = status.getPath()
        for line in spark.read.text(path.toString()).collect():
            try:
                names[json.loads(line.value)["id"]] = path.getParent().getName()
            except (ValueError, KeyError, TypeError):
                continue
    return names


def _txn_actions(spark: SparkSession, path: str, versions: list[int]) -> dict[int, list[dict]]:
    """version -> the `txn` actions of its commit file (when the file still exists)."""
    fs, _ = _hadoop_fs(spark, path)
    jvm = spark.sparkContext._jvm
    files = [f"{path.rstrip('/')}/_delta_log/{version:020d}.json" for version in versions]
    files = [name for name in files if fs.exists(jvm.org.apache.hadoop.fs.Path(name))]
    if not files:
        return {}
    lines = (spark.read.text(files).where(F.col("value").startswith('{"txn"'))
             .select("value", F.input_file_name().alias("file")).collect())
    found: dict[int, list[dict]] = {}
    for line in lines:
        version = int(line.file.rsplit("/", 1)[-1].split(".", 1)[0])
        found.setdefault(version, []).append(json.loads(line.value)["txn"])
    return found


def _writer(commit: Commit, txns: list[dict], names: dict[str, str]) -> str:
    def query(query_id: str, batch: Any) -> str:
        name = names.get(query_id)
        label = f"{name} (query {query_id[:8]})" if name else f"query {query_id}"
        return f"{label} batch {batch}"

    if commit.user_metadata:
        return commit.user_metadata
    if txns:
        return "; ".join(query(t.get("appId", "?"), t.get("version")) for t in txns)
    if "queryId" in commit.parameters:
        return query(commit.parameters["queryId"].strip('"'), commit.parameters.get("epochId"))
    if commit.operation == "OPTIMIZE" and commit.parameters.get("auto") == "true":
        return "auto compaction"
    return "-"


def history(spark: SparkSession, settings: Settings, path: str,
            limit: int | None = None) -> list[Commit]:
    """The newest `limit` commits (all when None), newest first, each with its writer."""
    table = DeltaTable.forPath(spark, path)
    frame = table.history(limit) if limit else table.history()
    rows = frame.select("version", F.unix_micros("timestamp").alias("ts_us"), "operation",
                        "operationParameters", "operationMetrics", "userMetadata").collect()
    commits = [Commit(int(r.version), _to_datetime(r.ts_us), r.operation,
                      dict(r.operationParameters or {}), dict(r.operationMetrics or {}),
                      r.userMetadata) for r in rows]
    txns = _txn_actions(spark, path, [c.version for c in commits])
    names = query_names(spark, settings) if txns or any(
        "queryId" in c.parameters for c in commits) else {}
    return [Commit(c.version, c.timestamp, c.operation, c.parameters, c.metrics, c.user_metadata,
                   _writer(c, txns.get(c.version, []), names)) for c in commits]


def _to_datetime(micros: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(micros))


def _delta_log(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    return jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)


@dataclass(frozen=True)
class ReadableRange:
    """Versions a time-travel read can reach, and the retention that bounds them."""

    oldest: int
    latest: int
    commits: tuple[tuple[int, datetime], ...]  # (version, timestamp), oldest first
    retention: timedelta

    def timestamp_of(self, version: int) -> datetime | None:
        return dict(self.commits).get(version)


def readable_range(spark: SparkSession, path: str, now: datetime | None = None) -> ReadableRange:
    """Oldest and latest readable version of the table at `path` (Delta's time-travel rules)."""
    delta_log = _delta_log(spark, path)
    snapshot = delta_log.update(False, spark._jvm.scala.Option.empty(),
                                spark._jvm.scala.Option.empty())
    latest = int(snapshot.version())
    retention_ms = int(spark._jvm.org.apache.spark.sql.delta.DeltaLog.tombstoneRetentionMillis(
        snapshot.metadata()))
    earliest = int(delta_log.history().getEarliestRecreatableCommit())
    rows = (DeltaTable.forPath(spark, path).history()
            .select("version", F.unix_micros("timestamp").alias("ts_us")).collect())
    commits = tuple(sorted((int(r.version), _to_datetime(r.ts_us)) for r in rows))
    horizon = (now or datetime.now(UTC)) - timedelta(milliseconds=retention_ms)
    young = [v for v, ts in commits if v >= earliest and ts >= horizon]
    oldest = min(young) if young else latest
    return ReadableRange(oldest, latest, commits, timedelta(milliseconds=retention_ms))
