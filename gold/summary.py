"""One aggregate of a batch's new silver readings that every gold update step starts from.

Grain of `batch_summary`: one row per (car, minute) with new readings (their KPI stats and
event-time range) plus one row per car (`PER_CAR` true: its time range and latest reading),
from a single rollup: one Spark job per batch instead of one per step.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from gold.history import BatchRanges, ranges_of
from gold.kpi_updates import READING_STATS_SCHEMA
from gold.kpis import LATEST_ORDER, exact_speed
from gold.schema import DEVICE_LATEST_COLUMNS

PER_CAR = "_per_car"
_MINUTE = "_minute_us"
_PAYLOAD = tuple(c for c in DEVICE_LATEST_COLUMNS if c != "car_id" and c not in LATEST_ORDER)


def batch_summary(new_readings: DataFrame) -> DataFrame:
    """Per (car_id, minute) and per car_id (PER_CAR): events, KPI stats, lo/hi event time (µs)
    and the latest reading (gold/kpis.device_latest's order)."""
    ts_us = F.unix_micros("event_ts")
    minute = F.unix_micros(F.date_trunc("minute", "event_ts")).alias(_MINUTE)
    latest = F.max(F.struct(*LATEST_ORDER, *_PAYLOAD)).alias("_latest")
    rolled = new_readings.rollup("car_id", minute).agg(
        F.grouping_id().alias("_level"), F.count(F.lit(1)).alias("events"),
        F.sum(exact_speed()).alias("speed_sum"), F.max("speed_kmph").alias("max_speed_kmph"),
        F.max("engine_temp_c").alias("max_engine_temp_c"),
        F.min("fuel_level").alias("min_fuel_level"), F.min(ts_us).alias("lo_us"),
        F.max(ts_us).alias("hi_us"), latest)
    return rolled.where(F.col("_level") < 3).select(
        "car_id", _MINUTE, (F.col("_level") == 1).alias(PER_CAR), "events", "speed_sum",
        "max_speed_kmph", "max_engine_temp_c", "min_fuel_level", "lo_us", "hi_us",
        *[F.col(f"_latest.{c}").alias(c) for c in DEVICE_LATEST_COLUMNS if c != "car_id"])


@dataclass(frozen=True)
class BatchSummary:
    """`batch_summary` collected: per car-minute rows and per-car rows, as Arrow."""

    car_minutes: pa.Table
    cars: pa.Table

    @classmethod
    def of(cls, new_readings: DataFrame) -> "BatchSummary":
        rows = batch_summary(new_readings).toArrow()
        per_car = rows.column(PER_CAR)
        return cls(rows.filter(pc.invert(per_car)), rows.filter(per_car))

    @property
    def is_empty(self) -> bool:
        return self.cars.num_rows == 0

    def ranges(self, lookahead: timedelta) -> BatchRanges:
        """Minute and per-car spans of the new readings; a car's affected spans reach
        `lookahead` past its readings (what a late reading can change)."""
        table = self.car_minutes
        return ranges_of(zip(*(table.column(c).to_pylist()
                               for c in ("car_id", _MINUTE, "lo_us", "hi_us"))), lookahead)

    def car_spans(self) -> dict[str, tuple[int, int]]:
        """Car -> (first, last) event time (µs) of its new readings."""
        table = self.cars
        return {car: (int(lo), int(hi)) for car, lo, hi in zip(
            *(table.column(c).to_pylist() for c in ("car_id", "lo_us", "hi_us")))}

    def reading_stats(self) -> pa.Table:
        """READING_STATS_SCHEMA rows (gold/kpi_updates.reading_stats) as Arrow."""
        table = self.car_minutes
        starts = pc.cast(table.column(_MINUTE), pa.timestamp("us", tz="UTC"))
        return table.set_column(table.schema.get_field_index(_MINUTE), "window_start",
                                starts).select(READING_STATS_SCHEMA.fieldNames())

    def latest(self) -> pa.Table:
        """Each car's latest new reading, as DEVICE_LATEST rows."""
        return self.cars.select(list(DEVICE_LATEST_COLUMNS))
