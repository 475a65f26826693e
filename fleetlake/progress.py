"""Streaming progress: one line per batch on stderr, one row per batch in gold.pipeline_progress.

Rows are written by the runner's main thread from Spark's progress reports, never by a batch:
a slow or unreachable PostgreSQL does not delay the queries (a failed write is retried with the
next report; rows older than `KEEP_DAYS` are pruned now and then).
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Mapping

import psycopg2
from psycopg2.extras import execute_values

from serving.db import connect, endpoint
from serving.tables import PROGRESS_TABLE, SCHEMA

log = logging.getLogger("fleetlake.progress")
KEEP_DAYS = 3
PRUNE_EVERY_S = 600.0


def source_lag(progress: Mapping[str, Any]) -> int | None:
    """Kafka: records between the batch's end offsets and the newest ones (all partitions);
    Delta: files of the source table not read yet. None when the source does not say."""
    total, known = 0, False
    for source in progress.get("sources", []) or []:
        latest, end = _offsets(source.get("latestOffset")), _offsets(source.get("endOffset"))
        metrics = source.get("metrics") or {}
        if latest and end and all(isinstance(v, dict) for v in latest.values()):
            for topic, partitions in latest.items():
                for partition, offset in partitions.items():
                    total += max(int(offset) - int(end.get(topic, {}).get(partition, offset)), 0)
            known = True
        elif "numFilesOutstanding" in metrics:
            total += int(float(metrics["numFilesOutstanding"]))
            known = True
    return total if known else None


def _offsets(value: Any) -> dict:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def progress_line(name: str, progress: Mapping[str, Any]) -> str:
    """`<query> batch N: committed in X s; lag L` for the runner's stderr."""
    took = (progress.get("durationMs") or {}).get("triggerExecution", 0) / 1000
    lag = source_lag(progress)
    behind = "" if lag is None else f"; {lag:,} {'records' if name.endswith('hot') else 'files'}" \
                                    " behind"
    return f"{name} batch {progress.get('batchId')}: committed in {took:.1f}s{behind}"


class ProgressRecorder:
    """Writes new progress reports of each query to gold.pipeline_progress (best effort)."""

    def __init__(self, dsn: str):
        self.dsn = dsn
        self._recorded: dict[str, int] = {}
        self._pruned_at = 0.0
        self._failing = False

    def record(self, query) -> None:
        """Insert the query's reports newer than the last recorded batch."""
        last = self._recorded.get(query.id, -1)
        rows = [_row(query, p) for p in query.recentProgress if p.get("batchId", -1) > last]
        if not rows:
            return
        try:
            self._insert(rows)
        except psycopg2.Error as exc:
            if not self._failing:
                log.warning("progress not recorded in PostgreSQL at %s (%s); will retry",
                            endpoint(self.dsn), str(exc).strip().splitlines()[0])
            self._failing = True
            return
        self._failing = False
        self._recorded[query.id] = max(row[2] for row in rows)

    def _insert(self, rows: list[tuple]) -> None:
        conn = connect(self.dsn, "fleetlake-progress")
        try:
            with conn, conn.cursor() as cur:
                execute_values(cur, f"INSERT INTO {SCHEMA}.{PROGRESS_TABLE} (query_name, query_id, "
                               "batch_id, batch_started_at, duration_ms, input_rows, source_lag) "
                               "VALUES %s ON CONFLICT DO NOTHING", rows)
                if time.monotonic() - self._pruned_at > PRUNE_EVERY_S:
                    cur.execute(f"DELETE FROM {SCHEMA}.{PROGRESS_TABLE} WHERE batch_started_at "
                                "< now() - make_interval(days => %s)", (KEEP_DAYS,))
                    self._pruned_at = time.monotonic()
        finally:
            conn.close()


def _row(query, progress: Mapping[str, Any]) -> tuple:
    duration = (progress.get("durationMs") or {}).get("triggerExecution", 0)
    return (query.name, query.id, int(progress["batchId"]), progress["timestamp"],
            int(duration), int(progress.get("numInputRows", 0) or 0), source_lag(progress))
