"""`fleetlake replay`: recompute silver, quarantine and gold from bronze with the current config.

Coordination: replay refuses to start while a pipeline (or another replay or maintenance) holds
the lake's lease (infra/lease.py), and holds it itself, so a pipeline cannot start mid-replay.
It also refuses when bronze holds rows that no finished batch accounted for (a pipeline killed
mid-batch): the pipeline's restart finishes that batch first. The stream's checkpoints are not
touched: a restarted pipeline continues after its last batch, on top of the replayed tables.

Steps: every table is read at a pinned version; the plan (ops/replay_plan.py) gives row-level
diffs; `--dry-run` prints their counts and stops. Otherwise each table's diff is applied in ONE
MERGE (one atomic commit per table, tagged "fleetlake replay <id>" in the commit's
userMetadata; the previous state stays readable by time travel), dq_batch_metrics gets one
correction row (below), and PostgreSQL is brought in line with Delta (ops/pg_align.py).

dq_batch_metrics is the stream's record of its batches and is never rewritten. A replay that
changes anything appends one row, query_id `replay:<id>`, batch 0, holding the corrections that
make the sums over all rows match the tables again (valid/quarantined/duplicate rows and reason
counts may move between layers when validation rules changed; rows_in only grows by bronze rows
no batch had counted). So Σ rows_in = bronze rows and Σ rows_in = silver + quarantine + Σ
duplicates hold after a replay as after a stream batch, and the row pairs with the replay's
ledger row in PostgreSQL (app_id `replay:<id>`, batch 0).
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from gold.kpis import dq_batch_metrics_row
from infra.settings import Settings
from ops import replay_plan
from ops.catalog import lake_table, table_exists
from ops.diff import AFTER, CHANGE, change_counts
from ops.errors import OpsError
from ops.table_settings import apply_retention

UTC = timezone.utc
Log = Callable[[str], None]
LAYERS = ("silver", "gold")
GOLD_TABLES = ("alerts", "device_minute_kpis", "fleet_minute_kpis", "device_latest")
_USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"


class ReplayError(OpsError):
    """Replay cannot run as asked; the message says why and what to do."""


@dataclass
class ReplayResult:
    """What a replay changed (or would change, dry run): per table added/removed/changed."""

    replay_id: str
    scope: str
    changes: dict[str, dict[str, int]] = field(default_factory=dict)
    postgres: dict[str, dict[str, int]] = field(default_factory=dict)
    dq_row: bool = False

    @property
    def changed(self) -> bool:
        return any(sum(c.values()) for c in self.changes.values())


def _read(spark: SparkSession, settings: Settings, name: str) -> tuple[int, DataFrame]:
    """(current version, the table pinned at that version)."""
    path = lake_table(name).path(settings)
    if not table_exists(spark, path):
        raise ReplayError(f"{name} does not exist at {path}: run `fleetlake pipeline run` first")
    version = DeltaTable.forPath(spark, path).history(1).first().version
    return version, spark.read.format("delta").option("versionAsOf", version).load(path)


def _bronze_scope(spark: SparkSession, settings: Settings, bronze: DataFrame,
                  since: str | None, from_version: int | None) -> tuple[DataFrame, str]:
    if since is not None:
        from ops.audit import parse_timestamp

        moment = parse_timestamp(since)
        return (replay_plan.bronze_since(bronze, F.lit(moment)),
                f"bronze rows ingested since {moment:%Y-%m-%dT%H:%M:%SZ}")
    if from_version:
        path = lake_table("bronze/telemetry_raw").path(settings)
        before = spark.read.format("delta").option("versionAsOf", from_version - 1).load(path)
        return (replay_plan.bronze_added_after(bronze, before),
                f"bronze rows added since bronze version {from_version}")
    return bronze, "all bronze rows"


def _check_accounted(bronze: DataFrame, batches: DataFrame) -> None:
    """Refuse when bronze holds rows no finished batch counted (the stream stopped mid-batch)."""
    rows = bronze.count()
    counted = batches.agg(F.coalesce(F.sum("rows_in"), F.lit(0))).first()[0]
    if rows != counted:
        raise ReplayError(
            f"bronze has {rows} rows but the finished batches in gold/dq_batch_metrics counted "
            f"{counted}: a pipeline stopped in the middle of a batch; run `fleetlake pipeline "
            f"run --available-now` once to finish it, then replay")


class _Progress:
    def __init__(self, log: Log):
        self.log, self.started = log, time.monotonic()

    def __call__(self, message: str) -> None:
        self.log(f"replay [{time.monotonic() - self.started:5.0f}s] {message}")


def _count(name: str, diff: DataFrame, result: ReplayResult, step: _Progress) -> DataFrame:
    cached = diff.persist()
    result.changes[name] = change_counts(cached)
    c = result.changes[name]
    step(f"{name}: {c['added']} added, {c['removed']} removed, {c['changed']} changed")
    return cached


def apply_diff(spark: SparkSession, path: str, diff: DataFrame, keys: list[str]) -> None:
    """One MERGE: delete removed keys, update changed rows, insert added rows."""
    target = spark.read.format("delta").load(path).columns
    values = [c for c in target if c not in keys]
    source = diff.select(*keys, CHANGE, *[F.col(f"{AFTER}.`{c}`").alias(c) for c in values])
    on = None
    for key in keys:
        term = F.col(f"t.`{key}`") == F.col(f"s.`{key}`")
        on = term if on is None else on & term
    (DeltaTable.forPath(spark, path).alias("t").merge(source.alias("s"), on)
     .whenMatchedDelete(F.col(f"s.{CHANGE}") == "removed")
     .whenMatchedUpdate(F.col(f"s.{CHANGE}") == "changed",
                        {f"`{c}`": F.col(f"s.`{c}`") for c in values})
     .whenNotMatchedInsert(F.col(f"s.{CHANGE}") == "added",
                           {f"`{c}`": F.col(f"s.`{c}`") for c in target})
     .execute())


def dq_correction(spark: SparkSession, replay_id: str, tables: dict[str, DataFrame],
                  processed_at: datetime) -> tuple[DataFrame, bool]:
    """The replay's dq_batch_metrics row (see the module docstring); True if any count moves."""
    bronze, silver, quarantine, batches = (tables[n] for n in (
        "bronze/telemetry_raw", "silver/telemetry", "silver/quarantine", "gold/dq_batch_metrics"))
    b, s, q = bronze.count(), silver.count(), quarantine.count()
    sums = batches.agg(*[F.coalesce(F.sum(c), F.lit(0)).alias(c) for c in (
        "rows_in", "valid_rows", "quarantined_rows", "duplicate_rows")]).first()
    in_table = {r[0]: int(r[1]) for r in quarantine.select(F.explode("reasons"))
                .groupBy("col").count().collect()}
    in_batches = {r[0]: int(r[1]) for r in batches.select(F.explode("quarantine_reasons"))
                  .groupBy("key").agg(F.sum("value")).collect()}
    reasons = {code: in_table.get(code, 0) - in_batches.get(code, 0)
               for code in sorted(set(in_table) | set(in_batches))}
    reasons = {code: n for code, n in reasons.items() if n}
    counts = {"rows_in": b - sums["rows_in"], "valid_rows": b - q - sums["valid_rows"],
              "quarantined_rows": q - sums["quarantined_rows"],
              "duplicate_rows": b - q - s - sums["duplicate_rows"]}
    row = dq_batch_metrics_row(spark, query_id=f"replay:{replay_id}", batch_id=0,
                               quarantine_reasons=reasons, processed_at=F.lit(processed_at),
                               **counts)
    return row, any(counts.values()) or bool(reasons)


def _apply_all(spark: SparkSession, settings: Settings, diffs: dict[str, DataFrame],
               result: ReplayResult, step: _Progress) -> None:
    spark.conf.set(_USER_METADATA, f"fleetlake replay {result.replay_id}")
    try:
        for name, diff in diffs.items():
            if sum(result.changes[name].values()):
                table = lake_table(name)
                apply_retention(spark, settings, table.path(settings))
                apply_diff(spark, table.path(settings), diff, list(table.keys))
                step(f"{name}: replaced the changed rows (one commit)")
    finally:
        spark.conf.unset(_USER_METADATA)


def _postgres(spark: SparkSession, settings: Settings, result: ReplayResult,
              step: _Progress) -> None:
    from ops.pg_align import align_postgres

    gold = {name: _read(spark, settings, f"gold/{name}")[1]
            for name in (*GOLD_TABLES, "dq_batch_metrics")}
    alignment = align_postgres(spark, settings, gold, app_id=f"replay:{result.replay_id}")
    result.postgres = alignment.counts
    step(f"postgres: {alignment.changed_rows} row(s) brought in line with Delta"
         if alignment.synced else "postgres: already in line with Delta")


def run_replay(spark: SparkSession, settings: Settings, *, since: str | None = None,
               from_version: int | None = None, layers: tuple[str, ...] = LAYERS,
               dry_run: bool = False, log: Log = print,
               now: datetime | None = None) -> ReplayResult:
    """Replay (see the module docstring); the caller holds the lake's lease unless dry_run."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    step = _Progress(log)
    names = ["bronze/telemetry_raw", "silver/telemetry", "silver/quarantine",
             *[f"gold/{n}" for n in (*GOLD_TABLES, "dq_batch_metrics")]]
    pinned = {name: _read(spark, settings, name) for name in names}
    frames = {name: frame for name, (_, frame) in pinned.items()}
    _check_accounted(frames["bronze/telemetry_raw"], frames["gold/dq_batch_metrics"])
    bronze, scope = _bronze_scope(spark, settings, frames["bronze/telemetry_raw"], since,
                                  from_version)
    result = ReplayResult(f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}", scope)
    step(f"{scope}: {bronze.count()} rows; tables at versions "
         + ", ".join(f"{n} v{v}" for n, (v, _) in pinned.items()))
    diffs: dict[str, DataFrame] = {}
    try:
        silver_after = frames["silver/telemetry"]
        if "silver" in layers:
            plan = replay_plan.plan_silver(bronze, silver_after, frames["silver/quarantine"],
                                           settings.validation, F.lit(now).cast("timestamp"))
            diffs["silver/telemetry"] = _count("silver/telemetry", plan.silver_diff, result, step)
            diffs["silver/quarantine"] = _count("silver/quarantine", plan.quarantine_diff,
                                                result, step)
            silver_after = plan.silver_after
        if "gold" in layers:
            gold = {n: frames[f"gold/{n}"] for n in GOLD_TABLES}
            for name, diff in replay_plan.plan_gold(silver_after, gold, settings.alerts).items():
                diffs[f"gold/{name}"] = _count(f"gold/{name}", diff, result, step)
        if dry_run:
            return result
        _apply_all(spark, settings, diffs, result, step)
    finally:
        for diff in diffs.values():
            diff.unpersist()
    current = {name: _read(spark, settings, name)[1] for name in names}
    row, moved = dq_correction(spark, result.replay_id, current, now)
    if result.changed or moved:
        path = lake_table("gold/dq_batch_metrics").path(settings)
        apply_retention(spark, settings, path)
        row.write.format("delta").mode("append").option(
            "userMetadata", f"fleetlake replay {result.replay_id}").save(path)
        result.dq_row = True
        step(f"gold/dq_batch_metrics: appended the replay's row (query_id replay:{result.replay_id})")
    _postgres(spark, settings, result, step)
    return result
