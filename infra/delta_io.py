"""Idempotent Delta writes and table creation, shared by every layer.

Exactly-once (docs/exactly-once.md): every write of a streaming micro-batch is tagged with
(app_id, batch_id) in its commit's userMetadata (`batch_tag`). Each table has one streaming
writer, and a failed batch stops its query, so only the first batch a process runs can be a
retry of a batch that already committed: `append_once` looks for the batch's tag in the log then
(`committed`), and appends blindly otherwise. (Delta's own txnAppId/txnVersion would do the same
check on every write, at the price of a full state reconstruction of the table per append:
measured here 1.3-2.3 s per append against 0.35 s without.) Overwrites carry txnAppId/txnVersion
as writer options, a MERGE takes them from session confs (`merge_transaction`): both rebuild the
table's state anyway to find the files they replace. The confs are per session, so each
streaming query runs in its own session (fleetlake/runner.py), and only writes that set the
options themselves may commit beside a MERGE.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Iterator, Mapping

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

TXN_APP_ID_CONF = "spark.databricks.delta.write.txnAppId"
TXN_VERSION_CONF = "spark.databricks.delta.write.txnVersion"
USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"

# Tables written every few seconds: no log checkpoint inside their commits (`fleetlake maintain`
# writes checkpoints off the hot path) and no compaction inside them.
STREAMED_TABLE_PROPERTIES = {
    "delta.checkpointInterval": "1000",
    "delta.autoOptimize.autoCompact": "false",
    "delta.autoOptimize.optimizeWrite": "false",
    "delta.enableChangeDataFeed": "false",
}
# Tables whose rows a batch replaces or merges: deletion vectors mark replaced rows instead of
# rewriting whole files.
REWRITTEN_TABLE_PROPERTIES = {
    **STREAMED_TABLE_PROPERTIES,
    "delta.checkpointInterval": "100",
    "delta.enableDeletionVectors": "true",
}


def batch_tag(app_id: str, batch_id: int) -> str:
    """The commit's userMetadata: which query's batch wrote it (audits, `version_before`)."""
    return f"{app_id}:{batch_id}"


def append_once(frame: DataFrame, path: str, app_id: str, batch_id: int,
                may_be_retry: bool = True) -> bool:
    """Append `frame` to the Delta table at `path` unless (app_id, batch_id) committed to it
    already; False if it had. `may_be_retry=False` promises no earlier attempt of the batch ran
    (not the first batch of the process), which skips the look into the log."""
    spark = frame.sparkSession
    if may_be_retry and committed(spark, path, app_id, batch_id):
        return False
    (frame.write.format("delta").mode("append")
     .option("userMetadata", batch_tag(app_id, batch_id))
     .save(path))
    return True


def _parse_tag(tag: str | None) -> tuple[str, int] | None:
    if not tag or ":" not in tag:
        return None
    app, _, batch = tag.rpartition(":")
    return (app, int(batch)) if batch.isdigit() else None


def committed(spark: SparkSession, path: str, app_id: str, batch_id: int) -> bool:
    """True if a commit of the table carries (app_id, batch_id)'s tag.

    A streaming query commits its batches in order, so the app's newest tagged commit says:
    an older batch of the app means this one never committed.
    """
    tag = newest_tag(spark, path, app_id)
    return tag is not None and tag[1] >= batch_id


def newest_tag(spark: SparkSession, path: str,
               app_id: str | None = None) -> tuple[str, int] | None:
    """(app id, batch id) of the table's newest commit tagged by `app_id` (by any app: None);
    None if there is none, or no table. Reads the log newest first, 20 then 200 commits, then
    all of it."""
    if not DeltaTable.isDeltaTable(spark, path):
        return None
    for limit in (20, 200, None):
        table = DeltaTable.forPath(spark, path)
        frame = table.history(limit) if limit else table.history()
        rows = frame.select("version", "userMetadata").collect()
        for row in rows:
            parsed = _parse_tag(row["userMetadata"])
            if parsed is not None and (app_id is None or parsed[0] == app_id):
                return parsed
        if limit is None or len(rows) < limit:
            return None
    return None


def overwrite_once(frame: DataFrame, path: str, app_id: str, batch_id: int,
                   replace_where: str | None = None) -> None:
    """Overwrite the table (or only the rows matching `replace_where`) once per batch."""
    writer = (frame.write.format("delta").mode("overwrite")
              .option("txnAppId", app_id).option("txnVersion", batch_id)
              .option("userMetadata", batch_tag(app_id, batch_id)))
    if replace_where is not None:
        writer = writer.option("replaceWhere", replace_where)
    writer.save(path)


@contextmanager
def merge_transaction(spark: SparkSession, app_id: str, batch_id: int) -> Iterator[None]:
    """Make the next Delta commit of `spark`'s session idempotent for (app_id, batch_id)."""
    confs = {TXN_APP_ID_CONF: app_id, TXN_VERSION_CONF: str(batch_id),
             USER_METADATA_CONF: batch_tag(app_id, batch_id)}
    for key, value in confs.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key in confs:
            spark.conf.unset(key)


def current_version(spark: SparkSession, path: str) -> int:
    """The table's newest version, from its log (no Spark job)."""
    jvm = spark.sparkContext._jvm
    delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
    none = jvm.scala.Option.empty()
    return int(delta_log.update(False, none, none).version())


def read_pinned(spark: SparkSession, path: str, version: int | None = None) -> DataFrame:
    """The table at `version` (default: the newest now). A pinned read keeps its rows after the
    table changes: Spark re-caches frames that read a path when it is written, so an unpinned
    cached frame built on a table the batch then rewrites would silently change."""
    version = current_version(spark, path) if version is None else version
    return spark.read.format("delta").option("versionAsOf", version).load(path)


def version_before(spark: SparkSession, path: str, app_id: str, batch_id: int,
                   look_back: int = 50) -> int | None:
    """The version before the commit (app_id, batch_id) made, if one of the last `look_back`
    commits is it; None if the batch has not committed to this table."""
    tag = batch_tag(app_id, batch_id)
    for row in DeltaTable.forPath(spark, path).history(look_back).select(
            "version", "userMetadata").collect():
        if row["userMetadata"] == tag:
            return int(row["version"]) - 1
    return None


def retention_properties(days: float) -> dict[str, str]:
    """How long a table keeps its log and removed files ([retention] days): how far audits and
    time travel reach back, and VACUUM's floor."""
    interval = (f"interval {int(days)} days" if float(days).is_integer()
                else f"interval {max(1, round(days * 86_400))} seconds")
    return {"delta.logRetentionDuration": interval,
            "delta.deletedFileRetentionDuration": interval}


def ensure_table(spark: SparkSession, path: str, schema: T.StructType, comment: str,
                 properties: Mapping[str, str] = STREAMED_TABLE_PROPERTIES,
                 stats_columns: str | None = None, retention_days: float | None = None) -> None:
    """Create the Delta table at `path` if missing; add columns the schema gained since
    (contracts are only extended); set `properties` and the retention (idempotent).

    An existing table is checked against its log's metadata (no Spark job: measured 0.1 s per
    table, against 5-15 s for `createIfNotExists` + `detail()` on every start)."""
    wanted = dict(properties)
    if retention_days is not None:
        wanted.update(retention_properties(retention_days))
    if stats_columns is not None:
        wanted["delta.dataSkippingStatsColumns"] = stats_columns
    existing = table_metadata(spark, path)
    if existing is None:
        builder = (DeltaTable.createIfNotExists(spark).location(path).addColumns(schema)
                   .comment(comment))
        for key, value in wanted.items():
            builder = builder.property(key, value)
        builder.execute()
        existing = table_metadata(spark, path)
    columns, current = existing
    missing = [f for f in schema.fields if f.name not in columns]
    if missing:
        added = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in missing)
        spark.sql(f"ALTER TABLE delta.`{path}` ADD COLUMNS ({added})")
    stale = {k: v for k, v in wanted.items() if current.get(k) != v}
    if stale:
        settings = ", ".join(f"'{k}' = '{v}'" for k, v in stale.items())
        spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ({settings})")


def table_metadata(spark: SparkSession, path: str) -> tuple[set[str], dict[str, str]] | None:
    """(column names, table properties) of the Delta table at `path` from its log; None when
    there is no table there."""
    jvm = spark.sparkContext._jvm
    delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
    if not delta_log.tableExists():
        return None
    none = jvm.scala.Option.empty()
    metadata = delta_log.update(False, none, none).metadata()
    columns = {f["name"] for f in json.loads(metadata.schemaString())["fields"]}
    properties = dict(jvm.scala.jdk.javaapi.CollectionConverters.asJava(metadata.configuration()))
    return columns, {str(k): str(v) for k, v in properties.items()}
