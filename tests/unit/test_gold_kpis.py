"""Minute KPIs (windows, alert counts), latest device state with ties, the DQ batch row."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pyspark.sql import functions as F, types as T
from pyspark.testing import assertDataFrameEqual

from gold.kpis import device_latest, device_minute_kpis, dq_batch_metrics_row, fleet_minute_kpis
from gold.schema import (ALERTS_SCHEMA, DEVICE_LATEST_SCHEMA, DEVICE_MINUTE_KPIS_SCHEMA,
                         DQ_BATCH_METRICS_SCHEMA, FLEET_MINUTE_KPIS_SCHEMA)

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
M1 = T0 + dt.timedelta(minutes=1)
SILVER = T.StructType([T.StructField(n, t) for n, t in (
    ("event_id", T.StringType()), ("car_id", T.StringType()), ("trip_id", T.StringType()),
    ("event_ts", T.TimestampType()), ("speed_kmph", T.DoubleType()),
    ("fuel_level", T.DoubleType()), ("engine_temp_c", T.DoubleType()),
    ("latitude", T.DoubleType()), ("longitude", T.DoubleType()),
    ("gps_valid", T.BooleanType()), ("topic", T.StringType()), ("partition", T.IntegerType()),
    ("offset", T.LongType()), ("kafka_timestamp", T.TimestampType()))])


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def reading(event_id, car, ts, speed=80.0, fuel=50.0, temp=90.0, kafka_ts=None, partition=0,
            offset=0):
    return (event_id, car, "trip", ts, speed, fuel, temp, 24.7, 46.7, True, "raw", partition,
            offset, kafka_ts or ts)


def an_alert(event_id, car, ts, alert_type):
    return (f"id-{event_id}-{alert_type}", event_id, car, ts, alert_type, "LOW", "m", None, None)


READINGS = [
    reading("a1", "a", at(0), speed=60.0, fuel=55.0, temp=90.0),
    reading("a2", "a", at(59.999999), speed=80.0, fuel=40.0, temp=95.0),  # last µs of 10:00
    reading("a3", "a", at(60), speed=100.0, fuel=39.0, temp=91.0),  # first µs of 10:01
    reading("b1", "b", at(30), speed=50.0, fuel=70.0, temp=88.0),
]
ALERTS = [
    an_alert("a1", "a", at(0), "OVERSPEED"),
    an_alert("a2", "a", at(59.999999), "SUSTAINED_OVERHEAT"),
    an_alert("a3", "a", at(60), "GPS_INVALID"),
    an_alert("a3", "a", at(60), "SPEED_ANOMALY"),
]


def frames(spark):
    return spark.createDataFrame(READINGS, SILVER), spark.createDataFrame(ALERTS, ALERTS_SCHEMA)


def test_device_minute_kpis_per_car_and_minute(spark):
    silver, alerts = frames(spark)
    #         overspeed, engine_overheat, low_fuel, gps_invalid, sustained, fuel_drop, jump, anomaly
    a_t0 = (1, 0, 0, 0, 1, 0, 0, 0)
    a_m1 = (0, 0, 0, 1, 0, 0, 0, 1)
    expected = spark.createDataFrame([
        ("a", T0, 2, 70.0, 80.0, 95.0, 40.0, 2, Decimal("140"), *a_t0),
        ("a", M1, 1, 100.0, 100.0, 91.0, 39.0, 2, Decimal("100"), *a_m1),
        ("b", T0, 1, 50.0, 50.0, 88.0, 70.0, 0, Decimal("50"), *(0,) * 8),
    ], DEVICE_MINUTE_KPIS_SCHEMA)
    assertDataFrameEqual(device_minute_kpis(silver, alerts), expected)


def test_fleet_minute_kpis_count_cars_events_and_each_alert_type(spark):
    silver, alerts = frames(spark)
    zeros = dict.fromkeys(["overspeed", "engine_overheat", "low_fuel", "gps_invalid",
                           "sustained_overheat", "fuel_drop", "gps_jump", "speed_anomaly"], 0)

    def row(start, cars, events, avg, total, **kinds):
        return (start, cars, events, avg, total, *{**zeros, **kinds}.values())

    expected = spark.createDataFrame([
        row(T0, 2, 3, 190.0 / 3, 2, overspeed=1, sustained_overheat=1),
        row(M1, 1, 1, 100.0, 2, gps_invalid=1, speed_anomaly=1),
    ], FLEET_MINUTE_KPIS_SCHEMA)
    actual = fleet_minute_kpis(silver, alerts)
    assert actual.columns == FLEET_MINUTE_KPIS_SCHEMA.fieldNames()
    assertDataFrameEqual(actual, expected)


def test_average_does_not_depend_on_row_order(spark):
    speeds = [0.1, 0.2, 0.3, 1e-3, 123.456, 7.77] * 50
    rows = [reading(f"e{i}", "a", at(i % 60), speed=s) for i, s in enumerate(speeds)]
    one = spark.createDataFrame(rows, SILVER).coalesce(1)
    many = spark.createDataFrame(list(reversed(rows)), SILVER).repartition(7)
    empty = spark.createDataFrame([], ALERTS_SCHEMA)
    first = device_minute_kpis(one, empty).first().avg_speed_kmph
    assert device_minute_kpis(many, empty).first().avg_speed_kmph == first


def test_device_latest_breaks_ties_deterministically(spark):
    k = at(100)
    rows = [
        reading("a-early-kafka", "a", at(10), kafka_ts=at(11), offset=5),
        reading("a-late-kafka", "a", at(10), kafka_ts=at(12), offset=1),
        # same event and Kafka time: the greater event_id, whatever the partition/offset
        reading("b-1", "b", at(5), kafka_ts=k, partition=2, offset=9),
        reading("b-2", "b", at(5), kafka_ts=k, partition=1, offset=1),
        reading("c-1", "c", at(5), kafka_ts=k, partition=1, offset=8),
        reading("c-2", "c", at(5), kafka_ts=k, partition=1, offset=7),
        reading("e-newest", "e", at(20), kafka_ts=at(21)),
        reading("e-arrived-last", "e", at(10), kafka_ts=at(99)),
    ]
    winners = {"a-late-kafka", "b-2", "c-2", "e-newest"}
    expected = spark.createDataFrame(
        [(r[1], r[0], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[13])
         for r in rows if r[0] in winners], DEVICE_LATEST_SCHEMA)
    shuffled = spark.createDataFrame(rows, SILVER).repartition(3)
    assertDataFrameEqual(device_latest(shuffled), expected)


def test_dq_row_from_counts_and_a_reason_map(spark):
    stamp = dt.datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    actual = dq_batch_metrics_row(
        spark, query_id="q-1", batch_id=7, rows_in=10, valid_rows=8, quarantined_rows=2,
        duplicate_rows=1, quarantine_reasons={"MALFORMED_JSON": 1, "BAD_TIMESTAMP": 1},
        processed_at=F.lit(stamp))
    expected = spark.createDataFrame(
        [("q-1", 7, stamp, 10, 8, 2, 1, {"BAD_TIMESTAMP": 1, "MALFORMED_JSON": 1})],
        DQ_BATCH_METRICS_SCHEMA)
    assertDataFrameEqual(actual, expected)
    assert [(f.name, f.dataType.simpleString()) for f in actual.schema] == [
        (f.name, f.dataType.simpleString()) for f in DQ_BATCH_METRICS_SCHEMA]


def test_dq_row_counts_reasons_of_quarantined_rows(spark):
    stamp = dt.datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    quarantined = spark.createDataFrame(
        [(["MISSING_FIELD:car_id", "BAD_TIMESTAMP"],), (["BAD_TIMESTAMP"],), ([],)],
        "reasons array<string>")
    actual = dq_batch_metrics_row(
        spark, query_id="q-1", batch_id=8, rows_in=5, valid_rows=2, quarantined_rows=3,
        duplicate_rows=0, quarantine_reasons=quarantined, processed_at=F.lit(stamp))
    none = dq_batch_metrics_row(
        spark, query_id="q-1", batch_id=9, rows_in=0, valid_rows=0, quarantined_rows=0,
        duplicate_rows=0, quarantine_reasons=quarantined.limit(0), processed_at=F.lit(stamp))
    expected = spark.createDataFrame([
        ("q-1", 8, stamp, 5, 2, 3, 0, {"BAD_TIMESTAMP": 2, "MISSING_FIELD:car_id": 1}),
        ("q-1", 9, stamp, 0, 0, 0, 0, {}),
    ], DQ_BATCH_METRICS_SCHEMA)
    assertDataFrameEqual(actual.unionByName(none), expected)
