"""The write policies of the two queries on a real PostgreSQL: whatever order the hot and the gold
query commit in, each car's device_latest row and each alert end as Delta's (the gold rows)."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from serving.policies import KEEP_EXISTING, LATEST_IF_LATER, LATEST_UNLESS_AHEAD
from serving.sync import sync_batch
from serving.tables import TABLE_COLUMNS

from .lake_equality import pg_query

pytestmark = pytest.mark.integration

UTC = dt.UTC
T0 = dt.datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
HOT, GOLD = "hot-app", "gold-app"


def latest(event_id: str, event_s: float, kafka_s: float, car: str = "car-1") -> tuple:
    event_ts, kafka_ts = T0 + dt.timedelta(seconds=event_s), T0 + dt.timedelta(seconds=kafka_s)
    return (car, event_id, None, event_ts, 50.0, 40.0, 90.0, 24.7, 46.7, True, kafka_ts)


def write_latest(dsn: str, app: str, batch: int, rows: list[tuple], policy) -> None:
    frame = pd.DataFrame(rows, columns=list(TABLE_COLUMNS["device_latest"]))
    sync_batch(dsn, app, batch, {"device_latest": frame}, {}, policies={"device_latest": policy})


def stored(dsn: str) -> list[tuple]:
    return pg_query(dsn, "SELECT car_id, event_id, kafka_timestamp FROM gold.device_latest "
                         "ORDER BY car_id")


def test_the_hot_query_moves_a_car_forward_only_and_ignores_retransmissions(gold_dsn):
    write_latest(gold_dsn, HOT, 0, [latest("e2", 20, 21)], LATEST_IF_LATER)
    write_latest(gold_dsn, HOT, 1, [latest("e1", 10, 30)], LATEST_IF_LATER)  # older reading
    write_latest(gold_dsn, HOT, 2, [latest("e2", 20, 40)], LATEST_IF_LATER)  # retransmission
    assert stored(gold_dsn) == [("car-1", "e2", T0 + dt.timedelta(seconds=21))]
    write_latest(gold_dsn, HOT, 3, [latest("e3", 20, 22)], LATEST_IF_LATER)  # tie: later record
    assert stored(gold_dsn) == [("car-1", "e3", T0 + dt.timedelta(seconds=22))]


def test_gold_rows_win_unless_the_hot_query_is_ahead(gold_dsn):
    write_latest(gold_dsn, HOT, 0, [latest("e5", 50, 51)], LATEST_IF_LATER)
    write_latest(gold_dsn, GOLD, 0, [latest("e4", 40, 41)], LATEST_UNLESS_AHEAD)  # gold lags
    assert stored(gold_dsn) == [("car-1", "e5", T0 + dt.timedelta(seconds=51))]
    write_latest(gold_dsn, GOLD, 1, [latest("e5", 50, 51)], LATEST_UNLESS_AHEAD)  # caught up
    assert stored(gold_dsn) == [("car-1", "e5", T0 + dt.timedelta(seconds=51))]
    # a late reading of the car (an earlier event time) leaves the row alone
    write_latest(gold_dsn, GOLD, 2, [latest("e0", 5, 95)], LATEST_UNLESS_AHEAD)
    assert stored(gold_dsn) == [("car-1", "e5", T0 + dt.timedelta(seconds=51))]
    # the hot query served a retransmission's Kafka time (both copies in one of its batches):
    # the gold query's copy, the one silver keeps, replaces it
    write_latest(gold_dsn, HOT, 1, [latest("e6", 60, 99)], LATEST_IF_LATER)
    write_latest(gold_dsn, GOLD, 3, [latest("e6", 60, 61)], LATEST_UNLESS_AHEAD)
    assert stored(gold_dsn) == [("car-1", "e6", T0 + dt.timedelta(seconds=61))]
    # at the same event time, a reading that comes earlier in the order does not replace
    write_latest(gold_dsn, GOLD, 4, [latest("e5b", 60, 60)], LATEST_UNLESS_AHEAD)
    assert stored(gold_dsn) == [("car-1", "e6", T0 + dt.timedelta(seconds=61))]


def test_hot_alerts_never_overwrite_and_gold_alerts_always_do(gold_dsn):
    def alerts(app, batch, message, policy):
        row = ("a-1", "e-1", "car-1", T0, "OVERSPEED", "MEDIUM", message, 150.0, 140.0)
        frame = pd.DataFrame([row], columns=list(TABLE_COLUMNS["alerts"]))
        sync_batch(gold_dsn, app, batch, {"alerts": frame}, {},
                   policies={"alerts": policy} if policy else None)

    alerts(HOT, 0, "first", KEEP_EXISTING)
    alerts(HOT, 1, "second", KEEP_EXISTING)
    assert pg_query(gold_dsn, "SELECT message FROM gold.alerts") == [("first",)]
    alerts(GOLD, 0, "from Delta", None)
    assert pg_query(gold_dsn, "SELECT message FROM gold.alerts") == [("from Delta",)]
