"""first_copies: one row per event_id, the first by (kafka_timestamp, partition, offset)."""
from __future__ import annotations

import datetime as dt

from pyspark.testing import assertDataFrameEqual

from silver.dedup import first_copies
from silver.schema import SILVER_SCHEMA

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def row(event_id, partition, offset, kafka_seconds, speed=80.0, topic="raw_telemetry"):
    return (event_id, "car-1", None, T0, speed, 50.0, 90.0, 24.7, 46.7, True, topic, partition,
            offset, T0 + dt.timedelta(seconds=kafka_seconds))


def frame(spark, rows):
    return spark.createDataFrame(rows, SILVER_SCHEMA)


def test_distinct_events_are_all_kept(spark):
    rows = [row("a", 0, 1, 0), row("b", 0, 2, 0), row("c", 1, 1, 0)]
    assertDataFrameEqual(first_copies(frame(spark, rows)), frame(spark, rows))


def test_earliest_kafka_timestamp_wins_over_partition_and_offset(spark):
    rows = [row("a", 0, 5, 2, speed=1.0), row("a", 3, 9, 1, speed=2.0), row("a", 1, 1, 3)]
    assertDataFrameEqual(first_copies(frame(spark, rows)), frame(spark, [rows[1]]))


def test_timestamp_tie_lowest_partition_wins(spark):
    rows = [row("a", 2, 1, 0, speed=1.0), row("a", 1, 7, 0, speed=2.0)]
    assertDataFrameEqual(first_copies(frame(spark, rows)), frame(spark, [rows[1]]))


def test_timestamp_and_partition_tie_lowest_offset_wins(spark):
    rows = [row("a", 1, 8, 0, speed=1.0), row("a", 1, 7, 0, speed=2.0), row("b", 0, 1, 0)]
    assertDataFrameEqual(first_copies(frame(spark, rows)), frame(spark, rows[1:]))


def test_exact_copies_collapse_to_one(spark):
    rows = [row("a", 0, 1, 0), row("a", 0, 1, 0)]
    assertDataFrameEqual(first_copies(frame(spark, rows)), frame(spark, rows[:1]))


def test_empty_batch(spark):
    assert first_copies(frame(spark, [])).collect() == []
