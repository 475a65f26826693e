"""Kafka records -> `bronze/telemetry_raw`: raw bytes + Kafka coordinates, append-only.

Grain: one row per consumed Kafka record (topic, partition, offset), exactly once. Appended by
the gold query (fleetlake/gold_query.py) from the staging table the hot query writes, so the hot
path commits once per batch; `ingested_at` is the time of the hot micro-batch that read the
record from Kafka, the same for every row of a batch and on a retry of it.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from bronze.schema import BRONZE_SCHEMA
from infra.delta_io import STREAMED_TABLE_PROPERTIES, append_once, ensure_table
from infra.settings import Settings


def to_bronze(kafka_df: DataFrame, ingested_at: Column) -> DataFrame:
    """Kafka source rows -> bronze rows; the value is kept byte for byte."""
    return kafka_df.select(
        F.col("key").cast("binary").alias("key"),
        F.col("value").cast("binary").alias("value"),
        F.col("topic").cast("string").alias("topic"),
        F.col("partition").cast("int").alias("partition"),
        F.col("offset").cast("long").alias("offset"),
        F.col("timestamp").cast("timestamp").alias("kafka_timestamp"),
        ingested_at.cast("timestamp").alias("ingested_at"),
    )


def bronze_path(settings: Settings) -> str:
    return settings.table_path("bronze", "telemetry_raw")


def ensure_bronze_table(spark: SparkSession, settings: Settings) -> None:
    """Create the empty bronze Delta table if it does not exist (idempotent)."""
    ensure_table(spark, bronze_path(settings), BRONZE_SCHEMA,
                 "fleetlake bronze: every Kafka record as received, once",
                 {**STREAMED_TABLE_PROPERTIES, "delta.appendOnly": "true"},
                 stats_columns="topic,partition,offset,kafka_timestamp,ingested_at",
                 retention_days=settings.retention.days)


def append_bronze(bronze_df: DataFrame, settings: Settings, app_id: str, batch_id: int,
                  may_be_retry: bool = True) -> None:
    """Append one micro-batch; a retried batch that committed already is skipped
    (infra/delta_io.append_once)."""
    append_once(bronze_df.select(*BRONZE_SCHEMA.fieldNames()), bronze_path(settings), app_id,
                batch_id, may_be_retry)
