"""Audits on a small Delta table: who wrote each version, rows as of a version, diffs, retention."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from infra.settings import RetentionSettings
from ops import audit
from ops.catalog import lake_table
from ops.table_settings import apply_retention
from silver.schema import SILVER_SCHEMA

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 1, 10, 0)
TABLE = lake_table("silver/telemetry")


def reading(event_id: str, speed: float, offset: int) -> tuple:
    return (event_id, "car-01", None, T0, speed, 50.0, 90.0, 26.4, 50.1, True, "raw", 0,
            offset, T0)


def merge(spark, path: str, rows: list[tuple], app_id: str, batch: int,
          delete: tuple[str, ...] = ()) -> None:
    """Upsert `rows` and delete ids in `delete`, in one idempotent MERGE (like the pipeline)."""
    source = spark.createDataFrame(rows, SILVER_SCHEMA).withColumn("_del", F.lit(False))
    if delete:
        gone = spark.createDataFrame([reading(e, 0.0, 0) for e in delete], SILVER_SCHEMA)
        source = source.unionByName(gone.withColumn("_del", F.lit(True)))
    spark.conf.set("spark.databricks.delta.write.txnAppId", app_id)
    spark.conf.set("spark.databricks.delta.write.txnVersion", str(batch))
    try:
        (DeltaTable.forPath(spark, path).alias("t").merge(source.alias("s"), "t.event_id = s.event_id")
         .whenMatchedDelete("s._del").whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
    finally:
        spark.conf.unset("spark.databricks.delta.write.txnAppId")
        spark.conf.unset("spark.databricks.delta.write.txnVersion")


@pytest.fixture
def versions(spark, settings, no_auto_compaction):
    """silver/telemetry with versions 0 (append: e1 e2 e3), 1 (e2 faster), 2 (e3 gone, e4 new);
    returns the commit timestamps."""
    path = TABLE.path(settings)
    (spark.createDataFrame([reading("e1", 80.0, 1), reading("e2", 120.0, 2),
                            reading("e3", 150.0, 3)], SILVER_SCHEMA)
     .write.format("delta").option("txnAppId", "4f897f2a-q1").option("txnVersion", 0).save(path))
    merge(spark, path, [reading("e2", 130.5, 2)], "4f897f2a-q1", 1)
    merge(spark, path, [reading("e4", 60.0, 4)], "4f897f2a-q1", 2, delete=("e3",))
    checkpoint = Path(settings.checkpoint_path("fleetlake_gold"))
    checkpoint.mkdir(parents=True)
    (checkpoint / "metadata").write_text(json.dumps({"id": "4f897f2a-q1"}) + "\n")
    history = DeltaTable.forPath(spark, path).history().select(
        "version", F.unix_micros("timestamp").alias("us")).collect()
    return {r.version: dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=r.us)
            for r in history}


def test_history_names_the_query_and_batch_of_each_commit(spark, settings, versions):
    text = audit.history_report(spark, settings, TABLE, 0, "json")
    rows = json.loads(text)["rows"]
    assert [(r["version"], r["operation"], r["written_by"]) for r in rows] == [
        (2, "MERGE", "fleetlake_gold (query 4f897f2a) batch 2"),
        (1, "MERGE", "fleetlake_gold (query 4f897f2a) batch 1"),
        (0, "WRITE", "fleetlake_gold (query 4f897f2a) batch 0")]
    assert rows[0]["metrics"]["numTargetRowsDeleted"] == "1"
    table = audit.history_report(spark, settings, TABLE, 2, "table").splitlines()
    assert table[0].split() == ["version", "timestamp", "operation", "written_by", "rows", "files"]
    assert len(table) == 4 and table[2].startswith("2 ")
    assert "+1 ~0 -1" in table[2] and "+0 ~1 -0" in table[3]


def test_show_as_of_a_version_or_a_timestamp_with_a_filter(spark, settings, versions):
    text, summary = audit.show_report(spark, settings, TABLE, "0", "speed_kmph > 100", 0, "csv")
    lines = text.splitlines()
    assert lines[0].startswith("event_id,car_id,trip_id,event_ts,speed_kmph")
    assert [line.split(",")[:5] for line in lines[1:]] == [
        ["e2", "car-01", "", "2026-03-01T10:00:00.000000Z", "120.0"],
        ["e3", "car-01", "", "2026-03-01T10:00:00.000000Z", "150.0"]]
    assert summary.startswith("silver/telemetry version 0 (") and "2 of 2 row(s) matching" in summary
    between = versions[1] + (versions[2] - versions[1]) / 2
    text, summary = audit.show_report(spark, settings, TABLE, between.isoformat(), None, 2,
                                      "json")
    document = json.loads(text)
    assert document["version"] == 1 and document["total_rows"] == 3
    assert [(r["event_id"], r["speed_kmph"]) for r in document["rows"]] == [
        ("e1", 80.0), ("e2", 130.5)]


def test_diff_lists_exactly_the_changed_rows(spark, settings, versions):
    text, summary = audit.diff_report(spark, settings, TABLE, "0", "2", 0, "json")
    assert summary == "silver/telemetry version 0 -> 2: 1 added, 1 removed, 1 changed"
    rows = json.loads(text)["rows"]
    assert [(r["change"], r["key"], r["changed_columns"]) for r in rows] == [
        ("added", {"event_id": "e4"}, []), ("changed", {"event_id": "e2"}, ["speed_kmph"]),
        ("removed", {"event_id": "e3"}, [])]
    assert (rows[1]["before"]["speed_kmph"], rows[1]["after"]["speed_kmph"]) == (120.0, 130.5)
    table, _ = audit.diff_report(spark, settings, TABLE, "1", "1", 0, "table")
    assert table.splitlines()[2:] == []


@pytest.mark.parametrize("as_of, message", [
    ("7", "silver/telemetry has no version 7: its latest is 2"),
    ("2020-01-01T00:00:00Z", "silver/telemetry did not exist yet at 2020-01-01T00:00:00Z"),
    ("yesterday", "'yesterday' is neither a version number nor a timestamp"),
])
def test_unknown_versions_are_one_clear_error(spark, settings, versions, as_of, message):
    with pytest.raises(audit.AuditError, match=message):
        audit.show_report(spark, settings, TABLE, as_of, None, 5, "table")


def test_a_version_beyond_retention_names_the_oldest_readable_one(spark, settings, versions):
    short = dataclasses.replace(settings, retention=RetentionSettings(days=1e-5))  # ~1 s
    path = TABLE.path(settings)
    assert apply_retention(spark, short, path) == {
        "delta.deletedFileRetentionDuration": "interval 1 seconds",
        "delta.logRetentionDuration": "interval 1 seconds"}
    assert apply_retention(spark, short, path) == {}  # idempotent: nothing left to set
    time.sleep(2)
    merge(spark, path, [reading("e5", 70.0, 5)], "4f897f2a-q1", 3)  # version 4, the latest
    with pytest.raises(audit.AuditError) as error:
        audit.show_report(spark, settings, TABLE, "1", None, 5, "table")
    assert str(error.value).startswith(
        "silver/telemetry version 1 is beyond the table's retention (1 second, "
        "delta.deletedFileRetentionDuration): the oldest readable version is 4 (")
    text, _ = audit.show_report(spark, settings, TABLE, "4", "event_id = 'e5'", 5, "csv")
    assert text.splitlines()[1].startswith("e5,")
