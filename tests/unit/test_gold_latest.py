"""device_latest kept on the driver (gold/latest.py) = the recomputation from silver (Spark)."""
from __future__ import annotations

import pytest
from pyspark.testing import assertDataFrameEqual

from gold.kpis import device_latest
from gold.latest import latest_per_car
from gold.schema import DEVICE_LATEST_SCHEMA
from infra.local_frames import local_frame
from tests.unit.test_gold_kpis import SILVER, at, reading

K = at(100)
# ties in event time (the later Kafka record wins), then in Kafka time (the greater event_id);
# a car whose newest reading arrived first; a car seen in one side only
ROWS = [
    reading("a-early-kafka", "a", at(10), kafka_ts=at(11)),
    reading("a-late-kafka", "a", at(10), kafka_ts=at(12)),
    reading("b-1", "b", at(5), kafka_ts=K), reading("b-2", "b", at(5), kafka_ts=K),
    reading("e-newest", "e", at(20), kafka_ts=at(21)),
    reading("e-arrived-last", "e", at(10), kafka_ts=at(99)),
    reading("f-only", "f", at(1), speed=None),
]


def latest_rows(spark, rows):
    return device_latest(spark.createDataFrame(rows, SILVER)).toArrow()


@pytest.mark.parametrize("split", [0, 1, 3, 6, 7])
def test_latest_of_held_and_batch_rows_is_the_recomputed_latest(spark, split):
    held = latest_rows(spark, ROWS[:split])
    batch = latest_rows(spark, ROWS[split:])
    got = local_frame(spark, latest_per_car(held, batch), DEVICE_LATEST_SCHEMA)
    assertDataFrameEqual(got, device_latest(spark.createDataFrame(ROWS, SILVER)))
    assert sorted(row.event_id for row in got.collect()) == [
        "a-late-kafka", "b-2", "e-newest", "f-only"]


def test_the_same_reading_on_both_sides_is_one_row_and_empty_sides_are_fine(spark):
    same = latest_rows(spark, ROWS[4:5])
    assert latest_per_car(same, same).to_pylist() == same.to_pylist()
    empty = latest_rows(spark, [])
    assert latest_per_car(empty, empty).num_rows == 0
    assert latest_per_car(empty, same).to_pylist() == same.to_pylist()
