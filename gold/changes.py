"""What one batch of new silver readings changes in gold/alerts: inserts, updates, deletes.

Grain: one row per alert id that must change (ALERTS columns + OP). Threshold alerts depend on
one reading only, so every new reading's are inserts. Stateful alerts depend on each car's
ordered history (gold/stateful.py): they are recomputed from silver for the readings the batch
can affect (gold/history.py), from each car's first new reading on. For a car whose new
readings are late (silver already holds later ones), gold/alerts already holds alerts of those
readings: compared with them, alerts that appear are inserts, that disappear deletes, that
change updates; unchanged ones are left out. (gold/alerts always equals a recomputation from
silver, so its rows are what a recomputation without the batch would give, at the cost of a
read instead of a second run of the rules.)

Every frame this keeps is registered in the caller's CacheScope (infra/caching.py).
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from gold import ranges
from gold.alerts import threshold_alerts
from gold.history import AFFECTED, BatchRanges, history_rows
from gold.schema import ALERTS_COLUMNS, STATEFUL_ALERT_TYPES
from gold.stateful import (FIRST_NEW_TS, HAS_LATE, NEEDS_LOOKBACK, car_modes, recent_lookback,
                           required_lookback, stateful_alerts_by)
from infra.caching import CacheScope
from infra.settings import AlertRules

OP = "_op"
INSERT, UPDATE, DELETE = "I", "U", "D"


def alert_changes(silver: DataFrame, gold_alerts: DataFrame, new: DataFrame, batch: BatchRanges,
                  rules: AlertRules, caches: CacheScope) -> DataFrame:
    """ALERTS columns + OP for a batch: `silver` already holds the `new` readings,
    `gold_alerts` does not hold their alerts yet.

    History: the recent rows for cars they are enough for, the full lookback for the others
    (`car_modes`).
    """
    recent = caches.keep(history_rows(silver, batch, recent_lookback(rules)))
    modes = caches.keep(car_modes(recent, new, rules))
    flags = modes.agg(F.max(NEEDS_LOOKBACK), F.max(HAS_LATE)).first()
    history = _cars(recent, modes, ~F.col(NEEDS_LOOKBACK))
    if flags[0]:
        full = history_rows(silver, batch, required_lookback(rules))
        history = history.unionByName(_cars(full, modes, F.col(NEEDS_LOOKBACK)))
    firsts = F.broadcast(modes.select("car_id", FIRST_NEW_TS))
    recomputed = (history.where(F.col(AFFECTED)).join(firsts, "car_id")
                  .where(F.col("event_ts") >= F.col(FIRST_NEW_TS)))
    stateful = (stateful_alerts_by(history, rules, [], carry=[AFFECTED]).join(firsts, "car_id")
                .where((F.col("event_ts") >= F.col(FIRST_NEW_TS)) & F.col(AFFECTED))
                .select(*ALERTS_COLUMNS))
    threshold = threshold_alerts(new, rules)
    if not flags[1]:  # live case: every alert from the first new readings on is new
        return threshold.unionByName(stateful).withColumn(OP, F.lit(INSERT))
    late_readings = _cars(recomputed, modes, F.col(HAS_LATE)).select("event_id")
    held = (gold_alerts.where(ranges.in_spans("event_ts", batch.affected))
            .where(F.col("alert_type").isin(*STATEFUL_ALERT_TYPES))
            .join(F.broadcast(late_readings), "event_id", "left_semi")
            .select(*ALERTS_COLUMNS))
    held = caches.keep(held)
    existed = held.select("alert_id", F.lit(True).alias("_existed"))
    # only what differs from gold: unchanged alerts of late cars are neither written nor synced
    upserts = (threshold.unionByName(stateful.subtract(held))
               .join(existed, "alert_id", "left")
               .select(*ALERTS_COLUMNS, F.when(F.col("_existed"), F.lit(UPDATE))
                       .otherwise(F.lit(INSERT)).alias(OP)))
    deletes = (held.join(stateful.select("alert_id"), "alert_id", "left_anti")
               .withColumn(OP, F.lit(DELETE)))
    return upserts.unionByName(deletes)


def _cars(rows: DataFrame, modes: DataFrame, which: Column) -> DataFrame:
    """`rows` of the cars whose mode row satisfies `which`."""
    return rows.join(F.broadcast(modes.where(which).select("car_id")), "car_id", "left_semi")
