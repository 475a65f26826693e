"""`fleetlake pipeline run`: prepare topic, tables and schema, then run the two streaming queries.

The hot query (Kafka -> PostgreSQL threshold alerts and device_latest, staging) and the gold
query (staging -> bronze, silver, quarantine, gold -> PostgreSQL) run in one Spark application,
each in a session of its own (its own SQL confs, infra/spark.query_session) and a FAIR pool of
its own (infra/fairscheduler.xml), so gold's heavy batches never hold the hot path's cores.
"""
from __future__ import annotations

import logging
import sys
import threading
import time

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from bronze.pipeline import ensure_bronze_table
from fleetlake import gold_query, hot
from fleetlake.checkpoint_check import repair_checkpoints, verify_checkpoints
from fleetlake.progress import ProgressRecorder, progress_line
from fleetlake.stopping import (STOPPED_LINE, BatchInterrupted, StopAwareSink, StopRequest,
                                stop_on_signals)
from gold.sink import ensure_gold_tables
from infra.lease import lake_lease
from infra.settings import Settings
from infra.spark import build_spark, query_session
from infra.streaming import path_exists
from ingestion.admin import ensure_topic
from serving.migrate import migrate
from silver.sink import ensure_silver_tables

log = logging.getLogger("fleetlake.runner")
POOL = "spark.scheduler.pool"


LEGACY_QUERY = "fleetlake_medallion"  # the one query of fleetlake 0.1


class LegacyLakeError(RuntimeError):
    """The lake was written by a version this one cannot continue from."""


class LakeOutOfSpaceError(RuntimeError):
    """A write to the lake root failed for lack of space (the query stopped; nothing is lost)."""


def refuse_legacy_lake(spark: SparkSession, settings: Settings) -> None:
    """A 0.1 lake has a checkpoint of its single query and none of the two queries: the hot
    query would read the topic again from the start and duplicate bronze, so refuse."""
    root = settings.checkpoint_path(LEGACY_QUERY)
    if path_exists(spark, root) and not path_exists(spark, settings.checkpoint_path(
            hot.QUERY_NAME)):
        raise LegacyLakeError(
            f"the lake at {settings.lake_root} was written by fleetlake 0.1 (checkpoint {root}); "
            "this version runs two queries with their own checkpoints: point "
            "FLEETLAKE_LAKE_ROOT at a new lake (and rebuild it from the topic)")


def prepare(spark: SparkSession, settings: Settings) -> None:
    """Create the topic, the Delta tables and the PostgreSQL schema (all idempotent)."""
    refuse_legacy_lake(spark, settings)
    ensure_topic(settings.effective_kafka_bootstrap, settings.topic, settings.topic_partitions)
    migrate(settings)  # grants the dashboard's read-only role in every database
    ensure_bronze_table(spark, settings)
    ensure_silver_tables(spark, settings)
    ensure_gold_tables(spark, settings)
    # a damaged checkpoint would make a query skip or re-read data: refuse, saying how to repair
    verify_checkpoints(spark, settings)


def hot_source(spark: SparkSession, settings: Settings) -> DataFrame:
    """The Kafka source, from the earliest offset on first start (the checkpoint after that).
    The hot sink stamps `ingested_at` with the micro-batch's timestamp from the offset log."""
    kafka = (spark.readStream.format("kafka")
             .option("kafka.bootstrap.servers", settings.effective_kafka_bootstrap)
             .option("subscribe", settings.topic)
             .option("startingOffsets", "earliest")
             .option("maxOffsetsPerTrigger", settings.spark.max_offsets_per_trigger)
             .load())
    return kafka


def _start(source: DataFrame, name: str, pool: str, sink, settings: Settings,
           trigger: dict, stop: StopRequest | None = None) -> StreamingQuery:
    """Start one query in its scheduler pool (the query thread inherits the caller's pool);
    with `stop`, a batch cut short by stopping ends the query quietly (fleetlake/stopping.py)."""
    context = source.sparkSession.sparkContext
    context.setLocalProperty(POOL, pool)
    if stop is not None:
        sink = StopAwareSink(sink, name, stop)
    try:
        return (source.writeStream.queryName(name)
                .option("checkpointLocation", settings.checkpoint_path(name))
                .foreachBatch(sink).trigger(**trigger).start())
    finally:
        context.setLocalProperty(POOL, None)


def start_hot(spark: SparkSession, settings: Settings, available_now: bool,
              stop: StopRequest | None = None) -> StreamingQuery:
    session = query_session(spark, {
        "spark.sql.adaptive.enabled": "false",  # no extra job per shuffle on the latency path
        "spark.sql.shuffle.partitions": str(settings.spark.hot_shuffle_partitions),
        # the batch is cached for one PostgreSQL collect and one append: compressing the cache
        # costs more than it saves (measured: 500k records 12.4 s -> 10.9 s)
        "spark.sql.inMemoryColumnarStorage.compressed": "false"})
    trigger = ({"availableNow": True} if available_now
               else {"processingTime": settings.spark.trigger_interval})
    sink = hot.HotSink(settings, settings.checkpoint_path(hot.QUERY_NAME))
    plan = hot.hot_plan(hot_source(session, settings), settings)
    return _start(plan, hot.QUERY_NAME, "hot", sink, settings, trigger, stop)


AVAILABLE_NOW_GOLD_TRIGGER = "1 second"  # no live hot path to leave the cores to


def start_gold(spark: SparkSession, settings: Settings, available_now: bool = False,
               stop: StopRequest | None = None) -> StreamingQuery:
    # AQE would add a job per shuffle stage to dozens of small queries per batch; the joins
    # that must broadcast say so explicitly
    session = query_session(spark, {"spark.sql.adaptive.enabled": "false"})
    sink = gold_query.GoldSink(settings, settings.checkpoint_path(gold_query.QUERY_NAME))
    interval = (AVAILABLE_NOW_GOLD_TRIGGER if available_now
                else settings.spark.gold_trigger_interval)
    trigger = {"processingTime": interval}
    return _start(gold_query.gold_source(session, settings), gold_query.QUERY_NAME, "gold", sink,
                  settings, trigger, stop)


def _failure(query: StreamingQuery, stop: StopRequest | None = None) -> str | None:
    """Why `query` failed; None while it runs, after a clean stop, or when the only error is
    a batch cut short by `stop` (Spark did not take it for an interruption)."""
    error = query.exception()
    if error is None or (stop is not None and stop.is_set()
                         and BatchInterrupted.__name__ in str(error)):
        return None
    return f"streaming query {query.name} failed: {error}"


def _query_error(query: StreamingQuery, failure: str, settings: Settings) -> RuntimeError:
    """The error a failed query raises: one clear line for a full disk (the batch was not
    committed, so a restart redoes it: every write is idempotent), else the query's own."""
    if "No space left on device" in failure:
        return LakeOutOfSpaceError(
            f"streaming query {query.name} stopped: no space left on the device of the lake "
            f"root {settings.lake_root}; free space there, then run `fleetlake pipeline run` "
            f"again (it resumes from its checkpoints; nothing is lost)")
    return RuntimeError(failure)


def await_queries(queries: list[StreamingQuery], recorder: ProgressRecorder | None,
                  until_stopped: StreamingQuery | None = None, report_every_s: float = 2.0,
                  stop: StopRequest | None = None) -> None:
    """Print a progress line per new batch of each query until `until_stopped` (or any query)
    stops or `stop` is set; raise if a query failed."""
    reported: dict[str, int] = {}
    while True:
        for query in queries:
            progress = query.lastProgress
            if progress and reported.get(query.name) != progress.get("batchId"):
                reported[query.name] = progress.get("batchId")
                print(progress_line(query.name, progress), file=sys.stderr, flush=True)
            if recorder is not None:
                recorder.record(query)
        for query in queries:
            failure = _failure(query, stop) if not query.isActive else None
            if failure:
                raise RuntimeError(failure)
        watched = [until_stopped] if until_stopped is not None else queries
        if any(not q.isActive for q in watched) or (stop is not None and stop.is_set()):
            return
        # returns as soon as the query ends; a signal's handler runs during the wait, so a
        # stop is seen within `report_every_s`
        watched[0].awaitTermination(report_every_s)


def process_all_available(query: StreamingQuery, stop: StopRequest) -> None:
    """`query.processAllAvailable()`, given up on once `stop` is set (the call blocks in the
    JVM, where a signal cannot reach it, so it runs on a thread of its own)."""
    failed: list[Exception] = []

    def drain() -> None:
        try:
            query.processAllAvailable()
        except Exception as exc:  # noqa: BLE001 - re-raised on the caller's thread
            failed.append(exc)

    worker = threading.Thread(target=drain, name=f"drain-{query.name}", daemon=True)
    worker.start()
    while worker.is_alive() and not stop.wait(1.0):
        worker.join(0.5)
    if failed and not stop.is_set():
        raise failed[0]


def run_queries(spark: SparkSession, settings: Settings, available_now: bool,
                stop: StopRequest | None = None) -> None:
    """Run both queries; with `available_now`, until everything in the topic is in PostgreSQL.
    Setting `stop` stops both (fleetlake/stopping.py); the next run resumes where they were."""
    stop = stop or StopRequest()
    recorder = ProgressRecorder(settings.effective_pg_dsn)
    gold = start_gold(spark, settings, available_now, stop)
    hot_query = start_hot(spark, settings, available_now, stop)
    queries = [hot_query, gold]
    try:
        if not available_now:  # maintenance and DQ reports on their schedule ([maintain], [dq])
            from ops.schedule import scheduled_jobs

            with scheduled_jobs(spark, settings):
                await_queries(queries, recorder, stop=stop)
        else:
            await_queries(queries, recorder, until_stopped=hot_query, stop=stop)
            if not stop.is_set():
                process_all_available(gold, stop)  # every staged batch the hot query wrote
            await_queries(queries, recorder, until_stopped=hot_query, stop=stop)
    except Exception:
        if not any(_failure(query, stop) for query in queries):
            raise  # else: raised below, as the failed query's error
    finally:
        # the cancelled jobs' warnings and an interrupted write's "Aborting job" errors (each
        # with its Java trace) say nothing the stop line does not; a query's real failure is
        # still raised below
        if stop.is_set():
            spark.sparkContext.setLogLevel("FATAL")
        for query in queries:
            if query.isActive:
                query.stop()
        for query in queries:
            recorder.record(query)
    for query in queries:
        failure = _failure(query, stop)
        if failure:
            raise _query_error(query, failure, settings)


def run_available_now(spark: SparkSession, settings: Settings) -> None:
    """Everything in the topic through every layer into PostgreSQL, in this process."""
    prepare(spark, settings)
    run_queries(spark, settings, available_now=True)


def _ensure_services(settings: Settings) -> None:
    from infra.services import ensure_services

    ensure_services(settings, log=lambda m: print(m, file=sys.stderr))


def repair_pipeline(settings: Settings, ensure: bool = True) -> int:
    """Entry point of `fleetlake pipeline repair`: repair both queries' checkpoints from the
    journal (fleetlake/checkpoint_check.py); 0 when the pipeline may start, else 1."""
    if ensure:
        _ensure_services(settings)
    with lake_lease(settings, "pipeline repair"):
        spark = build_spark(settings, app_name="fleetlake-pipeline-repair")
        report = repair_checkpoints(spark, settings)
    for line in report.done:
        print(f"pipeline repair: {line}", file=sys.stderr)
    for line in report.unrepairable:
        print(f"fleetlake: error: {line}", file=sys.stderr)
    if not report.unrepairable:
        print("pipeline repair: " + ("both checkpoints repaired; start the pipeline again"
                                     if report.done else "both checkpoints are whole: nothing "
                                     "to repair"), file=sys.stderr)
    return 1 if report.unrepairable else 0


STOPPED_EARLY = 130  # the exit code of an `--available-now` run stopped by a signal


def started_line(available_now: bool) -> str:
    """How the line `pipeline run` logs once its services and tables are ready begins."""
    return f"pipeline: {'available-now' if available_now else 'continuous'}"


def run_pipeline(settings: Settings, available_now: bool, ensure: bool = True) -> int:
    """Entry point of `fleetlake pipeline run [--available-now]`."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("fleetlake").setLevel(logging.INFO)
    if ensure:
        _ensure_services(settings)
    # one writer at a time per lake: replay and maintain check this lease (infra/lease.py)
    with lake_lease(settings, "pipeline"):
        started = time.monotonic()
        spark = build_spark(settings, app_name="fleetlake-pipeline")
        prepare(spark, settings)
        print(f"{started_line(available_now)}, topic {settings.topic} @ "
              f"{settings.effective_kafka_bootstrap}, lake {settings.lake_root}",
              file=sys.stderr, flush=True)
        # after build_spark: it installs PySpark's own SIGINT handler, which this one replaces
        with stop_on_signals(StopRequest()) as stop:
            run_queries(spark, settings, available_now, stop)
        if stop.is_set():
            print(STOPPED_LINE, file=sys.stderr)
        print(f"pipeline: done in {time.monotonic() - started:.0f}s", file=sys.stderr)
    # stopping is how a continuous run ends; an --available-now run stopped did not finish
    return STOPPED_EARLY if stop.is_set() and available_now else 0
