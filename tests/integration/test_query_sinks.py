"""The two queries' foreachBatch functions, called with static DataFrames and batch ids, on
tmp_path Delta tables and a fresh PostgreSQL database: exact rows, and a retry writes nothing."""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json

import pytest
from pyspark.sql import functions as F, types as T

from fleetlake.gold_query import NEW_ID, process_gold_batch
from fleetlake.hot import hot_plan, process_hot_batch
from fleetlake.runner import prepare
from silver.schema import STAGING_SCHEMA
from silver.sink import staging_path
from silver.validate import validate

from .lake_equality import assert_pg_mirrors_delta, pg_query

pytestmark = pytest.mark.integration

UTC = dt.timezone.utc
EMPTY_ID = hashlib.sha256(b"").hexdigest()[:32]  # the derived id of a record without fields
T0 = dt.datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
KAFKA = T.StructType([T.StructField("key", T.BinaryType()), T.StructField("value", T.BinaryType()),
                      T.StructField("topic", T.StringType()),
                      T.StructField("partition", T.IntegerType()),
                      T.StructField("offset", T.LongType()),
                      T.StructField("timestamp", T.TimestampType()),
                      T.StructField("ingested_at", T.TimestampType())])


def event(event_id: str, car: str, second: int, speed: float, fuel: float = 50.0) -> bytes:
    ts = (T0 + dt.timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({"event_id": event_id, "car_id": car, "event_timestamp": ts,
                       "speed_kmph": speed, "fuel_level": fuel, "engine_temp_c": 90.0,
                       "latitude": 24.7, "longitude": 46.7}).encode()


def kafka_rows(values: list[bytes], first_offset: int, landed: dt.datetime) -> list[tuple]:
    return [(None, value, "t", 0, first_offset + i, T0 + dt.timedelta(seconds=first_offset + i),
             landed) for i, value in enumerate(values)]


@pytest.fixture
def tables(spark, settings, gold_dsn):
    configured = dataclasses.replace(settings, pg_dsn=gold_dsn, alerts=dataclasses.replace(
        settings.alerts, sustained_overheat_enabled=False, fuel_drop_enabled=False,
        gps_jump_enabled=False, speed_anomaly_enabled=False))
    prepare(spark, configured)
    return configured


def read(spark, path):
    return spark.read.format("delta").load(path)


def test_hot_batch_serves_postgres_and_lands_every_record_in_staging_once(spark, tables):
    values = [event("e1", "A", 1, 150.0), event("e2", "A", 2, 60.0), b"{broken",
              event("e1", "A", 1, 150.0)]  # a retransmission in the same batch
    batch = spark.createDataFrame(kafka_rows(values, 0, T0), KAFKA)
    for _ in range(2):  # a retried batch writes nothing twice
        stats = process_hot_batch(hot_plan(batch, tables), 0, tables, "hot-app", T0)
    assert (stats.alerts, stats.cars) == (1, 1)
    staged = read(spark, staging_path(tables)).orderBy("offset").collect()
    assert [(r.offset, bytes(r.value), r.event_id, r.reasons) for r in staged] == [
        (0, values[0], "e1", []), (1, values[1], "e2", []),
        (2, b"{broken", EMPTY_ID, ["MALFORMED_JSON"]), (3, values[3], "e1", [])]
    # bronze is the gold query's to append (from staging), off the hot path
    assert read(spark, tables.table_path("bronze", "telemetry_raw")).count() == 0
    assert pg_query(tables.effective_pg_dsn, "SELECT event_id, alert_type FROM gold.alerts") \
        == [("e1", "OVERSPEED")]
    assert pg_query(tables.effective_pg_dsn, "SELECT car_id, event_id, speed_kmph FROM "
                    "gold.device_latest") == [("A", "e2", 60.0)]
    assert pg_query(tables.effective_pg_dsn, "SELECT batch_id FROM gold.sync_ledger WHERE "
                    "app_id = 'hot-app'") == [(0,)]


def gold_input(spark, tables, values, first_offset, landed, new_ids):
    """What the gold query's plan hands a batch: staged rows + one marker per new event id."""
    bronze = spark.createDataFrame(kafka_rows(values, first_offset, landed), KAFKA).select(
        "key", "value", "topic", "partition", "offset",
        F.col("timestamp").alias("kafka_timestamp"), "ingested_at")
    staged = validate(bronze, tables.validation, keep=("key",)).select(
        *STAGING_SCHEMA.fieldNames(), F.lit(False).alias(NEW_ID))
    markers = spark.createDataFrame([(i,) for i in new_ids], "event_id string").select(*[
        (F.col(f.name) if f.name == "event_id" else F.lit(None).cast(f.dataType)).alias(f.name)
        for f in STAGING_SCHEMA.fields], F.lit(True).alias(NEW_ID))
    return staged.unionByName(markers)


def test_gold_batches_keep_first_copies_count_duplicates_and_mirror_postgres(spark, tables):
    first = [event("e1", "A", 1, 150.0), event("e2", "B", 2, 60.0, fuel=5.0), b"nope",
             event("e2", "B", 2, 60.0, fuel=5.0)]
    second = [event("e1", "A", 1, 150.0), event("e3", "A", 70, 61.0)]
    batch0 = gold_input(spark, tables, first, 0, T0, ["e1", "e2"])
    batch1 = gold_input(spark, tables, second, 10, T0 + dt.timedelta(minutes=1), ["e3"])
    for _ in range(2):
        stats0 = process_gold_batch(batch0, 0, tables, "gold-app", T0 + dt.timedelta(minutes=5))
    stats1 = process_gold_batch(batch1, 1, tables, "gold-app", T0 + dt.timedelta(minutes=6))

    assert [(s.rows_in, s.valid_rows, s.quarantined_rows, s.duplicate_rows)
            for s in (stats0, stats1)] == [(4, 3, 1, 1), (2, 2, 0, 1)]
    silver = read(spark, tables.table_path("silver", "telemetry"))
    assert sorted((r.event_id, r.offset) for r in silver.collect()) == [
        ("e1", 0), ("e2", 1), ("e3", 11)]
    bronze = read(spark, tables.table_path("bronze", "telemetry_raw")).collect()
    assert sorted((r.offset, bytes(r.value), r.ingested_at) for r in bronze) == [
        (offset, value, landed.replace(tzinfo=None)) for offset, value, landed in
        [*((i, v, T0) for i, v in enumerate(first)),
         *((10 + i, v, T0 + dt.timedelta(minutes=1)) for i, v in enumerate(second))]]
    quarantine = read(spark, tables.table_path("silver", "quarantine")).collect()
    assert [(bytes(r.value), r.reasons, r.quarantined_at) for r in quarantine] == [
        (b"nope", ["MALFORMED_JSON"], (T0 + dt.timedelta(minutes=5)).replace(tzinfo=None))]
    gold = assert_pg_mirrors_delta(spark, tables)
    assert sorted((r[1], r[4]) for r in gold["alerts"]) == [("e1", "OVERSPEED"),
                                                            ("e2", "LOW_FUEL")]
    assert [r[1:7] for r in gold["dq_batch_metrics"]] == [
        (0, T0 + dt.timedelta(minutes=5), 4, 3, 1, 1),
        (1, T0 + dt.timedelta(minutes=6), 2, 2, 0, 1)]
