"""first_copies: one row per event_id, the first landed, then by (kafka_timestamp, partition,
offset); first_per_key picks the same copy for any key derived from events; first_new_copies
does what first_copies does for the ids a batch marks new."""
from __future__ import annotations

import datetime as dt

from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from silver.dedup import first_copies, first_new_copies, first_per_key
from silver.schema import CANDIDATE_SCHEMA, SILVER_SCHEMA

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def row(event_id, partition, offset, kafka_seconds, speed=80.0, topic="raw_telemetry",
        landed=0):
    return (event_id, "car-1", None, T0, speed, 50.0, 90.0, 24.7, 46.7, True, topic, partition,
            offset, T0 + dt.timedelta(seconds=kafka_seconds),
            T0 + dt.timedelta(minutes=1 + landed))


def candidates(spark, rows):
    return spark.createDataFrame(rows, CANDIDATE_SCHEMA)


def kept(spark, rows):
    return spark.createDataFrame([r[:-1] for r in rows], SILVER_SCHEMA)


def test_distinct_events_are_all_kept(spark):
    rows = [row("a", 0, 1, 0), row("b", 0, 2, 0), row("c", 1, 1, 0)]
    assertDataFrameEqual(first_copies(candidates(spark, rows)), kept(spark, rows))


def test_earliest_kafka_timestamp_wins_over_partition_and_offset(spark):
    rows = [row("a", 0, 5, 2, speed=1.0), row("a", 3, 9, 1, speed=2.0), row("a", 1, 1, 3)]
    assertDataFrameEqual(first_copies(candidates(spark, rows)), kept(spark, [rows[1]]))


def test_first_landed_wins_over_an_earlier_kafka_timestamp(spark):
    # the copy read by an earlier micro-batch stays, whatever the later copy's record time
    rows = [row("a", 0, 5, 9, speed=1.0, landed=0), row("a", 1, 2, 1, speed=2.0, landed=1)]
    assertDataFrameEqual(first_copies(candidates(spark, rows)), kept(spark, [rows[0]]))


def test_timestamp_tie_lowest_partition_wins(spark):
    rows = [row("a", 2, 1, 0, speed=1.0), row("a", 1, 7, 0, speed=2.0)]
    assertDataFrameEqual(first_copies(candidates(spark, rows)), kept(spark, [rows[1]]))


def test_timestamp_and_partition_tie_lowest_offset_wins(spark):
    rows = [row("a", 1, 8, 0, speed=1.0), row("a", 1, 7, 0, speed=2.0), row("b", 0, 1, 0)]
    assertDataFrameEqual(first_copies(candidates(spark, rows)), kept(spark, rows[1:]))


def test_exact_copies_collapse_to_one(spark):
    rows = [row("a", 0, 1, 0), row("a", 0, 1, 0)]
    assertDataFrameEqual(first_copies(candidates(spark, rows)), kept(spark, rows[:1]))


def test_first_per_key_keeps_every_column_of_the_first_copy(spark):
    rows = [row("a", 0, 5, 2, speed=1.0), row("a", 0, 4, 2, speed=2.0), row("b", 1, 1, 0)]
    firsts = first_per_key(candidates(spark, rows), ("event_id",))
    assertDataFrameEqual(firsts, candidates(spark, rows[1:]))


def test_empty_batch(spark):
    assert first_copies(candidates(spark, [])).collect() == []


STAGED = T.StructType(list(CANDIDATE_SCHEMA.fields) + [
    T.StructField("reasons", T.ArrayType(T.StringType())), T.StructField("_new", T.BooleanType())])


def staged(spark, rows, markers, rejected=()):
    """Staged rows (valid, or with reasons) plus one marker row per id in `markers`."""
    valid = [(*r, [], False) for r in rows]
    bad = [(*r, ["OUT_OF_RANGE:speed_kmph"], False) for r in rejected]
    marks = [(i, *[None] * (len(CANDIDATE_SCHEMA.fields) - 1), None, True) for i in markers]
    return spark.createDataFrame(valid + bad + marks, STAGED)


def test_first_new_copies_keeps_the_first_valid_copy_of_marked_ids_only(spark):
    rows = [row("a", 0, 5, 2, speed=1.0), row("a", 1, 2, 1, speed=2.0),  # new, two copies
            row("b", 0, 6, 0),  # seen in an earlier batch: no marker
            row("c", 2, 9, 5, speed=3.0)]
    rejected = [row("c", 0, 1, 0, speed=-1.0)]  # an earlier copy of c, but quarantined
    frame = staged(spark, rows, markers=["a", "c"], rejected=rejected)
    assertDataFrameEqual(first_new_copies(frame, "_new"), kept(spark, [rows[1], rows[3]]))


def test_first_new_copies_equals_first_copies_of_the_marked_ids(spark):
    rows = [row(i, p, o, k, landed=n) for i, p, o, k, n in (
        ("a", 0, 1, 3, 0), ("a", 0, 2, 1, 0), ("b", 1, 1, 0, 1), ("b", 0, 9, 0, 0),
        ("d", 1, 3, 2, 0), ("d", 1, 2, 2, 0))]
    marked = ["a", "b", "d"]
    assertDataFrameEqual(first_new_copies(staged(spark, rows, marked), "_new"),
                         first_copies(candidates(spark, rows)))
