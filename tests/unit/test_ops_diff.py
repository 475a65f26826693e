"""diff_by_key: rows added, removed and changed between two frames, by key."""
from __future__ import annotations

from ops.diff import change_counts, diff_by_key

SCHEMA = "k string, v double, tags map<string, bigint>, note string"


def collected(diff):
    return sorted((r.k, r._change, r._before and r._before.v, r._after and r._after.v)
                  for r in diff.collect())


def test_added_removed_and_changed_rows_by_key(spark):
    before = spark.createDataFrame([("a", 1.0, {"x": 1}, None), ("b", 2.0, {}, "n"),
                                    ("c", None, {"y": 2, "x": 1}, None)], SCHEMA)
    after = spark.createDataFrame([("a", 1.0, {"x": 1}, None), ("b", 2.5, {}, "n"),
                                   ("c", None, {"x": 1, "y": 2}, None), ("d", 4.0, None, None)],
                                  SCHEMA)
    diff = diff_by_key(before.where("k != 'a' OR v = 1"), after.where("k != 'a'"), ["k"])
    assert collected(diff) == [("a", "removed", 1.0, None), ("b", "changed", 2.0, 2.5),
                               ("d", "added", None, 4.0)]
    assert change_counts(diff) == {"added": 1, "removed": 1, "changed": 1}


def test_nulls_and_map_order_are_not_changes_and_ignored_columns_do_not_count(spark):
    before = spark.createDataFrame([("a", None, {"x": 1, "y": 2}, "old")], SCHEMA)
    after = spark.createDataFrame([("a", None, {"y": 2, "x": 1}, "new")], SCHEMA)
    assert collected(diff_by_key(before, after, ["k"], ignore=["note"])) == []
    assert collected(diff_by_key(before, after, ["k"])) == [("a", "changed", None, None)]


def test_compound_keys(spark):
    schema = "topic string, partition int, offset long, reasons array<string>"
    before = spark.createDataFrame([("t", 0, 1, ["A"]), ("t", 1, 1, ["B"])], schema)
    after = spark.createDataFrame([("t", 0, 1, ["A", "C"]), ("t", 1, 1, ["B"])], schema)
    rows = diff_by_key(before, after, ["topic", "partition", "offset"]).collect()
    assert [(r.partition, r._change, r._before.reasons, r._after.reasons) for r in rows] == [
        (0, "changed", ["A"], ["A", "C"])]
