"""`fleetlake pipeline run`: prepare topic, tables and schema, then run the streaming query."""
from __future__ import annotations

import logging
import sys
import time

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from bronze.pipeline import ensure_bronze_table
from fleetlake.sink import MedallionSink
from gold.sink import ensure_gold_tables
from infra.settings import Settings
from infra.spark import build_spark
from ingestion.admin import ensure_topic
from serving.migrate import apply_migrations
from silver.sink import ensure_silver_tables

QUERY_NAME = "fleetlake_medallion"
log = logging.getLogger("fleetlake.runner")


def prepare(spark: SparkSession, settings: Settings) -> None:
    """Create the topic, the Delta tables and the PostgreSQL schema (all idempotent)."""
    ensure_topic(settings.effective_kafka_bootstrap, settings.topic, settings.topic_partitions)
    apply_migrations(settings.effective_pg_dsn,
                     settings.local.pg_reader if settings.uses_local_pg else None)
    ensure_bronze_table(spark, settings)
    ensure_silver_tables(spark, settings)
    ensure_gold_tables(spark, settings)


def kafka_stream(spark: SparkSession, settings: Settings) -> DataFrame:
    """The raw Kafka source, from the earliest offset on first start (checkpoint after that)."""
    return (spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", settings.effective_kafka_bootstrap)
            .option("subscribe", settings.topic)
            .option("startingOffsets", "earliest")
            .option("maxOffsetsPerTrigger", settings.spark.max_offsets_per_trigger)
            .load())


def start_query(spark: SparkSession, settings: Settings, available_now: bool) -> StreamingQuery:
    checkpoint = settings.checkpoint_path(QUERY_NAME)
    writer = (kafka_stream(spark, settings).writeStream.queryName(QUERY_NAME)
              .option("checkpointLocation", checkpoint)
              .foreachBatch(MedallionSink(settings, checkpoint)))
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=settings.spark.trigger_interval)
    return writer.start()


def _progress_line(query: StreamingQuery) -> str | None:
    """Batch id, duration and the Kafka backlog left (the sink logs the exact row counts:
    Spark's numInputRows counts the cached batch once per action that reads it)."""
    progress = query.lastProgress
    if not progress:
        return None
    took = progress.get("durationMs", {}).get("triggerExecution", 0) / 1000
    behind = [int(float(s.get("metrics", {}).get("maxOffsetsBehindLatest", 0) or 0))
              for s in progress.get("sources", [])]
    return (f"batch {progress.get('batchId')}: committed in {took:.1f}s; backlog "
            f"{max(behind, default=0):,} offsets (largest partition)")


def await_query(query: StreamingQuery, report_every_s: float = 5.0) -> None:
    """Wait for the query, printing a progress line per new batch; raise if it failed."""
    last_batch = None
    while query.isActive:
        query.awaitTermination(report_every_s)
        progress = query.lastProgress
        if progress and progress.get("batchId") != last_batch:
            last_batch = progress.get("batchId")
            print(_progress_line(query), file=sys.stderr, flush=True)
    error = query.exception()
    if error is not None:
        raise RuntimeError(f"streaming query failed: {error}")


def run_pipeline(settings: Settings, available_now: bool, ensure: bool = True) -> int:
    """Entry point of `fleetlake pipeline run [--available-now]`."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("fleetlake").setLevel(logging.INFO)
    if ensure:
        from infra.services import ensure_services

        ensure_services(settings, log=lambda m: print(m, file=sys.stderr))
    started = time.monotonic()
    spark = build_spark(settings, app_name="fleetlake-pipeline")
    prepare(spark, settings)
    mode = "available-now" if available_now else "continuous"
    print(f"pipeline: {mode}, topic {settings.topic} @ {settings.effective_kafka_bootstrap}, "
          f"lake {settings.lake_root}", file=sys.stderr, flush=True)
    query = start_query(spark, settings, available_now)
    try:
        await_query(query)
    except KeyboardInterrupt:
        print("pipeline: stopping (the next run resumes from the checkpoint)", file=sys.stderr)
        query.stop()
    print(f"pipeline: done in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return 0
