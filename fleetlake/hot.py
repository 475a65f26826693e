"""The hot query's micro-batch: Kafka -> PostgreSQL first (threshold alerts, device_latest),
then the staging table.

The light path of docs/architecture.md. Per batch: one parse (`validate`, cached), two small
collects for PostgreSQL, one append (the staging table carries the raw record too: the gold
query writes bronze from it, off this path); it never reads a Delta table. It needs no
de-duplication: an alert's id is (event_id, type) and device_latest is keyed by car, so a
retransmission rewrites the same row (serving/policies.py). Every write is idempotent per
(app_id, batch_id): the Delta append by its commit tag, PostgreSQL by the ledger and by
policies that make a replayed row change nothing, so a retried batch writes nothing twice.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from bronze.pipeline import to_bronze
from gold.alerts import threshold_alerts
from gold.kpis import device_latest
from gold.schema import ALERTS_COLUMNS
from infra.local_frames import with_constant
from infra.parallel import Background, JobCounter, timed
from infra.settings import Settings
from infra.streaming import batch_timestamp, read_query_id
from serving.policies import KEEP_EXISTING, LATEST_IF_LATER
from serving.sync import sync_batch
from silver.dedup import FIRST_COPY_ORDER, first_per_key
from silver.sink import append_staging, to_staging
from silver.validate import valid_rows, validate

QUERY_NAME = "fleetlake_hot"
log = logging.getLogger("fleetlake.hot")


@dataclass
class HotBatchStats:
    """What one hot micro-batch did (log line, tests)."""

    batch_id: int
    alerts: int
    cars: int
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)
    jobs: int = 0  # Spark jobs the batch ran (the per-batch profile)


def served_alerts(validated: DataFrame, settings: Settings) -> DataFrame:
    """Threshold alerts of a batch's valid rows, one per alert id (that of the first copy)."""
    alerts = threshold_alerts(valid_rows(validated), settings.alerts, keep=FIRST_COPY_ORDER)
    return first_per_key(alerts, ("alert_id",)).select(*ALERTS_COLUMNS)


def served_latest(validated: DataFrame) -> DataFrame:
    """device_latest rows of the cars in a batch: each car's latest reading in the batch."""
    return device_latest(valid_rows(validated))


def hot_plan(kafka_df: DataFrame, settings: Settings) -> DataFrame:
    """Kafka records -> validated rows (VALIDATED_SCHEMA + key), `ingested_at` still null.

    The hot query's streaming plan: built once when the query starts, so no batch pays for
    building validation's expressions again (measured: 2.5-3.5 s of Python per batch). The batch
    time joins in the sink, as data (infra/local_frames.with_constant): a literal would make
    Spark generate and compile new code every batch (infra/streaming.batch_timestamp)."""
    return validate(to_bronze(kafka_df, F.lit(None)), settings.validation, keep=("key",))


def process_hot_batch(validated_batch: DataFrame, batch_id: int, settings: Settings,
                      app_id: str, batch_time: datetime,
                      may_be_retry: bool = True) -> HotBatchStats:
    """Serve one micro-batch of `hot_plan` rows; safe to call again with the same batch id.

    `batch_time` (the streaming batch timestamp, infra/streaming.batch_timestamp) becomes every
    row's `ingested_at`. PostgreSQL is served first; then the batch is appended to the staging
    table, and the batch ends (its offsets commit).
    `may_be_retry=False` promises that no earlier attempt of this batch ran (infra/delta_io.py).
    """
    spark = validated_batch.sparkSession
    steps: dict[str, float] = {}
    # Spark runs empty batches only at start-up (noDataMicroBatches is off; a first batch of a
    # new topic): an empty staging commit would only wake the gold query for nothing
    if may_be_retry and validated_batch.isEmpty():
        return HotBatchStats(batch_id, 0, 0, steps=steps)
    cached = validated_batch.persist()
    try:
        # PostgreSQL first, alone: the append would compete with its collects for the two
        # cores and the driver, and only PostgreSQL is on the alerts' latency path. Every row
        # of the batch has the same (here null) `ingested_at`: the first copy of an alert is
        # the first by Kafka position, as it is in silver.
        with timed(steps, "postgres"):
            alerts, cars = _serve(spark, cached, settings, app_id, batch_id)
        with timed(steps, "staging"):
            landed = with_constant(cached.drop("ingested_at"), "ingested_at", batch_time)
            append_staging(to_staging(landed), settings, app_id, batch_id, may_be_retry)
        return HotBatchStats(batch_id, alerts, cars, steps=steps)
    finally:
        cached.unpersist()


def _serve(spark: SparkSession, validated: DataFrame, settings: Settings, app_id: str,
           batch_id: int) -> tuple[int, int]:
    """Collect the batch's alerts and latest readings (side by side), write them in one
    PostgreSQL transaction; returns (alerts, cars)."""
    with Background(spark=spark) as collect:
        alerts = collect.start("alerts", lambda: served_alerts(validated, settings).toArrow())
        latest = collect.start("latest", lambda: served_latest(validated).toArrow())
    upserts = {"alerts": alerts.result(), "device_latest": latest.result()}
    sync_batch(settings.effective_pg_dsn, app_id, batch_id, upserts, {},
               policies={"alerts": KEEP_EXISTING, "device_latest": LATEST_IF_LATER})
    return upserts["alerts"].num_rows, upserts["device_latest"].num_rows


@dataclass
class HotSink:
    """Callable for `foreachBatch` of the hot query (named, top-level, idempotent)."""

    settings: Settings
    checkpoint: str
    app_id: str | None = None  # the query id, read from the checkpoint at the first batch
    history: deque[HotBatchStats] = field(default_factory=lambda: deque(maxlen=1000))

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        jobs = JobCounter(batch_df.sparkSession)
        if self.app_id is None:
            self.app_id = read_query_id(batch_df.sparkSession, self.checkpoint)
        # a failed batch stops the query, so only the first batch of a process can be a retry
        first = not self.history
        batch_time = batch_timestamp(batch_df.sparkSession, self.checkpoint, batch_id,
                                     query_id=self.app_id if first else None)
        stats = process_hot_batch(batch_df, batch_id, self.settings, self.app_id, batch_time,
                                  may_be_retry=first)
        stats.seconds = time.monotonic() - started
        stats.jobs = jobs.count()
        self.history.append(stats)
        log.info("batch %d: %d alerts, %d cars served in %.2fs, %d jobs (%s)", batch_id,
                 stats.alerts, stats.cars, stats.seconds, stats.jobs,
                 " ".join(f"{k}={v:.2f}" for k, v in stats.steps.items()))
