"""Exactly-once under Ctrl-C and `kill -9`: a pipeline stopped mid-stream (one clean line, exit
0), then killed mid-stream, then restarted equals an uninterrupted run."""
from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest
from kafka import KafkaProducer

from fleetlake.runner import prepare, run_available_now
from fleetlake.stopping import STOPPED_LINE

from .lake_equality import assert_pg_mirrors_delta
from .pipeline_proc import PipelineProcess, pipeline_env

pytestmark = pytest.mark.integration
KAFKA_TS_MS = 1_767_225_600_000


def workload(n: int, seed: int = 7) -> list[tuple[bytes, bytes]]:
    """n messages over 20 cars: mostly valid, some alerts, some bad, some retransmitted."""
    rng = random.Random(seed)
    messages = []
    for i in range(n):
        car = f"car-{i % 20:02d}"
        body = {"event_id": f"ev-{i}", "car_id": car,
                "event_timestamp": f"2025-12-31T{10 + i // 3600 % 12:02d}:{i // 60 % 60:02d}:"
                                   f"{i % 60:02d}Z",
                "speed_kmph": round(rng.uniform(0, 170), 1), "fuel_level": round(rng.uniform(3, 90), 1),
                "engine_temp_c": round(rng.uniform(70, 120), 1),
                "latitude": 26.4 + rng.random() / 10, "longitude": 50.1 + rng.random() / 10}
        value = json.dumps(body).encode()
        if i % 97 == 0:
            value = value[:-5]  # truncated JSON
        messages.append((car.encode(), value))
        if i % 53 == 0:
            messages.append((car.encode(), value))  # retransmission
    return messages


def produce(settings, messages) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.effective_kafka_bootstrap, acks="all",
                             linger_ms=20)
    for key, value in messages:
        producer.send(settings.topic, key=key, value=value, timestamp_ms=KAFKA_TS_MS)
    producer.flush()
    producer.close()


def kill_mid_stream(env: dict[str, str], after_batches: int) -> None:
    """Start the pipeline, wait for `after_batches` finished batches of each query (gold's with
    rows), then SIGKILL it all."""
    proc = subprocess.Popen([sys.executable, "-m", "fleetlake.cli", "pipeline", "run",
                             "--no-services"], env=env, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    seen = {"fleetlake.hot batch": 0, "fleetlake.gold batch": 0}
    deadline = time.monotonic() + 300
    try:
        for line in proc.stderr:
            for marker in seen:
                seen[marker] += marker in line and " in, " in line or "alerts," in line
            if min(seen.values()) >= after_batches or time.monotonic() > deadline:
                break
        time.sleep(0.7)  # land inside the next batch
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert min(seen.values()) >= after_batches, f"too few batches before the kill: {seen}"


HOT_BATCH = re.compile(r"fleetlake\.hot batch \d+: \d+ alerts")
NOISE = re.compile(r"Traceback|Exception in thread|StackOverflowError| ERROR |fleetlake: error")


def ctrl_c_mid_stream(env: dict[str, str]) -> list[str]:
    """Start the pipeline, wait for a hot batch and give gold's first batch with rows time to
    start, then send what Ctrl-C in a terminal sends; its log once it exited 0."""
    live = PipelineProcess(env, available_now=False)
    try:
        live.wait_for(HOT_BATCH, timeout_s=600)
        time.sleep(3.0)
        os.killpg(live.proc.pid, signal.SIGINT)
        code = live.finish(timeout_s=300)
    finally:
        live.kill()
    assert code == 0, live.tail()
    return live.lines


def table_rows(spark, settings, layer, name, drop=()):
    df = spark.read.format("delta").load(settings.table_path(layer, name)).drop(*drop)
    return sorted(tuple(r) for r in df.collect())


def test_ctrl_c_kill_minus_nine_then_restart_equals_uninterrupted(spark, e2e_settings, tmp_path,
                                                                  make_pg_database):
    config = tmp_path / "small_batches.toml"
    config.write_text("[spark]\nmax_offsets_per_trigger = 1500\ndriver_memory = \"1g\"\n")
    killed = dataclasses.replace(e2e_settings, spark=dataclasses.replace(
        e2e_settings.spark, max_offsets_per_trigger=1500))
    prepare(spark, killed)
    sent = workload(6000)
    produce(killed, sent[:3000])
    stopped = ctrl_c_mid_stream(pipeline_env(killed, config))
    assert [line for line in stopped if NOISE.search(line)] == []
    assert STOPPED_LINE in stopped and any(
        line.startswith("pipeline: SIGINT received, stopping both queries") for line in stopped)

    produce(killed, sent[3000:])
    kill_mid_stream(pipeline_env(killed, config), after_batches=1)
    restart = subprocess.run([sys.executable, "-m", "fleetlake.cli", "pipeline", "run",
                              "--available-now", "--no-services"],
                             env=pipeline_env(killed, config), capture_output=True, text=True,
                             timeout=900)
    assert restart.returncode == 0, restart.stderr[-2000:]

    reference = dataclasses.replace(killed, lake_root=str(tmp_path / "reference"),
                                    pg_dsn=make_pg_database())
    prepare(spark, reference)
    run_available_now(spark, reference)

    assert table_rows(spark, killed, "bronze", "telemetry_raw", drop=["ingested_at"]) == \
        table_rows(spark, reference, "bronze", "telemetry_raw", drop=["ingested_at"])
    for layer, name, drop in (("silver", "telemetry", ()), ("silver", "quarantine", ["quarantined_at"]),
                              ("gold", "alerts", ()), ("gold", "device_minute_kpis", ()),
                              ("gold", "fleet_minute_kpis", ()), ("gold", "device_latest", ())):
        assert table_rows(spark, killed, layer, name, drop) == \
            table_rows(spark, reference, layer, name, drop), f"{layer}/{name} differs"
    # PostgreSQL equals Delta for every gold table, with one ledger row per batch, in both runs
    for gold in (assert_pg_mirrors_delta(spark, killed), assert_pg_mirrors_delta(spark, reference)):
        assert gold["alerts"] != []
        assert sum(r[3] for r in gold["dq_batch_metrics"]) == len(sent)  # rows_in: each once

