"""Kafka records -> `bronze/telemetry_raw`: raw bytes + Kafka coordinates, append-only.

Grain: one row per consumed Kafka record (topic, partition, offset), exactly once.
"""
from __future__ import annotations

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from bronze.schema import BRONZE_SCHEMA
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
    (DeltaTable.createIfNotExists(spark)
     .location(bronze_path(settings))
     .addColumns(BRONZE_SCHEMA)
     .property("delta.appendOnly", "true")
     .execute())


def append_bronze(bronze_df: DataFrame, settings: Settings, app_id: str, batch_id: int) -> None:
    """Append one micro-batch; a retried batch id is skipped by Delta (txnAppId/txnVersion)."""
    (bronze_df.write.format("delta").mode("append")
     .option("txnAppId", app_id).option("txnVersion", batch_id)
     .save(bronze_path(settings)))
