"""Gold wiring: bring the gold Delta tables up to date with one batch of new silver rows.

Called by the gold query (fleetlake/gold_query.py) after it appended the batch to silver. One
small job collects, per car and minute, the event-time range of the new rows; then one commit
per table, each idempotent per (app_id, batch_id):
- alerts: the batch's alert changes (gold/changes.py), appended when all are new (the live
  case and most late readings), else one MERGE over the changed rows only.
- device_minute_kpis, fleet_minute_kpis: the touched minutes (new readings, alert changes),
  held rows + the batch's deltas (gold/kpi_updates.py), replaced with `replaceWhere` on those
  minutes; nothing is recomputed from silver.
- device_latest: rewritten as the latest of (table, new rows) per car (one row per car).
- dq_batch_metrics: the batch's row appended.
Everything returned is a function of the tables as the batch found them and of the batch,
never of what a write did: a retried batch reads the tables it rewrites as they were before its
own commits (`_Tables.read_before_batch`), so it returns the same changes whichever of its
writes had committed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from gold import ranges
from gold.changes import DELETE, INSERT, OP, alert_changes
from gold.history import BatchRanges, batch_ranges
from gold.kpi_updates import KEYS, apply_kpi_deltas, fleet_from_device, kpi_deltas
from gold.kpis import device_latest
from gold.schema import ALERTS_COLUMNS, DEVICE_LATEST_COLUMNS, GOLD_KEYS, GOLD_SCHEMAS
from gold.stateful import required_lookback
from infra.caching import CacheScope
from infra.delta_io import (REWRITTEN_TABLE_PROPERTIES, append_once, ensure_table,
                            merge_transaction, overwrite_once, read_pinned, version_before)
from infra.parallel import Background, timed
from infra.settings import Settings

SILVER_INPUT = ("event_id", "car_id", "trip_id", "event_ts", "speed_kmph", "fuel_level",
                "engine_temp_c", "latitude", "longitude", "gps_valid", "kafka_timestamp")
_STATS = {"alerts": "alert_id,event_id,car_id,event_ts,alert_type,severity",
          "device_minute_kpis": "car_id,window_start", "fleet_minute_kpis": "window_start",
          "device_latest": "car_id", "dq_batch_metrics": "query_id,batch_id,processed_at"}


@dataclass
class GoldChanges:
    """What one batch changed in gold, for PostgreSQL: rows to upsert and keys to delete.

    The frames live in the batch's CacheScope: apply them before it closes.
    """

    upserts: dict[str, DataFrame | pa.Table] = field(default_factory=dict)
    deletes: dict[str, DataFrame | pa.Table] = field(default_factory=dict)
    device_latest: pa.Table | None = None  # the whole table after the batch (one row per car)


def ensure_gold_tables(spark: SparkSession, settings: Settings) -> None:
    """Create the five gold Delta tables at their contract paths if missing (idempotent)."""
    for name, schema in GOLD_SCHEMAS.items():
        ensure_table(spark, settings.table_path("gold", name), schema, f"fleetlake gold: {name}",
                     REWRITTEN_TABLE_PROPERTIES, stats_columns=_STATS[name],
                     retention_days=settings.retention.days)


class _Tables:
    """Reads and idempotent writes of the gold tables for one batch."""

    def __init__(self, spark: SparkSession, settings: Settings, app_id: str, batch_id: int,
                 may_be_retry: bool):
        self.spark, self.settings, self.app_id, self.batch_id = spark, settings, app_id, batch_id
        self.may_be_retry = may_be_retry

    def path(self, name: str, layer: str = "gold") -> str:
        return self.settings.table_path(layer, name)

    def read(self, name: str, layer: str = "gold") -> DataFrame:
        return self.spark.read.format("delta").load(self.path(name, layer))

    def read_before_batch(self, name: str) -> DataFrame:
        """The gold table as this batch found it, pinned to a version: on a retry whose write to
        it committed, the version before that commit, so the retry computes what the first
        attempt did; otherwise the newest (infra/delta_io.read_pinned says why pinned)."""
        version = None
        if self.may_be_retry:
            version = version_before(self.spark, self.path(name), self.app_id, self.batch_id)
        return read_pinned(self.spark, self.path(name), version)

    def append(self, frame: DataFrame, name: str) -> None:
        append_once(frame, self.path(name), self.app_id, self.batch_id, self.may_be_retry)

    def overwrite(self, frame: DataFrame, name: str, replace_where: str | None = None) -> None:
        overwrite_once(frame, self.path(name), self.app_id, self.batch_id, replace_where)


def update_gold(new_silver: DataFrame, dq_row: DataFrame, settings: Settings, app_id: str,
                batch_id: int, caches: CacheScope, steps: dict[str, float] | None = None,
                may_be_retry: bool = True,
                latest_before: pa.Table | None = None) -> GoldChanges:
    """Make gold equal to a recomputation from silver after this batch; return what changed.

    `new_silver`: the batch's rows just appended to silver (cached by the caller). `steps`
    collects the time of each step (the log line's profile). `may_be_retry`: an earlier
    attempt of this batch may have committed some writes (true for the first batch a process
    runs: a failed batch stops the query, so retries only happen after a restart); the tables
    a batch reads and rewrites are then read as they were before its own commits.
    `latest_before`: device_latest as the previous batch left it (GoldChanges.device_latest;
    None: read the table), which spares a read of a table the query alone writes.
    """
    spark = new_silver.sparkSession
    steps = {} if steps is None else steps
    tables = _Tables(spark, settings, app_id, batch_id, may_be_retry)
    new = new_silver.select(*SILVER_INPUT)
    changes = GoldChanges()
    # writes that need nothing computed here run beside the alerts (see infra/parallel.py)
    with Background(steps, spark=spark) as background:
        background.start("dq", lambda: tables.append(
            dq_row.select(*GOLD_SCHEMAS["dq_batch_metrics"].fieldNames()), "dq_batch_metrics"))
        changes.upserts["dq_batch_metrics"] = dq_row
        with timed(steps, "ranges", spark):
            batch = batch_ranges(new, required_lookback(settings.alerts))
        if batch.minutes:
            latest = background.start("latest", lambda: _rewrite_latest(tables, new,
                                                                        latest_before))
            _update_from_rows(tables, new, batch, changes, caches, background, steps)
    if batch.minutes:
        changes.device_latest = latest.result()
        changes.upserts["device_latest"] = caches.keep(device_latest(new))
    else:
        changes.device_latest = latest_before
    return changes


def _update_from_rows(tables: _Tables, new: DataFrame, batch: BatchRanges, changes: GoldChanges,
                      caches: CacheScope, background: Background,
                      steps: dict[str, float]) -> None:
    spark = tables.spark
    silver = tables.read("telemetry", "silver")
    with timed(steps, "alert_changes", spark):
        changed = caches.keep(alert_changes(silver, tables.read_before_batch("alerts"), new,
                                             batch, tables.settings.alerts, caches))
        summary = (changed.groupBy(F.unix_micros(F.date_trunc("minute", "event_ts")))
                   .agg(F.max(F.col(OP) != F.lit(INSERT))).collect())
    if summary:
        merge_needed = any(row[1] for row in summary)
        with timed(steps, "alerts_write", spark):
            _write_alerts(tables, changed, batch.affected, merge_needed)
    upserts, deletes = split_changes(changed.toArrow())  # one job for both
    changes.upserts["alerts"], changes.deletes["alerts"] = upserts, deletes
    minutes = ranges.minute_spans(set(batch.minutes) | {int(row[0]) for row in summary})
    with timed(steps, "kpis", spark):
        _update_kpis(tables, kpi_deltas(new, changed), minutes, changes, caches, background)


def split_changes(changed: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Alert changes (ALERTS columns + OP) -> rows to upsert, and alert ids to delete."""
    is_delete = pc.equal(changed.column(OP), DELETE)
    upserts = changed.filter(pc.invert(is_delete)).select(list(ALERTS_COLUMNS))
    return upserts, changed.filter(is_delete).select(GOLD_KEYS["alerts"])


def _write_alerts(tables: _Tables, changed: DataFrame, affected: list[ranges.Span],
                  merge_needed: bool) -> None:
    if not merge_needed:  # every alert id is new: no lookup of existing rows needed
        tables.append(changed.select(*ALERTS_COLUMNS), "alerts")
        return
    values = {c: f"s.`{c}`" for c in ALERTS_COLUMNS}
    differs = " OR ".join(f"NOT (t.`{c}` <=> s.`{c}`)" for c in ALERTS_COLUMNS[1:])
    on = f"t.alert_id = s.alert_id AND ({ranges.sql_spans('t.event_ts', affected)})"
    # Delta materializes a MERGE source from its plan, missing our cache (measured: 26 s of a
    # 28 s MERGE recomputing the stateful rules); a local checkpoint hands it the rows instead.
    source = changed.localCheckpoint(eager=True)
    with merge_transaction(tables.spark, tables.app_id, tables.batch_id):
        (DeltaTable.forPath(tables.spark, tables.path("alerts")).alias("t")
         .merge(source.alias("s"), on)
         .whenMatchedDelete(condition=f"s.{OP} = '{DELETE}'")
         .whenMatchedUpdate(condition=f"s.{OP} != '{DELETE}' AND ({differs})", set=values)
         .whenNotMatchedInsert(condition=f"s.{OP} != '{DELETE}'", values=values)
         .execute())


def _update_kpis(tables: _Tables, deltas: DataFrame, minutes: list[ranges.Span],
                 changes: GoldChanges, caches: CacheScope, background: Background) -> None:
    """Held rows of the touched minutes + the batch's deltas; both KPI tables replaced on those
    minutes side by side; PostgreSQL gets the touched device rows and the minutes' fleet rows."""
    held = (tables.read_before_batch("device_minute_kpis")
            .where(ranges.in_spans("window_start", minutes)))
    deltas = caches.keep(deltas)
    device = caches.freeze(apply_kpi_deltas(held, deltas))  # built on the table it replaces
    fleet = caches.keep(fleet_from_device(device))
    in_minutes = ranges.sql_spans("window_start", minutes)
    for name, frame in (("device_minute_kpis", device), ("fleet_minute_kpis", fleet)):
        background.start(name, lambda frame=frame, name=name: tables.overwrite(
            frame, name, replace_where=in_minutes))
    keys = deltas.select(*KEYS)
    changes.upserts["device_minute_kpis"] = device.join(F.broadcast(keys), list(KEYS),
                                                        "left_semi")
    changes.upserts["fleet_minute_kpis"] = fleet


def _rewrite_latest(tables: _Tables, new: DataFrame, before: pa.Table | None) -> pa.Table:
    """device_latest := latest of (table, new rows) per car (a small table, rewritten from
    rows collected to the driver, so the write does not read the table it replaces).

    PostgreSQL gets each touched car's latest new reading instead, with a policy that keeps a
    later row (serving/policies.py): the same result, without reading the table back."""
    schema = GOLD_SCHEMAS["device_latest"]
    current = (tables.read_before_batch("device_latest") if before is None
               else tables.spark.createDataFrame(before, schema=schema))
    rows = device_latest(current.unionByName(new.select(*DEVICE_LATEST_COLUMNS))).toArrow()
    tables.overwrite(tables.spark.createDataFrame(rows, schema=schema), "device_latest")
    return rows
