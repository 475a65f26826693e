"""What one batch of new silver readings changes in gold/alerts: inserts, updates, deletes.

Grain: one row per alert id that must change (ALERTS columns + OP). Threshold alerts depend on
one reading only, so every new reading's are inserts. Stateful alerts depend on each car's
ordered history (gold/stateful.py): they are recomputed over a history of the readings the
batch can affect (gold/history.py), from each car's first new reading on. For a car whose new
readings are late (silver already holds later ones), gold/alerts already holds alerts of those
readings: compared with them, alerts that appear are inserts, that disappear deletes, that
change updates; unchanged ones are left out. (gold/alerts always equals a recomputation from
silver, so its rows are what a recomputation without the batch would give, at the cost of a
read instead of a second run of the rules.)
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F, types as T

from gold import ranges
from gold.alerts import threshold_alerts
from gold.history import AFFECTED
from gold.schema import ALERTS_COLUMNS, STATEFUL_ALERT_TYPES
from gold.stateful import stateful_alerts_by
from infra.local_frames import local_frame
from infra.settings import AlertRules

OP = "_op"
INSERT, UPDATE, DELETE = "I", "U", "D"
FIRST_NEW_US = "_first_new_us"  # per car: event time (µs) of its first new reading
FIRSTS_SCHEMA = T.StructType([T.StructField("car_id", T.StringType()),
                              T.StructField(FIRST_NEW_US, T.LongType())])
_SPANS = T.StructType([T.StructField("_car", T.StringType()), T.StructField("_lo", T.LongType()),
                       T.StructField("_hi", T.LongType())])


def alert_changes(history: DataFrame, new: DataFrame, firsts: DataFrame,
                  held: DataFrame | None, rules: AlertRules) -> DataFrame:
    """ALERTS columns + OP for a batch.

    `history`: HISTORY + REFUEL_HINT + AFFECTED rows of every car with new readings (silver
    already holds the `new` readings); `firsts`: FIRSTS_SCHEMA, one row per such car; `held`:
    the stateful alerts gold holds for the affected readings of late cars (`held_alerts`), or
    None when no car is late (then every change is an insert).
    """
    after_first = F.unix_micros("event_ts") >= F.col(FIRST_NEW_US)
    stateful = (stateful_alerts_by(history, rules, [], carry=[AFFECTED])
                .join(F.broadcast(firsts), "car_id").where(after_first & F.col(AFFECTED))
                .select(*ALERTS_COLUMNS))
    threshold = threshold_alerts(new, rules)
    if held is None:  # live case: every alert from the first new readings on is new
        return threshold.unionByName(stateful).withColumn(OP, F.lit(INSERT))
    existed = held.select("alert_id", F.lit(True).alias("_existed"))
    # only what differs from gold: unchanged alerts of late cars are neither written nor synced
    upserts = (threshold.unionByName(stateful.subtract(held))
               .join(existed, "alert_id", "left")
               .select(*ALERTS_COLUMNS, F.when(F.col("_existed"), F.lit(UPDATE))
                       .otherwise(F.lit(INSERT)).alias(OP)))
    deletes = (held.join(stateful.select("alert_id"), "alert_id", "left_anti")
               .withColumn(OP, F.lit(DELETE)))
    return upserts.unionByName(deletes)


def held_alerts(gold_alerts: DataFrame, late: dict[str, list[ranges.Span]]) -> DataFrame:
    """The stateful alerts gold holds for the readings a batch recomputes of its late cars:
    per car, its affected spans from its first new reading on (µs, closed)."""
    spans = [(car, lo, hi) for car, car_spans in sorted(late.items()) for lo, hi in car_spans]
    spans_df = F.broadcast(local_frame(gold_alerts.sparkSession, spans, _SPANS))
    ts_us = F.unix_micros("event_ts")
    in_span = ((F.col("car_id") == F.col("_car")) & (ts_us >= F.col("_lo"))
               & (ts_us <= F.col("_hi")))
    pruning = ranges.pruning_spans((lo, hi) for _, lo, hi in spans)
    return (gold_alerts.where(ranges.in_spans("event_ts", pruning))
            .where(F.col("alert_type").isin(*STATEFUL_ALERT_TYPES))
            .join(spans_df, in_span, "left_semi").select(*ALERTS_COLUMNS))
