"""Silver Delta tables: creation, idempotent quarantine append, first-seen-wins MERGE.

Thin I/O wiring for the foreachBatch sink; the transforms live in validate.py and dedup.py.
Idempotency (DESIGN.md "Quality bar"): a retried batch (same app_id, batch_id) writes nothing
twice: appends carry the writer options txnAppId/txnVersion, the MERGE the session confs.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession, functions as F, types as T

from infra.settings import Settings
from silver.schema import QUARANTINE_SCHEMA, SILVER_SCHEMA

TELEMETRY = ("silver", "telemetry")
QUARANTINE = ("silver", "quarantine")
_COORDINATES = ("topic", "partition", "offset")
_TXN_APP_ID = "spark.databricks.delta.write.txnAppId"
_TXN_VERSION = "spark.databricks.delta.write.txnVersion"

_COMMON_PROPERTIES = {
    "delta.enableChangeDataFeed": "false",
    "delta.autoOptimize.optimizeWrite": "true",
    "delta.autoOptimize.autoCompact": "true",
}
# Min/max statistics only where queries filter (keeps writes cheap, no stats on the raw value).
_TABLES = (
    (TELEMETRY, SILVER_SCHEMA, "event_id,car_id,event_ts,topic,partition,offset,kafka_timestamp",
     "fleetlake silver: validated telemetry, one row per event_id (first copy seen)"),
    (QUARANTINE, QUARANTINE_SCHEMA, "topic,partition,offset,kafka_timestamp,quarantined_at",
     "fleetlake silver: rejected bronze rows with their reason codes"),
)


def ensure_silver_tables(spark: SparkSession, settings: Settings) -> None:
    """Create silver/telemetry and silver/quarantine (empty, with their schemas) if missing."""
    for table, schema, stats_columns, comment in _TABLES:
        builder = (DeltaTable.createIfNotExists(spark)
                   .location(settings.table_path(*table))
                   .addColumns(schema)
                   .comment(comment))
        properties = {**_COMMON_PROPERTIES, "delta.dataSkippingStatsColumns": stats_columns}
        for key, value in properties.items():
            builder = builder.property(key, value)
        builder.execute()


def append_quarantine(quarantine_df: DataFrame, settings: Settings, app_id: str,
                      batch_id: int) -> None:
    """Append a batch's quarantined rows once, however often the batch is retried."""
    (quarantine_df.select(*QUARANTINE_SCHEMA.fieldNames())
     .write.format("delta").mode("append")
     .option("txnAppId", app_id).option("txnVersion", batch_id)
     .save(settings.table_path(*QUARANTINE)))


@contextmanager
def _merge_transaction(spark: SparkSession, app_id: str, batch_id: int) -> Iterator[None]:
    """Make the next Delta commit in `spark` idempotent for (app_id, batch_id)."""
    spark.conf.set(_TXN_APP_ID, app_id)
    spark.conf.set(_TXN_VERSION, str(batch_id))
    try:
        yield
    finally:
        spark.conf.unset(_TXN_APP_ID)
        spark.conf.unset(_TXN_VERSION)


def merge_silver(candidates_df: DataFrame, settings: Settings, app_id: str,
                 batch_id: int) -> DataFrame:
    """Insert the batch's new events into silver/telemetry; return the rows silver kept.

    `candidates_df` = first_copies of the batch's valid rows (one row per event_id). An event_id
    already in silver is not inserted again: the first copy seen wins, across batches too.
    Kept rows = candidates whose (topic, partition, offset) is the row stored for their
    event_id, so a retry that finds the MERGE already committed returns the same rows.
    `candidates_df` is read three times (MERGE, bounds, kept rows), so it is persisted here
    unless it already is. The result is persisted and materialized: unpersist it when done.
    Pass `candidates_df` persisted (and unpersist it after the result): a cache made here is
    released before returning, under the result's cache built on it.

    Cost: an insert-only MERGE is a left anti join that reads only the `event_id` column of
    every silver file (no file can be pruned: ids are hashes and duplicates may be arbitrarily
    old). If that grows too slow, options: partition or cluster silver by event date and add
    `t.event_date IN (<batch dates>)` to the ON clause (valid because a retransmission carries
    the same event_timestamp), or bound the de-duplication horizon with a streaming state store
    (dropDuplicatesWithinWatermark) in front of the MERGE.
    """
    spark = candidates_df.sparkSession
    path = settings.table_path(*TELEMETRY)
    source = candidates_df.select(*SILVER_SCHEMA.fieldNames())
    own_cache = not candidates_df.storageLevel.useMemory
    if own_cache:
        source = source.persist()
    try:
        with _merge_transaction(spark, app_id, batch_id):
            (DeltaTable.forPath(spark, path).alias("t")
             .merge(source.alias("s"), "t.event_id = s.event_id")
             .whenNotMatchedInsertAll()
             .execute())
        kept = _kept_rows(source, spark, path).persist()
        kept.count()
        return kept
    finally:
        if own_cache:
            source.unpersist()


def _kept_rows(candidates: DataFrame, spark: SparkSession, path: str) -> DataFrame:
    """Candidates stored in silver with exactly their coordinates (a semi-join on those)."""
    bounds = candidates.agg(
        F.min("offset").alias("lo"), F.max("offset").alias("hi"),
        F.min(F.unix_micros("kafka_timestamp")).alias("ts_lo"),
        F.max(F.unix_micros("kafka_timestamp")).alias("ts_hi")).first()
    if bounds is None or bounds["lo"] is None:
        return candidates.where(F.lit(False))
    # A stored copy of a candidate is the same Kafka record: same offset and timestamp. These
    # literal ranges let Delta skip (by min/max stats) the files of all earlier batches.
    kafka_ts = F.col("kafka_timestamp")
    in_ts_range = kafka_ts.isNull()
    if bounds["ts_lo"] is not None:
        ts_range = kafka_ts.between(_timestamp(bounds["ts_lo"]), _timestamp(bounds["ts_hi"]))
        in_ts_range = in_ts_range | ts_range
    stored = (spark.read.format("delta").load(path)
              .where(F.col("offset").between(bounds["lo"], bounds["hi"]) & in_ts_range)
              .select("event_id", *_COORDINATES))
    return (candidates.join(stored, on=["event_id", *_COORDINATES], how="left_semi")
            .select(*SILVER_SCHEMA.fieldNames()))


def _timestamp(micros: int) -> Column:
    """A timestamp literal from epoch microseconds (no Python time-zone round trip)."""
    return F.timestamp_micros(F.lit(micros).cast(T.LongType()))
