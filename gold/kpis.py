"""Minute KPIs, latest device state and the per-batch data-quality row (pure transforms).

KPI windows are one-minute tumbling windows on event_ts (window_start = the minute's start, UTC).
Speeds are summed as exact decimals, so a window recomputed from any partitioning of the same
rows gives the bit-identical average (a double sum depends on the order of its terms).
"""
from __future__ import annotations

from datetime import datetime
from typing import Mapping

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F, types as T

from infra.local_frames import local_frame
from gold.schema import (ALERT_TYPES, DEVICE_LATEST_COLUMNS, DEVICE_MINUTE_KPIS_COLUMNS,
                         DQ_BATCH_METRICS_SCHEMA, FLEET_MINUTE_KPIS_COLUMNS, SPEED_SUM_TYPE,
                         alert_count_column)

# Exact decimal image of a validated reading (|value| < 10^9, 9 decimals) for order-free sums,
# and the type Spark gives their sum: every average divides a sum of this type by a count.
_EXACT = T.DecimalType(18, 9)
SUM_TYPE = T.DecimalType(28, 9)
# Only columns device_latest stores, so a MERGE across batches decides ties as one batch does.
LATEST_ORDER = ("event_ts", "kafka_timestamp", "event_id")
_ALERT_COUNTS = ("alerts", *[alert_count_column(kind) for kind in ALERT_TYPES])


def window_start(ts: str = "event_ts") -> Column:
    """Start of the one-minute tumbling window holding `ts` (UTC session time zone)."""
    return F.date_trunc("minute", F.col(ts))


def car_minute_stats(silver_df: DataFrame, alerts_df: DataFrame) -> DataFrame:
    """Per (car_id, window_start) with readings: additive reading stats and alert counts by type.

    Both KPI tables derive from it (the sink computes it once); speed is summed as an exact
    decimal, so an average does not depend on how the rows were partitioned or ordered.
    """
    keys = ["car_id", "window_start"]
    readings = silver_df.groupBy("car_id", window_start().alias("window_start")).agg(
        F.count(F.lit(1)).alias("events"),
        F.sum(exact_speed()).alias("speed_sum"),
        F.max("speed_kmph").alias("max_speed_kmph"),
        F.max("engine_temp_c").alias("max_engine_temp_c"),
        F.min("fuel_level").alias("min_fuel_level"),
    )
    per_type = [F.count(F.when(F.col("alert_type") == F.lit(kind), F.lit(1)))
                .alias(alert_count_column(kind)) for kind in ALERT_TYPES]
    alerts = alerts_df.groupBy("car_id", window_start().alias("window_start")).agg(
        F.count(F.lit(1)).alias("alerts"), *per_type)
    joined = readings.join(alerts, keys, "left")
    return joined.select(*readings.columns, *[
        F.coalesce(F.col(c), F.lit(0).cast("long")).alias(c) for c in _ALERT_COUNTS])


def exact_speed() -> Column:
    """speed_kmph as an exact decimal (the summand of every speed sum)."""
    return F.col("speed_kmph").try_cast(_EXACT)


def average(total: Column, count: Column) -> Column:
    """An average as a double from an exact sum (the same division in every path)."""
    return (total / count).cast(T.DoubleType())


def device_kpis_from_stats(stats: DataFrame) -> DataFrame:
    """DEVICE_MINUTE_KPIS rows from `car_minute_stats`."""
    return stats.select(
        "car_id", "window_start", "events",
        average(F.col("speed_sum"), F.col("events")).alias("avg_speed_kmph"),
        "max_speed_kmph", "max_engine_temp_c", "min_fuel_level", "alerts",
        F.col("speed_sum").cast(SPEED_SUM_TYPE).alias("speed_sum_kmph"),
        *[alert_count_column(kind) for kind in ALERT_TYPES],
    ).select(*DEVICE_MINUTE_KPIS_COLUMNS)


def fleet_kpis_from_stats(stats: DataFrame) -> DataFrame:
    """FLEET_MINUTE_KPIS rows from `car_minute_stats` (one row per car and minute)."""
    fleet = stats.groupBy("window_start").agg(
        F.count(F.lit(1)).alias("active_cars"),
        F.sum("events").alias("events"),
        F.sum("speed_sum").alias("speed_sum"),
        *[F.sum(c).alias(c) for c in _ALERT_COUNTS],
    )
    return fleet.select(
        "window_start", "active_cars", "events",
        average(F.col("speed_sum"), F.col("events")).alias("avg_speed_kmph"),
        *_ALERT_COUNTS,
    ).select(*FLEET_MINUTE_KPIS_COLUMNS)


def device_minute_kpis(silver_df: DataFrame, alerts_df: DataFrame) -> DataFrame:
    """DEVICE_MINUTE_KPIS rows: one per (car_id, minute) with readings; alerts of that car."""
    return device_kpis_from_stats(car_minute_stats(silver_df, alerts_df))


def fleet_minute_kpis(silver_df: DataFrame, alerts_df: DataFrame) -> DataFrame:
    """FLEET_MINUTE_KPIS rows: one per minute with readings; alert counts in total and per type."""
    return fleet_kpis_from_stats(car_minute_stats(silver_df, alerts_df))


def device_latest(silver_df: DataFrame) -> DataFrame:
    """DEVICE_LATEST rows: per car, the reading latest by (event_ts, kafka_timestamp, event_id):
    the later Kafka record wins a tie in event time, then the greater event_id."""
    payload = [c for c in DEVICE_LATEST_COLUMNS if c != "car_id" and c not in LATEST_ORDER]
    latest = F.max(F.struct(*LATEST_ORDER, *payload)).alias("_latest")
    return (silver_df.groupBy("car_id").agg(latest)
            .select("car_id", *[F.col(f"_latest.{c}").alias(c)
                                for c in DEVICE_LATEST_COLUMNS if c != "car_id"]))


def dq_batch_metrics_row(spark: SparkSession, *, query_id: str, batch_id: int, rows_in: int,
                         valid_rows: int, quarantined_rows: int, duplicate_rows: int,
                         quarantine_reasons: Mapping[str, int] | DataFrame,
                         processed_at: Column | datetime | None = None) -> DataFrame:
    """The one DQ_BATCH_METRICS row of a batch.

    `quarantine_reasons` is either code -> count, or a DataFrame of the batch's quarantined rows
    with a `reasons` array column (counted here: a row counts once for each code it carries).
    `processed_at` defaults to current_timestamp(); with plain values (a datetime and a
    mapping) the row is a local DataFrame, which Spark collects without a job.
    """
    if isinstance(processed_at, datetime) and not isinstance(quarantine_reasons, DataFrame):
        row = (query_id, int(batch_id), processed_at, int(rows_in), int(valid_rows),
               int(quarantined_rows), int(duplicate_rows),
               sorted((str(k), int(v)) for k, v in quarantine_reasons.items()))
        return local_frame(spark, [row], DQ_BATCH_METRICS_SCHEMA)
    stamp = processed_at if processed_at is not None else F.current_timestamp()
    if isinstance(stamp, datetime):
        stamp = F.lit(stamp)
    if isinstance(quarantine_reasons, DataFrame):
        source = _reason_counts(quarantine_reasons)
    else:
        source = spark.range(1).select(_literal_map(quarantine_reasons).alias("reasons"))
    return source.select(
        F.lit(query_id).cast("string").alias("query_id"),
        F.lit(int(batch_id)).cast("long").alias("batch_id"),
        stamp.cast("timestamp").alias("processed_at"),
        *[F.lit(int(v)).cast("long").alias(name) for name, v in (
            ("rows_in", rows_in), ("valid_rows", valid_rows),
            ("quarantined_rows", quarantined_rows), ("duplicate_rows", duplicate_rows))],
        F.col("reasons").cast(DQ_BATCH_METRICS_SCHEMA["quarantine_reasons"].dataType)
        .alias("quarantine_reasons"),
    )


def _literal_map(counts: Mapping[str, int]) -> Column:
    map_type = DQ_BATCH_METRICS_SCHEMA["quarantine_reasons"].dataType
    items = sorted(counts.items())
    if not items:
        return F.create_map().cast(map_type)
    keys = F.array(*[F.lit(str(k)) for k, _ in items])
    values = F.array(*[F.lit(int(v)).cast("long") for _, v in items])
    return F.map_from_arrays(keys, values)


def _reason_counts(quarantined: DataFrame) -> DataFrame:
    """One row, column `reasons`: code -> number of quarantined rows carrying it."""
    per_code = (quarantined.select(F.explode("reasons").alias("code"))
                .groupBy("code").agg(F.count(F.lit(1)).alias("n")))
    entries = F.array_sort(F.collect_list(F.struct("code", "n")))
    return per_code.agg(F.map_from_entries(entries).alias("reasons"))
