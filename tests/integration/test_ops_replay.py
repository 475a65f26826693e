"""Replay on the real services: the pipeline run to completion in the test's process
(`fleetlake.runner.run_available_now`, what `pipeline run --available-now` runs), then the
`fleetlake` commands under test as subprocesses.

- A lower overspeed threshold, then `fleetlake replay`: exactly the expected alerts change, in
  Delta and in PostgreSQL; `audit show --as-of` returns the rows from before the replay and
  `audit diff` lists exactly the changed rows.
- Messy input (faults on, retransmissions across two runs, events hours late): a replay with
  unchanged config changes nothing in any table, Delta or PostgreSQL (stream = batch).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import time

import pytest
from kafka import KafkaProducer

from fleetlake.runner import run_available_now
from ingestion.admin import ensure_topic

from .lake_equality import assert_pg_mirrors_delta, pg_gold_rows, pg_ledger
from .ops_cli import (STATEFUL_OFF, delta_rows, fleetlake, latest_version, produce_events,
                      write_config)

pytestmark = pytest.mark.integration

UTC = dt.timezone.utc
KAFKA_MS = int(dt.datetime(2026, 3, 1, 10, 5, tzinfo=UTC).timestamp() * 1000)
SPEEDS = {"s1": 100.0, "s2": 125.0, "s3": 130.0, "s4": 139.9, "s5": 140.0, "s6": 141.0,
          "s7": 150.0}
TABLES = ("bronze/telemetry_raw", "silver/telemetry", "silver/quarantine", "gold/alerts",
          "gold/device_minute_kpis", "gold/fleet_minute_kpis", "gold/device_latest",
          "gold/dq_batch_metrics")


def reading(event_id: str, second: int, speed: float) -> dict:
    return {"event_id": event_id, "car_id": "A", "event_timestamp": f"2026-03-01T10:00:{second:02d}Z",
            "speed_kmph": speed, "fuel_level": 50.0, "engine_temp_c": 90.0, "latitude": 26.4,
            "longitude": 50.1}


def alert_id(event_id: str) -> str:
    return hashlib.sha256(f"{event_id}|OVERSPEED".encode()).hexdigest()[:32]


def overspeed(event_id: str, threshold: int) -> tuple:
    speed = SPEEDS[event_id]
    return (alert_id(event_id), event_id, float(threshold),
            f"Speed {speed!r} km/h above {threshold} km/h")


def alert_rows(rows: list[dict]) -> list[tuple]:
    return sorted((r["alert_id"], r["event_id"], r["threshold"], r["message"]) for r in rows)


def test_lower_threshold_then_replay_changes_exactly_the_expected_alerts(
        spark, threshold_only_settings, tmp_path):
    settings = threshold_only_settings
    ensure_topic(settings.effective_kafka_bootstrap, settings.topic, settings.topic_partitions)
    produce_events(settings, [reading(e, 8 * i, s) for i, (e, s) in enumerate(SPEEDS.items())],
                   KAFKA_MS)
    run_available_now(spark, settings)  # the stateful rules are off, as in STATEFUL_OFF
    before = latest_version(spark, settings, "gold/alerts")
    pg_before = pg_gold_rows(settings.effective_pg_dsn, "alerts")
    ledger_before = len(pg_ledger(settings.effective_pg_dsn))  # the hot and gold queries' syncs

    lower = write_config(tmp_path / "after.toml",
                         STATEFUL_OFF.replace("[alerts]\n", "[alerts]\noverspeed_kmph = 120.0\n"))
    dry = fleetlake(settings, lower, "replay", "--dry-run")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert [line.split() for line in dry.stdout.splitlines()[3:]][:4] == [
        ["silver/telemetry", "0", "0", "0"], ["silver/quarantine", "0", "0", "0"],
        ["gold/alerts", "4", "0", "2"], ["gold/device_minute_kpis", "0", "0", "1"]]
    assert latest_version(spark, settings, "gold/alerts") == before  # a dry run writes nothing
    result = fleetlake(settings, lower, "replay")
    assert result.returncode == 0, result.stderr[-2000:]

    after = latest_version(spark, settings, "gold/alerts")
    expected = sorted([overspeed(e, 120) for e in ("s2", "s3", "s4", "s5", "s6", "s7")])
    delta = spark.read.format("delta").load(f"{settings.lake_root}/gold/alerts").collect()
    assert alert_rows([r.asDict() for r in delta]) == expected
    gold = assert_pg_mirrors_delta(spark, settings)  # PostgreSQL too, with one ledger row more
    assert [r[4:7] for r in gold["device_minute_kpis"]] == [(150.0, 90.0, 50.0)]
    assert gold["device_minute_kpis"][0][7] == 6  # alerts in the minute: 2 -> 6
    assert len(pg_ledger(settings.effective_pg_dsn)) == ledger_before + 1  # + the replay's

    shown = fleetlake(settings, lower, "audit", "show", "gold/alerts", "--as-of", str(before),
                      "--limit", "0", "--format", "json")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert alert_rows(json.loads(shown.stdout)["rows"]) == sorted(
        [overspeed("s6", 140), overspeed("s7", 140)])
    assert len(pg_before) == 2

    diff = fleetlake(settings, lower, "audit", "diff", "gold/alerts", "--from", str(before),
                     "--to", str(after), "--format", "json")
    assert diff.returncode == 0, diff.stderr[-2000:]
    changes = json.loads(diff.stdout)
    assert changes["counts"] == {"added": 4, "removed": 0, "changed": 2}
    assert sorted((r["change"], r["key"]["alert_id"], tuple(r["changed_columns"]))
                  for r in changes["rows"]) == sorted(
        [("added", alert_id(e), ()) for e in ("s2", "s3", "s4", "s5")]
        + [("changed", alert_id(e), ("message", "threshold")) for e in ("s6", "s7")])


def late_and_retransmitted(spark, settings) -> list[dict]:
    """Readings three hours before a car's first one (and one of them twice)."""
    first = (spark.read.format("delta").load(f"{settings.lake_root}/silver/telemetry")
             .orderBy("event_ts").first())
    start = first.event_ts.replace(tzinfo=UTC) - dt.timedelta(hours=3)
    events = [{"event_id": f"late-{i}", "car_id": first.car_id,
               "event_timestamp": (start + dt.timedelta(seconds=10 * i)).isoformat(),
               "speed_kmph": 150.0 + i, "fuel_level": 9.0, "engine_temp_c": 112.0,
               "latitude": 26.4, "longitude": 50.1} for i in range(6)]
    return events + events[:1]


def stored_values(spark, settings, count: int) -> list[bytes]:
    """Raw Kafka values of `count` events that silver holds (valid, already in the lake)."""
    lake = settings.lake_root
    silver = spark.read.format("delta").load(f"{lake}/silver/telemetry")
    bronze = spark.read.format("delta").load(f"{lake}/bronze/telemetry_raw")
    kept = bronze.join(silver.select("topic", "partition", "offset"),
                       ["topic", "partition", "offset"], "left_semi")
    return [bytes(r.value) for r in kept.orderBy("partition", "offset").limit(count).collect()]


def resend_raw(settings, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.effective_kafka_bootstrap, acks="all")
    for value in values:
        producer.send(settings.topic, value=value)
    producer.flush()
    producer.close()


def test_replay_with_unchanged_config_on_messy_input_changes_nothing(spark, e2e_settings,
                                                                     tmp_path):
    settings = dataclasses.replace(e2e_settings, spark=dataclasses.replace(
        e2e_settings.spark, max_offsets_per_trigger=700))  # several batches per run
    config = write_config(tmp_path / "messy.toml", spark="max_offsets_per_trigger = 700\n")
    faults = "default,duplicate=0.03,late=0.03"
    ensure_topic(settings.effective_kafka_bootstrap, settings.topic, settings.topic_partitions)
    sent = fleetlake(settings, config, "produce", "--events", "1200", "--rate", "0", "--faults",
                     faults, "--seed", "11", "--cars", "20")
    assert sent.returncode == 0, sent.stderr[-2000:]
    run_available_now(spark, settings)
    more = fleetlake(settings, config, "produce", "--events", "600", "--rate", "0", "--faults",
                     faults, "--seed", "12", "--cars", "20")
    assert more.returncode == 0, more.stderr[-2000:]
    resend_raw(settings, stored_values(spark, settings, 150))  # retransmitted in a later run
    produce_events(settings, late_and_retransmitted(spark, settings), int(time.time() * 1000))
    run_available_now(spark, settings)

    versions = {name: latest_version(spark, settings, name) for name in TABLES}
    rows = {name: delta_rows(spark, settings, name) for name in TABLES}
    pg = assert_pg_mirrors_delta(spark, settings)
    ledger = pg_ledger(settings.effective_pg_dsn)
    assert sum(r[3] for r in pg["dq_batch_metrics"]) == len(rows["bronze/telemetry_raw"])
    assert sum(r[6] for r in pg["dq_batch_metrics"]) >= 151  # retransmissions were counted

    result = fleetlake(settings, config, "replay")
    assert result.returncode == 0, result.stderr[-3000:]
    assert [line.split()[1:] for line in result.stdout.splitlines()[3:9]] == [["0", "0", "0"]] * 6
    assert result.stdout.splitlines()[-1] == "postgres: 0 row(s) brought in line with Delta"
    assert {name: latest_version(spark, settings, name) for name in TABLES} == versions
    assert {name: delta_rows(spark, settings, name) for name in TABLES} == rows
    assert assert_pg_mirrors_delta(spark, settings) == pg
    assert pg_ledger(settings.effective_pg_dsn) == ledger
