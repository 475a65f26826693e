"""sync_batch against a real PostgreSQL: exact rows, exactly-once ledger, atomicity, COPY at scale.

Each test gets its own new database with the migrations applied (`gold_dsn` in conftest.py).
"""
from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest
from psycopg2 import errors

from serving.db import RetryPolicy, last_served_batch
from serving.sync import SyncError, sync_batch
from serving.tables import TABLE_COLUMNS, TABLE_KEYS, TABLES

from .lake_equality import pg_query

pytestmark = pytest.mark.integration

UTC = dt.UTC
T0 = dt.datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
T1 = dt.datetime(2024, 3, 1, 10, 0, 59, 999999, tzinfo=UTC)
NASTY = 'quote " comma , newline \n tab \t backslash \\ unicode \u00fc \U0001f697 \\N'


def _frame(table: str, rows: list[tuple], keys_only: bool = False) -> pd.DataFrame:
    columns = TABLE_KEYS[table] if keys_only else TABLE_COLUMNS[table]
    return pd.DataFrame(rows, columns=list(columns))


def _rows(dsn: str, table: str) -> list[tuple]:
    columns, keys = ", ".join(TABLE_COLUMNS[table]), ", ".join(TABLE_KEYS[table])
    return pg_query(dsn, f"SELECT {columns} FROM gold.{table} ORDER BY {keys}")


def _ledger(dsn: str) -> list[tuple]:
    return pg_query(dsn, "SELECT app_id, batch_id, rows FROM gold.sync_ledger ORDER BY 1, 2")


def _alert(alert_id: str, message: str = "speed 150 > 140", ts: dt.datetime = T0) -> tuple:
    return (alert_id, f"e-{alert_id}", "car-1", ts, "OVERSPEED", "MEDIUM", message, 150.0, 140.0)


def _counts(deletes=0, deleted=0, upserts=0, written=0) -> dict[str, int]:
    return {"deletes": deletes, "deleted": deleted, "upserts": upserts, "written": written}


def test_upserts_and_deletes_apply_exactly(gold_dsn):
    first = [_alert("a1"), _alert("a2"), _alert("a3")]
    # (..., alerts, speed_sum_kmph, one count per alert type in ALERT_TYPES order)
    kpis = [("car-1", T0, 3, 50.0, 60.0, 90.0, 40.0, 0, Decimal("150"), *[0] * 8),
            ("car-1", T1, 1, 10.0, 10.0, 80.0, 39.0, 1, Decimal("10"), 1, *[0] * 7)]
    upserts = {"alerts": _frame("alerts", first),
               "device_minute_kpis": _frame("device_minute_kpis", kpis)}
    assert sync_batch(gold_dsn, "app", 0, upserts, {})
    changed = [_alert("a1", message="now 160 > 140"), _alert("a4")]
    assert sync_batch(
        gold_dsn, "app", 1, {"alerts": _frame("alerts", changed)},
        {"alerts": _frame("alerts", [("a2",), ("missing",)], keys_only=True),
         "device_minute_kpis": _frame("device_minute_kpis", [("car-1", T0)], keys_only=True)})
    assert _rows(gold_dsn, "alerts") == [changed[0], first[2], changed[1]]
    assert _rows(gold_dsn, "device_minute_kpis") == [kpis[1]]
    assert _ledger(gold_dsn) == [
        ("app", 0, {"alerts": _counts(upserts=3, written=3),
                    "device_minute_kpis": _counts(upserts=2, written=2)}),
        ("app", 1, {"alerts": _counts(deletes=2, deleted=1, upserts=2, written=2),
                    "device_minute_kpis": _counts(deletes=1, deleted=1)})]


def test_every_table_round_trips_nulls_timestamps_and_json_exactly(gold_dsn):
    plus3 = dt.timezone(dt.timedelta(hours=3))
    rows = {
        "alerts": [("a1", "e1", "car-1", T0, "OVERSPEED", "MEDIUM", NASTY, 150.5, 140.0),
                   ("a2", None, "", None, "GPS_INVALID", "LOW", "", None, math.inf),
                   ("a3", "e3", "\\.", T1, "LOW_FUEL", "LOW", None, -0.5, 1e-300)],
        "device_minute_kpis": [("car-1", T0, 5, 80.25, 120.0, 95.5, 12.5, 2,
                                Decimal("401.250000001"), 1, 0, 0, 0, 0, 0, 0, 1),
                               ("car-1", T1, 1, None, None, None, None, 0, None, *[0] * 8)],
        "fleet_minute_kpis": [(T0, 3, 10, 70.1, 4, 1, 1, 1, 1, 0, 0, 0, 0),
                              (T1, 0, 0, None, 0, 0, 0, 0, 0, 0, 0, 0, 0)],
        "device_latest": [("car-1", "e1", None, T0, 150.0, 9.5, 111.0, 24.7, 46.6, True, T1),
                          ("car-2", "e2", "trip-2", T1, 0.0, 100.0, -60.0, None, None, False,
                           T0),
                          ("car-3", "e3", "trip-3", T1, 1.0, 2.0, 3.0, 0.0, 0.0, None, None)],
        "dq_batch_metrics": [("q1", 0, T0, 10, 7, 2, 1, {"MISSING_FIELD:car_id": 1,
                                                         "OUT_OF_RANGE:speed_kmph": 1}),
                             ("q1", 1, T1, 0, 0, 0, 0, {}),
                             ("q2", 0, None, 5, 5, 0, 0, None)],
    }
    upserts = {name: _frame(name, table_rows) for name, table_rows in rows.items()}
    latest = upserts["device_latest"]
    upserts["device_latest"] = latest.assign(kafka_timestamp=latest.kafka_timestamp.dt.tz_convert(
        plus3))  # another zone, same instants
    assert sync_batch(gold_dsn, "app", 0, upserts, {})
    for name in TABLES:
        assert _rows(gold_dsn, name) == rows[name], name


def test_nan_and_infinities_from_arrow_round_trip(gold_dsn):
    columns = {c: [v] for c, v in zip(TABLE_COLUMNS["device_latest"], (
        "car-1", "e1", "t1", T0, math.nan, math.inf, -math.inf, math.nan, 0.0, False, T0),
        strict=True)}
    table = pa.table(columns).set_column(3, "event_ts", pa.array([T0], pa.timestamp("us", "UTC")))
    assert sync_batch(gold_dsn, "app", 0, {"device_latest": table}, {})
    (row,) = _rows(gold_dsn, "device_latest")
    assert math.isnan(row[4]) and row[5] == math.inf and row[6] == -math.inf
    assert math.isnan(row[7]) and row[:4] == ("car-1", "e1", "t1", T0)


def test_the_same_batch_twice_applies_once(gold_dsn):
    batch = {"alerts": _frame("alerts", [_alert("a1")])}
    assert sync_batch(gold_dsn, "app", 7, batch, {}) is True
    replayed = {"alerts": _frame("alerts", [_alert("a1", message="changed"), _alert("a2")])}
    assert sync_batch(gold_dsn, "app", 7, replayed, {}) is False
    assert _rows(gold_dsn, "alerts") == [_alert("a1")]
    assert [(a, b) for a, b, _ in _ledger(gold_dsn)] == [("app", 7)]
    assert sync_batch(gold_dsn, "other-app", 7, replayed, {}) is True
    assert _rows(gold_dsn, "alerts") == [_alert("a1", message="changed"), _alert("a2")]


@pytest.mark.parametrize("broken, error", [
    ({"dq_batch_metrics": [("q", 0, T0, 1, 1, 0, 0, "{not json")]},
     errors.InvalidTextRepresentation),
    ({"device_latest": [(None, "e", "t", T0, 1.0, 1.0, 1.0, 1.0, 1.0, True, T0)]},
     errors.NotNullViolation),
])
def test_a_sync_failing_mid_transaction_leaves_nothing(gold_dsn, broken, error):
    good = {"alerts": _frame("alerts", [_alert("a1")])}
    upserts = {**good, **{name: _frame(name, rows) for name, rows in broken.items()}}
    sleeps: list[float] = []
    with pytest.raises(error):
        sync_batch(gold_dsn, "app", 0, upserts, {"alerts": _frame("alerts", [("a0",)], True)},
                   retry=RetryPolicy(max_attempts=3, sleep=sleeps.append))
    assert sleeps == []  # data errors are not retried
    assert _rows(gold_dsn, "alerts") == []
    assert _ledger(gold_dsn) == []
    assert sync_batch(gold_dsn, "app", 0, good, {})
    assert _rows(gold_dsn, "alerts") == [_alert("a1")]


def test_a_100k_row_batch_goes_through_copy(gold_dsn):
    base = [_alert(f"a{i:06d}", ts=T0 + dt.timedelta(microseconds=i)) for i in range(100_000)]
    assert sync_batch(gold_dsn, "bulk", 0, {"alerts": _frame("alerts", base)}, {})
    gone = {f"a{i:06d}" for i in range(1, 2001, 2)}
    kept = [r if int(r[0][1:]) % 2 else r[:6] + ("changed",) + r[7:]
            for r in base if r[0] not in gone]
    assert sync_batch(gold_dsn, "bulk", 1, {"alerts": _frame("alerts", kept)},
                      {"alerts": _frame("alerts", [(k,) for k in sorted(gone)], True)})
    assert _rows(gold_dsn, "alerts") == kept
    assert _ledger(gold_dsn)[1][2] == {"alerts": _counts(deletes=1000, deleted=1000,
                                                         upserts=99_000, written=50_000)}


def test_syncing_before_the_migrations_is_a_clear_error(fresh_pg_dsn):
    with pytest.raises(SyncError, match="apply the migrations first"):
        sync_batch(fresh_pg_dsn, "app", 0, {"alerts": _frame("alerts", [_alert("a1")])}, {})


def test_spark_dataframes_sync_through_arrow(gold_dsn, spark):
    alerts = [_alert("a1"), _alert("a2", message=None, ts=T1)]
    dq = [("q1", 3, T1, 4, 2, 1, 1, {"BAD_TIMESTAMP": 1}), ("q1", 4, None, 0, 0, 0, 0, None)]
    alert_schema = ("alert_id string, event_id string, car_id string, event_ts timestamp, "
                    "alert_type string, severity string, message string, "
                    "observed_value double, threshold double")
    dq_schema = ("query_id string, batch_id bigint, processed_at timestamp, rows_in bigint, "
                 "valid_rows bigint, quarantined_rows bigint, duplicate_rows bigint, "
                 "quarantine_reasons map<string,bigint>")
    upserts = {"alerts": spark.createDataFrame(alerts + [_alert("a3")], alert_schema),
               "dq_batch_metrics": spark.createDataFrame(dq, dq_schema)}
    deletes = {"alerts": spark.createDataFrame([("a3",)], "alert_id string")}
    assert sync_batch(gold_dsn, "spark", 0, upserts, {})
    assert sync_batch(gold_dsn, "spark", 1, {}, deletes)
    assert _rows(gold_dsn, "alerts") == alerts
    assert _rows(gold_dsn, "dq_batch_metrics") == dq


def test_last_served_batch_is_the_newest_batch_the_ledger_holds_for_that_query(gold_dsn):
    def dq(query_id: str, batch_id: int) -> tuple:
        return (query_id, batch_id, T0, 1, 1, 0, 0, {})

    assert last_served_batch(gold_dsn, "q1") is None
    sync_batch(gold_dsn, "q1", 3, {"dq_batch_metrics": _frame(
        "dq_batch_metrics", [dq("q1", 3), dq("q1", 11), dq("q2", 40)])}, {})
    sync_batch(gold_dsn, "q1", 12, {"alerts": _frame("alerts", [_alert("a1")])}, {})  # no dq row
    sync_batch(gold_dsn, "q2", 7, {}, {})
    # the ledger, not the dq rows: q1 applied batches 3 and 12, q2 batch 7 (not 40)
    assert last_served_batch(gold_dsn, "q1") == 12
    assert last_served_batch(gold_dsn, "q2") == 7
    assert last_served_batch(gold_dsn, "q3") is None
