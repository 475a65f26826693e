"""Replay plans on static frames: the stream's own output replays to no change; a rule change
moves exactly the affected rows; the dq correction row restores the layer-count identities."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
from pyspark.sql import functions as F

from bronze.schema import BRONZE_SCHEMA
from gold.rebuild import gold_from_silver
from ops.replay import dq_correction
from ops.replay_plan import bronze_since, plan_gold, plan_silver
from silver.dedup import first_copies
from silver.validate import quarantine_rows, valid_rows, validate

UTC = dt.timezone.utc
T1 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=UTC)  # first batch lands
T2 = dt.datetime(2026, 3, 1, 11, 0, tzinfo=UTC)  # second batch lands


def event(event_id: str, speed, second: int = 0) -> bytes:
    return json.dumps({"event_id": event_id, "car_id": "car-01",
                       "event_timestamp": f"2026-03-01T09:00:{second:02d}Z", "speed_kmph": speed,
                       "fuel_level": 50.0, "engine_temp_c": 90.0, "latitude": 26.4,
                       "longitude": 50.1}).encode()


BATCH_1 = [event("e1", 80.0, 1), event("e2", 160.0, 2), b"{oops", event("e3", 130.0, 3)]
BATCH_2 = [event("e2", 160.0, 2), event("e4", 100.0, 4)]  # e2 retransmitted


def bronze(spark):
    rows = [(None, value, "raw", 0, offset, T1, T1) for offset, value in enumerate(BATCH_1)]
    rows += [(None, value, "raw", 1, offset, T2, T2) for offset, value in enumerate(BATCH_2)]
    return spark.createDataFrame(rows, BRONZE_SCHEMA)


def stream_output(spark, rules):
    """silver and quarantine as two stream batches leave them (first batch's copy wins)."""
    b = bronze(spark)
    one, two = (validate(b.where(F.col("ingested_at") == t), rules) for t in (T1, T2))
    silver = first_copies(valid_rows(one))
    later = first_copies(valid_rows(two)).join(silver.select("event_id"), "event_id", "left_anti")
    stamp = F.lit(T1).cast("timestamp")
    quarantine = quarantine_rows(one, stamp).unionByName(quarantine_rows(two, stamp))
    return silver.unionByName(later.select(*silver.columns)), quarantine


def changes(diff):
    return sorted((r._change, r[0]) for r in diff.collect())


@pytest.mark.parametrize("since", [None, T2])
def test_replaying_the_streams_own_output_changes_nothing(spark, settings, since):
    silver, quarantine = stream_output(spark, settings.validation)
    rows = bronze(spark) if since is None else bronze_since(bronze(spark), F.lit(since))
    plan = plan_silver(rows, silver, quarantine, settings.validation,
                       F.lit(T2).cast("timestamp"))
    assert changes(plan.silver_diff) == [] and changes(plan.quarantine_diff) == []
    assert sorted(r.event_id for r in plan.silver_after.collect()) == ["e1", "e2", "e3", "e4"]
    assert plan.silver_after.where("event_id = 'e2'").first().partition == 0  # first copy kept


def test_a_lower_speed_limit_moves_exactly_the_too_fast_copies_to_quarantine(spark, settings):
    silver, quarantine = stream_output(spark, settings.validation)
    strict = dataclasses.replace(settings.validation, speed_max=150.0)
    plan = plan_silver(bronze(spark), silver, quarantine, strict, F.lit(T2).cast("timestamp"))
    assert changes(plan.silver_diff) == [("removed", "e2")]
    added = [(r.partition, r.offset, r._after.reasons) for r in plan.quarantine_diff.collect()]
    assert sorted(added) == [(0, 1, ["OUT_OF_RANGE:speed_kmph"]),
                             (1, 0, ["OUT_OF_RANGE:speed_kmph"])]
    # replaying only the second batch leaves batch 1's e2 in silver (it is out of range)
    plan = plan_silver(bronze_since(bronze(spark), F.lit(T2)), silver, quarantine, strict,
                       F.lit(T2).cast("timestamp"))
    assert changes(plan.silver_diff) == []
    assert [(r.partition, r.offset) for r in plan.quarantine_diff.collect()] == [(1, 0)]


def test_a_lower_overspeed_threshold_adds_and_updates_exactly_the_overspeed_alerts(spark,
                                                                                   settings):
    alerts_off = dataclasses.replace(
        settings.alerts, sustained_overheat_enabled=False, fuel_drop_enabled=False,
        gps_jump_enabled=False, speed_anomaly_enabled=False)
    silver, _ = stream_output(spark, settings.validation)
    gold = gold_from_silver(silver, alerts_off)
    diffs = plan_gold(silver, gold, dataclasses.replace(alerts_off, overspeed_kmph=120.0))
    alerts = sorted((r._change, r._before and r._before.event_id, r._after.event_id,
                     r._after.threshold, r._after.message) for r in diffs["alerts"].collect())
    assert alerts == [("added", None, "e3", 120.0, "Speed 130.0 km/h above 120 km/h"),
                      ("changed", "e2", "e2", 120.0, "Speed 160.0 km/h above 120 km/h")]
    kpis = [(r._change, r._before.alerts, r._after.alerts, r._after.overspeed_alerts)
            for r in diffs["device_minute_kpis"].collect()]
    assert kpis == [("changed", 1, 2, 2)]
    assert changes(diffs["device_latest"]) == []
    same = plan_gold(silver, gold, alerts_off)
    assert all(changes(diff) == [] for diff in same.values())


def test_the_dq_correction_row_moves_counts_between_layers(spark, settings):
    silver, quarantine = stream_output(spark, settings.validation)
    batches = spark.createDataFrame(
        [("q", 0, T1, 4, 3, 1, 0, {"MALFORMED_JSON": 1}), ("q", 1, T2, 2, 2, 0, 1, {})],
        "query_id string, batch_id long, processed_at timestamp, rows_in long, valid_rows long, "
        "quarantined_rows long, duplicate_rows long, quarantine_reasons map<string,bigint>")
    tables = {"bronze/telemetry_raw": bronze(spark), "silver/telemetry": silver,
              "silver/quarantine": quarantine, "gold/dq_batch_metrics": batches}
    row, moved = dq_correction(spark, "r1", tables, T2)
    assert not moved
    strict = dataclasses.replace(settings.validation, speed_max=150.0)
    plan = plan_silver(bronze(spark), silver, quarantine, strict, F.lit(T2).cast("timestamp"))
    after = dict(tables, **{"silver/telemetry": plan.silver_after, "silver/quarantine":
                            quarantine.unionByName(plan.quarantine_diff.select(
                                "topic", "partition", "offset", "_after.*"))})
    row, moved = dq_correction(spark, "r1", after, T2)
    got = row.first().asDict()
    assert moved and (got["query_id"], got["batch_id"]) == ("replay:r1", 0)
    assert [got[c] for c in ("rows_in", "valid_rows", "quarantined_rows", "duplicate_rows")] == [
        0, -2, 2, -1]
    assert got["quarantine_reasons"] == {"OUT_OF_RANGE:speed_kmph": 2}
