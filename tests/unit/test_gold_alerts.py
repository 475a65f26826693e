"""Threshold alerts: every matching rule fires, boundaries exact, ids deterministic."""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

import pytest
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from gold.alerts import threshold_alerts
from gold.schema import ALERTS_SCHEMA
from infra.settings import AlertRules

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
SILVER = T.StructType([T.StructField(n, t) for n, t in (
    ("event_id", T.StringType()), ("car_id", T.StringType()), ("trip_id", T.StringType()),
    ("event_ts", T.TimestampType()), ("speed_kmph", T.DoubleType()),
    ("fuel_level", T.DoubleType()), ("engine_temp_c", T.DoubleType()),
    ("latitude", T.DoubleType()), ("longitude", T.DoubleType()),
    ("gps_valid", T.BooleanType()), ("topic", T.StringType()), ("partition", T.IntegerType()),
    ("offset", T.LongType()), ("kafka_timestamp", T.TimestampType()))])


def reading(event_id, seconds=0, speed=80.0, fuel=50.0, temp=90.0, lat=24.7, lon=46.7,
            gps_valid=True, car="car-1"):
    ts = T0 + dt.timedelta(seconds=seconds)
    return (event_id, car, "trip-1", ts, speed, fuel, temp, lat, lon, gps_valid, "raw", 0, 0, ts)


def alert(event_id, alert_type, severity, message, observed, threshold, seconds=0, car="car-1"):
    digest = hashlib.sha256(f"{event_id}|{alert_type}".encode()).hexdigest()[:32]
    return (digest, event_id, car, T0 + dt.timedelta(seconds=seconds), alert_type, severity,
            message, observed, threshold)


def alerts_of(spark, rows, rules=AlertRules()):
    return threshold_alerts(spark.createDataFrame(rows, SILVER), rules)


def expected(spark, rows):
    return spark.createDataFrame(rows, ALERTS_SCHEMA)


def test_speed_boundary(spark):
    actual = alerts_of(spark, [reading("at", speed=140.0), reading("over", speed=140.1)])
    assertDataFrameEqual(actual, expected(spark, [
        alert("over", "OVERSPEED", "MEDIUM", "Speed 140.1 km/h above 140 km/h", 140.1, 140.0)]))


def test_engine_temperature_boundary(spark):
    actual = alerts_of(spark, [reading("at", temp=110.0), reading("over", temp=110.01)])
    assertDataFrameEqual(actual, expected(spark, [
        alert("over", "ENGINE_OVERHEAT", "HIGH", "Engine temperature 110.01 °C above 110 °C",
              110.01, 110.0)]))


def test_fuel_boundary(spark):
    actual = alerts_of(spark, [reading("at", fuel=10.0), reading("under", fuel=9.9)])
    assertDataFrameEqual(actual, expected(spark, [
        alert("under", "LOW_FUEL", "LOW", "Fuel level 9.9% below 10%", 9.9, 10.0)]))


def test_gps_invalid_follows_silver_flag(spark):
    # gps_valid is silver's verdict (missing, out of range or exactly (0, 0)); gold trusts it.
    rows = [
        reading("zero", lat=0.0, lon=0.0, gps_valid=False),
        reading("pole", lat=90.0, lon=180.0, gps_valid=True),
        reading("beyond", lat=90.1, lon=10.0, gps_valid=False),
        reading("missing", lat=None, lon=None, gps_valid=False),
        reading("half", lat=24.7, lon=None, gps_valid=False),
        reading("unknown", lat=24.7, lon=46.7, gps_valid=None),
    ]
    assertDataFrameEqual(alerts_of(spark, rows), expected(spark, [
        alert("zero", "GPS_INVALID", "LOW", "GPS position invalid (lat 0.0, lon 0.0)", None, None),
        alert("beyond", "GPS_INVALID", "LOW", "GPS position invalid (lat 90.1, lon 10.0)", None,
              None),
        alert("missing", "GPS_INVALID", "LOW", "GPS position missing", None, None),
        alert("half", "GPS_INVALID", "LOW", "GPS position missing", None, None),
        alert("unknown", "GPS_INVALID", "LOW", "GPS position invalid (lat 24.7, lon 46.7)", None,
              None),
    ]))


def test_every_matching_rule_fires_for_one_event(spark):
    row = reading("bad", speed=152.3, temp=121.5, fuel=3.0, lat=0.0, lon=0.0, gps_valid=False)
    assertDataFrameEqual(alerts_of(spark, [row, reading("fine")]), expected(spark, [
        alert("bad", "OVERSPEED", "MEDIUM", "Speed 152.3 km/h above 140 km/h", 152.3, 140.0),
        alert("bad", "ENGINE_OVERHEAT", "HIGH", "Engine temperature 121.5 °C above 110 °C",
              121.5, 110.0),
        alert("bad", "LOW_FUEL", "LOW", "Fuel level 3.0% below 10%", 3.0, 10.0),
        alert("bad", "GPS_INVALID", "LOW", "GPS position invalid (lat 0.0, lon 0.0)", None, None),
    ]))


def test_thresholds_come_from_settings(spark):
    rules = dataclasses.replace(AlertRules(), overspeed_kmph=100.5, low_fuel_pct=20.0)
    actual = alerts_of(spark, [reading("a", speed=100.6, fuel=15.0)], rules)
    assertDataFrameEqual(actual, expected(spark, [
        alert("a", "OVERSPEED", "MEDIUM", "Speed 100.6 km/h above 100.5 km/h", 100.6, 100.5),
        alert("a", "LOW_FUEL", "LOW", "Fuel level 15.0% below 20%", 15.0, 20.0),
    ]))


def test_output_schema_is_the_contract(spark):
    actual = alerts_of(spark, [reading("a")])
    assert actual.count() == 0
    assert [(f.name, f.dataType) for f in actual.schema] == [
        (f.name, f.dataType) for f in ALERTS_SCHEMA]


@pytest.mark.parametrize("alert_type", ["OVERSPEED", "GPS_INVALID"])
def test_alert_id_is_first_32_hex_of_sha256(spark, alert_type):
    row = reading("evt-42", speed=200.0, gps_valid=False)
    ids = {r.alert_type: r.alert_id for r in alerts_of(spark, [row]).collect()}
    assert ids[alert_type] == hashlib.sha256(f"evt-42|{alert_type}".encode()).hexdigest()[:32]
