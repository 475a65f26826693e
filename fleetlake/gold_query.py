"""The gold query: staging -> bronze; de-duplication -> silver, quarantine, gold -> PostgreSQL.

The stream reads the hot query's validated batches (silver/sink.py STAGING), which carry every
Kafka record as received: bronze is appended from them here, off the hot path. Its plan carries,
beside the staged rows, one marker row per event id seen for the first time: Spark's
`dropDuplicates` on event_id, whose RocksDB state store is the de-duplication index. A batch
costs O(its rows) whatever the size of silver, and the state is checkpointed with the query,
so it survives restarts exactly. The marker says which event ids are new; which copy of a new
event silver keeps is decided here, in batch, by silver.dedup.first_new_copies (the first landed,
then by Kafka position), so it never depends on the order rows reach the state store.
Within a batch, PostgreSQL is served first: gold is computed from silver as the batch found it
(pinned) plus the batch's new rows, then synced to PostgreSQL (its ledger makes that exactly
once) while the gold tables are still being written; bronze, quarantine and silver are appended
after the sync; the batch ends when every write has. A retry (after a crash in between) computes
the same changes (every read is pinned to before the batch's own commits), finds PostgreSQL done
and completes the Delta writes. `batch_time` is the streaming batch timestamp from the offset log
(the same when a batch is retried; infra/streaming.batch_timestamp): it stamps quarantine rows
and the DQ row, which makes every write of a retried batch identical.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from gold.kpis import dq_batch_metrics_row
from gold.carry import CarriedContext
from gold.sink import SILVER_INPUT, update_gold
from infra.caching import CacheScope
from infra.delta_io import read_pinned, version_before
from infra.local_frames import with_constant
from infra.parallel import Background, JobCounter, timed
from infra.settings import Settings
from infra.streaming import batch_timestamp, read_query_id
from serving.policies import LATEST_UNLESS_AHEAD
from serving.sync import sync_batch
from silver.dedup import first_new_copies
from bronze.pipeline import append_bronze
from bronze.schema import BRONZE_SCHEMA
from silver.schema import STAGING_SCHEMA
from silver.sink import TELEMETRY, append_quarantine, append_silver, staging_path
from silver.validate import quarantine_rows

QUERY_NAME = "fleetlake_gold"
HISTORY = 1000  # batches whose stats a sink keeps (tests, the bench)
NEW_ID = "_new_id"  # a marker row: this event id was never seen before this batch
_QUARANTINED = "__quarantined_rows__"
# Writes of one batch side by side: bronze, quarantine, silver and the five gold tables.
WRITERS = 8
log = logging.getLogger("fleetlake.gold")


def gold_source(spark: SparkSession, settings: Settings) -> DataFrame:
    """The streaming plan: staged rows (NEW_ID false) + one marker row per new event id."""
    staged = spark.readStream.format("delta").load(staging_path(settings))
    rows = staged.select(*STAGING_SCHEMA.fieldNames(), F.lit(False).alias(NEW_ID))
    is_valid = (F.size("reasons") == 0) & F.col("event_id").isNotNull()
    new_ids = staged.where(is_valid).select("event_id").dropDuplicates(["event_id"])
    markers = new_ids.select(*[
        (F.col(f.name) if f.name == "event_id" else F.lit(None).cast(f.dataType)).alias(f.name)
        for f in STAGING_SCHEMA.fields], F.lit(True).alias(NEW_ID))
    return rows.unionByName(markers)


@dataclass
class GoldBatchStats:
    """Counts of one gold micro-batch (log line, tests)."""

    batch_id: int
    rows_in: int
    valid_rows: int
    quarantined_rows: int
    duplicate_rows: int
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)
    jobs: int = 0  # Spark jobs the batch ran (the per-batch profile)
    device_latest: pa.Table | None = None  # gold/device_latest after the batch (the next's start)
    carried: CarriedContext | None = None  # the rows carried to the next batch (gold/carry.py)


def _batch_counts(staged: DataFrame) -> dict[str, int]:
    """Reason code -> rows carrying it, plus the number of rows, of quarantined rows (under
    _QUARANTINED) and of valid rows (under ""); one job."""
    codes = F.explode(F.when(F.size("reasons") > 0, F.array_union(
        F.col("reasons"), F.array(F.lit(_QUARANTINED)))).otherwise(F.array(F.lit(""))))
    rows = (staged.select(codes.alias("code")).groupBy("code")
            .agg(F.count(F.lit(1)).alias("n")).collect())
    return {row["code"]: int(row["n"]) for row in rows}


def silver_as_found(spark: SparkSession, settings: Settings, app_id: str, batch_id: int,
                    may_be_retry: bool) -> DataFrame:
    """silver/telemetry as the batch found it, pinned to a version: on a retry whose append
    committed, the version before it (the batch's own rows are added to it by the caller)."""
    path = settings.table_path(*TELEMETRY)
    version = version_before(spark, path, app_id, batch_id) if may_be_retry else None
    return read_pinned(spark, path, version)


def process_gold_batch(batch_df: DataFrame, batch_id: int, settings: Settings,
                       app_id: str, batch_time: datetime, may_be_retry: bool = True,
                       latest_before: pa.Table | None = None,
                       carried: CarriedContext | None = None) -> GoldBatchStats:
    """Run one batch of staged rows through bronze, silver, quarantine, gold and PostgreSQL;
    safe to call again with the same batch id (every write is idempotent per (app_id,
    batch_id)). `may_be_retry=False` promises that no earlier attempt of this batch ran
    (gold/sink.py); `latest_before` and `carried` are what the previous batch left
    (gold/sink.update_gold)."""
    spark, started = batch_df.sparkSession, time.monotonic()
    steps: dict[str, float] = {}
    with CacheScope() as caches:
        frame = caches.keep(batch_df)
        staged = frame.where(~F.col(NEW_ID))
        with timed(steps, "count", spark):
            counts = _batch_counts(staged)
        quarantined = counts.pop(_QUARANTINED, 0)
        rows_in = quarantined + counts.pop("", 0)
        if rows_in == 0:  # e.g. the source's first look at a still empty staging table
            return GoldBatchStats(batch_id, 0, 0, 0, 0, steps=steps, device_latest=latest_before,
                                  carried=carried)
        new = caches.keep(first_new_copies(frame, NEW_ID))
        silver = silver_as_found(spark, settings, app_id, batch_id, may_be_retry).select(
            *SILVER_INPUT).unionByName(new.select(*SILVER_INPUT))
        with Background(steps, workers=WRITERS, spark=spark) as writes:
            with timed(steps, "new", spark):
                kept = new.count()
            valid = rows_in - quarantined
            dq_row = dq_batch_metrics_row(
                spark, query_id=app_id, batch_id=batch_id, rows_in=rows_in, valid_rows=valid,
                quarantined_rows=quarantined, duplicate_rows=valid - kept,
                quarantine_reasons=counts, processed_at=batch_time)
            with timed(steps, "gold", spark):
                changes = update_gold(new, dq_row, settings, app_id, batch_id, caches, steps,
                                      may_be_retry, latest_before, carried, silver=silver,
                                      writes=writes)
            with timed(steps, "postgres", spark):  # served first: the Delta writes still run
                sync_batch(settings.effective_pg_dsn, app_id, batch_id, changes.upserts,
                           changes.deletes, policies={"device_latest": LATEST_UNLESS_AHEAD})
            steps["served"] = time.monotonic() - started
            # then the layers below gold: with two cores, earlier they would slow what
            # PostgreSQL waits for (and silver's append would re-cache gold's reads of it);
            # not beside the alerts MERGE, whose session confs an append would take as its own
            if changes.alerts_written is not None:
                changes.alerts_written.result()
            writes.start("bronze", lambda: append_bronze(
                staged.select(*BRONZE_SCHEMA.fieldNames()), settings, app_id, batch_id,
                may_be_retry))
            writes.start("quarantine", lambda: append_quarantine(
                quarantine_rows(with_constant(staged, "_landed", batch_time), F.col("_landed")),
                settings, app_id, batch_id, may_be_retry))
            writes.start("silver", lambda: append_silver(new, settings, app_id, batch_id,
                                                         may_be_retry))
    return GoldBatchStats(batch_id, rows_in, valid, quarantined, valid - kept, steps=steps,
                          device_latest=changes.device_latest.result(),
                          carried=changes.carried.result())


@dataclass
class GoldSink:
    """Callable for `foreachBatch` of the gold query (named, top-level, idempotent)."""

    settings: Settings
    checkpoint: str
    app_id: str | None = None  # the query id, read from the checkpoint at the first batch
    history: deque[GoldBatchStats] = field(default_factory=lambda: deque(maxlen=HISTORY))
    latest: pa.Table | None = None  # gold/device_latest as the last batch left it
    carried: CarriedContext | None = None  # the carried rows the last batch left

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        jobs = JobCounter(batch_df.sparkSession)
        if self.app_id is None:
            self.app_id = read_query_id(batch_df.sparkSession, self.checkpoint)
        # a failed batch stops the query, so only the first batch of a process can be a retry
        first = not self.history
        batch_time = batch_timestamp(batch_df.sparkSession, self.checkpoint, batch_id,
                                     query_id=self.app_id if first else None)
        stats = process_gold_batch(batch_df, batch_id, self.settings, self.app_id, batch_time,
                                   may_be_retry=first,
                                   latest_before=None if first else self.latest,
                                   carried=None if first else self.carried)
        self.latest, stats.device_latest = stats.device_latest, None
        self.carried, stats.carried = stats.carried, None
        stats.seconds = time.monotonic() - started
        stats.jobs = jobs.count()
        self.history.append(stats)
        if stats.rows_in == 0:
            log.info("batch %d: nothing new (%.1fs)", batch_id, stats.seconds)
            return
        log.info("batch %d: %d in, %d valid, %d quarantined, %d duplicates in %.1fs, %d jobs "
                 "(%s)", batch_id, stats.rows_in, stats.valid_rows, stats.quarantined_rows,
                 stats.duplicate_rows, stats.seconds, stats.jobs,
                 " ".join(f"{k}={v:.1f}" for k, v in stats.steps.items()))
