"""Minute KPIs kept up to date incrementally: a batch's change, added to the rows gold holds.

Grain of the deltas: one row per (car_id, window_start) a batch touches (new readings or alert
changes). Every KPI is additive or an extreme (counts, exact speed sums, max, min), and silver
only grows, so held row + delta = the row a recomputation from silver gives, bit for bit (the
average divides the same exact sum in both, with Spark's decimal division: `exact_average`).
fleet_minute_kpis is the sum of the minute's device rows, so it needs no state of its own.

The update runs on the driver, in Arrow, on the few rows a batch touches (the held rows of its
minutes, its deltas): as Spark jobs (three local relations, their plans, two or three jobs) it
cost a gold batch 1.4–6.7 s before PostgreSQL on a slow machine (docs/performance.md). What the KPIs are is gold/kpis.py (the
recomputation from silver, in Spark); tests/unit/test_gold_kpi_updates.py holds the two equal.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F, types as T

from gold.changes import DELETE, INSERT, OP
from gold.kpis import SUM_TYPE, exact_speed, window_start
from gold.schema import (ALERT_TYPES, DEVICE_MINUTE_KPIS_SCHEMA, FLEET_MINUTE_KPIS_SCHEMA,
                         alert_count_column)
from infra.local_frames import arrow_schema

KEYS = ("car_id", "window_start")
TYPE_COUNTS = tuple(alert_count_column(kind) for kind in ALERT_TYPES)

READING_STATS_SCHEMA = T.StructType([
    T.StructField("car_id", T.StringType()), T.StructField("window_start", T.TimestampType()),
    T.StructField("events", T.LongType()), T.StructField("speed_sum", SUM_TYPE),
    T.StructField("max_speed_kmph", T.DoubleType()),
    T.StructField("max_engine_temp_c", T.DoubleType()),
    T.StructField("min_fuel_level", T.DoubleType()),
])
_STATS = arrow_schema(READING_STATS_SCHEMA)
_DEVICE = arrow_schema(DEVICE_MINUTE_KPIS_SCHEMA)
_FLEET = arrow_schema(FLEET_MINUTE_KPIS_SCHEMA)
_ALERT_COUNTS = pa.schema([_STATS.field("car_id"), _STATS.field("window_start"),
                           *[pa.field(c, pa.int64()) for c in TYPE_COUNTS]])
_SUM = pa.decimal128(SUM_TYPE.precision, SUM_TYPE.scale)  # a minute's speed sum, per car
# Scales of Spark's quotients sum / count (decimal(p, 9) / bigint, precision capped at 38): a
# car's sum is decimal(28, 9) -> decimal(38, 19); a fleet sum, decimal(38, 9) -> decimal(38, 9).
DEVICE_AVERAGE_SCALE, FLEET_AVERAGE_SCALE = 19, 9
_SPARK_DIVISION_DIGITS = 39  # Spark's Decimal division: MathContext(39, HALF_UP)


def reading_stats(new_readings: DataFrame) -> DataFrame:
    """READING_STATS_SCHEMA: per (car_id, window_start) of the new readings, their additive
    stats (count, exact speed sum) and extremes (gold/summary.py computes the same rows)."""
    return new_readings.groupBy("car_id", window_start().alias("window_start")).agg(
        F.count(F.lit(1)).alias("events"),
        F.sum(exact_speed()).alias("speed_sum"),
        F.max("speed_kmph").alias("max_speed_kmph"),
        F.max("engine_temp_c").alias("max_engine_temp_c"),
        F.min("fuel_level").alias("min_fuel_level")).select(*READING_STATS_SCHEMA.fieldNames())


def exact_average(total: Decimal | None, count: int | None, scale: int) -> float | None:
    """gold/kpis.average as Spark computes it: the exact sum over the count, to 39 significant
    digits, then to `scale` decimals (both HALF_UP), then the nearest double; None for no rows."""
    if total is None or not count:
        return None
    with localcontext() as context:
        context.prec, context.rounding = _SPARK_DIVISION_DIGITS, ROUND_HALF_UP
        quotient = total / Decimal(count)
        context.prec = 2 * _SPARK_DIVISION_DIGITS
        return float(quotient.quantize(Decimal(1).scaleb(-scale)))


def kpi_deltas(stats: pa.Table, alert_changes: pa.Table) -> pa.Table:
    """Per touched (car_id, window_start): the new readings' `stats` (READING_STATS_SCHEMA;
    null without any) and the change of each alert type's count (inserted +1, deleted -1,
    updated 0) from `alert_changes` (alert rows + OP)."""
    op = alert_changes.column(OP)
    weight = pc.if_else(pc.equal(op, INSERT), 1, pc.if_else(pc.equal(op, DELETE), -1, 0))
    kind = alert_changes.column("alert_type")
    per_type = {count: pc.if_else(pc.equal(kind, name), weight, 0).cast(pa.int64())
                for name, count in zip(ALERT_TYPES, TYPE_COUNTS)}
    minutes = pc.floor_temporal(alert_changes.column("event_ts"), unit="minute")
    alerts = pa.table({"car_id": alert_changes.column("car_id"), "window_start": minutes,
                       **per_type}).cast(_ALERT_COUNTS)
    summed = alerts.group_by(list(KEYS)).aggregate([(c, "sum") for c in TYPE_COUNTS])
    summed = summed.rename_columns([c.removesuffix("_sum") for c in summed.column_names])
    readings = stats.select(_STATS.names).cast(_STATS)
    joined = readings.join(summed, list(KEYS), join_type="full outer")
    deltas = joined.select(_STATS.names)
    for count in TYPE_COUNTS:  # no change of a type's count: 0
        deltas = deltas.append_column(count, pc.fill_null(joined.column(count), 0))
    return deltas


def _plus(held: pa.ChunkedArray, change: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.add(pc.fill_null(held, 0), pc.fill_null(change, 0))


def apply_kpi_deltas(held_rows: pa.Table, deltas: pa.Table) -> pa.Table:
    """DEVICE_MINUTE_KPIS rows: `held_rows` (gold's rows of the touched minutes, every car) with
    `deltas` (`kpi_deltas`) added; rows no delta touches come out unchanged."""
    held = held_rows.select(_DEVICE.names).cast(_DEVICE)
    held = held.rename_columns([c if c in KEYS else f"h.{c}" for c in held.column_names])
    change = deltas.rename_columns([c if c in KEYS else f"d.{c}" for c in deltas.column_names])
    joined = held.join(change, list(KEYS), join_type="full outer")

    def col(name: str) -> pa.ChunkedArray:
        return joined.column(name)

    events = _plus(col("h.events"), col("d.events"))
    zero = Decimal(0)
    speed_sum = pc.add(pc.fill_null(col("h.speed_sum_kmph").cast(_SUM), zero),
                       pc.fill_null(col("d.speed_sum").cast(_SUM), zero)).cast(_SUM)
    counts = {c: _plus(col(f"h.{c}"), col(f"d.{c}")) for c in TYPE_COUNTS}
    alerts = counts[TYPE_COUNTS[0]]
    for count in TYPE_COUNTS[1:]:
        alerts = pc.add(alerts, counts[count])
    averages = [exact_average(total, n, DEVICE_AVERAGE_SCALE)
                for total, n in zip(speed_sum.to_pylist(), events.to_pylist())]
    columns = {
        "car_id": col("car_id"), "window_start": col("window_start"), "events": events,
        "avg_speed_kmph": pa.array(averages, pa.float64()),
        "max_speed_kmph": pc.max_element_wise(col("h.max_speed_kmph"),
                                              col("d.max_speed_kmph")),
        "max_engine_temp_c": pc.max_element_wise(col("h.max_engine_temp_c"),
                                                 col("d.max_engine_temp_c")),
        "min_fuel_level": pc.min_element_wise(col("h.min_fuel_level"), col("d.min_fuel_level")),
        "alerts": alerts, "speed_sum_kmph": speed_sum, **counts,
    }
    return pa.table([columns[c] for c in _DEVICE.names], names=_DEVICE.names).cast(_DEVICE)


def fleet_from_device(device_rows: pa.Table) -> pa.Table:
    """FLEET_MINUTE_KPIS rows of the minutes `device_rows` holds (all cars of each minute)."""
    device = device_rows.select(_DEVICE.names).cast(_DEVICE)
    summed = ["events", "speed_sum_kmph", "alerts", *TYPE_COUNTS]
    fleet = device.group_by("window_start").aggregate(
        [("car_id", "count"), *[(c, "sum") for c in summed]])
    averages = [exact_average(total, n, FLEET_AVERAGE_SCALE) for total, n in zip(
        fleet.column("speed_sum_kmph_sum").to_pylist(), fleet.column("events_sum").to_pylist())]
    columns = {"window_start": fleet.column("window_start"),
               "active_cars": fleet.column("car_id_count"),
               "avg_speed_kmph": pa.array(averages, pa.float64()),
               **{c: fleet.column(f"{c}_sum") for c in summed}}
    return pa.table([columns[c] for c in _FLEET.names], names=_FLEET.names).cast(_FLEET)
