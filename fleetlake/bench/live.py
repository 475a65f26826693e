"""Bench phase 2: freshness at a live rate, then the cost of small batches.

The pipeline runs continuously on a fresh topic, lake and database; the producer sends at
`rate` events/s for `seconds`, then at a trickle (small batches). Row triggers in the bench's
database (schema `bench`) note when each alert, device_latest version and device-minute KPI
version was written (clock_timestamp() in the writing transaction, a few ms before its
commit). Freshness of a row = that time - the Kafka timestamp of its event (from silver).
"""
from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from fleetlake.bench.backlog import BenchError
from fleetlake.bench.procs import TreeUsage
from fleetlake.bench.workspace import CLI, Workspace, create_workspace, pipeline_start_error
from infra.settings import Settings
from serving.db import processed_rows, query_rows

TRIGGERS_SQL = """
CREATE SCHEMA bench;
CREATE TABLE bench.alert_seen (alert_id text, event_id text, alert_type text,
                               seen_at timestamptz);
CREATE TABLE bench.latest_seen (car_id text, event_id text, kafka_timestamp timestamptz,
                                seen_at timestamptz);
CREATE TABLE bench.kpi_seen (car_id text, window_start timestamptz, events bigint,
                             seen_at timestamptz);
CREATE FUNCTION bench.note_alert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO bench.alert_seen
      VALUES (NEW.alert_id, NEW.event_id, NEW.alert_type, clock_timestamp()); RETURN NEW; END $$;
CREATE FUNCTION bench.note_latest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO bench.latest_seen
      VALUES (NEW.car_id, NEW.event_id, NEW.kafka_timestamp, clock_timestamp()); RETURN NEW; END $$;
CREATE FUNCTION bench.note_kpi() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO bench.kpi_seen
      VALUES (NEW.car_id, NEW.window_start, NEW.events, clock_timestamp()); RETURN NEW; END $$;
CREATE TRIGGER bench_alert AFTER INSERT ON gold.alerts
    FOR EACH ROW EXECUTE FUNCTION bench.note_alert();
CREATE TRIGGER bench_latest AFTER INSERT OR UPDATE ON gold.device_latest
    FOR EACH ROW EXECUTE FUNCTION bench.note_latest();
CREATE TRIGGER bench_kpi AFTER INSERT OR UPDATE ON gold.device_minute_kpis
    FOR EACH ROW EXECUTE FUNCTION bench.note_kpi();
"""
CATCH_UP_TIMEOUT_S = 600.0


@dataclass
class LiveResult:
    rate: float
    seconds: float
    cars: int
    produced: int
    alerts: pd.DataFrame  # alert_id, event_id, alert_type, seen_at
    latest: pd.DataFrame  # car_id, event_id, kafka_timestamp, seen_at
    kpis: pd.DataFrame  # car_id, window_start, events, seen_at
    progress: pd.DataFrame  # gold.pipeline_progress rows
    trickle_started: pd.Timestamp
    usage: TreeUsage


def _query(dsn: str, statement: str, params: tuple = ()) -> list[tuple]:
    return query_rows(dsn, statement, params, "fleetlake-bench")


def _frame(dsn: str, statement: str, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(_query(dsn, statement), columns=columns)


def _produce(workspace: Workspace, rate: float, seconds: float, seed: int, cars: int) -> int:
    command = [*CLI, "produce", "--rate", str(rate), "--duration", str(seconds), "--faults",
               "default", "--seed", str(seed), "--topic", workspace.settings.topic,
               "--cars", str(cars), "--json"]
    done = subprocess.run(command, env=workspace.env(), capture_output=True, text=True,
                          timeout=seconds + 300)
    if done.returncode != 0:
        raise BenchError(f"the producer failed ({done.returncode}): {done.stderr[-500:]}")
    return int(json.loads(done.stdout)["acked"])


def _wait_for_rows(dsn: str, expected: int, pipeline) -> None:
    """Until gold.dq_batch_metrics counts `expected` rows in (the gold query caught up)."""
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    while time.monotonic() < deadline:
        if pipeline.proc.poll() is not None:
            raise BenchError(f"the pipeline exited early: see {pipeline.log_path}")
        if processed_rows(dsn, "fleetlake-bench") >= expected:
            return
        time.sleep(1.0)
    raise BenchError(f"the pipeline did not catch up within {CATCH_UP_TIMEOUT_S:.0f}s: see "
                     f"{pipeline.log_path}")


def _wait_until_running(pipeline, timeout_s: float = 180.0) -> None:
    error = pipeline_start_error(pipeline.proc, pipeline.log_path, timeout_s)
    if error is not None:
        raise BenchError(f"the pipeline did not start ({error}): see {pipeline.log_path}")
    time.sleep(3.0)  # both queries started and polling


def run_live(settings: Settings, run_dir: Path, rate: float, seconds: float,
             trickle_rate: float, trickle_seconds: float,
             progress: Callable[[str], None],
             cars: int | None = None) -> tuple[LiveResult, Workspace]:
    cars = settings.producer.cars if cars is None else cars
    workspace = create_workspace(settings, run_dir, "live")
    dsn = workspace.settings.effective_pg_dsn
    _query(dsn, TRIGGERS_SQL)
    pipeline = workspace.pipeline("pipeline-live", available_now=False).start()
    try:
        _wait_until_running(pipeline)
        progress(f"live: producing {rate:,.0f} events/s of {cars:,} cars for {seconds:.0f}s")
        produced = _produce(workspace, rate, seconds, settings.producer.seed, cars)
        _wait_for_rows(dsn, produced, pipeline)
        trickle_started = pd.Timestamp.now(tz="UTC")
        progress(f"live: {produced:,} events in PostgreSQL; small batches: {trickle_rate:g} "
                 f"events/s for {trickle_seconds:.0f}s")
        produced += _produce(workspace, trickle_rate, trickle_seconds, settings.producer.seed + 1,
                             cars)
        _wait_for_rows(dsn, produced, pipeline)
    finally:
        pipeline.interrupt()
        usage = pipeline.wait(120.0)
    result = LiveResult(
        rate=rate, seconds=seconds, cars=cars, produced=produced,
        alerts=_frame(dsn, "SELECT alert_id, event_id, alert_type, seen_at FROM bench.alert_seen",
                      ["alert_id", "event_id", "alert_type", "seen_at"]),
        latest=_frame(dsn, "SELECT car_id, event_id, kafka_timestamp, seen_at "
                      "FROM bench.latest_seen", ["car_id", "event_id", "kafka_timestamp",
                                                 "seen_at"]),
        kpis=_frame(dsn, "SELECT car_id, window_start, events, seen_at FROM bench.kpi_seen",
                    ["car_id", "window_start", "events", "seen_at"]),
        progress=_frame(dsn, "SELECT query_name, batch_id, batch_started_at, duration_ms, "
                        "input_rows FROM gold.pipeline_progress",
                        ["query_name", "batch_id", "batch_started_at", "duration_ms",
                         "input_rows"]),
        trickle_started=trickle_started, usage=usage)
    return result, workspace
