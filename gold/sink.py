"""Gold wiring: bring the gold Delta tables up to date with one micro-batch of new silver rows.

Per batch: one small job collects, per car and minute, the event-time range of the new rows;
then one commit per table, each idempotent per (app_id, batch_id) and table:
- alerts: threshold alerts of the new rows + the stateful alerts of each touched car's readings
  from its first new reading on, within that car's affected spans (new rows + lookahead),
  recomputed from silver over those spans plus the history they need (gold/history.py):
  `stateful_recent_seconds` of it when that holds enough readings for a car (dense live data),
  else the rules' full lookback.
  For cars with late readings, the same alerts computed on silver without the new rows (= what
  gold held) are compared with them: only inserted, changed or deleted alerts are kept. Written
  as an append when every kept alert id is new (the live case, and most late readings), else as
  one MERGE.
- device_minute_kpis, fleet_minute_kpis: the minutes of the new rows and of the alert changes,
  recomputed for all cars from silver and gold/alerts filtered on those minutes (literal ranges:
  Delta skips the other files), replaced with `replaceWhere` on those minutes.
- device_latest: rewritten as the latest of (table, new rows) per car (one small table).
- dq_batch_metrics: the given row appended.
Everything returned is a function of Delta state and the batch, never of what a write did, so a
retried batch returns the same changes whichever of its writes had committed.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import reduce
from typing import Iterator

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from gold import ranges
from gold.alerts import threshold_alerts
from gold.history import HISTORY, BatchRanges, batch_ranges, history_rows
from gold.kpis import (car_minute_stats, device_kpis_from_stats, device_latest,
                       fleet_kpis_from_stats)
from gold.schema import ALERTS_COLUMNS, DEVICE_LATEST_COLUMNS, GOLD_KEYS, GOLD_SCHEMAS
from gold.stateful import car_modes, recent_lookback, required_lookback, stateful_alerts_by
from infra.parallel import Background
from infra.settings import AlertRules, Settings

SILVER_INPUT = ("event_id", "car_id", "trip_id", "event_ts", "speed_kmph", "fuel_level",
                "engine_temp_c", "latitude", "longitude", "gps_valid", "kafka_timestamp")
TXN_APP_ID = "spark.databricks.delta.write.txnAppId"
TXN_VERSION = "spark.databricks.delta.write.txnVersion"


@dataclass
class GoldChanges:
    """What one batch changed in gold, for PostgreSQL: rows to upsert and keys to delete.

    The frames are cached: call `release()` once they are applied (the next `update_gold` call
    releases them anyway, so they are valid until then). Intermediate caches are released only
    here too, once nothing built on them is read any more (Spark's CacheManager may rebuild the
    caches that depend on an unpersisted plan).
    """

    upserts: dict[str, DataFrame]
    deletes: dict[str, DataFrame]
    cached: list[DataFrame] = field(default_factory=list, repr=False)

    def release(self) -> None:
        for frame in self.cached:
            frame.unpersist()
        self.cached.clear()

    def keep(self, frame: DataFrame) -> DataFrame:
        cached = frame.persist()
        self.cached.append(cached)
        return cached


_OUTSTANDING: list[GoldChanges] = []


def ensure_gold_tables(spark: SparkSession, settings: Settings) -> None:
    """Create the five gold Delta tables at their contract paths if missing (idempotent)."""
    for name, schema in GOLD_SCHEMAS.items():
        (DeltaTable.createIfNotExists(spark)
         .location(settings.table_path("gold", name))
         .addColumns(schema)
         .execute())


def update_gold(kept_silver_df: DataFrame, dq_row_df: DataFrame, settings: Settings,
                app_id: str, batch_id: int) -> GoldChanges:
    """Make gold equal to a recomputation from silver after this batch; return what changed."""
    while _OUTSTANDING:
        _OUTSTANDING.pop().release()
    changes = GoldChanges({}, {})
    _OUTSTANDING.append(changes)
    level = kept_silver_df.storageLevel
    own_cache = not (level.useMemory or level.useDisk)
    new = kept_silver_df.select(*SILVER_INPUT)
    new = new.persist() if own_cache else new
    try:
        writer = _Writer(kept_silver_df.sparkSession, settings, app_id, batch_id)
        # writes that need nothing computed here run beside the alerts (see infra/parallel.py)
        with Background() as background:
            dq = background.start("dq", lambda: _append_dq(writer, dq_row_df, changes))
            batch = batch_ranges(new, required_lookback(settings.alerts))
            if batch.minutes:
                latest = background.start("latest", lambda: _rewrite_latest(writer, new, changes))
                _update_from_rows(writer, new, batch, changes, background)
        changes.upserts["dq_batch_metrics"] = dq.result()
        if batch.minutes:
            changes.upserts["device_latest"] = latest.result()
        return changes
    finally:
        if own_cache:
            new.unpersist()


def _update_from_rows(writer: _Writer, new: DataFrame, batch: BatchRanges,
                      changes: GoldChanges, background: Background) -> None:
    rules = writer.settings.alerts
    affected = batch.affected
    silver = writer.read("silver", "telemetry")
    alert_changes = changes.keep(_alert_changes(silver, new, batch, rules, changes))
    summary = (alert_changes.groupBy(F.unix_micros(F.date_trunc("minute", "event_ts")))
               .agg(F.max(F.col("_op") != "I")).collect())
    if summary:
        merge_needed = any(row[1] for row in summary)
        _write_alerts(writer, alert_changes, affected, merge_needed)
    changes.upserts["alerts"] = alert_changes.where(F.col("_op") != "D").select(*ALERTS_COLUMNS)
    changes.deletes["alerts"] = (alert_changes.where(F.col("_op") == "D")
                                 .select(*GOLD_KEYS["alerts"]))
    touched_minutes = set(batch.minutes) | {int(row[0]) for row in summary}
    _replace_kpis(writer, silver, ranges.minute_spans(touched_minutes), changes, background)


def _alert_changes(silver: DataFrame, new: DataFrame, batch: BatchRanges,
                   rules: AlertRules, changes: GoldChanges) -> DataFrame:
    """ALERTS columns + `_op`: what gold must change, I insert (a new alert id), U update (an
    alert whose values changed), D delete. Unchanged alerts are left out.

    History: the recent rows for cars they are enough for, the full lookback for the others
    (`car_modes`); for late cars also silver without the new rows (`_v` 0), whose alerts in the
    range are what gold held, to find the ones that no longer hold.
    """
    recent = changes.keep(history_rows(silver, batch, recent_lookback(rules)))
    modes = changes.keep(car_modes(recent, new, rules))
    parts = [recent.join(F.broadcast(modes.where(~F.col("_full"))), "car_id")
             .select(*HISTORY, "_in_range", F.lit(1).alias("_v"))]
    flags = modes.agg(F.max("_full"), F.max("_late")).first()
    any_late = bool(flags[1])
    if flags[0]:
        full = (history_rows(silver, batch, required_lookback(rules))
                .join(F.broadcast(modes.where(F.col("_full"))), "car_id"))
        late_new = new.select("car_id", "event_id", F.lit(True).alias("_is_new")).join(
            F.broadcast(modes.where(F.col("_late")).select("car_id")), "car_id", "left_semi")
        was_there = F.col("_late") & F.col("_is_new").isNull()  # silver before this batch too
        parts.append(full.join(late_new, ["car_id", "event_id"], "left").select(
            *HISTORY, "_in_range", F.explode(F.when(was_there, F.array(F.lit(1), F.lit(0)))
                                             .otherwise(F.array(F.lit(1)))).alias("_v")))
    versions = reduce(DataFrame.unionByName, parts)
    stateful = (stateful_alerts_by(versions, rules, ["_v"], carry=["_in_range"])
                .join(F.broadcast(modes.select("car_id", "_first_new_ts")), "car_id")
                .where((F.col("event_ts") >= F.col("_first_new_ts")) & F.col("_in_range")))
    now = stateful.where(F.col("_v") == 1).select(*ALERTS_COLUMNS)
    threshold = threshold_alerts(new, rules)
    if not any_late:  # live case: every alert from the first new readings on is new
        return threshold.unionByName(now).withColumn("_op", F.lit("I"))
    before = stateful.where(F.col("_v") == 0).select(*ALERTS_COLUMNS)
    existed = before.select("alert_id", F.lit(True).alias("_existed"))
    # only what differs from gold: unchanged alerts of late cars are neither written nor synced
    upserts = (threshold.unionByName(now.subtract(before)).join(existed, "alert_id", "left")
               .select(*ALERTS_COLUMNS, F.when(F.col("_existed"), F.lit("U"))
                       .otherwise(F.lit("I")).alias("_op")))
    deletes = (before.join(now.select("alert_id"), "alert_id", "left_anti")
               .withColumn("_op", F.lit("D")))
    return upserts.unionByName(deletes)


class _Writer:
    """Idempotent writes of one batch to gold tables; reads of the lake."""

    def __init__(self, spark: SparkSession, settings: Settings, app_id: str, batch_id: int):
        self.spark, self.settings, self.app_id, self.batch_id = spark, settings, app_id, batch_id

    def path(self, name: str, layer: str = "gold") -> str:
        return self.settings.table_path(layer, name)

    def read(self, layer: str, name: str) -> DataFrame:
        return self.spark.read.format("delta").load(self.settings.table_path(layer, name))

    def write(self, frame: DataFrame, name: str, mode: str,
              replace_where: str | None = None) -> None:
        writer = (frame.write.format("delta").mode(mode).option("txnAppId", self.app_id)
                  .option("txnVersion", self.batch_id))
        if replace_where is not None:
            writer = writer.option("replaceWhere", replace_where)
        writer.save(self.path(name))

    @contextmanager
    def txn(self) -> Iterator[None]:
        """Session confs making a MERGE idempotent per (app_id, batch_id) and table."""
        conf = self.spark.conf
        conf.set(TXN_APP_ID, self.app_id)
        conf.set(TXN_VERSION, str(self.batch_id))
        try:
            yield
        finally:
            conf.unset(TXN_APP_ID)
            conf.unset(TXN_VERSION)


def _write_alerts(writer: _Writer, alert_changes: DataFrame, affected: list[ranges.Span],
                  merge_needed: bool) -> None:
    if not merge_needed:  # every alert id is new: no lookup of existing rows needed
        inserts = alert_changes.select(*ALERTS_COLUMNS)
        writer.write(inserts, "alerts", "append")
        return
    values = {c: f"s.`{c}`" for c in ALERTS_COLUMNS}
    changed = " OR ".join(f"NOT (t.`{c}` <=> s.`{c}`)" for c in ALERTS_COLUMNS[1:])
    on = f"t.alert_id = s.alert_id AND ({_sql_spans('t.event_ts', affected)})"
    # Delta materializes a MERGE source from its plan, missing our cache (measured: 26 s of a
    # 28 s MERGE recomputing the stateful rules); a local checkpoint hands it the rows instead.
    source = alert_changes.localCheckpoint(eager=True)
    with writer.txn():
        (DeltaTable.forPath(writer.spark, writer.path("alerts")).alias("t")
         .merge(source.alias("s"), on)
         .whenMatchedDelete(condition="s._op = 'D'")
         .whenMatchedUpdate(condition=f"s._op != 'D' AND ({changed})", set=values)
         .whenNotMatchedInsert(condition="s._op != 'D'", values=values)
         .execute())


def _sql_spans(column: str, spans: list[ranges.Span]) -> str:
    """SQL text of `column` within `spans` (timestamps as exact UTC literals)."""
    def lit(us: int) -> str:
        return f"TIMESTAMP '{ranges.to_datetime(us).strftime('%Y-%m-%d %H:%M:%S.%f')}+00:00'"
    return " OR ".join(f"({column} BETWEEN {lit(lo)} AND {lit(hi)})" for lo, hi in spans) or "false"


def _replace_kpis(writer: _Writer, silver: DataFrame, spans: list[ranges.Span],
                  changes: GoldChanges, background: Background) -> None:
    """Recompute the KPI windows of `spans` for all cars; replace them in both tables,
    side by side (Spark computes the cached stats they share once)."""
    readings = silver.where(ranges.in_spans("event_ts", spans))
    alerts = writer.read("gold", "alerts").where(ranges.in_spans("event_ts", spans))
    stats = changes.keep(car_minute_stats(readings, alerts))
    in_windows = _sql_spans("window_start", spans)
    for name, frame in (("device_minute_kpis", device_kpis_from_stats(stats)),
                        ("fleet_minute_kpis", fleet_kpis_from_stats(stats))):
        kept = changes.keep(frame)
        background.start(name, lambda kept=kept, name=name: writer.write(
            kept, name, "overwrite", replace_where=in_windows))
        changes.upserts[name] = kept


def _rewrite_latest(writer: _Writer, new: DataFrame, changes: GoldChanges) -> DataFrame:
    """device_latest := latest of (table, new rows) per car; returns the touched cars' rows."""
    current = writer.read("gold", "device_latest")
    latest = changes.keep(device_latest(
        current.unionByName(new.select(*DEVICE_LATEST_COLUMNS))))
    writer.write(latest, "device_latest", "overwrite")
    cars = F.broadcast(new.select("car_id").distinct())
    return changes.keep(latest.join(cars, "car_id", "left_semi"))


def _append_dq(writer: _Writer, dq_row_df: DataFrame, changes: GoldChanges) -> DataFrame:
    """Append the batch's DQ row once; return the row as stored (the first attempt's)."""
    row = dq_row_df.select(*GOLD_SCHEMAS["dq_batch_metrics"].fieldNames())
    writer.write(row, "dq_batch_metrics", "append")
    keys = F.broadcast(row.select(*GOLD_KEYS["dq_batch_metrics"]))
    stored = (writer.read("gold", "dq_batch_metrics")
              .where(F.col("batch_id") == F.lit(writer.batch_id))
              .join(keys, GOLD_KEYS["dq_batch_metrics"], "left_semi"))
    return changes.keep(stored)
