"""`fleetlake dq report` on a lake the pipeline filled: a clean run exits 0 with Data Docs and
rows in gold.dq_results; gold tables corrupted around the pipeline make it exit 1, naming the
failed expectations."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from fleetlake.runner import run_available_now
from ingestion.admin import ensure_topic

from .lake_equality import pg_query
from .ops_cli import STATEFUL_OFF, fleetlake, produce_events, write_config

pytestmark = pytest.mark.integration

UTC = dt.timezone.utc
KAFKA_MS = int(dt.datetime(2026, 3, 1, 10, 5, tzinfo=UTC).timestamp() * 1000)


def reading(event_id: str, car: str, second: int, speed: float) -> dict:
    return {"event_id": event_id, "car_id": car, "event_timestamp": f"2026-03-01T10:00:{second:02d}Z",
            "speed_kmph": speed, "fuel_level": 50.0, "engine_temp_c": 90.0, "latitude": 26.4,
            "longitude": 50.1}


EVENTS = [reading("e1", "A", 1, 80.0), reading("e2", "A", 2, 150.0), reading("e3", "B", 3, 90.0),
          reading("e2", "A", 2, 150.0), {"car_id": "C", "speed_kmph": 500.0}]  # quarantined


def test_dq_report_passes_on_pipeline_output_and_names_what_corruption_breaks(
        spark, threshold_only_settings, tmp_path):
    settings = threshold_only_settings
    reports = tmp_path / "reports"
    config = write_config(tmp_path / "dq.toml", STATEFUL_OFF + f'[dq]\nreports_dir = "{reports}"\n')
    ensure_topic(settings.effective_kafka_bootstrap, settings.topic, settings.topic_partitions)
    produce_events(settings, EVENTS, KAFKA_MS)
    run_available_now(spark, settings)  # the stateful rules are off, as in STATEFUL_OFF

    clean = fleetlake(settings, config, "dq", "report", "--json")
    assert clean.returncode == 0, clean.stderr[-3000:]
    summary = json.loads(clean.stdout)
    assert summary["success"] is True and summary["critical_failures"] == []
    assert summary["warnings"] == ["silver/telemetry: newest event_ts at most 60 min old"]
    assert summary["docs"] == str(reports / "index.html") and Path(summary["docs"]).is_file()
    stored = pg_query(settings.effective_pg_dsn, "SELECT count(*), count(*) FILTER (WHERE NOT "
                      "success) FROM gold.dq_results WHERE run_id = %s", (summary["run_id"],))
    assert stored == [(len(summary["results"]), 1)]
    assert len(summary["results"]) > 50

    alerts = f"{settings.lake_root}/gold/alerts"
    spark.read.format("delta").load(alerts).limit(1).write.format("delta").mode("append").save(
        alerts)  # a duplicate key
    latest = f"{settings.lake_root}/gold/device_latest"
    (spark.read.format("delta").load(latest).where("car_id = 'B'")
     .withColumn("car_id", F.lit("Z")).withColumn("speed_kmph", F.lit(-5.0))
     .write.format("delta").mode("append").save(latest))  # a negative speed
    broken = fleetlake(settings, config, "dq", "report")
    assert broken.returncode == 1, broken.stderr[-3000:]
    failures = [line for line in broken.stderr.splitlines()
                if line.startswith("dq report: critical expectation failed: ")]
    assert [line.split(" (observed")[0].split("failed: ")[1] for line in failures] == [
        "gold/alerts: alert_id is unique", "gold/device_latest: speed_kmph between 0 and 400"]
