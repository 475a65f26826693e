"""Events three hours late correct their old KPI windows in Delta and in PostgreSQL.

Car A's readings of 10:00-10:02 arrive in a later micro-batch than its readings of 13:00-13:01
(a car that was offline). The pipeline runs twice (available-now) on a fresh topic, lake and
database; after each run gold in Delta is compared with rows computed in plain Python from the
literal events (expected_gold) and PostgreSQL with Delta (lake_equality), and the old windows
are spelled out by hand.
"""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from kafka import KafkaProducer

from fleetlake.runner import prepare, run_available_now

from .expected_gold import expected_gold, reading
from .lake_equality import assert_pg_mirrors_delta, difference

pytestmark = pytest.mark.integration

UTC = dt.timezone.utc
# Kafka record timestamp of every message of run 1 (13:10Z) and of run 2 (13:20Z)
KAFKA_MS = {run: int(dt.datetime(2026, 3, 1, 13, minute, tzinfo=UTC).timestamp() * 1000)
            for run, minute in ((1, 10), (2, 20))}


def body(event_id: str, car: str, hhmmss: str, speed: float, fuel: float = 50.0,
         temp: float = 90.0, gps: bool = True) -> dict:
    event = {"event_id": event_id, "car_id": car, "event_timestamp": f"2026-03-01T{hhmmss}Z",
             "speed_kmph": speed, "fuel_level": fuel, "engine_temp_c": temp}
    if gps:
        event.update(latitude=26.4, longitude=50.1)
    return event


ON_TIME = [  # run 1: cars B and C at 10:00-10:01 (sent then), A and B at 13:00-13:01
    body("b1", "B", "10:00:00", 60.0), body("b2", "B", "10:00:30", 80.0),
    body("b3", "B", "10:01:00", 100.0, temp=112.0),  # ENGINE_OVERHEAT
    body("b4", "B", "13:00:00", 90.0),
    body("c1", "C", "10:00:10", 40.0, fuel=9.5),  # LOW_FUEL
    body("c2", "C", "10:00:50", 50.0),
    body("a1", "A", "13:00:00", 60.0), body("a2", "A", "13:00:30", 150.0),  # OVERSPEED
    body("a3", "A", "13:01:00", 70.0),
]
LATE = [  # run 2: A's readings of three hours earlier, and one on-time reading of B
    body("a-late1", "A", "10:00:15", 150.0, temp=115.0),  # OVERSPEED, ENGINE_OVERHEAT
    body("a-late2", "A", "10:00:45", 100.0, fuel=8.0),  # LOW_FUEL
    body("a-late3", "A", "10:01:30", 40.0, gps=False),  # GPS_INVALID (missing)
    body("a-late4", "A", "10:02:00", 30.0),  # a minute no other car has
    body("b5", "B", "13:05:00", 75.0),
]


def at(hour: int, minute: int) -> dt.datetime:
    return dt.datetime(2026, 3, 1, hour, minute, tzinfo=UTC)


def produce(settings, events: list[dict], kafka_ms: int) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.effective_kafka_bootstrap, acks="all")
    for event in events:
        producer.send(settings.topic, key=event["car_id"].encode(),
                      value=json.dumps(event).encode(), timestamp_ms=kafka_ms)
    producer.flush()
    producer.close()


def run_and_check(spark, settings, events: list[dict], kafka_ms: int,
                  sent: list) -> dict[str, list[tuple]]:
    """Produce `events`, run the pipeline; assert gold (Delta and PostgreSQL) is as expected."""
    produce(settings, events, kafka_ms)
    sent += [reading(event, kafka_ms) for event in events]
    run_available_now(spark, settings)
    gold = assert_pg_mirrors_delta(spark, settings)
    for name, rows in expected_gold(sent).items():
        assert gold[name] == rows, f"gold.{name}: {difference(rows, gold[name])}"
    return gold


def old_windows(gold: dict[str, list[tuple]], table: str) -> list[tuple]:
    """Rows of `table` whose window starts before 11:00 (the windows the late events hit)."""
    column = 1 if table == "device_minute_kpis" else 0
    return [row for row in gold[table] if row[column] < at(11, 0)]


def test_events_hours_late_correct_old_windows_in_delta_and_postgres(spark, threshold_only_settings):
    settings, sent = threshold_only_settings, []
    prepare(spark, settings)
    before = run_and_check(spark, settings, ON_TIME, KAFKA_MS[1], sent)
    zeros = (0, 0, 0, 0)  # stateful alert counts
    # (window_start, active_cars, events, avg_speed, alerts, overspeed, overheat, low_fuel, gps)
    assert old_windows(before, "fleet_minute_kpis") == [
        (at(10, 0), 2, 4, 57.5, 1, 0, 0, 1, 0, *zeros),
        (at(10, 1), 1, 1, 100.0, 1, 0, 1, 0, 0, *zeros)]
    assert [r for r in old_windows(before, "device_minute_kpis") if r[0] == "A"] == []

    after = run_and_check(spark, settings, LATE, KAFKA_MS[2], sent)
    assert old_windows(after, "fleet_minute_kpis") == [
        (at(10, 0), 3, 6, 80.0, 4, 1, 1, 2, 0, *zeros),
        (at(10, 1), 2, 2, 70.0, 2, 0, 1, 0, 1, *zeros),
        (at(10, 2), 1, 1, 30.0, 0, 0, 0, 0, 0, *zeros)]
    # (car, window_start, events, avg, max speed, max engine temp, min fuel, alerts, speed sum,
    #  overspeed, overheat, low_fuel, gps_invalid, then the four stateful alert counts)
    assert [r for r in old_windows(after, "device_minute_kpis") if r[0] == "A"] == [
        ("A", at(10, 0), 2, 125.0, 150.0, 115.0, 8.0, 3, Decimal(250), 1, 1, 1, 0, *zeros),
        ("A", at(10, 1), 1, 40.0, 40.0, 90.0, 50.0, 1, Decimal(40), 0, 0, 0, 1, *zeros),
        ("A", at(10, 2), 1, 30.0, 30.0, 90.0, 50.0, 0, Decimal(30), 0, 0, 0, 0, *zeros)]
    # other cars' old windows and A's recent windows are unchanged
    unchanged = [r for r in before["device_minute_kpis"] if r[0] != "A" or r[1] >= at(11, 0)]
    assert set(unchanged) <= set(after["device_minute_kpis"])
    assert [r[:2] for r in after["device_latest"]] == [("A", "a3"), ("B", "b5"), ("C", "c2")]
    # one row per gold batch (ids are the gold query's: an empty first batch is skipped)
    assert [r[3:7] for r in after["dq_batch_metrics"]] == [(9, 9, 0, 0), (5, 5, 0, 0)]
    assert after["dq_batch_metrics"][0][1] < after["dq_batch_metrics"][1][1]
    assert [r[7] for r in after["dq_batch_metrics"]] == [(), ()]
