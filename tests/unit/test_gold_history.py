"""Per-car batch ranges and the history rows each car's stateful recomputation reads."""
from __future__ import annotations

import datetime as dt

from pyspark.sql import types as T

from gold.history import batch_ranges, history_rows

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
ROWS = T.StructType([T.StructField("event_id", T.StringType()),
                     T.StructField("car_id", T.StringType()),
                     T.StructField("event_ts", T.TimestampType())]
                    + [T.StructField(n, T.DoubleType()) for n in (
                        "speed_kmph", "fuel_level", "engine_temp_c", "latitude", "longitude")]
                    + [T.StructField("gps_valid", T.BooleanType())])
MINUTE = dt.timedelta(minutes=1)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def us(minutes: float) -> int:
    return int((at(minutes) - dt.datetime(1970, 1, 1, tzinfo=UTC)) / dt.timedelta(microseconds=1))


def rows(spark, readings):
    return spark.createDataFrame(
        [(eid, car, at(m), 60.0, 50.0, 90.0, 24.0, 46.0, True) for eid, car, m in readings], ROWS)


def test_ranges_are_per_car_and_merged_per_car(spark):
    new = rows(spark, [("a1", "a", 0.5), ("a2", "a", 180.25), ("b1", "b", 180.5)])
    batch = batch_ranges(new, lookahead=MINUTE)
    assert batch.cars == {"a": [(us(0.5), us(1.5)), (us(180.25), us(181.25))],
                          "b": [(us(180.5), us(181.5))]}
    assert batch.minutes == {us(0): (us(0.5), us(0.5)), us(180): (us(180.25), us(180.5))}
    assert batch.affected == [(us(0.5), us(1.5)), (us(180.25), us(181.5))]


def test_a_late_reading_of_one_car_reads_only_that_cars_old_history(spark):
    """Car a's 08:00:30 reading arrives late; car b is live at 11:00:30. Car b's readings of
    08:00 are not read; car a's are, back to the lookback, and flagged from the late one on."""
    silver = rows(spark, [(f"{car}{m}", car, m) for car in "ab"
                          for m in (-2.0, -0.5, 0.5, 1.0, 2.0, 179.5, 180.5, 182.0)])
    new = rows(spark, [("a0.5", "a", 0.5), ("b180.5", "b", 180.5)])
    batch = batch_ranges(new, lookahead=MINUTE)
    got = history_rows(silver, batch, lookback=MINUTE).select("event_id", "_affected").collect()
    assert sorted(map(tuple, got)) == [
        ("a-0.5", False), ("a0.5", True), ("a1.0", True),
        ("b179.5", False), ("b180.5", True)]
