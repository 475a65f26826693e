"""PostgreSQL stopped mid-run: the sync waits for it, and then PostgreSQL equals Delta exactly.

The pipeline runs as a subprocess (`fleetlake pipeline run --available-now`) in small batches
(`max_offsets_per_trigger`) over a fresh topic, lake and database on the shared local cluster.
Once batch 0 is in PostgreSQL the test stops the cluster (infra.postgres_local), waits until the
pipeline's log shows its sync retrying against the stopped server, starts the cluster again and
lets the run finish. The cluster is started again in a `finally`, whatever happened.
"""
from __future__ import annotations

import dataclasses
import json
import random
import re
from collections import Counter

import pytest
from kafka import KafkaProducer

from infra.postgres_local import pg_running, start_postgres, stop_postgres
from ingestion.admin import ensure_topic

from .expected_gold import Reading, expected_gold, reading
from .lake_equality import assert_pg_mirrors_delta, difference, pg_ledger
from .pipeline_proc import BATCH_DONE, PipelineProcess, pipeline_env

pytestmark = pytest.mark.integration

START_MS = 1_769_932_800_000  # 2026-02-01T08:00:00Z
BATCH = 300  # Kafka records per micro-batch: 5 batches
CONFIG = f"""
[spark]
max_offsets_per_trigger = {BATCH}
driver_memory = "1g"
[alerts]
sustained_overheat_enabled = false
fuel_drop_enabled = false
gps_jump_enabled = false
speed_anomaly_enabled = false
"""
RETRY = re.compile(r"fleetlake\.serving PostgreSQL at 127\.0\.0\.1:\d+ unreachable \(.+\); "
                   r"retrying in [\d.]+s -- start it with `fleetlake services up`")


def workload(seed: int = 11) -> tuple[list[tuple[bytes, bytes, int]], list[Reading], dict]:
    """(key, value, Kafka ms) messages, the valid unique readings among them, and DQ totals.

    8 cars, a reading every 15 s for 40 minutes; speeds are multiples of 0.25, so every
    minute's average is exact. Extra: malformed JSON, a missing speed, retransmissions.
    """
    rng = random.Random(seed)
    messages, readings, reasons, duplicates = [], [], Counter(), 0
    for k in range(40 * 4 * 8):
        car, step = f"car-{k % 8}", k // 8
        ms = START_MS + step * 15_000
        lat, lon = (0.0, 0.0) if k % 53 == 0 else (26.0 + rng.randrange(1000) / 1000, 50.125)
        body = {"event_id": f"ev-{k}", "car_id": car,
                "event_timestamp": f"2026-02-01T{8 + step // 240:02d}:{step // 4 % 60:02d}:"
                                   f"{step % 4 * 15:02d}Z",
                "speed_kmph": rng.randrange(681) / 4, "fuel_level": rng.randrange(20, 400) / 4,
                "engine_temp_c": rng.randrange(320, 480) / 4, "latitude": lat, "longitude": lon}
        value = json.dumps(body).encode()
        messages.append((car.encode(), value, ms + 1000))
        readings.append(reading(body, ms + 1000))
        if k % 97 == 5:
            messages.append((car.encode(), value, ms + 1000))  # retransmitted: a duplicate
            duplicates += 1
        if k % 150 == 7:
            messages.append((car.encode(), b'{"car_id": "' + car.encode(), ms + 1000))
            reasons["MALFORMED_JSON"] += 1
        if k % 200 == 9:
            broken = {**body, "event_id": f"bad-{k}"}
            del broken["speed_kmph"]
            messages.append((car.encode(), json.dumps(broken).encode(), ms + 1000))
            reasons["MISSING_FIELD:speed_kmph"] += 1
    totals = {"rows_in": len(messages), "valid_rows": len(readings) + duplicates,
              "quarantined_rows": sum(reasons.values()), "duplicate_rows": duplicates,
              "quarantine_reasons": tuple(sorted(reasons.items()))}
    return messages, readings, totals


def produce(settings, messages) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.effective_kafka_bootstrap, acks="all",
                             linger_ms=20)
    for key, value, ms in messages:
        producer.send(settings.topic, key=key, value=value, timestamp_ms=ms)
    producer.flush()
    producer.close()


def dq_totals(dq_rows: list[tuple]) -> dict:
    """Sums of the DQ counters over all batches, and the merged reason counts."""
    reasons = Counter()
    for row in dq_rows:
        reasons.update(dict(row[7] or ()))
    return {"rows_in": sum(r[3] for r in dq_rows), "valid_rows": sum(r[4] for r in dq_rows),
            "quarantined_rows": sum(r[5] for r in dq_rows),
            "duplicate_rows": sum(r[6] for r in dq_rows),
            "quarantine_reasons": tuple(sorted(reasons.items()))}


def test_postgres_down_mid_run_then_up_loses_and_duplicates_nothing(spark, e2e_settings,
                                                                     base_settings, tmp_path):
    if not base_settings.uses_local_pg:
        pytest.skip("stops the embedded PostgreSQL cluster; FLEETLAKE_PG_DSN names another")
    settings = dataclasses.replace(e2e_settings, spark=dataclasses.replace(
        e2e_settings.spark, max_offsets_per_trigger=BATCH))
    config = tmp_path / "outage.toml"
    config.write_text(CONFIG)
    ensure_topic(settings.effective_kafka_bootstrap, settings.topic, settings.topic_partitions)
    messages, readings, totals = workload()
    produce(settings, messages)

    pipeline = PipelineProcess(pipeline_env(settings, config))
    try:
        pipeline.wait_for(BATCH_DONE)  # batch 0 is in PostgreSQL
        stop_postgres(base_settings)
        synced_before = len(pipeline.matching(BATCH_DONE))
        retries = pipeline.wait_for(RETRY, count=2)  # the sync keeps trying the stopped server
        start_postgres(base_settings)
        assert pipeline.finish() == 0, pipeline.tail()
    finally:
        pipeline.kill()
        if not pg_running(base_settings):
            start_postgres(base_settings)

    done = [int(BATCH_DONE.search(line).group(1)) for line in pipeline.matching(BATCH_DONE)]
    assert len(retries) >= 2 and len(done) > synced_before >= 1, pipeline.tail()

    gold = assert_pg_mirrors_delta(spark, settings)
    for name, rows in expected_gold(readings).items():
        assert gold[name] == rows, f"gold.{name}: {difference(rows, gold[name])}"
    dq = gold["dq_batch_metrics"]
    app_id = dq[0][0]
    assert sorted(r[:2] for r in dq) == [(app_id, b) for b in sorted(done)]
    assert dq_totals(dq) == totals
    ledger = pg_ledger(settings.effective_pg_dsn)
    assert [row for row in ledger if row[0] == app_id] == [(app_id, b) for b in sorted(done)]
