"""The sync waits out a real PostgreSQL outage: connection refused, and a backend killed mid-batch.

No timing: the retry policy's `sleep` hook is where the outage ends (a TCP proxy starts listening,
or the lock holding the sync back is released), so every step happens in a fixed order.
"""
from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
import time

import pandas as pd
import pytest
from psycopg2 import extensions

from serving.db import RetryPolicy, connect
from serving.sync import sync_batch
from serving.tables import TABLE_COLUMNS

from .lake_equality import pg_query

pytestmark = pytest.mark.integration

T0 = dt.datetime(2024, 3, 1, 10, 0, tzinfo=dt.UTC)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL once started; before that the port refuses."""

    def __init__(self, target_dsn: str):
        params = extensions.parse_dsn(target_dsn)
        self.target = (params.get("host") or "127.0.0.1", int(params.get("port") or 5432))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.server: socket.socket | None = None
        self.sockets: list[socket.socket] = []

    def start(self) -> None:
        self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        if self.server is not None:
            try:
                self.server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            except OSError:
                pass
            self.server.close()
        for sock in self.sockets:
            sock.close()


def _alerts(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame([(a, f"e-{a}", "car-1", T0, "OVERSPEED", "MEDIUM", m, 150.0, 140.0)
                         for a, m in rows], columns=list(TABLE_COLUMNS["alerts"]))


def test_a_sync_started_while_postgres_is_down_completes_when_it_is_up(gold_dsn, caplog):
    proxy = TcpProxy(gold_dsn)
    via_proxy = extensions.make_dsn(gold_dsn, host="127.0.0.1", port=proxy.port)
    sleeps: list[float] = []

    def server_comes_up(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:  # down for two attempts, then up
            proxy.start()

    policy = RetryPolicy(max_attempts=10, initial_delay=0.5, sleep=server_comes_up)
    try:
        with caplog.at_level(logging.WARNING, logger="fleetlake.serving"):
            assert sync_batch(via_proxy, "app", 0, {"alerts": _alerts(("a1", "m"))}, {}, policy)
    finally:
        proxy.close()
    assert sleeps == [0.5, 1.0]
    assert pg_query(gold_dsn, "SELECT alert_id, message FROM gold.alerts") == [("a1", "m")]
    assert len(caplog.messages) == 2
    assert caplog.messages[0].startswith(f"PostgreSQL at 127.0.0.1:{proxy.port} unreachable (")
    assert caplog.messages[0].endswith(
        "); retrying in 0.5s -- start it with `fleetlake services up`")


def test_a_backend_killed_mid_batch_is_retried_and_applied_exactly_once(gold_dsn):
    assert sync_batch(gold_dsn, "app", 0, {"alerts": _alerts(("a1", "old"), ("a2", "old"))}, {})
    blocker = connect(gold_dsn)  # holds a row lock on a1: the batch's upsert waits for it
    blocker.cursor().execute("UPDATE gold.alerts SET message = message WHERE alert_id = 'a1'")
    attempts: list[float] = []

    def outage_over(seconds: float) -> None:
        attempts.append(seconds)
        blocker.rollback()

    result: list[bool] = []
    batch = threading.Thread(target=lambda: result.append(sync_batch(
        gold_dsn, "app", 1, {"alerts": _alerts(("a1", "new"), ("a3", "new"))},
        {"alerts": pd.DataFrame({"alert_id": ["a2"]})},
        RetryPolicy(max_attempts=3, sleep=outage_over))))
    batch.start()
    try:
        pid = _waiting_sync_backend(gold_dsn)  # it has deleted a2 and copied its rows by now
        assert pg_query(gold_dsn, f"SELECT pg_terminate_backend({pid})") == [(True,)]
        batch.join(timeout=120)
    finally:
        blocker.close()
    assert result == [True] and attempts == [1.0]
    assert pg_query(gold_dsn, "SELECT alert_id, message FROM gold.alerts ORDER BY 1") == [
        ("a1", "new"), ("a3", "new")]
    assert pg_query(gold_dsn, "SELECT app_id, batch_id FROM gold.sync_ledger ORDER BY 2") == [
        ("app", 0), ("app", 1)]


def _waiting_sync_backend(dsn: str) -> int:
    """pid of the sync's backend once it waits on a lock (bounded wait, not a timing assertion)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = pg_query(dsn, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                           "AND application_name = 'fleetlake-sync' AND wait_event_type = 'Lock'")
        if rows:
            return rows[0][0]
        time.sleep(0.05)
    raise AssertionError("the sync never reached the locked row")
