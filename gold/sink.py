"""Gold wiring: bring the gold Delta tables up to date with one batch of new silver rows.

Called by the gold query (fleetlake/gold_query.py) with the batch's new silver rows and silver as
the batch found it plus those rows (the query appends them to silver afterwards, and serves
PostgreSQL from the returned changes while the writes below still run). Few Spark jobs
per batch: every step collects a small result to the driver (Arrow), and every table is then
written from those rows, side by side, each write idempotent per (app_id, batch_id):
1. one aggregate of the new rows (gold/summary.py): per car and minute, per car;
2. alerts: the batch's alert changes (gold/changes.py) over each car's history, fast from the
   carried rows for cars whose readings all follow what gold has seen (gold/carry.py), else
   from silver's whole lookback; appended when all are new (the live case), else one MERGE
   over the changed rows only;
3. device_minute_kpis, fleet_minute_kpis: the touched minutes' held rows (read while the alerts
   are computed) + the batch's deltas, added up on the driver in Arrow (gold/kpi_updates.py),
   replaced with `replaceWhere` on those minutes;
4. device_latest: the latest of (table, new rows) per car (Arrow, gold/latest.py), rewritten;
5. dq_batch_metrics: the batch's row appended.
Everything returned is a function of the tables as the batch found them and of the batch,
never of what a write did: a retried batch reads the tables it rewrites as they were before its
own commits (`_Tables.read_before_batch`), so it returns the same changes whichever of its
writes had committed.
"""
from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F, types as T

from gold import kpi_minutes, ranges
from gold.carry import CarriedContext, carried_rows
from gold.changes import DELETE, FIRSTS_SCHEMA, INSERT, OP, alert_changes, held_alerts
from gold.cars import CarModes, car_frame, car_histories, plan_cars
from gold.history import BatchRanges, recomputed_spans
from gold.kpi_updates import apply_kpi_deltas, fleet_from_device, kpi_deltas
from gold.latest import latest_per_car
from gold.schema import ALERTS_COLUMNS, ALERTS_SCHEMA, GOLD_KEYS, GOLD_SCHEMAS
from gold.stateful import required_lookback
from gold.summary import BatchSummary
from infra.caching import CacheScope
from infra.delta_io import (REWRITTEN_TABLE_PROPERTIES, append_once, ensure_table,
                            merge_transaction, overwrite_once, read_pinned, version_before)
from infra.local_frames import local_frame
from infra.parallel import Background, timed
from infra.settings import Settings

SILVER_INPUT = ("event_id", "car_id", "trip_id", "event_ts", "speed_kmph", "fuel_level",
                "engine_temp_c", "latitude", "longitude", "gps_valid", "kafka_timestamp")
_STATS = {"alerts": "alert_id,event_id,car_id,event_ts,alert_type,severity",
          "device_minute_kpis": "car_id,window_start", "fleet_minute_kpis": "window_start",
          "device_latest": "car_id", "dq_batch_metrics": "query_id,batch_id,processed_at"}
CHANGES_SCHEMA = T.StructType([*ALERTS_SCHEMA.fields, T.StructField(OP, T.StringType())])


@dataclass
class GoldChanges:
    """What one batch changed in gold, for PostgreSQL (Arrow tables: rows to upsert, keys to
    delete), and what the next batch starts from: computed beside the batch's writes (off the
    path to PostgreSQL), done when they are."""

    upserts: dict[str, DataFrame | pa.Table] = field(default_factory=dict)
    deletes: dict[str, DataFrame | pa.Table] = field(default_factory=dict)
    # pa.Table: the whole device_latest after the batch (one row per car)
    device_latest: Future = field(default_factory=lambda: done(None))
    carried: Future = field(default_factory=lambda: done(CarriedContext()))  # CarriedContext
    # the alerts write (perhaps a MERGE): appends without writer options must wait for it
    alerts_written: Future | None = None


def done(value: object) -> Future:
    """A Future already holding `value`."""
    future: Future = Future()
    future.set_result(value)
    return future


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

    def append(self, rows: pa.Table | DataFrame, name: str) -> None:
        append_once(self._frame(rows, name), self.path(name), self.app_id, self.batch_id,
                    self.may_be_retry)

    def overwrite(self, rows: pa.Table, name: str, replace_where: str | None = None) -> None:
        overwrite_once(self._frame(rows, name), self.path(name), self.app_id, self.batch_id,
                       replace_where)

    def _frame(self, rows: pa.Table | DataFrame, name: str) -> DataFrame:
        schema = GOLD_SCHEMAS[name]
        if isinstance(rows, DataFrame):
            return rows.select(*schema.fieldNames())
        return local_frame(self.spark, rows, schema)


def update_gold(new_silver: DataFrame, dq_row: DataFrame, settings: Settings, app_id: str,
                batch_id: int, caches: CacheScope, steps: dict[str, float] | None = None,
                may_be_retry: bool = True, latest_before: pa.Table | None = None,
                carried: CarriedContext | None = None, silver: DataFrame | None = None,
                writes: Background | None = None) -> GoldChanges:
    """Make gold equal to a recomputation from silver after this batch; return what changed.

    `new_silver`: the batch's new silver rows (cached by the caller). `silver`: silver with
    them (default: the table, which the caller appended them to). `steps` collects the time
    of each step (the log line's profile). `may_be_retry`: an earlier
    attempt of this batch may have committed some writes (true for the first batch a process
    runs: a failed batch stops the query, so retries only happen after a restart); the tables
    a batch reads and rewrites are then read as they were before its own commits.
    `latest_before`, `carried`: device_latest and the carried rows as the previous batch left
    them (GoldChanges), which spare reads of tables the query alone writes; None: read
    device_latest, and recompute every car from silver's lookback.
    `writes`: where the gold table writes start; given, they may still be running when this
    returns (the caller waits: it serves PostgreSQL first); None: they are done on return.
    """
    if writes is None:
        with Background(steps, spark=new_silver.sparkSession) as own:
            return update_gold(new_silver, dq_row, settings, app_id, batch_id, caches, steps,
                               may_be_retry, latest_before, carried, silver, own)
    spark = new_silver.sparkSession
    steps = {} if steps is None else steps
    tables = _Tables(spark, settings, app_id, batch_id, may_be_retry)
    new = new_silver.select(*SILVER_INPUT)
    silver = tables.read("telemetry", "silver") if silver is None else silver
    carried = carried if carried is not None else CarriedContext()
    changes = GoldChanges(carried=done(carried))
    dq_written = writes.start("dq", lambda: _append_dq(tables, dq_row))
    with timed(steps, "summary", spark):
        summary = BatchSummary.of(new)
    if latest_before is None:
        latest_before = tables.read_before_batch("device_latest").toArrow()
    changes.device_latest = done(latest_before)
    if summary.is_empty:
        changes.upserts["dq_batch_metrics"] = dq_written.result()
        return changes
    modes = plan_cars(summary.car_spans(), latest_before, carried, settings.alerts)
    lookback = required_lookback(settings.alerts)
    batch = summary.ranges(lookback)
    late_spans = {car: recomputed_spans(batch.cars[car], lookback, modes.first_new_us[car])
                  for car in modes.late}
    prefetch = kpi_minutes.prefetch_spans(set(batch.minutes), late_spans)
    held_kpis = writes.start("kpis_held", lambda: _held_kpi_rows(tables, prefetch))
    with timed(steps, "alerts", spark):
        changed = _alert_changes(tables, silver, new, batch, modes, late_spans, carried,
                                 changes, writes, caches, steps)
    changes.alerts_written = writes.start(
        "alerts_write", lambda: _write_alerts(tables, changed, modes, dq_written))
    upserts, deletes = split_changes(changed)
    changes.upserts["alerts"], changes.deletes["alerts"] = upserts, deletes
    with timed(steps, "kpis", spark):
        _update_kpis(tables, summary, changed, changes, writes, set(batch.minutes),
                     (prefetch, held_kpis))
    changes.device_latest = writes.start("latest_write", lambda: _write_latest(
        tables, latest_before, summary.latest()))
    changes.upserts["device_latest"] = summary.latest()
    changes.upserts["dq_batch_metrics"] = dq_written.result()  # long done: it ran beside alerts
    return changes


def _append_dq(tables: _Tables, dq_row: DataFrame) -> pa.Table:
    """The batch's dq_batch_metrics row appended; returned as Arrow (for PostgreSQL)."""
    dq = dq_row.select(*GOLD_SCHEMAS["dq_batch_metrics"].fieldNames()).toArrow()
    tables.append(dq, "dq_batch_metrics")
    return dq


def _write_latest(tables: _Tables, before: pa.Table, batch_latest: pa.Table) -> pa.Table:
    """device_latest after the batch, rewritten (one row per car); returned (the next batch's)."""
    latest_after = _latest_after(before, batch_latest)
    tables.overwrite(latest_after, "device_latest")
    return latest_after


def _alert_changes(tables: _Tables, silver: DataFrame, new: DataFrame, batch: BatchRanges,
                   modes: CarModes, late_spans: dict[str, list[ranges.Span]],
                   carried: CarriedContext, changes: GoldChanges, writes: Background,
                   caches: CacheScope, steps: dict[str, float]) -> pa.Table:
    """The batch's alert changes (CHANGES_SCHEMA) collected. `late_spans`: per late car, the
    readings whose alerts it recomputes (all its changes). `changes.carried`: the rows carried
    to the next batch, computed beside the rest of the batch from its cached history."""
    spark, rules = tables.spark, tables.settings.alerts
    history, modes = car_histories(silver, new, batch, modes, carried, rules, caches, steps)
    history = caches.keep(history)
    steps["fast_cars"] = float(len(modes.fast))
    firsts = local_frame(spark, sorted(modes.first_new_us.items()), FIRSTS_SCHEMA)
    held = None
    if modes.late:
        held = held_alerts(tables.read_before_batch("alerts"), late_spans)
    changed = alert_changes(history, new, firsts, held, rules).toArrow()
    late = set(modes.late)
    if modes.in_order:
        in_order = history.join(F.broadcast(car_frame(spark, modes.in_order)), "car_id",
                                "left_semi")
        changes.carried = writes.start("carry", lambda: carried.updated(
            carried_rows(in_order, rules).toArrow(), late))
    else:
        changes.carried = done(carried.updated(None, late))
    return changed


def split_changes(changed: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Alert changes (ALERTS columns + OP) -> rows to upsert, and alert ids to delete."""
    is_delete = pc.equal(changed.column(OP), DELETE)
    upserts = changed.filter(pc.invert(is_delete)).select(list(ALERTS_COLUMNS))
    return upserts, changed.filter(is_delete).select(GOLD_KEYS["alerts"])


def _write_alerts(tables: _Tables, changed: pa.Table, modes: CarModes,
                  appended_before: Future) -> None:
    """Append the changes if all are inserts, else one MERGE, once `appended_before` (the
    batch's other append so far) is done: a MERGE takes its idempotency keys from session
    confs, which an append committing beside it would take as its own (infra/delta_io.py)."""
    if changed.num_rows == 0:
        return
    if not modes.late or pc.all(pc.equal(changed.column(OP), INSERT)).as_py():
        tables.append(changed.select(list(ALERTS_COLUMNS)), "alerts")  # every alert id is new
        return
    appended_before.result()
    values = {c: f"s.`{c}`" for c in ALERTS_COLUMNS}
    differs = " OR ".join(f"NOT (t.`{c}` <=> s.`{c}`)" for c in ALERTS_COLUMNS[1:])
    stamps = pc.cast(changed.column("event_ts"), pa.int64())
    spans = ranges.merge_spans([(pc.min(stamps).as_py(), pc.max(stamps).as_py())])
    on = f"t.alert_id = s.alert_id AND ({ranges.sql_spans('t.event_ts', spans)})"
    source = local_frame(tables.spark, changed, CHANGES_SCHEMA)
    with merge_transaction(tables.spark, tables.app_id, tables.batch_id):
        (DeltaTable.forPath(tables.spark, tables.path("alerts")).alias("t")
         .merge(source.alias("s"), on)
         .whenMatchedDelete(condition=f"s.{OP} = '{DELETE}'")
         .whenMatchedUpdate(condition=f"s.{OP} != '{DELETE}' AND ({differs})", set=values)
         .whenNotMatchedInsert(condition=f"s.{OP} != '{DELETE}'", values=values)
         .execute())


def _held_kpi_rows(tables: _Tables, minutes: list[ranges.Span]) -> pa.Table:
    """device_minute_kpis rows within those minute spans, every car, as the batch found them."""
    return (tables.read_before_batch("device_minute_kpis")
            .where(ranges.in_spans("window_start", minutes)).toArrow())


def _update_kpis(tables: _Tables, summary: BatchSummary, changed: pa.Table,
                 changes: GoldChanges, background: Background, reading_minutes: set[int],
                 prefetched: tuple[list[ranges.Span], Future]) -> None:
    """Held rows of the touched minutes + the batch's deltas; both KPI tables replaced on those
    minutes side by side; PostgreSQL gets every row of those minutes. `prefetched`: the held
    rows of some minute spans, read while the alerts were computed (gold/kpi_minutes.py):
    those of the touched minutes are taken from them when they cover them (else read again)."""
    deltas = kpi_deltas(summary.reading_stats(), changed)
    alert_minutes = pc.unique(pc.floor_temporal(changed.column("event_ts"), unit="minute"))
    minute_starts = reading_minutes | {
        int(us) for us in pc.cast(alert_minutes, pa.int64()).to_pylist()}
    minutes = ranges.minute_spans(minute_starts)
    prefetched_spans, held_rows = prefetched
    held = kpi_minutes.held_in(held_rows.result(), prefetched_spans, minutes)
    if held is None:  # some touched minute was not read ahead
        held = _held_kpi_rows(tables, minutes)
    device = apply_kpi_deltas(held, deltas)
    fleet = fleet_from_device(device)
    in_minutes = ranges.sql_spans("window_start", minutes)
    for name, rows in (("device_minute_kpis", device), ("fleet_minute_kpis", fleet)):
        background.start(name, lambda rows=rows, name=name: tables.overwrite(
            rows, name, replace_where=in_minutes))
    changes.upserts["device_minute_kpis"] = device
    changes.upserts["fleet_minute_kpis"] = fleet


def _latest_after(before: pa.Table, batch_latest: pa.Table) -> pa.Table:
    """device_latest after the batch: the latest of (table, the batch's latest) per car."""
    return latest_per_car(before, batch_latest)
