"""Incremental minute KPIs: held rows + a batch's deltas = a recomputation from all readings."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pyspark.sql import functions as F, types as T
from pyspark.testing import assertDataFrameEqual

from gold.changes import DELETE, INSERT, OP, UPDATE
from gold.kpi_updates import apply_kpi_deltas, fleet_from_device, kpi_deltas
from gold.kpis import car_minute_stats, device_kpis_from_stats, fleet_kpis_from_stats
from gold.schema import ALERTS_SCHEMA, DEVICE_MINUTE_KPIS_SCHEMA, FLEET_MINUTE_KPIS_SCHEMA
from silver.schema import SILVER_SCHEMA

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
M1 = T0 + dt.timedelta(minutes=1)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def reading(event_id, car, ts, speed, fuel=50.0, temp=90.0):
    return (event_id, car, None, ts, speed, fuel, temp, 24.7, 46.7, True, "raw", 0, 1, ts)


def alert(event_id, car, ts, kind, op=None):
    row = (f"{event_id}-{kind}", event_id, car, ts, kind, "LOW", "m", None, None)
    return row if op is None else (*row, op)


FIRST = [reading("a1", "a", at(1), 60.1), reading("a2", "a", at(30), 80.2, fuel=40.0),
         reading("b1", "b", at(10), 50.0, temp=95.0)]
FIRST_ALERTS = [alert("a2", "a", at(30), "LOW_FUEL"), alert("a2", "a", at(30), "FUEL_DROP")]
# batch 2: a late reading of car a in 10:00 that removes its FUEL_DROP and adds an OVERSPEED,
# a new car c in 10:00, and car a's first reading of 10:01
SECOND = [reading("a0", "a", at(0), 150.3, fuel=99.0), reading("c1", "c", at(5), 70.7),
          reading("a3", "a", at(61), 90.0, temp=101.0)]
SECOND_CHANGES = [alert("a0", "a", at(0), "OVERSPEED", INSERT),
                  alert("a2", "a", at(30), "FUEL_DROP", DELETE),
                  alert("a2", "a", at(30), "LOW_FUEL", UPDATE)]
CHANGES_SCHEMA = T.StructType([*ALERTS_SCHEMA.fields, T.StructField(OP, T.StringType())])


def batch_device(spark, readings, alerts):
    stats = car_minute_stats(spark.createDataFrame(readings, SILVER_SCHEMA),
                             spark.createDataFrame(alerts, ALERTS_SCHEMA))
    return device_kpis_from_stats(stats), fleet_kpis_from_stats(stats)


def test_deltas_count_readings_and_alert_changes_per_car_and_minute(spark):
    deltas = kpi_deltas(spark.createDataFrame(SECOND, SILVER_SCHEMA),
                        spark.createDataFrame(SECOND_CHANGES, CHANGES_SCHEMA))
    got = {(r.car_id, r.window_start.minute): r for r in deltas.collect()}
    assert set(got) == {("a", 0), ("c", 0), ("a", 1)}
    a0 = got[("a", 0)]
    assert (a0.events, a0.speed_sum, a0.max_speed_kmph, a0.min_fuel_level) == (
        1, Decimal("150.300000000"), 150.3, 99.0)
    assert (a0.overspeed_alerts, a0.fuel_drop_alerts, a0.low_fuel_alerts) == (1, -1, 0)
    assert (got[("c", 0)].events, got[("c", 0)].overspeed_alerts) == (1, 0)


def test_held_rows_plus_deltas_equal_a_recomputation_bit_for_bit(spark):
    held, _ = batch_device(spark, FIRST, FIRST_ALERTS)
    deltas = kpi_deltas(spark.createDataFrame(SECOND, SILVER_SCHEMA),
                        spark.createDataFrame(SECOND_CHANGES, CHANGES_SCHEMA))
    updated = apply_kpi_deltas(held, deltas)
    after_alerts = [FIRST_ALERTS[0], alert("a0", "a", at(0), "OVERSPEED")]
    expected_device, expected_fleet = batch_device(spark, FIRST + SECOND, after_alerts)
    assertDataFrameEqual(updated, expected_device, rtol=0, atol=0)
    assertDataFrameEqual(fleet_from_device(updated), expected_fleet, rtol=0, atol=0)
    assert updated.schema.simpleString() == DEVICE_MINUTE_KPIS_SCHEMA.simpleString()
    assert fleet_from_device(updated).schema.fieldNames() == FLEET_MINUTE_KPIS_SCHEMA.fieldNames()


def test_rows_no_delta_touches_come_out_unchanged(spark):
    held, _ = batch_device(spark, FIRST, FIRST_ALERTS)
    only_c = kpi_deltas(spark.createDataFrame([SECOND[1]], SILVER_SCHEMA),
                        spark.createDataFrame([], CHANGES_SCHEMA))
    updated = apply_kpi_deltas(held, only_c)
    assertDataFrameEqual(updated.where(F.col("car_id") != "c"), held, rtol=0, atol=0)
    assert updated.where(F.col("car_id") == "c").select("events", "avg_speed_kmph").collect() \
        == [(1, 70.7)]


def test_an_average_stays_exact_when_readings_come_in_many_batches(spark):
    speeds = [0.1, 0.2, 0.3, 0.7, 1.1, 2.9]
    readings = [reading(f"e{i}", "a", at(i), s) for i, s in enumerate(speeds)]
    held, _ = batch_device(spark, readings[:1], [])
    for row in readings[1:]:
        delta = kpi_deltas(spark.createDataFrame([row], SILVER_SCHEMA),
                           spark.createDataFrame([], CHANGES_SCHEMA))
        held = spark.createDataFrame(apply_kpi_deltas(held, delta).collect(),
                                     DEVICE_MINUTE_KPIS_SCHEMA)
    expected, _ = batch_device(spark, readings, [])
    assertDataFrameEqual(held, expected, rtol=0, atol=0)
    assert held.first().speed_sum_kmph == Decimal("5.300000000")
