"""update_gold on real Delta tables (tmp_path): late events corrected, retries change nothing."""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

import pyarrow as pa
import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F, types as T
from pyspark.testing import assertDataFrameEqual

import gold.cars as cars_module
import gold.sink as sink
from gold.kpis import dq_batch_metrics_row
from gold.rebuild import gold_from_silver
from gold.schema import GOLD_KEYS, GOLD_SCHEMAS
from gold.sink import SILVER_INPUT, ensure_gold_tables, update_gold
from infra.caching import CacheScope
from infra.delta_io import read_pinned

pytestmark = pytest.mark.integration

UTC = dt.timezone.utc
DAY = dt.datetime(2024, 3, 1, tzinfo=UTC)
APP = "gold-test-app"
SILVER = T.StructType([T.StructField(n, t) for n, t in (
    ("event_id", T.StringType()), ("car_id", T.StringType()), ("trip_id", T.StringType()),
    ("event_ts", T.TimestampType()), ("speed_kmph", T.DoubleType()),
    ("fuel_level", T.DoubleType()), ("engine_temp_c", T.DoubleType()),
    ("latitude", T.DoubleType()), ("longitude", T.DoubleType()),
    ("gps_valid", T.BooleanType()), ("topic", T.StringType()), ("partition", T.IntegerType()),
    ("offset", T.LongType()), ("kafka_timestamp", T.TimestampType()))])
GOLD_TABLES = ("alerts", "device_minute_kpis", "fleet_minute_kpis", "device_latest")


def at(hour: int, seconds: float) -> dt.datetime:
    return DAY + dt.timedelta(hours=hour, seconds=seconds)


def reading(event_id, car, ts, temp=90.0, speed=60.0, fuel=80.0, lat=24.0, arrived=None):
    kafka_ts = arrived or ts + dt.timedelta(seconds=1)
    offset = int(kafka_ts.timestamp() * 1000)
    return (event_id, car, "trip", ts, speed, fuel, temp, lat, 46.0, True, "raw", 0, offset,
            kafka_ts)


def batches():
    """Batch 1: 08:00-08:05 (car a hot all along) + 11:00; batch 2: 11:01 + a reading of 08:00:15
    arriving three hours late that breaks car a's overheat run."""
    early = [reading(f"a-08-{k:02d}", "a", at(8, 10 * k), temp=106.0, speed=60.0 + k % 3,
                     fuel=80.0 - 0.1 * k, lat=24.0 + 0.0001 * k + (0.5 if k == 20 else 0.0))
             for k in range(31)]  # a GPS jump out and back at 08:03:20, left as is by batch 2
    early += [reading(f"b-08-{k:02d}", "b", at(8, 10 * k)) for k in range(31)]
    live1 = [reading(f"{c}-11-{k:02d}", c, at(11, 5 * k), speed=150.0 if k == 3 else 70.0)
             for c in "ab" for k in range(12)]
    live2 = [reading(f"{c}-11b-{k:02d}", c, at(11, 60 + 5 * k)) for c in "ab" for k in range(12)]
    late = reading("a-late", "a", at(8, 15), temp=100.0, speed=150.0, fuel=79.85,
                   lat=24.00015, arrived=at(11, 90))
    return early + live1, live2 + [late]


def run_batch(spark, settings, rows, batch_id, append=True, state=None, as_found=False):
    """update_gold for one batch of new silver rows; the changes it returns, collected.
    With `state` (a dict), batches hand each other what the gold query's sink carries.
    `as_found`: as the gold query runs it, gold reads silver as the batch found it plus the
    batch's rows, and silver is appended afterwards (else before gold runs)."""
    new = spark.createDataFrame(rows, SILVER)
    path = settings.table_path("silver", "telemetry")

    def append_silver():
        new.write.format("delta").mode("append").save(path)

    extra = {}
    if as_found:
        if not DeltaTable.isDeltaTable(spark, path):  # the query creates silver at start
            new.limit(0).write.format("delta").save(path)
        found = read_pinned(spark, path).select(*SILVER_INPUT)
        extra = dict(silver=found.unionByName(new.select(*SILVER_INPUT)))
    elif append:  # what the gold query's silver append did before gold runs
        append_silver()
    dq = dq_batch_metrics_row(spark, query_id=APP, batch_id=batch_id, rows_in=len(rows),
                              valid_rows=len(rows), quarantined_rows=0, duplicate_rows=0,
                              quarantine_reasons={}, processed_at=F.lit(at(12, batch_id)))
    state = {} if state is None else state
    with CacheScope() as caches:
        changes = update_gold(new, dq, settings, APP, batch_id, caches,
                              may_be_retry=not state, latest_before=state.get("latest"),
                              carried=state.get("carried"), **extra)
        if as_found:
            append_silver()
        state.update(latest=changes.device_latest.result(), carried=changes.carried.result())
        return collected(changes)


def collected(changes):
    """Plain, sorted rows of every returned frame, timestamps as epoch microseconds."""
    def rows(frame):
        if isinstance(frame, pa.Table):  # already collected (alert changes)
            return sorted(tuple(micros(v) if isinstance(v, dt.datetime) else v
                                for v in row.values()) for row in frame.to_pylist())
        plain = frame.select(*[F.unix_micros(f.name).alias(f.name)
                               if isinstance(f.dataType, T.TimestampType) else F.col(f.name)
                               for f in frame.schema.fields])
        return sorted(tuple(r) for r in plain.collect())
    return ({k: rows(v) for k, v in changes.upserts.items()},
            {k: rows(v) for k, v in changes.deletes.items()})


def versions(spark, settings):
    return {name: DeltaTable.forPath(spark, settings.table_path("gold", name)).history(1)
            .first().version for name in GOLD_SCHEMAS}


def micros(ts: dt.datetime) -> int:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return int((ts - dt.datetime(1970, 1, 1, tzinfo=UTC)) / dt.timedelta(microseconds=1))


def alert_key(event_id, alert_type):
    return hashlib.sha256(f"{event_id}|{alert_type}".encode()).hexdigest()[:32]


def gold_alerts(spark, settings):
    return spark.read.format("delta").load(settings.table_path("gold", "alerts")).collect()


def assert_gold_is_a_recomputation(spark, settings):
    silver = spark.read.format("delta").load(settings.table_path("silver", "telemetry"))
    expected = gold_from_silver(silver, settings.alerts)
    for name in GOLD_TABLES:
        actual = spark.read.format("delta").load(settings.table_path("gold", name))
        assertDataFrameEqual(actual, expected[name], rtol=0, atol=0)


def test_tables_are_created_once_with_the_contract_schemas(spark, settings):
    ensure_gold_tables(spark, settings)
    ensure_gold_tables(spark, settings)
    for name, schema in GOLD_SCHEMAS.items():
        table = spark.read.format("delta").load(settings.table_path("gold", name))
        assert [(f.name, f.dataType.simpleString()) for f in table.schema] == [
            (f.name, f.dataType.simpleString()) for f in schema]
        assert table.count() == 0


def test_late_event_corrects_gold_and_retry_changes_nothing(spark, settings):
    ensure_gold_tables(spark, settings)
    first, second = batches()
    run_batch(spark, settings, first, 0)
    assert_gold_is_a_recomputation(spark, settings)
    got = run_batch(spark, settings, second, 1)
    assert_gold_is_a_recomputation(spark, settings)

    # the late cool reading split the run: 08:00:40 no longer completes it, 08:01:00 does
    assert got[1]["alerts"] == [(alert_key("a-08-04", "SUSTAINED_OVERHEAT"),)]
    upserted = {(r[1], r[4]) for r in got[0]["alerts"]}
    # only what changed is written and synced: car a's GPS jumps of 08:03, recomputed with the
    # late reading, are unchanged and left out
    assert {(r[1], r[4]) for r in gold_alerts(spark, settings) if r[4] == "GPS_JUMP"} == {
        ("a-08-20", "GPS_JUMP"), ("a-08-21", "GPS_JUMP")}
    assert upserted == {("a-08-06", "SUSTAINED_OVERHEAT"), ("a-late", "OVERSPEED")}
    kpis = {(r[0], r[1]) for r in got[0]["device_minute_kpis"]}
    assert {("a", micros(at(8, 0))), ("a", micros(at(8, 60)))} <= kpis
    assert len(got[0]["dq_batch_metrics"]) == 1

    before = versions(spark, settings)
    retried = run_batch(spark, settings, second, 1, append=False)
    assert retried == got
    assert versions(spark, settings) == before
    assert_gold_is_a_recomputation(spark, settings)


def test_held_kpi_rows_of_a_late_cars_alert_minutes_are_read_once_ahead(spark, settings,
                                                                        monkeypatch):
    ensure_gold_tables(spark, settings)
    first, second = batches()
    run_batch(spark, settings, first, 0)
    reads = []
    read = sink._held_kpi_rows
    monkeypatch.setattr(sink, "_held_kpi_rows", lambda *a: reads.append(a[1]) or read(*a))
    got = run_batch(spark, settings, second, 1)

    # a-08-06's new alert lies in 08:01, a minute without readings in the batch (08:00, 11:01):
    # its held KPI rows come from the one read made while the alerts were computed
    assert {r[3] // 60_000_000 * 60 for r in got[0]["alerts"]} == {
        micros(at(8, 0)) // 1_000_000, micros(at(8, 60)) // 1_000_000}
    assert len(reads) == 1
    assert_gold_is_a_recomputation(spark, settings)


def test_retry_after_a_crash_midway_returns_the_same_changes(spark, settings, tmp_path,
                                                             monkeypatch):
    ensure_gold_tables(spark, settings)
    first, second = batches()
    run_batch(spark, settings, first, 0)

    def crash(*args, **kwargs):
        raise RuntimeError("killed after the alert and KPI writes")

    with monkeypatch.context() as patched:
        patched.setattr(sink, "_latest_after", crash)
        with pytest.raises(RuntimeError):
            run_batch(spark, settings, second, 1)
    retried = run_batch(spark, settings, second, 1, append=False)
    assert_gold_is_a_recomputation(spark, settings)

    clean = dataclasses.replace(settings, lake_root=str(tmp_path / "clean"))
    ensure_gold_tables(spark, clean)
    run_batch(spark, clean, first, 0)
    clean_changes = run_batch(spark, clean, second, 1)
    assert retried == clean_changes


def test_keys_of_returned_frames_are_unique(spark, settings):
    ensure_gold_tables(spark, settings)
    first, _ = batches()
    upserts, _ = run_batch(spark, settings, first, 0)
    for name, rows in upserts.items():
        columns = list(GOLD_SCHEMAS[name].fieldNames())
        keys = [tuple(row[columns.index(k)] for k in GOLD_KEYS[name]) for row in rows]
        assert len(keys) == len(set(keys)) and keys, name


QUICK_RULES = dict(sustained_overheat_readings=3, fuel_drop_points=3.0, fuel_drop_minutes=2.0,
                   speed_anomaly_min_readings=5, speed_anomaly_zscore=3.0)


def noisy_drive(car: str, start: float, seconds: float, seed: int) -> list[tuple]:
    """A reading every 2 s: noisy fuel (many small rises), hot spells, speed spikes, jumps."""
    import random
    rng = random.Random(seed)
    rows, t = [], start
    while t < start + seconds:
        k = int(t)
        rows.append(reading(
            f"{car}-{k:05d}", car, at(9, t), temp=104.0 + 3 * ((k // 20) % 2) + rng.random(),
            speed=150.0 if rng.random() < 0.05 else 60.0 + rng.random() * 3,
            fuel=80.0 - t / 20 + rng.random() * 0.8 - (5.0 if rng.random() < 0.03 else 0.0),
            lat=24.0 + t / 1e4 + (0.3 if rng.random() < 0.03 else 0.0)))
        t += 2
    return rows


def test_live_batches_recompute_from_carried_rows_and_stay_exact(spark, settings, monkeypatch):
    """As the gold query runs it: silver as found + the batch, appended afterwards."""
    settings = dataclasses.replace(settings, alerts=dataclasses.replace(
        settings.alerts, **QUICK_RULES))
    ensure_gold_tables(spark, settings)
    modes_seen = []
    original = cars_module.car_histories

    def spy(*args):
        history, modes = original(*args)
        modes_seen.append((sorted(modes.fast), sorted(modes.full), sorted(modes.late)))
        return history, modes

    monkeypatch.setattr(sink, "car_histories", spy)
    drives = {c: noisy_drive(c, 0, 400, seed) for seed, c in enumerate("pqr")}
    history = [r for rows in drives.values() for r in rows if r[3] < at(9, 300)]
    live = sorted((r for rows in drives.values() for r in rows if r[3] >= at(9, 300)),
                  key=lambda r: r[3])
    late = reading("p-late", "p", at(9, 101), temp=95.0, speed=200.0, fuel=99.0,
                   arrived=at(9, 390))
    batches = [history, live[:60], live[60:120], live[120:] + [late]]
    state = {}
    for batch_id, rows in enumerate(batches):
        run_batch(spark, settings, rows, batch_id, state=state, as_found=True)
        assert_gold_is_a_recomputation(spark, settings)
    kinds = {r[0] for r in spark.read.format("delta").load(settings.table_path("gold", "alerts"))
             .select("alert_type").distinct().collect()}
    assert {"SUSTAINED_OVERHEAT", "FUEL_DROP", "GPS_JUMP", "SPEED_ANOMALY"} <= kinds
    assert modes_seen == [
        ([], ["p", "q", "r"], []),  # nothing carried yet: silver's lookback
        (["p", "q", "r"], [], []), (["p", "q", "r"], [], []),  # live: carried rows + slices
        (["q", "r"], ["p"], ["p"])]  # p's late reading: its lookback, compared with gold


def test_a_late_reading_whose_history_joins_the_live_one_leaves_alerts_between_them_alone(
        spark, settings):
    """A reading 16 minutes late: its affected stretch (10 min) and the live readings' are apart,
    but their histories (10 min back each) overlap, so the readings between are recomputed too.
    Their alerts (a GPS jump out and back at 08:38) are unchanged: not new, not written again."""
    ensure_gold_tables(spark, settings)
    history = [reading(f"g-{k:02d}", "g", at(8, 30 * k), fuel=80.0 - 0.05 * k,
                       lat=24.0 + 0.0001 * k + (0.5 if k == 76 else 0.0)) for k in range(82)]
    run_batch(spark, settings, history, 0)
    late = reading("g-late", "g", at(8, 25 * 60 + 15), fuel=80.0 - 0.05 * 50.5,
                   lat=24.0 + 0.0001 * 50.5, arrived=at(8, 41 * 60 + 5))
    live = [reading(f"g-live-{k}", "g", at(8, 41 * 60 + 30 * k), fuel=80.0 - 0.05 * (82 + k),
                    lat=24.0 + 0.0001 * (82 + k)) for k in range(3)]
    got = run_batch(spark, settings, [late] + live, 1, as_found=True)

    assert got[0]["alerts"] == [] and got[1]["alerts"] == []  # nothing changed
    jumps = sorted(r[1] for r in gold_alerts(spark, settings) if r[4] == "GPS_JUMP")
    assert jumps == ["g-76", "g-77"]  # each once
    assert_gold_is_a_recomputation(spark, settings)
