"""Bench phase 1: a preloaded backlog through every layer into PostgreSQL, against the limit.

- Preload N events (default faults) into a fresh topic with the producer (`produce_eps`).
- The limit: a bare Spark query with the pipeline's Spark settings reading the same topic and
  parsing every value with from_json into the `noop` sink (`limit_eps`).
- `fleetlake pipeline run --available-now` into a fresh lake and database, timed until it exits
  (everything is then in PostgreSQL; checked against the DQ totals). Then the same command
  again with nothing new to read: its time is `startup_s` (Spark start, planning, shutdown),
  which `backlog_eps` excludes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from fleetlake.bench.workspace import Workspace, create_workspace
from infra.settings import Settings
from ingestion.producer import run_produce
from serving.db import processed_rows, query_rows
from silver.diagnose import JSON_OPTIONS, PARSE_SCHEMA

PIPELINE_TIMEOUT_S = 3600.0


class BenchError(RuntimeError):
    """A bench phase could not run; the message says which and where its log is."""


@dataclass
class BacklogResult:
    events: int
    produce_eps: float
    limit_eps: float
    run_s: float
    startup_s: float
    backlog_eps: float
    peak_rss_mb: float
    cpu_s: float
    rows_in_postgres: int
    alerts_in_postgres: int

    @property
    def ratio(self) -> float:
        return self.backlog_eps / self.limit_eps if self.limit_eps else 0.0


def limit_seconds(spark: SparkSession, settings: Settings, checkpoint: Path) -> float:
    """Seconds a bare query takes to read and parse the whole topic into `noop`."""
    kafka = (spark.readStream.format("kafka")
             .option("kafka.bootstrap.servers", settings.effective_kafka_bootstrap)
             .option("subscribe", settings.topic).option("startingOffsets", "earliest")
             .option("maxOffsetsPerTrigger", settings.spark.max_offsets_per_trigger).load())
    parsed = kafka.select(F.from_json(F.col("value").cast("string"), PARSE_SCHEMA,
                                      JSON_OPTIONS).alias("p"))
    started = time.monotonic()
    query = (parsed.writeStream.format("noop").option("checkpointLocation", str(checkpoint))
             .trigger(availableNow=True).start())
    query.awaitTermination()
    return time.monotonic() - started


def _postgres_totals(dsn: str) -> tuple[int, int]:
    """(records the gold query counted, alerts) in PostgreSQL."""
    alerts = query_rows(dsn, "SELECT count(*) FROM gold.alerts", (), "fleetlake-bench")
    return processed_rows(dsn, "fleetlake-bench"), int(alerts[0][0])


def _run_pipeline(workspace: Workspace, label: str):
    process = workspace.pipeline(label, available_now=True).start()
    usage = process.wait(PIPELINE_TIMEOUT_S)
    if usage.returncode != 0:
        raise BenchError(f"`pipeline run --available-now` exited with {usage.returncode}: see "
                         f"{process.log_path}")
    return usage


def run_backlog(settings: Settings, spark: SparkSession, run_dir: Path, events: int,
                progress: Callable[[str], None]) -> tuple[BacklogResult, Workspace]:
    workspace = create_workspace(settings, run_dir, "backlog")
    local = workspace.settings
    progress(f"backlog: producing {events:,} events (default faults) into {local.topic}")
    produced = run_produce(local, events=events, duration_s=None, rate=0.0, faults="default",
                           seed=settings.producer.seed, topic=local.topic,
                           cars=settings.producer.cars, progress=False)
    if produced.errors:
        raise BenchError(f"the producer lost {produced.errors} events ({produced.first_error})")
    progress(f"backlog: {produced.acked:,} events acknowledged at {produced.events_per_s:,.0f}/s;"
             " the limit: a bare query parsing the topic into noop")
    limit_s = limit_seconds(spark, local, workspace.root / "limit-checkpoint")
    progress(f"backlog: limit {produced.acked / limit_s:,.0f} events/s; now "
             "`pipeline run --available-now` (everything into PostgreSQL)")
    run = _run_pipeline(workspace, "pipeline-backlog")
    rows_in, alerts = _postgres_totals(local.effective_pg_dsn)
    if rows_in != produced.acked:
        raise BenchError(f"PostgreSQL counts {rows_in:,} rows in, {produced.acked:,} were "
                         f"produced: see {workspace.root}/pipeline-backlog.log")
    progress(f"backlog: done in {run.wall_s:.1f}s; the same run with nothing new (start-up)")
    empty = _run_pipeline(workspace, "pipeline-startup")
    work_s = max(run.wall_s - empty.wall_s, 1e-3)
    result = BacklogResult(
        events=produced.acked, produce_eps=produced.events_per_s,
        limit_eps=produced.acked / limit_s, run_s=run.wall_s, startup_s=empty.wall_s,
        backlog_eps=produced.acked / work_s, peak_rss_mb=run.peak_rss_mb, cpu_s=run.cpu_s,
        rows_in_postgres=rows_in, alerts_in_postgres=alerts)
    return result, workspace
