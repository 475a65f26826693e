"""The whole chain on the real services: Kafka -> bronze -> silver/quarantine -> gold -> PostgreSQL."""
from __future__ import annotations

import hashlib
import json
from collections import Counter

import pytest
from kafka import KafkaProducer

from fleetlake.runner import prepare, run_available_now

from .lake_equality import assert_pg_mirrors_delta

pytestmark = pytest.mark.integration

KAFKA_TS_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: record timestamp of every message


def event(event_id: str | None, car: str, ts: str, speed, fuel=50.0, temp=90.0,
          lat=26.4, lon=50.1, **extra) -> bytes:
    body = {"car_id": car, "event_timestamp": ts, "speed_kmph": speed, "fuel_level": fuel,
            "engine_temp_c": temp, "latitude": lat, "longitude": lon, **extra}
    if event_id is not None:
        body["event_id"] = event_id
    if speed is None:
        del body["speed_kmph"]
    return json.dumps(body).encode()


E1 = event("e1", "A", "2025-12-31T23:59:00Z", 80.0)
E2 = event("e2", "B", "2025-12-31T23:59:10+03:00", 150.0, fuel=5.0, temp=120.0, lat=0, lon=0)
COURSE = event(None, "D", "2025-12-31 23:58:30", 141.0, fuel=40.0, temp=95.0, lat=26.3, lon=50.2,
               trip_id="T1", trip_start_time="2025-12-31 23:40:00", trip_start_latitude=26.0,
               trip_start_longitude=50.0, trip_start_date="2025-12-31", message_key="D")
COURSE_ID = hashlib.sha256(b"D|T1|2025-12-31 23:58:30").hexdigest()[:32]
FIRST_RUN = [
    (b"A", E1), (b"B", E2), (b"A", E1),  # the second E1 is a retransmission
    (b"X", b"{not json"),
    (b"C", event("e5", "C", "2025-12-31T23:59:00Z", None)),
    (b"C", event("e6", "C", "2025-12-31T23:59:01Z", "87.5")),
    (b"D", COURSE),
    (b"E", event("e8", "E", "2026-01-01T00:10:00Z", 50.0)),
    (b"F", event("e9", "F", "2025-12-31T23:59:00Z", 401.0)),
]
SECOND_RUN = [(b"B", E2), (b"G", event("e10", "G", "2025-12-31T23:59:30Z", 60.0, fuel=9.0))]


def produce(settings, messages) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.effective_kafka_bootstrap, acks="all")
    for key, value in messages:
        producer.send(settings.topic, key=key, value=value, timestamp_ms=KAFKA_TS_MS)
    producer.flush()
    producer.close()


def read_delta(spark, settings, layer, name):
    return spark.read.format("delta").load(settings.table_path(layer, name))


def test_two_runs_through_every_layer(spark, threshold_only_settings):
    settings = threshold_only_settings
    prepare(spark, settings)  # creates the topic before we produce
    produce(settings, FIRST_RUN)
    run_available_now(spark, settings)
    produce(settings, SECOND_RUN)
    run_available_now(spark, settings)
    sent = [value for _, value in FIRST_RUN + SECOND_RUN]

    bronze = read_delta(spark, settings, "bronze", "telemetry_raw").collect()
    assert Counter(bytes(r.value) for r in bronze) == Counter(sent)
    assert len({(r.partition, r.offset) for r in bronze}) == len(sent)
    assert {r.topic for r in bronze} == {settings.topic}

    silver = read_delta(spark, settings, "silver", "telemetry")
    assert sorted(r.event_id for r in silver.collect()) == sorted(["e1", "e2", COURSE_ID, "e10"])
    e2_row = silver.where("event_id = 'e2'").first()
    assert e2_row.event_ts.isoformat() == "2025-12-31T20:59:10"  # +03:00 normalised to UTC
    assert e2_row.gps_valid is False

    quarantine = read_delta(spark, settings, "silver", "quarantine").collect()
    assert sorted(tuple(r.reasons) for r in quarantine) == sorted([
        ("MALFORMED_JSON",), ("MISSING_FIELD:speed_kmph",), ("TYPE_MISMATCH:speed_kmph",),
        ("TIMESTAMP_IN_FUTURE",), ("OUT_OF_RANGE:speed_kmph",)])

    dq = read_delta(spark, settings, "gold", "dq_batch_metrics").collect()
    totals = {c: sum(getattr(r, c) for r in dq)
              for c in ("rows_in", "valid_rows", "quarantined_rows", "duplicate_rows")}
    assert totals == {"rows_in": 11, "valid_rows": 6, "quarantined_rows": 5, "duplicate_rows": 2}
    assert totals["rows_in"] == len(bronze) == silver.count() + len(quarantine) + 2

    gold = assert_pg_mirrors_delta(spark, settings)  # every gold table, and the ledger
    expected_alerts = sorted([("e2", "ENGINE_OVERHEAT"), ("e2", "GPS_INVALID"), ("e2", "LOW_FUEL"),
                              ("e2", "OVERSPEED"), (COURSE_ID, "OVERSPEED"), ("e10", "LOW_FUEL")])
    assert sorted((r[1], r[4]) for r in gold["alerts"]) == expected_alerts
    assert [r[:2] for r in gold["device_latest"]] == [
        ("A", "e1"), ("B", "e2"), ("D", COURSE_ID), ("G", "e10")]
    assert sum(r[2] for r in gold["fleet_minute_kpis"]) == 4
    assert len({r[1] for r in gold["dq_batch_metrics"]}) == 2  # one gold batch per run
