"""Stateful alerts: each rule's exact alerts, and batch/arrival-order independence."""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
import random

from pyspark.sql import functions as F, types as T
from pyspark.testing import assertDataFrameEqual

from gold.schema import ALERTS_SCHEMA
from gold.stateful import required_lookback, stateful_alerts
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
ALL_OFF = dict(sustained_overheat_enabled=False, fuel_drop_enabled=False, gps_jump_enabled=False,
               speed_anomaly_enabled=False)


def only(rule: str, **overrides) -> AlertRules:
    """AlertRules with only `rule` (e.g. 'fuel_drop') of the stateful rules switched on."""
    return dataclasses.replace(AlertRules(), **{**ALL_OFF, f"{rule}_enabled": True, **overrides})


def reading(event_id, car, seconds, speed=80.0, fuel=50.0, temp=90.0, lat=24.7, lon=46.7,
            gps_valid=True):
    ts = T0 + dt.timedelta(seconds=seconds)
    return (event_id, car, "trip", ts, speed, fuel, temp, lat, lon, gps_valid, "raw", 0, 0, ts)


def alert(event_id, car, seconds, alert_type, severity, message, observed, threshold):
    digest = hashlib.sha256(f"{event_id}|{alert_type}".encode()).hexdigest()[:32]
    return (digest, event_id, car, T0 + dt.timedelta(seconds=seconds), alert_type, severity,
            message, observed, threshold)


def run(spark, rows, rules):
    return stateful_alerts(spark.createDataFrame(rows, SILVER), rules)


def test_sustained_overheat_fires_once_per_run_at_the_completing_reading(spark):
    temps = [100, 106, 107, 108, 109, 110, 111, 104, 106, 106, 106, 106, 106]
    rows = [reading(f"a{i:02d}", "a", 10 * i, temp=float(t)) for i, t in enumerate(temps)]
    rows += [reading(f"b{i}", "b", 60 * i, temp=106.0) for i in range(5)]  # gaps of exactly 60 s
    rows += [reading(f"c{i}", "c", 10 * i + (61 if i >= 4 else 0), temp=106.0) for i in range(8)]
    rows += [reading(f"d{i}", "d", 10 * i, temp=105.0 if i == 4 else 106.0) for i in range(9)]
    # a tie in event time is ordered by event_id: e-a (cool) before e-b (hot)
    rows += [reading("e-b", "e", 0, temp=106.0), reading("e-a", "e", 0, temp=100.0)]
    rows += [reading(f"e{i}", "e", 10 * i, temp=106.0) for i in range(1, 5)]
    message = "Engine temperature above 105 °C for 5 consecutive readings (now {} °C)"
    expected = [
        alert("a05", "a", 50, "SUSTAINED_OVERHEAT", "HIGH", message.format("110.0"), 110.0, 105.0),
        alert("a12", "a", 120, "SUSTAINED_OVERHEAT", "HIGH", message.format("106.0"), 106.0,
              105.0),
        alert("b4", "b", 240, "SUSTAINED_OVERHEAT", "HIGH", message.format("106.0"), 106.0, 105.0),
        alert("e4", "e", 40, "SUSTAINED_OVERHEAT", "HIGH", message.format("106.0"), 106.0, 105.0),
    ]
    actual = run(spark, rows, only("sustained_overheat"))
    assertDataFrameEqual(actual, spark.createDataFrame(expected, ALERTS_SCHEMA))


def test_fuel_drop_without_refuel_within_the_window(spark):
    rows = [reading(f"a{k:02d}", "a", 60 * k, fuel=60.0 - 2 * k) for k in range(14)]
    rows += [reading("b0", "b", 0, fuel=60.0), reading("b1", "b", 600, fuel=44.0)]
    rows += [reading("c0", "c", 0, fuel=60.0), reading("c1", "c", 600.000001, fuel=44.0)]
    rows += [reading(f"d{k}", "d", 60 * k, fuel=f)
             for k, f in enumerate([60.0, 55.0, 55.5, 44.0, 40.0])]  # 55 -> 55.5 is a refuel
    message = "Fuel fell {} points ({}% to {}%) within 10 min without a refuel"
    expected = [
        alert("a08", "a", 480, "FUEL_DROP", "HIGH", message.format("16.0", "60.0", "44.0"), 16.0,
              15.0),
        alert("b1", "b", 600, "FUEL_DROP", "HIGH", message.format("16.0", "60.0", "44.0"), 16.0,
              15.0),
        alert("d4", "d", 240, "FUEL_DROP", "HIGH", message.format("15.5", "55.5", "40.0"), 15.5,
              15.0),
    ]
    actual = run(spark, rows, only("fuel_drop"))
    assertDataFrameEqual(actual, spark.createDataFrame(expected, ALERTS_SCHEMA))


def haversine_km(a, b):
    (lat1, lon1), (lat2, lon2) = a, b
    dlat, dlon = math.radians(lat2 - lat1), math.radians(lon2 - lon1)
    h = (math.sin(dlat / 2) ** 2
         + math.cos(math.radians(lat1)) * math.cos(math.radians(lat2)) * math.sin(dlon / 2) ** 2)
    return 2 * 6371.0088 * math.asin(math.sqrt(min(h, 1.0)))


def test_gps_jump_between_consecutive_valid_fixes(spark):
    fixes = [("g1", 0, 24.0, 46.0, True), ("g2", 10, 0.0, 0.0, False),
             ("g3", 20, 24.0, 46.001, True), ("g4", 30, 24.1, 46.001, True),
             ("g5", 91, 25.0, 46.0, True),  # 61 s after g4: not compared
             ("g6", 91.5, 25.00045, 46.0, True),  # 50 m in 0.5 s, time floored at 1 s
             ("g7", 92.5, 25.00135, 46.0, True)]
    rows = [reading(e, "a", s, lat=la, lon=lo, gps_valid=v) for e, s, la, lo, v in fixes]
    jumps = []
    for event_id, prev, now, seconds in (("g4", (24.0, 46.001), (24.1, 46.001), 10.0),
                                         ("g7", (25.00045, 46.0), (25.00135, 46.0), 1.0)):
        km = haversine_km(prev, now)
        kmph = km / (seconds / 3600)
        message = (f"GPS position jumped {km:.3f} km in {seconds:.1f} s (implied {kmph:.0f} km/h,"
                   f" limit 300 km/h)")
        at = {"g4": 30, "g7": 92.5}[event_id]
        jumps.append(alert(event_id, "a", at, "GPS_JUMP", "MEDIUM", message, kmph, 300.0))
    actual = run(spark, rows, only("gps_jump"))
    assertDataFrameEqual(actual, spark.createDataFrame(jumps, ALERTS_SCHEMA))


def test_speed_anomaly_against_the_cars_previous_readings(spark):
    rules = only("speed_anomaly", speed_anomaly_min_readings=5, speed_anomaly_zscore=3.0)
    base = [50.0, 52.0, 48.0, 51.0, 49.0]
    rows = [reading(f"a{i}", "a", 10 * i, speed=s) for i, s in enumerate(base + [60.0, 51.0])]
    # baseline spans more than speed_anomaly_window_seconds (300 s): no verdict
    rows += [reading(f"b{i}", "b", 70 * i, speed=s) for i, s in enumerate(base)]
    rows += [reading("b5", "b", 301, speed=90.0)]
    rows += [reading(f"c{i}", "c", 70 * i, speed=s) for i, s in enumerate(base)]
    rows += [reading("c5", "c", 300, speed=90.0)]
    rows += [reading(f"d{i}", "d", 10 * i, speed=s) for i, s in enumerate(base[:4] + [90.0])]
    message = ("Speed {} km/h is {} standard deviations from the car's mean of 50.0 km/h over "
               "its previous 5 readings")
    expected = [  # std of the baseline (1.58) is floored at 2.0
        alert("a5", "a", 50, "SPEED_ANOMALY", "LOW", message.format("60.0", "5.0"), 5.0, 3.0),
        alert("c5", "c", 300, "SPEED_ANOMALY", "LOW", message.format("90.0", "20.0"), 20.0, 3.0),
    ]
    assertDataFrameEqual(run(spark, rows, rules), spark.createDataFrame(expected, ALERTS_SCHEMA))


def test_off_switches(spark):
    rows = [reading(f"a{i}", "a", 10 * i, speed=50.0 + 100 * (i == 40), fuel=90.0 - 3 * i,
                    temp=120.0, lat=24.0 + i) for i in range(45)]
    off = dataclasses.replace(AlertRules(), **ALL_OFF)
    assert run(spark, rows, off).count() == 0
    kinds = {r.alert_type for r in run(spark, rows, AlertRules()).collect()}
    assert kinds == {"SUSTAINED_OVERHEAT", "FUEL_DROP", "GPS_JUMP", "SPEED_ANOMALY"}


def test_required_lookback_is_the_longest_enabled_rule():
    assert required_lookback(AlertRules()) == dt.timedelta(minutes=10)
    no_fuel = dataclasses.replace(AlertRules(), fuel_drop_enabled=False)
    assert required_lookback(no_fuel) == dt.timedelta(seconds=300)
    assert required_lookback(dataclasses.replace(AlertRules(), **ALL_OFF)) == dt.timedelta(0)


SMALL = dataclasses.replace(
    AlertRules(), sustained_overheat_c=105.0, sustained_overheat_readings=3,
    sustained_overheat_max_gap_seconds=15.0, fuel_drop_points=5.0, fuel_drop_minutes=2.0,
    gps_jump_kmph=300.0, gps_jump_max_gap_seconds=30.0, speed_anomaly_min_readings=4,
    speed_anomaly_zscore=3.0, speed_anomaly_window_seconds=60.0, speed_anomaly_min_std_kmph=1.0)


def drive(car: str, n: int, rng: random.Random) -> list[tuple]:
    """A noisy drive that trips every stateful rule now and then."""
    rows, t, fuel, temp, lat = [], 0.0, 80.0, 104.0, 24.0
    for i in range(n):
        t += rng.choice([4.0, 7.0, 9.0, 12.0, 20.0])
        fuel = 95.0 if rng.random() < 0.05 else max(fuel - rng.choice([0.2, 0.5, 2.5]), 1.0)
        temp = min(max(temp + rng.choice([-1.5, -0.5, 0.5, 1.5]), 100.0), 110.0)
        lat += 0.2 if rng.random() < 0.05 else 0.0003
        speed = 140.0 if rng.random() < 0.06 else 60.0 + rng.random() * 4
        valid = rng.random() > 0.1
        rows.append(reading(f"{car}-{i:03d}", car, t, speed=round(speed, 2), fuel=fuel,
                            temp=temp, lat=lat if valid else 0.0, lon=46.0 if valid else 0.0,
                            gps_valid=valid))
    return rows


def incremental(spark, batches, rules):
    """Gold kept as the sink does: per batch and car, recompute [lo, hi + lookback] only."""
    back = int(required_lookback(rules).total_seconds() * 1_000_000)
    silver, gold = [], {}
    for batch in batches:
        silver += batch
        frame = spark.createDataFrame(silver, SILVER).withColumn("_us", F.unix_micros("event_ts"))
        for car in sorted({r[1] for r in batch}):
            stamps = [int((r[3] - dt.datetime(1970, 1, 1, tzinfo=UTC)) / dt.timedelta(
                microseconds=1)) for r in batch if r[1] == car]
            lo, hi = min(stamps), max(stamps) + back
            history = frame.where((F.col("car_id") == car) & F.col("_us").between(lo - back, hi))
            fresh = (stateful_alerts(history, rules).withColumn("_us", F.unix_micros("event_ts"))
                     .where(F.col("_us").between(lo, hi)).collect())
            gold = {k: v for k, v in gold.items() if not (v.car_id == car and lo <= v._us <= hi)}
            gold.update({r.alert_id: r for r in fresh})
    return spark.createDataFrame([tuple(r)[:-1] for r in gold.values()], ALERTS_SCHEMA)


def test_batches_late_and_out_of_order_give_the_one_batch_alerts(spark):
    rng = random.Random(7)
    rows = drive("x", 90, rng) + drive("y", 90, rng)
    arrival = {}
    for r in rows:
        late = rng.random() < 0.12
        arrival[r[0]] = r[3] + dt.timedelta(seconds=rng.uniform(200, 500) if late else 1)
    arrival["x-010"] = rows[10][3] + dt.timedelta(hours=3)  # hours late: the last batch
    ordered = sorted(rows, key=lambda r: arrival[r[0]])
    batches = [ordered[:60], ordered[60:110], ordered[110:150], ordered[150:]]
    for batch in batches:
        rng.shuffle(batch)
    one_shot = run(spark, rows, SMALL)
    kinds = {r.alert_type for r in one_shot.collect()}
    assert kinds == {"SUSTAINED_OVERHEAT", "FUEL_DROP", "GPS_JUMP", "SPEED_ANOMALY"}
    assertDataFrameEqual(incremental(spark, batches, SMALL), one_shot, rtol=0, atol=0)
