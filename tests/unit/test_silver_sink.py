"""Silver sink on tmp_path Delta tables: idempotent MERGE and append, kept rows by coordinates."""
from __future__ import annotations

import datetime as dt

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from bronze.schema import BRONZE_SCHEMA
from silver.dedup import first_copies
from silver.schema import QUARANTINE_SCHEMA, SILVER_SCHEMA
from silver.sink import append_quarantine, ensure_silver_tables, merge_silver
from silver.validate import quarantine_rows, valid_rows, validate

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
APP = "query-1"
TXN_CONFS = ("spark.databricks.delta.write.txnAppId", "spark.databricks.delta.write.txnVersion")


def row(event_id, offset, partition=0, seconds=0, speed=80.0):
    ts = T0 + dt.timedelta(seconds=seconds)
    return (event_id, "car-1", "trip-1", ts, speed, 50.0, 90.0, 24.7, 46.7, True,
            "raw_telemetry", partition, offset, ts)


@pytest.fixture
def tables(spark, settings):
    ensure_silver_tables(spark, settings)
    return settings


def silver(spark, settings):
    return spark.read.format("delta").load(settings.table_path("silver", "telemetry"))


def version(spark, settings, name):
    return DeltaTable.forPath(spark, settings.table_path("silver", name)).history(1).first()[0]


def frame(spark, rows, schema=SILVER_SCHEMA):
    return spark.createDataFrame(rows, schema)


def test_ensure_tables_is_idempotent(spark, settings):
    ensure_silver_tables(spark, settings)
    ensure_silver_tables(spark, settings)
    telemetry = silver(spark, settings)
    quarantine = spark.read.format("delta").load(settings.table_path("silver", "quarantine"))
    assert telemetry.schema.simpleString() == SILVER_SCHEMA.simpleString()
    assert quarantine.schema.simpleString() == QUARANTINE_SCHEMA.simpleString()
    assert (telemetry.count(), quarantine.count()) == (0, 0)
    assert version(spark, settings, "telemetry") == 0
    properties = (DeltaTable.forPath(spark, settings.table_path("silver", "telemetry"))
                  .detail().first()["properties"])
    assert properties["delta.enableChangeDataFeed"] == "false"
    assert properties["delta.autoOptimize.optimizeWrite"] == "true"


def test_merge_retry_changes_nothing_and_keeps_the_same_rows(spark, tables):
    batch = frame(spark, [row("a", 1), row("b", 2)])
    first = merge_silver(batch, tables, APP, 0)
    committed = version(spark, tables, "telemetry")
    again = merge_silver(batch, tables, APP, 0)
    assertDataFrameEqual(first, batch)
    assertDataFrameEqual(again, batch)
    assertDataFrameEqual(silver(spark, tables), batch)
    assert version(spark, tables, "telemetry") == committed
    first.unpersist()
    again.unpersist()


def test_duplicate_in_a_later_batch_is_not_inserted_nor_kept(spark, tables):
    merge_silver(frame(spark, [row("a", 1), row("b", 2)]), tables, APP, 0).unpersist()
    later = frame(spark, [row("a", 7, seconds=60, speed=99.0), row("c", 8, seconds=60)])
    kept = merge_silver(later, tables, APP, 1)
    retried = merge_silver(later, tables, APP, 1)
    assertDataFrameEqual(kept, frame(spark, [row("c", 8, seconds=60)]))
    assertDataFrameEqual(retried, frame(spark, [row("c", 8, seconds=60)]))
    assertDataFrameEqual(silver(spark, tables),
                         frame(spark, [row("a", 1), row("b", 2), row("c", 8, seconds=60)]))


def test_kept_rows_of_an_earlier_batch_are_found_again_after_later_batches(spark, tables):
    first = frame(spark, [row("a", 1), row("b", 2, partition=1)])
    merge_silver(first, tables, APP, 0).unpersist()
    merge_silver(frame(spark, [row("c", 9, seconds=600)]), tables, APP, 1).unpersist()
    assertDataFrameEqual(merge_silver(first, tables, APP, 0), first)


def test_merge_of_an_empty_batch(spark, tables):
    kept = merge_silver(frame(spark, []), tables, APP, 0)
    assert kept.collect() == []
    assert silver(spark, tables).count() == 0


def test_txn_confs_are_unset_after_merge_even_on_error(spark, tables, settings, tmp_path):
    merge_silver(frame(spark, [row("a", 1)]), tables, APP, 0).unpersist()
    assert [spark.conf.get(name, None) for name in TXN_CONFS] == [None, None]
    missing = type(settings)(lake_root=str(tmp_path / "nowhere"))
    with pytest.raises(Exception):
        merge_silver(frame(spark, [row("a", 1)]), missing, APP, 1)
    assert [spark.conf.get(name, None) for name in TXN_CONFS] == [None, None]


def test_quarantine_append_is_idempotent(spark, tables):
    rows = [(b"nope", ["MALFORMED_JSON"], "raw_telemetry", 0, 3, T0, T0)]
    batch = frame(spark, rows, QUARANTINE_SCHEMA)
    append_quarantine(batch, tables, APP, 0)
    append_quarantine(batch, tables, APP, 0)
    stored = spark.read.format("delta").load(tables.table_path("silver", "quarantine"))
    assertDataFrameEqual(stored, batch)
    append_quarantine(batch, tables, APP, 1)
    assert stored.count() == 2


def test_bronze_batch_through_silver(spark, tables):
    good = b'{"car_id":"car-1","event_timestamp":"2024-05-01 12:00:00","speed_kmph":80,' \
           b'"fuel_level":50,"engine_temp_c":90,"event_id":"e-1"}'
    bronze_rows = [(None, good, "raw_telemetry", 1, 5, T0 + dt.timedelta(seconds=1), T0),
                   (None, good, "raw_telemetry", 0, 9, T0, T0),
                   (None, b"{oops", "raw_telemetry", 0, 10, T0, T0)]
    validated = validate(frame(spark, bronze_rows, BRONZE_SCHEMA), tables.validation)
    append_quarantine(quarantine_rows(validated, F.lit(T0)), tables, APP, 0)
    kept = merge_silver(first_copies(valid_rows(validated)), tables, APP, 0)
    assert [(r.event_id, r.partition, r.offset) for r in kept.collect()] == [("e-1", 0, 9)]
    assert silver(spark, tables).select("offset").collect()[0][0] == 9
    quarantine = spark.read.format("delta").load(tables.table_path("silver", "quarantine"))
    assert [(r.offset, r.reasons) for r in quarantine.collect()] == [(10, ["MALFORMED_JSON"])]
