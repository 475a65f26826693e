"""The frames a data-quality report validates: each table's current version, plus accounting.

Grain of the accounting frame (`lake/accounting`): one row with the row counts of bronze, silver,
quarantine and the sums over gold/dq_batch_metrics, so the identities "every bronze row was
processed once" and "what the batches took in = silver + quarantine + duplicates" are columns
to compare.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from infra.settings import Settings
from ops.catalog import lake_table, table_exists
from ops.dq.suites import ACCOUNTING, SILVER_VIEW


def read_current(spark: SparkSession, settings: Settings, name: str) -> DataFrame | None:
    """The table's current version, or None when it does not exist yet."""
    path = lake_table(name).path(settings)
    if not table_exists(spark, path):
        return None
    return spark.read.format("delta").load(path)


def accounting(bronze: DataFrame, silver: DataFrame, quarantine: DataFrame,
               batches: DataFrame) -> DataFrame:
    """The one-row accounting frame (see the module docstring)."""
    counts = (bronze.agg(F.count(F.lit(1)).alias("bronze_rows"))
              .crossJoin(silver.agg(F.count(F.lit(1)).alias("silver_rows")))
              .crossJoin(quarantine.agg(F.count(F.lit(1)).alias("quarantine_rows")))
              .crossJoin(batches.agg(
                  F.coalesce(F.sum("rows_in"), F.lit(0)).cast("long").alias("batch_rows_in"),
                  F.coalesce(F.sum("duplicate_rows"), F.lit(0)).cast("long")
                  .alias("duplicate_rows"))))
    accounted = F.col("silver_rows") + F.col("quarantine_rows") + F.col("duplicate_rows")
    return counts.withColumn("accounted_rows", accounted)


def report_frames(spark: SparkSession, settings: Settings,
                  names: list[str]) -> dict[str, DataFrame | None]:
    """Suite name -> frame to validate (None: the table does not exist yet).

    Registers silver as SILVER_VIEW for the cross-table checks."""
    frames: dict[str, DataFrame | None] = {
        name: read_current(spark, settings, name) for name in names if name != ACCOUNTING}
    silver = frames.get("silver/telemetry")
    if silver is not None:
        silver.createOrReplaceTempView(SILVER_VIEW)
    if ACCOUNTING in names:
        parts = [read_current(spark, settings, "bronze/telemetry_raw"), silver,
                 frames.get("silver/quarantine"), frames.get("gold/dq_batch_metrics")]
        frames[ACCOUNTING] = None if any(p is None for p in parts) else accounting(*parts)
    return frames
