"""How each car of a gold batch gets the history its stateful alerts are recomputed from.

Per car with new readings, decided on the driver from what the previous batch left:
- late: silver already held a reading at or after its first new one (device_latest says so);
  its alerts from then on are recomputed from silver's whole lookback and compared with gold's;
- fast: its readings all follow its newest carried one (gold/carry.py): its carried rows, its
  fuel-window slice of silver and its new readings are enough;
- full: any other car (none carried yet, e.g. the first batch of a run): silver's lookback.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F, types as T

from gold.carry import CARRY_SCHEMA, CarPosition, CarriedContext, slice_covers, slice_spans
from gold.history import (AFFECTED, FIRST, HISTORY, BatchRanges, fast_history, history_rows,
                          slice_rows)
from gold.stateful import REFUEL_HINT, required_lookback
from infra.caching import CacheScope
from infra.local_frames import local_frame
from infra.parallel import timed
from infra.settings import AlertRules

_CARS = T.StructType([T.StructField("car_id", T.StringType())])


@dataclass(frozen=True)
class CarModes:
    """Per car of a batch: its first new reading (µs) and how its history is read."""

    first_new_us: dict[str, int]
    last_new_us: dict[str, int]
    fast: dict[str, CarPosition]
    late: frozenset[str]

    @property
    def full(self) -> set[str]:
        return set(self.first_new_us) - set(self.fast)

    @property
    def in_order(self) -> set[str]:
        """Cars whose newest reading is in this batch: their carried rows are recomputed."""
        return set(self.first_new_us) - self.late

    def without_fast(self, cars: set[str]) -> "CarModes":
        return dataclasses.replace(self, fast={c: p for c, p in self.fast.items()
                                               if c not in cars})


def plan_cars(car_spans: dict[str, tuple[int, int]], latest_before: pa.Table,
              carried: CarriedContext, rules: AlertRules) -> CarModes:
    """Each car's mode from its new readings' (first, last) event time (µs), device_latest as
    the batch found it, and the carried rows."""
    newest = dict(zip(latest_before.column("car_id").to_pylist(),
                      pc.cast(latest_before.column("event_ts"), pa.int64()).to_pylist()))
    positions = carried.positions
    late, fast = set(), {}
    for car, (first, _) in car_spans.items():
        if car in newest and newest[car] >= first:
            late.add(car)
        elif car in positions and positions[car].newest_us == newest.get(car) \
                and positions[car].newest_us < first:
            fast[car] = positions[car]
    return CarModes({car: first for car, (first, _) in car_spans.items()},
                    {car: last for car, (_, last) in car_spans.items()}, fast, frozenset(late))


def car_frame(spark, cars) -> DataFrame:
    """A one-column (car_id) DataFrame of `cars`, to select their rows with a semi join."""
    return local_frame(spark, [(car,) for car in sorted(cars)], _CARS)


def car_histories(silver: DataFrame, new: DataFrame, batch: BatchRanges, modes: CarModes,
                  carried: CarriedContext, rules: AlertRules, caches: CacheScope,
                  steps: dict[str, float]) -> tuple[DataFrame, CarModes]:
    """HISTORY + REFUEL_HINT + AFFECTED of every car of the batch, and the modes used (a fast
    car whose slice does not reach its fuel windows' first readings is read in full)."""
    spark = silver.sparkSession
    sliced = None
    if modes.fast:
        with timed(steps, "slice", spark):
            sliced, uncovered = _slices(silver, modes, rules, caches)
        modes = modes.without_fast(uncovered)
    parts = []
    if modes.fast:
        cars = car_frame(spark, modes.fast)
        rows = local_frame(spark, carried.for_cars(set(modes.fast)), CARRY_SCHEMA)
        fresh = new.join(F.broadcast(cars), "car_id", "left_semi")
        if sliced is not None:
            sliced = sliced.join(F.broadcast(cars), "car_id", "left_semi")
        parts.append(fast_history(sliced, rows.drop("_in_tail"), fresh))
    if modes.full:
        full = BatchRanges(batch.minutes, {c: s for c, s in batch.cars.items()
                                           if c in modes.full})
        parts.append(history_rows(silver, full, required_lookback(rules)).select(
            *HISTORY, F.lit(None).cast("boolean").alias(REFUEL_HINT),
            F.lit(None).cast("boolean").alias(FIRST), AFFECTED))
    history = parts[0]
    for part in parts[1:]:
        history = history.unionByName(part)
    return history, modes


def _slices(silver: DataFrame, modes: CarModes, rules: AlertRules,
            caches: CacheScope) -> tuple[DataFrame | None, set[str]]:
    """The fast cars' slice rows (cached) and the cars whose slice falls short."""
    spans = {car: slice_spans(modes.first_new_us[car], modes.last_new_us[car], position, rules)
             for car, position in modes.fast.items()}
    if all(span is None for span in spans.values()):
        return None, set()
    sliced = caches.keep(slice_rows(silver, [(car, lo, hi) for car, (lo, hi) in spans.items()]))
    newest = {row[0]: row[1] for row in sliced.groupBy("car_id").agg(
        F.max(F.unix_micros("event_ts"))).collect()}
    uncovered = {car for car, position in modes.fast.items()
                 if not slice_covers(modes.last_new_us[car], spans[car][1], newest.get(car),
                                     position, rules)}
    return sliced, uncovered
