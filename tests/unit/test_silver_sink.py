"""Silver wiring on tmp_path Delta tables: table creation, idempotent appends, staging rows."""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from bronze.schema import BRONZE_SCHEMA
from infra.settings import RetentionSettings
from silver.dedup import first_copies
from silver.schema import QUARANTINE_SCHEMA, SILVER_SCHEMA, STAGING_SCHEMA
from silver.sink import (append_quarantine, append_silver, append_staging, ensure_silver_tables,
                         staging_path, to_staging)
from silver.validate import quarantine_rows, valid_rows, validate

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
APP = "query-1"
EMPTY_ID = hashlib.sha256(b"").hexdigest()[:32]  # derived id of a row with no fields
GOOD = (b'{"car_id":"car-1","event_timestamp":"2024-05-01 12:00:00","speed_kmph":80,'
        b'"fuel_level":50,"engine_temp_c":90,"event_id":"e-1"}')


def row(event_id, offset, partition=0, seconds=0, speed=80.0):
    ts = T0 + dt.timedelta(seconds=seconds)
    return (event_id, "car-1", "trip-1", ts, speed, 50.0, 90.0, 24.7, 46.7, True,
            "raw_telemetry", partition, offset, ts)


@pytest.fixture
def tables(spark, settings):
    ensure_silver_tables(spark, settings)
    return settings


def read(spark, path):
    return spark.read.format("delta").load(path)


def version(spark, path):
    return DeltaTable.forPath(spark, path).history(1).first()[0]


def frame(spark, rows, schema=SILVER_SCHEMA):
    return spark.createDataFrame(rows, schema)


def test_ensure_tables_is_idempotent_and_keeps_commits_light(spark, settings):
    ensure_silver_tables(spark, settings)
    ensure_silver_tables(spark, settings)
    telemetry = settings.table_path("silver", "telemetry")
    assert read(spark, telemetry).schema.simpleString() == SILVER_SCHEMA.simpleString()
    quarantine = read(spark, settings.table_path("silver", "quarantine"))
    assert quarantine.schema.simpleString() == QUARANTINE_SCHEMA.simpleString()
    staged = read(spark, staging_path(settings))
    assert staged.schema.simpleString() == STAGING_SCHEMA.simpleString()
    assert version(spark, telemetry) == 0  # the second call changed nothing
    properties = DeltaTable.forPath(spark, telemetry).detail().first()["properties"]
    assert properties["delta.autoOptimize.autoCompact"] == "false"
    assert properties["delta.checkpointInterval"] == "1000"


def test_tables_keep_history_for_the_configured_retention(spark, settings):
    ensure_silver_tables(spark, settings)  # the default: 30 days
    week = dataclasses.replace(settings, retention=RetentionSettings(days=7))
    ensure_silver_tables(spark, week)  # a changed setting reaches existing tables
    for path in (settings.table_path("silver", "telemetry"), staging_path(settings)):
        properties = DeltaTable.forPath(spark, path).detail().first()["properties"]
        assert (properties["delta.logRetentionDuration"],
                properties["delta.deletedFileRetentionDuration"]) == (
            "interval 7 days", "interval 7 days")


def test_ensure_tables_adds_columns_a_contract_gained(spark, settings):
    path = settings.table_path("silver", "quarantine")
    old = frame(spark, [], QUARANTINE_SCHEMA).drop("quarantined_at")
    old.write.format("delta").save(path)
    ensure_silver_tables(spark, settings)
    assert read(spark, path).columns == list(QUARANTINE_SCHEMA.fieldNames())


def test_silver_append_retry_changes_nothing(spark, tables):
    path = tables.table_path("silver", "telemetry")
    batch = frame(spark, [row("a", 1), row("b", 2)])
    append_silver(batch, tables, APP, 0)
    committed = version(spark, path)
    append_silver(batch, tables, APP, 0)
    assertDataFrameEqual(read(spark, path), batch)
    assert version(spark, path) == committed
    append_silver(frame(spark, [row("c", 3)]), tables, APP, 1)
    assert sorted(r.event_id for r in read(spark, path).collect()) == ["a", "b", "c"]


def test_quarantine_append_is_idempotent(spark, tables):
    rows = [(b"nope", ["MALFORMED_JSON"], "raw_telemetry", 0, 3, T0, T0)]
    batch = frame(spark, rows, QUARANTINE_SCHEMA)
    append_quarantine(batch, tables, APP, 0)
    append_quarantine(batch, tables, APP, 0)
    stored = read(spark, tables.table_path("silver", "quarantine"))
    assertDataFrameEqual(stored, batch)
    append_quarantine(batch, tables, APP, 1)
    assert stored.count() == 2


def test_staging_keeps_every_record_as_received_once(spark, tables):
    bronze_rows = [(b"car-1", GOOD, "raw_telemetry", 0, 9, T0, T0),
                   (None, b"{oops", "raw_telemetry", 0, 10, T0, T0)]
    validated = validate(frame(spark, bronze_rows, BRONZE_SCHEMA), tables.validation,
                         keep=("key",))
    append_staging(to_staging(validated), tables, APP, 0)
    append_staging(to_staging(validated), tables, APP, 0)
    staged = read(spark, staging_path(tables)).orderBy("offset").collect()
    assert [(r.key, r.offset, r.event_id, r.value, r.reasons, r.ingested_at) for r in staged] == [
        (bytearray(b"car-1"), 9, "e-1", bytearray(GOOD), [], T0.replace(tzinfo=None)),
        (None, 10, EMPTY_ID, bytearray(b"{oops"), ["MALFORMED_JSON"], T0.replace(tzinfo=None))]


def test_bronze_batch_through_silver(spark, tables):
    bronze_rows = [(None, GOOD, "raw_telemetry", 1, 5, T0 + dt.timedelta(seconds=1), T0),
                   (None, GOOD, "raw_telemetry", 0, 9, T0, T0),
                   (None, b"{oops", "raw_telemetry", 0, 10, T0, T0)]
    validated = validate(frame(spark, bronze_rows, BRONZE_SCHEMA), tables.validation)
    append_quarantine(quarantine_rows(validated, F.lit(T0)), tables, APP, 0)
    append_silver(first_copies(valid_rows(validated)), tables, APP, 0)
    stored = read(spark, tables.table_path("silver", "telemetry")).collect()
    assert [(r.event_id, r.partition, r.offset) for r in stored] == [("e-1", 0, 9)]
    quarantine = read(spark, tables.table_path("silver", "quarantine")).collect()
    assert [(r.offset, r.reasons) for r in quarantine] == [(10, ["MALFORMED_JSON"])]
