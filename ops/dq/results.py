"""A data-quality report's results in PostgreSQL `gold.dq_results` (migration 0003), for the
dashboard: one row per (run, table, expectation), written in one transaction per run."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from psycopg2 import sql
from psycopg2.extras import execute_values

from serving.db import RetryPolicy, connect, run_with_retry
from serving.tables import SCHEMA

if TYPE_CHECKING:
    from ops.dq.report import Report

TABLE = "dq_results"
COLUMNS = ("run_id", "run_at", "suite", "expectation", "expectation_type", "column_name",
           "severity", "success", "observed")


def _rows(report: "Report") -> list[tuple]:
    return [(report.run_id, report.run_at, r.suite, r.name, r.kind, r.column, r.severity,
             r.success, json.dumps(r.observed, sort_keys=True, default=str))
            for r in report.results]


def write_results(dsn: str, report: "Report", retry: RetryPolicy | None = None) -> int:
    """Insert the report's rows (a rerun of the same run id replaces them); rows written."""
    rows = _rows(report)

    def write() -> int:
        conn = connect(dsn, "fleetlake-dq")
        try:
            with conn, conn.cursor() as cur:
                table = sql.Identifier(SCHEMA, TABLE)
                cur.execute(sql.SQL("DELETE FROM {} WHERE run_id = %s").format(table),
                            (report.run_id,))
                statement = sql.SQL("INSERT INTO {} ({}) VALUES %s").format(
                    table, sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS))
                execute_values(cur, statement.as_string(cur), rows)
            return len(rows)
        finally:
            conn.close()

    return run_with_retry(dsn, retry or RetryPolicy(max_attempts=3), write)
