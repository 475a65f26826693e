"""Incremental minute KPIs (Arrow, on the driver): held rows + a batch's deltas = a
recomputation from all readings (Spark, gold/kpis.py), bit for bit."""
from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pyarrow as pa
import pytest
from pyspark.sql import functions as F, types as T
from pyspark.testing import assertDataFrameEqual

from gold.changes import DELETE, INSERT, OP, UPDATE
from gold.kpi_updates import (DEVICE_AVERAGE_SCALE, FLEET_AVERAGE_SCALE, apply_kpi_deltas,
                              exact_average, fleet_from_device, kpi_deltas, reading_stats)
from gold.kpis import (SUM_TYPE, average, car_minute_stats, device_kpis_from_stats,
                       fleet_kpis_from_stats)
from gold.schema import (ALERTS_SCHEMA, DEVICE_MINUTE_KPIS_SCHEMA, FLEET_MINUTE_KPIS_SCHEMA,
                         SPEED_SUM_TYPE)
from infra.local_frames import local_frame
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
    """The recomputation from all readings (Spark): device and fleet KPI rows."""
    stats = car_minute_stats(spark.createDataFrame(readings, SILVER_SCHEMA),
                             spark.createDataFrame(alerts, ALERTS_SCHEMA))
    return device_kpis_from_stats(stats), fleet_kpis_from_stats(stats)


def deltas_of(spark, readings, changes) -> pa.Table:
    stats = reading_stats(spark.createDataFrame(readings, SILVER_SCHEMA)).toArrow()
    return kpi_deltas(stats, local_frame(spark, changes, CHANGES_SCHEMA).toArrow())


def as_frame(spark, rows: pa.Table, schema: T.StructType):
    return local_frame(spark, rows, schema)


def test_deltas_count_readings_and_alert_changes_per_car_and_minute(spark):
    deltas = deltas_of(spark, SECOND, SECOND_CHANGES)
    got = {(r["car_id"], r["window_start"].minute): r for r in deltas.to_pylist()}
    assert set(got) == {("a", 0), ("c", 0), ("a", 1)}
    a0 = got[("a", 0)]
    assert (a0["events"], a0["speed_sum"], a0["max_speed_kmph"], a0["min_fuel_level"]) == (
        1, Decimal("150.300000000"), 150.3, 99.0)
    assert (a0["overspeed_alerts"], a0["fuel_drop_alerts"], a0["low_fuel_alerts"]) == (1, -1, 0)
    assert (got[("c", 0)]["events"], got[("c", 0)]["overspeed_alerts"]) == (1, 0)


def test_held_rows_plus_deltas_equal_a_recomputation_bit_for_bit(spark):
    held, _ = batch_device(spark, FIRST, FIRST_ALERTS)
    updated = apply_kpi_deltas(held.toArrow(), deltas_of(spark, SECOND, SECOND_CHANGES))
    after_alerts = [FIRST_ALERTS[0], alert("a0", "a", at(0), "OVERSPEED")]
    expected_device, expected_fleet = batch_device(spark, FIRST + SECOND, after_alerts)
    fleet = fleet_from_device(updated)
    assertDataFrameEqual(as_frame(spark, updated, DEVICE_MINUTE_KPIS_SCHEMA), expected_device,
                         rtol=0, atol=0)
    assertDataFrameEqual(as_frame(spark, fleet, FLEET_MINUTE_KPIS_SCHEMA), expected_fleet,
                         rtol=0, atol=0)
    assert updated.column_names == DEVICE_MINUTE_KPIS_SCHEMA.fieldNames()
    assert fleet.column_names == FLEET_MINUTE_KPIS_SCHEMA.fieldNames()


def test_rows_no_delta_touches_come_out_unchanged(spark):
    held, _ = batch_device(spark, FIRST, FIRST_ALERTS)
    updated = as_frame(spark, apply_kpi_deltas(held.toArrow(), deltas_of(spark, [SECOND[1]], [])),
                       DEVICE_MINUTE_KPIS_SCHEMA)
    assertDataFrameEqual(updated.where(F.col("car_id") != "c"), held, rtol=0, atol=0)
    assert updated.where(F.col("car_id") == "c").select("events", "avg_speed_kmph").collect() \
        == [(1, 70.7)]


def test_an_average_stays_exact_when_readings_come_in_many_batches(spark):
    speeds = [0.1, 0.2, 0.3, 0.7, 1.1, 2.9]
    readings = [reading(f"e{i}", "a", at(i), s) for i, s in enumerate(speeds)]
    held = batch_device(spark, readings[:1], [])[0].toArrow()
    for row in readings[1:]:
        held = apply_kpi_deltas(held, deltas_of(spark, [row], []))
    expected, _ = batch_device(spark, readings, [])
    assertDataFrameEqual(as_frame(spark, held, DEVICE_MINUTE_KPIS_SCHEMA), expected,
                         rtol=0, atol=0)
    assert held.column("speed_sum_kmph").to_pylist() == [Decimal("5.300000000")]


def _sums_and_counts(seed: int) -> list[tuple[Decimal, int]]:
    """Exact speed sums (9 decimals) over counts, from tiny to a day of readings of a fleet,
    with the counts that make long repeating decimals (3, 7, 9, 11, 13, 17, 19, ...)."""
    rng = random.Random(seed)
    nano = Decimal(1).scaleb(-9)
    pairs = [(Decimal(n) * nano, c) for n in (1, 5, 50, 499_999_999) for c in (1, 3, 7, 9, 11)]
    for _ in range(400):
        count = rng.choice((3, 7, 9, 11, 13, 17, 19, 23, 29, 31, 97, rng.randint(1, 10**7)))
        pairs.append((Decimal(rng.randint(0, 400 * 10**9) * count) * nano
                      + Decimal(rng.randint(-10**9, 10**9)) * nano, count))
    return [(abs(total), count) for total, count in pairs]


@pytest.mark.parametrize(("sum_type", "scale"), [
    (SUM_TYPE, DEVICE_AVERAGE_SCALE), (SPEED_SUM_TYPE, FLEET_AVERAGE_SCALE)])
def test_exact_average_is_sparks_average_bit_for_bit(spark, sum_type, scale):
    pairs = _sums_and_counts(seed=scale)
    schema = T.StructType([T.StructField("total", sum_type), T.StructField("n", T.LongType())])
    frame = spark.createDataFrame(pairs, schema).select(
        "total", "n", average(F.col("total"), F.col("n")).alias("avg"))
    got = {(row.total, row.n): row.avg for row in frame.collect()}
    assert [exact_average(total, count, scale) for total, count in pairs] == [
        got[(total, count)] for total, count in pairs]
    assert exact_average(Decimal(1), 0, scale) is None
    assert exact_average(None, 3, scale) is None
