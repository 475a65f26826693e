"""Minute KPIs kept up to date incrementally: a batch's change, added to the rows gold holds.

Grain of the deltas: one row per (car_id, window_start) a batch touches (new readings or alert
changes). Every KPI is additive or an extreme (counts, exact speed sums, max, min), and silver
only grows, so held row + delta = the row a recomputation from silver gives, bit for bit (the
average divides the same exact sum in both; gold/kpis.py). fleet_minute_kpis is the sum of the
minute's device rows, so it needs no state of its own.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F, types as T

from gold.changes import DELETE, INSERT, OP
from gold.kpis import SUM_TYPE, average, exact_speed, window_start
from gold.schema import (ALERT_TYPES, DEVICE_MINUTE_KPIS_COLUMNS, FLEET_MINUTE_KPIS_COLUMNS,
                         SPEED_SUM_TYPE, alert_count_column)

KEYS = ("car_id", "window_start")
TYPE_COUNTS = tuple(alert_count_column(kind) for kind in ALERT_TYPES)


READING_STATS_SCHEMA = T.StructType([
    T.StructField("car_id", T.StringType()), T.StructField("window_start", T.TimestampType()),
    T.StructField("events", T.LongType()), T.StructField("speed_sum", SUM_TYPE),
    T.StructField("max_speed_kmph", T.DoubleType()),
    T.StructField("max_engine_temp_c", T.DoubleType()),
    T.StructField("min_fuel_level", T.DoubleType()),
])


def reading_stats(new_readings: DataFrame) -> DataFrame:
    """READING_STATS_SCHEMA: per (car_id, window_start) of the new readings, their additive
    stats (count, exact speed sum) and extremes."""
    return new_readings.groupBy("car_id", window_start().alias("window_start")).agg(
        F.count(F.lit(1)).alias("events"),
        F.sum(exact_speed()).alias("speed_sum"),
        F.max("speed_kmph").alias("max_speed_kmph"),
        F.max("engine_temp_c").alias("max_engine_temp_c"),
        F.min("fuel_level").alias("min_fuel_level")).select(*READING_STATS_SCHEMA.fieldNames())


def kpi_deltas(new_readings: DataFrame, alert_changes: DataFrame) -> DataFrame:
    """Per touched (car_id, window_start): the new readings' stats (null without any) and the
    change of each alert type's count (inserted +1, deleted -1, updated 0)."""
    return kpi_deltas_from_stats(reading_stats(new_readings), alert_changes)


def kpi_deltas_from_stats(stats: DataFrame, alert_changes: DataFrame) -> DataFrame:
    """`kpi_deltas` from the new readings' `reading_stats` (computed once by the sink)."""
    weight = (F.when(F.col(OP) == F.lit(INSERT), F.lit(1))
              .when(F.col(OP) == F.lit(DELETE), F.lit(-1)).otherwise(F.lit(0)))
    alerts = alert_changes.groupBy("car_id", window_start().alias("window_start")).agg(*[
        F.sum(F.when(F.col("alert_type") == F.lit(kind), weight).otherwise(F.lit(0)))
        .cast("long").alias(alert_count_column(kind)) for kind in ALERT_TYPES])
    joined = stats.join(alerts, list(KEYS), "full_outer")
    return joined.select(*KEYS, "events", "speed_sum", "max_speed_kmph", "max_engine_temp_c",
                         "min_fuel_level",
                         *[F.coalesce(F.col(c), F.lit(0).cast("long")).alias(c)
                           for c in TYPE_COUNTS])


def _plus(held: Column, change: Column) -> Column:
    return F.coalesce(held, F.lit(0)) + F.coalesce(change, F.lit(0))


def apply_kpi_deltas(held_rows: DataFrame, deltas: DataFrame) -> DataFrame:
    """DEVICE_MINUTE_KPIS rows: `held_rows` (gold's rows of the touched minutes, every car) with
    `deltas` added; rows no delta touches come out unchanged."""
    h, d = held_rows.alias("h"), deltas.alias("d")
    joined = h.join(d, [F.col(f"h.{k}") == F.col(f"d.{k}") for k in KEYS], "full_outer")
    events = _plus(F.col("h.events"), F.col("d.events"))
    speed_sum = _plus(F.col("h.speed_sum_kmph").cast(SUM_TYPE), F.col("d.speed_sum"))
    counts = {c: _plus(F.col(f"h.{c}"), F.col(f"d.{c}")) for c in TYPE_COUNTS}
    columns = {
        "car_id": F.coalesce(F.col("h.car_id"), F.col("d.car_id")),
        "window_start": F.coalesce(F.col("h.window_start"), F.col("d.window_start")),
        "events": events,
        "avg_speed_kmph": average(speed_sum.cast(SUM_TYPE), events),
        "max_speed_kmph": F.greatest(F.col("h.max_speed_kmph"), F.col("d.max_speed_kmph")),
        "max_engine_temp_c": F.greatest(F.col("h.max_engine_temp_c"),
                                        F.col("d.max_engine_temp_c")),
        "min_fuel_level": F.least(F.col("h.min_fuel_level"), F.col("d.min_fuel_level")),
        "alerts": sum(counts.values(), F.lit(0).cast("long")),
        "speed_sum_kmph": speed_sum.cast(SPEED_SUM_TYPE),
        **counts,
    }
    return joined.select(*[columns[c].alias(c) for c in DEVICE_MINUTE_KPIS_COLUMNS])


def fleet_from_device(device_rows: DataFrame) -> DataFrame:
    """FLEET_MINUTE_KPIS rows of the minutes `device_rows` holds (all cars of each minute)."""
    fleet = device_rows.groupBy("window_start").agg(
        F.count(F.lit(1)).alias("active_cars"),
        F.sum("events").alias("events"),
        F.sum(F.col("speed_sum_kmph").cast(SUM_TYPE)).alias("speed_sum"),
        F.sum("alerts").alias("alerts"),
        *[F.sum(c).alias(c) for c in TYPE_COUNTS])
    return fleet.select(
        "window_start", "active_cars", "events",
        average(F.col("speed_sum"), F.col("events")).alias("avg_speed_kmph"),
        "alerts", *TYPE_COUNTS).select(*FLEET_MINUTE_KPIS_COLUMNS)
