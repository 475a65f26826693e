"""Helpers of the operations tests: produce literal events, run `fleetlake` commands as
subprocesses on a test's topic, lake and database, read tables back."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kafka import KafkaProducer
from pyspark.sql import SparkSession

from infra.settings import Settings

from .pipeline_proc import pipeline_env

STATEFUL_OFF = ("[alerts]\nsustained_overheat_enabled = false\nfuel_drop_enabled = false\n"
                "gps_jump_enabled = false\nspeed_anomaly_enabled = false\n")


def write_config(path: Path, text: str = "", spark: str = "") -> Path:
    """A TOML config for the subprocesses (small Spark driver: the machine is shared);
    `spark`: more lines of its [spark] table."""
    path.write_text('[spark]\ndriver_memory = "1g"\n' + spark + text)
    return path


def produce_events(settings: Settings, events: list[dict], kafka_ms: int) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.effective_kafka_bootstrap, acks="all")
    for event in events:
        producer.send(settings.topic, key=str(event.get("car_id", "")).encode(),
                      value=json.dumps(event).encode(), timestamp_ms=kafka_ms)
    producer.flush()
    producer.close()


def fleetlake(settings: Settings, config: Path, *args: str,
              timeout_s: float = 1200) -> subprocess.CompletedProcess:
    """Run `fleetlake ARGS` on the test's topic, lake and database; its completed process."""
    return subprocess.run([sys.executable, "-m", "fleetlake.cli", *args],
                          env=pipeline_env(settings, config), capture_output=True, text=True,
                          timeout=timeout_s)


def delta_rows(spark: SparkSession, settings: Settings, name: str,
               drop: tuple[str, ...] = ()) -> list[tuple]:
    frame = spark.read.format("delta").load(f"{settings.lake_root}/{name}").drop(*drop)
    return sorted((tuple(r) for r in frame.collect()), key=repr)


def latest_version(spark: SparkSession, settings: Settings, name: str) -> int:
    from delta.tables import DeltaTable

    return DeltaTable.forPath(spark, f"{settings.lake_root}/{name}").history(1).first().version


def last_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else ""
