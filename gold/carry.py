"""What the gold query carries per car from one batch to the next, so that a car's in-order
readings are recomputed from O(batch) rows instead of the rules' whole lookback.

Grain of the carried rows (CARRY_SCHEMA): per car, its last `tail_size` readings, its last valid
GPS fix, the reading that started its current fuel run and its first reading since gold read
it in full (FIRST; these two while within FUEL_DROP's window of its newest reading), each once,
with REFUEL_HINT: the row's refuel flag as computed where its predecessor was known. A car's next readings, if all later than its newest, are then recomputed
from: the carried rows, the silver readings of its fuel window (`slice_spans`) and the new
readings (gold/history.fast_history). Why that is exact, rule by rule:
- SUSTAINED_OVERHEAT and SPEED_ANOMALY look back a number of readings: the tail holds them
  (a run that started before the tail is longer than the tail, so it cannot complete again);
- GPS_JUMP looks back to the previous valid fix: carried;
- FUEL_DROP compares with the fuel where the current run started, or where its window starts:
  the run start is carried (with its hint), and the window starts inside the slice, or before
  the car's first reading (a car seen for less than the window): then at FIRST, carried.
tests/unit/test_gold_carry.py checks it against a recomputation on random drives.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F, types as T

from gold import ranges
from gold.history import FIRST, HISTORY  # FIRST: the car's first reading since its window start
from gold.stateful import REFUEL_HINT, fuel_window, known_refuel_flag, tail_size
from infra.local_frames import arrow_schema
from infra.settings import AlertRules

IN_TAIL = "_in_tail"  # the row is one of the car's last `tail_size` readings
CARRY_COLUMNS = (*HISTORY, REFUEL_HINT, IN_TAIL, FIRST)
CARRY_SCHEMA = T.StructType([
    T.StructField("car_id", T.StringType()), T.StructField("event_id", T.StringType()),
    T.StructField("event_ts", T.TimestampType()), T.StructField("speed_kmph", T.DoubleType()),
    T.StructField("fuel_level", T.DoubleType()), T.StructField("engine_temp_c", T.DoubleType()),
    T.StructField("latitude", T.DoubleType()), T.StructField("longitude", T.DoubleType()),
    T.StructField("gps_valid", T.BooleanType()), T.StructField(REFUEL_HINT, T.BooleanType()),
    T.StructField(IN_TAIL, T.BooleanType()), T.StructField(FIRST, T.BooleanType()),
])
CARRY_SCHEMA_ARROW = arrow_schema(CARRY_SCHEMA)
# How far past the start of a batch's last fuel window the slice reads (a fraction of the
# window), so that the first reading of each window is found even when a car reported sparsely
# then (else the car is recomputed from its whole lookback).
SLICE_MARGIN = 0.2


def carried_rows(history_df: DataFrame, rules: AlertRules) -> DataFrame:
    """CARRY_SCHEMA rows of each car of `history_df`: a history holding, per car, every reading
    from (its first new reading - the lookback) up to its newest one, or one built from carried
    rows (REFUEL_HINT and FIRST honoured; a null FIRST: the history's first row is)."""
    order = Window.partitionBy("car_id").orderBy(F.unix_micros("event_ts"), "event_id")
    per_car = Window.partitionBy("car_id")
    at = F.struct(F.unix_micros("event_ts").alias("us"), F.col("event_id").alias("id"))
    for name in (REFUEL_HINT, FIRST):
        if name not in history_df.columns:
            history_df = history_df.withColumn(name, F.lit(None).cast("boolean"))
    flagged = history_df.select(
        *HISTORY, at.alias("_at"),
        known_refuel_flag(F.lag(F.struct(F.col("fuel_level").alias("fuel"))).over(order))
        .alias(REFUEL_HINT),
        F.coalesce(FIRST, F.row_number().over(order) == 1).alias(FIRST),
        F.row_number().over(order.orderBy(F.unix_micros("event_ts").desc(),
                                          F.col("event_id").desc())).alias("_from_end"))
    window_us = ranges.micros(fuel_window(rules) or timedelta(0))
    marked = flagged.select(
        "*", F.max(F.when(F.col("gps_valid"), F.col("_at"))).over(per_car).alias("_last_fix"),
        F.max(F.when(F.col(REFUEL_HINT), F.col("_at"))).over(per_car).alias("_last_refuel"),
        F.max("_at.us").over(per_car).alias("_newest_us"))
    is_tail = F.col("_from_end") <= F.lit(tail_size(rules))
    in_window = F.lit(rules.fuel_drop_enabled) & (
        F.col("_at.us") >= F.col("_newest_us") - F.lit(window_us))
    is_run_start = (F.col("_at") == F.col("_last_refuel")) & in_window
    is_first = F.col(FIRST) & in_window
    keep = is_tail | (F.col("_at") == F.col("_last_fix")) | is_run_start | is_first
    return marked.where(keep).select(*HISTORY, REFUEL_HINT, is_tail.alias(IN_TAIL),
                                     is_first.alias(FIRST))


@dataclass(frozen=True)
class CarPosition:
    """A car's newest carried reading (event time in µs, event id), its tail's oldest time and
    its FIRST row's time (None: not carried)."""

    newest_us: int
    newest_id: str
    tail_oldest_us: int
    first_us: int | None = None


@dataclass(frozen=True)
class CarriedContext:
    """The carried rows of every car gold has seen since the query started, as Arrow."""

    rows: pa.Table = field(default_factory=lambda: CARRY_SCHEMA_ARROW.empty_table())

    @property
    def positions(self) -> dict[str, CarPosition]:
        rows = self.rows
        stamps = pc.cast(rows.column("event_ts"), pa.int64()).to_pylist()
        found: dict[str, CarPosition] = {}
        firsts: dict[str, int] = {}
        for car, us, event_id, in_tail, first in zip(
                rows.column("car_id").to_pylist(), stamps, rows.column("event_id").to_pylist(),
                rows.column(IN_TAIL).to_pylist(), rows.column(FIRST).to_pylist()):
            if first:
                firsts[car] = us
            if not in_tail:
                continue
            old = found.get(car)
            if old is None:
                found[car] = CarPosition(us, event_id, us)
                continue
            newest = max((old.newest_us, old.newest_id), (us, event_id))
            found[car] = CarPosition(newest[0], newest[1], min(old.tail_oldest_us, us))
        return {car: dataclasses.replace(p, first_us=firsts.get(car))
                for car, p in found.items()}

    def for_cars(self, cars: set[str]) -> pa.Table:
        """The carried rows of `cars`."""
        return self.rows.filter(pc.is_in(self.rows.column("car_id"),
                                         pa.array(sorted(cars), pa.string())))

    def updated(self, fresh: pa.Table | None, dropped: set[str]) -> "CarriedContext":
        """Rows of the cars in `fresh` replaced by them; cars in `dropped` forgotten."""
        fresh = CARRY_SCHEMA_ARROW.empty_table() if fresh is None else \
            fresh.select(list(CARRY_COLUMNS)).cast(CARRY_SCHEMA_ARROW)
        replaced = set(fresh.column("car_id").to_pylist()) | dropped
        kept = self.rows.filter(pc.invert(pc.is_in(
            self.rows.column("car_id"), pa.array(sorted(replaced), pa.string()))))
        return CarriedContext(pa.concat_tables([kept, fresh]))


def slice_spans(first_new_us: int, last_new_us: int, position: CarPosition,
                rules: AlertRules) -> tuple[int, int] | None:
    """[lo, hi) of the silver readings a car's fast recomputation reads: from its first new
    reading's fuel window start up to the margin past its last one's, but not into its tail.
    None when FUEL_DROP is off (the carried rows are all it needs)."""
    window = fuel_window(rules)
    if window is None:
        return None
    back = ranges.micros(window)
    hi = min(last_new_us - back + int(back * SLICE_MARGIN), position.tail_oldest_us)
    return first_new_us - back, hi


def slice_covers(last_new_us: int, slice_hi_us: int, newest_in_slice_us: int | None,
                 position: CarPosition, rules: AlertRules) -> bool:
    """Whether the slice holds the first reading of every new reading's fuel window: it has a
    reading at or after the last window's start, or it reaches the tail (nothing in between),
    or every window starts before the car's FIRST row (which is then that first reading)."""
    window = fuel_window(rules)
    if window is None:
        return True
    if slice_hi_us >= position.tail_oldest_us:
        return True
    last_window_start = last_new_us - ranges.micros(window)
    if position.first_us is not None and position.first_us >= last_window_start:
        return True
    return newest_in_slice_us is not None and newest_in_slice_us >= last_window_start
