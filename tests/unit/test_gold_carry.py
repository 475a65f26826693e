"""Carried rows (gold/carry.py): in-order batches recomputed from each car's carried rows, its
fuel-window slice and its new readings give exactly the alerts of a recomputation over all."""
from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from gold.carry import (CARRY_SCHEMA, CarPosition, CarriedContext, carried_rows, slice_covers,
                        slice_spans)
from gold.history import AFFECTED, fast_history, slice_rows
from gold.schema import ALERTS_COLUMNS
from gold.stateful import stateful_alerts, stateful_alerts_by, tail_size
from infra.local_frames import local_frame
from infra.settings import AlertRules

from .test_gold_stateful import SILVER, SMALL, T0, reading


def micros(ts: dt.datetime) -> int:
    return int((ts - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) / dt.timedelta(
        microseconds=1))


def drive(car: str, seconds: float, rng: random.Random) -> list[tuple]:
    """Readings every 1-9 s with parked stretches (minutes without readings), refuels and
    small rises, hot spells, invalid fixes and speed spikes."""
    rows, t, fuel, temp, lat, i = [], rng.uniform(0, 5), 80.0, 104.0, 24.0, 0
    while t < seconds:
        t += rng.choice([1.0, 2.0, 3.0, 5.0, 9.0]) + (rng.uniform(100, 400)
                                                      if rng.random() < 0.02 else 0.0)
        roll = rng.random()
        fuel = (95.0 if roll < 0.01 else fuel + 0.3 if roll < 0.05
                else max(fuel - rng.choice([0.1, 0.4, 2.0]), 1.0))
        temp = min(max(temp + rng.choice([-1.5, -0.5, 0.5, 1.5]), 100.0), 110.0)
        lat += 0.2 if rng.random() < 0.03 else 0.0003
        valid = rng.random() > 0.1
        speed = 140.0 if rng.random() < 0.05 else 60.0 + rng.random() * 4
        rows.append(reading(f"{car}-{i:04d}", car, t, speed=round(speed, 2), fuel=round(fuel, 2),
                            temp=temp, lat=lat if valid else 0.0, lon=46.0 if valid else 0.0,
                            gps_valid=valid))
        i += 1
    return rows


def carried_incremental(spark, batches, rules):
    """Alerts as the gold sink keeps them: the first batch from the whole history, every later
    one from the carried rows + slice + new readings (cars whose slice falls short: in full)."""
    silver, carried, kept, fallbacks = [], CarriedContext(), [], 0
    for number, batch in enumerate(batches):
        silver += batch
        silver_df, new = spark.createDataFrame(silver, SILVER), spark.createDataFrame(batch, SILVER)
        spans = {}
        for row in batch:
            lo, hi = spans.get(row[1], (None, None))
            us = micros(row[3])
            spans[row[1]] = (us if lo is None else min(lo, us), us if hi is None else max(hi, us))
        positions = carried.positions
        fast = {car for car in spans if number and car in positions}
        slices = {car: slice_spans(*spans[car], positions[car], rules) for car in fast}
        sliced = None
        if any(slices.values()):
            sliced = slice_rows(silver_df, [(c, lo, hi) for c, (lo, hi) in slices.items()])
            newest = {r[0]: r[1] for r in sliced.groupBy("car_id").agg(
                F.max(F.unix_micros("event_ts"))).collect()}
            short = {car for car in fast if not slice_covers(
                spans[car][1], slices[car][1], newest.get(car), positions[car], rules)}
            fallbacks += len(short)
            fast -= short
            sliced = sliced.where(F.col("car_id").isin(*fast)) if fast else None
        parts = []
        if fast:
            rows = local_frame(spark, carried.for_cars(fast), CARRY_SCHEMA).drop("_in_tail")
            parts.append(fast_history(sliced, rows, new.where(F.col("car_id").isin(*fast))))
        full = set(spans) - fast
        if full:  # the whole history of those cars; their new readings are the affected ones
            ids = {r[0] for r in batch}
            parts.append(silver_df.where(F.col("car_id").isin(*full)).select(
                "*", F.lit(None).cast("boolean").alias("_refuel_hint"),
                F.lit(None).cast("boolean").alias("_first"),
                F.col("event_id").isin(*ids).alias(AFFECTED)))
        history = parts[0] if len(parts) == 1 else parts[0].unionByName(
            parts[1], allowMissingColumns=True)
        alerts = stateful_alerts_by(history, rules, [], carry=[AFFECTED]).where(F.col(AFFECTED))
        kept += alerts.select(*ALERTS_COLUMNS).collect()
        carried = carried.updated(carried_rows(history, rules).toArrow(), set())
    return kept, fallbacks


@pytest.mark.parametrize("seed, batch_seconds", [(1, 30)])
def test_in_order_batches_from_carried_rows_equal_a_recomputation(spark, seed, batch_seconds):
    rng = random.Random(seed)
    rows = [r for car in ("x", "y", "z") for r in drive(car, 480, rng)]
    rows.sort(key=lambda r: (r[3], r[0]))
    batches, current, end = [], [], T0 + dt.timedelta(seconds=batch_seconds)
    for row in rows:
        if row[3] >= end and current:
            batches.append(current)
            current = []
            while row[3] >= end:
                end += dt.timedelta(seconds=batch_seconds)
        current.append(row)
    batches.append(current)
    kept, fallbacks = carried_incremental(spark, batches, SMALL)
    one_shot = stateful_alerts(spark.createDataFrame(rows, SILVER), SMALL)
    kinds = {r.alert_type for r in one_shot.collect()}
    assert kinds == {"SUSTAINED_OVERHEAT", "FUEL_DROP", "GPS_JUMP", "SPEED_ANOMALY"}
    assertDataFrameEqual(spark.createDataFrame(kept, one_shot.schema), one_shot, rtol=0, atol=0)
    assert 0 < fallbacks < len(batches)  # of 3 cars x batches: those parked then are read in full


def test_carried_rows_are_the_tail_the_last_fix_and_the_run_start(spark):
    rules = dataclasses.replace(SMALL, speed_anomaly_min_readings=3)  # tail of 4 readings
    assert tail_size(rules) == 4
    fuels = [60, 59, 70, 69, 68, 67, 66, 65]  # a refuel at s2; s0 starts the history
    rows = [reading(f"s{i}", "s", 10 * i, fuel=float(f), gps_valid=i < 3, lat=24.0 if i < 3
                    else 0.0) for i, f in enumerate(fuels)]
    carried = carried_rows(spark.createDataFrame(rows, SILVER), rules).collect()
    assert sorted((r.event_id, r._refuel_hint, r._in_tail, r._first) for r in carried) == [
        ("s0", True, False, True),  # the first reading since the history's start
        ("s2", True, False, False),  # the run start, and also the last valid fix
        ("s4", False, True, False), ("s5", False, True, False), ("s6", False, True, False),
        ("s7", False, True, False)]


def test_a_run_start_older_than_the_fuel_window_is_not_carried(spark):
    rules = dataclasses.replace(SMALL, speed_anomaly_min_readings=3)
    fuels = [60, 70, 69, 68, 67, 66, 65]
    rows = [reading(f"w{i}", "w", 60 * i, fuel=float(f)) for i, f in enumerate(fuels)]
    carried = carried_rows(spark.createDataFrame(rows, SILVER), rules).collect()
    assert sorted(r.event_id for r in carried) == ["w3", "w4", "w5", "w6"]  # w0, w1: too old


def test_a_slice_without_the_last_window_start_sends_the_car_to_its_lookback():
    rules = SMALL  # a 2-minute fuel window: slices reach 24 s past the last window start
    near = CarPosition(10_000_000_000, "p", 9_990_000_000)
    lo, hi = slice_spans(10_100_000_000, 10_110_000_000, near, rules)
    assert (lo, hi) == (10_100_000_000 - 120_000_000, 9_990_000_000)  # up to the tail
    assert slice_covers(10_110_000_000, hi, None, near, rules)  # nothing between them
    far = CarPosition(12_480_000_000, "p", 12_450_000_000)
    lo, hi = slice_spans(12_500_000_000, 12_510_000_000, far, rules)
    assert (lo, hi) == (12_380_000_000, 12_414_000_000)
    assert not slice_covers(12_510_000_000, hi, None, far, rules)  # parked then
    assert not slice_covers(12_510_000_000, hi, 12_389_999_999, far, rules)
    assert slice_covers(12_510_000_000, hi, 12_390_000_000, far, rules)
    assert slice_spans(1, 2, far, dataclasses.replace(rules, fuel_drop_enabled=False)) is None
