"""sync_batch input checks that happen before any connection, and the collect-once guarantee."""
from __future__ import annotations

import socket

import pandas as pd
import pyarrow as pa
import pytest

from serving.db import PostgresUnavailableError, RetryPolicy
from serving.sync import sync_batch


@pytest.fixture
def dead_dsn() -> str:
    """A DSN nothing listens on: reaching it would fail, so passing checks must come first."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql://fleetlake@127.0.0.1:{port}/fleetlake"


def _keys(*alert_ids: str) -> pd.DataFrame:
    return pd.DataFrame({"alert_id": list(alert_ids)})


class SpyFrame:
    """Stands in for a Spark DataFrame: counts how often it is collected."""

    def __init__(self, table: pa.Table):
        self.table, self.collected = table, 0

    def toArrow(self) -> pa.Table:  # noqa: N802 - the Spark method name
        self.collected += 1
        return self.table


def test_unknown_tables_are_refused(dead_dsn):
    with pytest.raises(ValueError, match=r"unknown gold table\(s\) \['nope'\]"):
        sync_batch(dead_dsn, "app", 0, {"nope": _keys("a")}, {})


def test_columns_must_match_the_table(dead_dsn):
    with pytest.raises(ValueError, match=r"gold.alerts: batch columns do not match"):
        sync_batch(dead_dsn, "app", 0, {"alerts": _keys("a")}, {})
    with pytest.raises(ValueError, match=r"unexpected \['car_id'\]"):
        sync_batch(dead_dsn, "app", 0, {}, {"alerts": _keys("a").assign(car_id="c")})


def test_duplicate_upsert_keys_are_refused_before_connecting(dead_dsn):
    dq = pd.DataFrame({"query_id": ["q", "q"], "batch_id": [1, 1], "processed_at": [None] * 2,
                       "rows_in": [1, 2], "valid_rows": [1, 2], "quarantined_rows": [0, 0],
                       "duplicate_rows": [0, 0], "quarantine_reasons": [None, None]})
    with pytest.raises(ValueError, match="appear more than once"):
        sync_batch(dead_dsn, "app", 0, {"dq_batch_metrics": dq}, {})


def test_each_frame_is_collected_once_however_often_the_write_is_retried(dead_dsn):
    spy = SpyFrame(pa.table({"alert_id": ["a1", "a2"]}))
    sleeps: list[float] = []
    with pytest.raises(PostgresUnavailableError, match="after 3 attempt"):
        sync_batch(dead_dsn, "app", 0, {}, {"alerts": spy},
                   retry=RetryPolicy(max_attempts=3, sleep=sleeps.append))
    assert spy.collected == 1
    assert sleeps == [1.0, 2.0]
