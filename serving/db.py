"""PostgreSQL connections: connect, wait-and-retry while the server is down, scratch databases."""
from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import psycopg2
from psycopg2 import errors, extensions, sql

from infra.dsn import error_line
from serving.tables import LEDGER

log = logging.getLogger("fleetlake.serving")

T = TypeVar("T")

START_HINT = "start it with `fleetlake services up`"

# Connect-time failures that waiting cannot fix: wrong DSN, role, database or password.
_CONFIG_ERROR_MARKERS = ("does not exist", "authentication failed", "no password supplied",
                         "no pg_hba.conf entry", "invalid connection option",
                         "password authentication", "permission denied for database")


class PostgresUnavailableError(RuntimeError):
    """PostgreSQL stayed unreachable for every attempt a bounded RetryPolicy allowed."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for transient PostgreSQL failures; max_attempts=None retries forever."""

    max_attempts: int | None = None
    initial_delay: float = 1.0
    max_delay: float = 30.0
    multiplier: float = 2.0
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return min(self.max_delay, self.initial_delay * self.multiplier ** (attempt - 1))


NO_RETRY = RetryPolicy(max_attempts=1)


def endpoint(dsn: str) -> str:
    """`host:port` of a DSN (URI or key=value), for messages; never includes the password."""
    try:
        params = extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError:
        return "<invalid DSN>"
    host = params.get("host") or params.get("hostaddr") or "local socket"
    return f"{host}:{params.get('port') or 5432}"


def connect(dsn: str, application_name: str = "fleetlake") -> extensions.connection:
    """Open a connection with a connect timeout and TCP keepalives (a dead server is noticed)."""
    return psycopg2.connect(dsn, connect_timeout=10, application_name=application_name,
                            keepalives=1, keepalives_idle=30, keepalives_interval=10,
                            keepalives_count=3)


def is_transient(exc: BaseException) -> bool:
    """True for failures that waiting fixes: server down/restarting, connection lost, conflicts."""
    if isinstance(exc, psycopg2.InterfaceError):
        return True  # "connection already closed"
    if not isinstance(exc, psycopg2.OperationalError):
        return False  # programming, data and integrity errors are never retried
    if exc.pgcode is None:
        text = str(exc).lower()
        return not any(marker in text for marker in _CONFIG_ERROR_MARKERS)
    return True


def _is_connection_problem(exc: BaseException) -> bool:
    code = getattr(exc, "pgcode", None)
    return code is None or code.startswith(("08", "57P"))


def run_with_retry(dsn: str, policy: RetryPolicy, operation: Callable[[], T]) -> T:
    """Run `operation` (which opens its own connection), retrying transient failures."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return operation()
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            if not is_transient(exc):
                raise
            where = endpoint(dsn)
            if policy.max_attempts is not None and attempt >= policy.max_attempts:
                raise PostgresUnavailableError(
                    f"PostgreSQL at {where} unreachable after {attempt} attempt(s) "
                    f"({error_line(exc, dsn)}) -- {START_HINT}") from exc
            delay = policy.delay(attempt)
            if _is_connection_problem(exc):
                log.warning("PostgreSQL at %s unreachable (%s); retrying in %gs -- %s",
                            where, error_line(exc, dsn), delay, START_HINT)
            else:
                log.warning("PostgreSQL at %s: transient failure (%s); retrying in %gs",
                            where, error_line(exc, dsn), delay)
            policy.sleep(delay)


@contextlib.contextmanager
def temporary_database(admin_dsn: str, prefix: str = "fleetlake_tmp") -> Iterator[str]:
    """Create an empty database (the DSN's role needs CREATEDB), yield its DSN, drop it after."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    run_admin(admin_dsn, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield extensions.make_dsn(admin_dsn, dbname=name)
    finally:
        drop_database(admin_dsn, name)


def drop_database(admin_dsn: str, name: str, attempts: int = 40, delay_s: float = 0.5) -> None:
    """DROP DATABASE … WITH (FORCE), retried while a backend the role may not terminate is
    attached: an autovacuum worker analysing a table just loaded (seen in CI after a 100k-row
    COPY: "must be a member of the role whose process is being terminated")."""
    statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    for attempt in range(attempts):
        try:
            run_admin(admin_dsn, statement)
            return
        except (errors.InsufficientPrivilege, errors.ObjectInUse):
            if attempt == attempts - 1:
                raise
            time.sleep(delay_s)


def run_admin(dsn: str, statement: sql.Composable,
              application_name: str = "fleetlake-admin") -> None:
    """One statement outside a transaction (CREATE/DROP DATABASE cannot run inside one)."""
    conn = connect(dsn, application_name=application_name)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def processed_rows(dsn: str, application_name: str = "fleetlake") -> int:
    """Kafka records the gold query has counted (the sum of rows_in over the PostgreSQL
    gold.dq_batch_metrics): how far the whole pipeline got."""
    rows = query_rows(dsn, "SELECT coalesce(sum(rows_in), 0) FROM gold.dq_batch_metrics", (),
                      application_name)
    return int(rows[0][0])


def last_served_batch(dsn: str, query_id: str,
                      application_name: str = "fleetlake") -> int | None:
    """The newest batch of the streaming query `query_id` that PostgreSQL applied, from the sync
    ledger (one row per applied batch, keyed by the query's id; None: none yet)."""
    statement = sql.SQL("SELECT max(batch_id) FROM {} WHERE app_id = %s").format(LEDGER)
    rows = query_rows(dsn, statement, (query_id,), application_name)
    return None if rows[0][0] is None else int(rows[0][0])


def query_rows(dsn: str, statement: str | sql.Composable, params: tuple = (),
               application_name: str = "fleetlake") -> list[tuple]:
    """Rows of one statement in its own committed transaction, session time zone UTC ([] for a
    statement that returns no rows)."""
    conn = connect(dsn, application_name)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()
