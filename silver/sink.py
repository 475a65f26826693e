"""Silver writes: quarantine appends and the de-duplicating MERGE into `silver/telemetry`.

Idempotent per (app_id, batch_id): a retried micro-batch writes nothing twice and returns the
same rows, because what it returns is read back from Delta by Kafka coordinates.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from infra.settings import Settings
from silver.schema import QUARANTINE_SCHEMA, SILVER_COLUMNS, SILVER_SCHEMA

COORDINATES = ("topic", "partition", "offset")


def silver_path(settings: Settings) -> str:
    return settings.table_path("silver", "telemetry")


def quarantine_path(settings: Settings) -> str:
    return settings.table_path("silver", "quarantine")


def ensure_silver_tables(spark: SparkSession, settings: Settings) -> None:
    """Create the empty silver and quarantine Delta tables if missing (idempotent)."""
    (DeltaTable.createIfNotExists(spark).location(silver_path(settings))
     .addColumns(SILVER_SCHEMA)
     # event_ts drives the KPI-window and stateful-rule reads: keep stats for data skipping
     .property("delta.dataSkippingStatsColumns", "event_id,car_id,event_ts,kafka_timestamp")
     .execute())
    (DeltaTable.createIfNotExists(spark).location(quarantine_path(settings))
     .addColumns(QUARANTINE_SCHEMA)
     .property("delta.appendOnly", "true")
     .execute())


def append_quarantine(quarantine_df: DataFrame, settings: Settings, app_id: str,
                      batch_id: int) -> None:
    """Append the batch's rejected rows; a retried batch id is skipped by Delta."""
    (quarantine_df.write.format("delta").mode("append")
     .option("txnAppId", app_id).option("txnVersion", batch_id)
     .save(quarantine_path(settings)))


@contextmanager
def delta_txn(spark: SparkSession, app_id: str, batch_id: int) -> Iterator[None]:
    """Make the MERGEs inside idempotent per (app_id, batch_id) (session-level txn confs)."""
    spark.conf.set("spark.databricks.delta.write.txnAppId", app_id)
    spark.conf.set("spark.databricks.delta.write.txnVersion", str(batch_id))
    try:
        yield
    finally:
        spark.conf.unset("spark.databricks.delta.write.txnAppId")
        spark.conf.unset("spark.databricks.delta.write.txnVersion")


def merge_silver(candidates_df: DataFrame, settings: Settings, app_id: str,
                 batch_id: int) -> DataFrame:
    """Insert the batch's first copies whose event_id silver lacks; return the kept rows.

    Kept = candidates whose Kafka coordinates are the ones silver stores for their event_id
    after the MERGE: the same answer whether this call inserted them or a crashed earlier
    attempt of the same batch did. First seen wins across batches.
    """
    spark = candidates_df.sparkSession
    target = DeltaTable.forPath(spark, silver_path(settings))
    with delta_txn(spark, app_id, batch_id):
        (target.alias("t")
         .merge(candidates_df.alias("s"), "t.event_id = s.event_id")
         .whenNotMatchedInsertAll()
         .execute())
    stored = (spark.read.format("delta").load(silver_path(settings))
              .join(candidates_df.select("event_id"), "event_id", "left_semi")
              .select("event_id", *COORDINATES))
    return (candidates_df.join(stored, ["event_id", *COORDINATES], "left_semi")
            .select(*SILVER_COLUMNS))
