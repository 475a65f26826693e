"""The dashboard's PostgreSQL access: short read-only connections, and one clear banner per failure.

Every query is parameterised (values never enter the SQL text) and runs in a read-only
transaction with a statement timeout, on a connection opened for that read and closed after it,
so a restarted server is picked up by the next refresh without any reconnect logic.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pandas as pd
import psycopg2
from psycopg2 import errors, sql

from serving.db import START_HINT, endpoint

CONNECT_TIMEOUT_S = 3
STATEMENT_TIMEOUT_MS = 5_000
Query = str | sql.Composable
Observer = Callable[[str, Mapping[str, Any]], None]
_observers: list[Observer] = []


class DataUnavailable(RuntimeError):
    """PostgreSQL cannot answer; the message is the banner: what is wrong and what to do."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        # "unreachable" | "login" | "schema" | "permission" | "timeout" | "query"
        self.kind = kind


@contextlib.contextmanager
def observe_queries(observer: Observer) -> Iterator[None]:
    """Call `observer(sql_text, params)` for every query run inside the block (tests, EXPLAIN)."""
    _observers.append(observer)
    try:
        yield
    finally:
        _observers.remove(observer)


class Reader:
    """Runs queries on one open read-only connection (see `reader`)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def frame(self, query: Query, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """The rows of one query as a DataFrame."""
        params = params or {}
        if _observers:
            text = query.as_string(self._conn) if isinstance(query, sql.Composable) else query
            for observer in _observers:
                observer(text, dict(params))
        with self._conn.cursor() as cur:
            cur.execute(query, params)
            return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


@contextlib.contextmanager
def reader(dsn: str) -> Iterator[Reader]:
    """A short-lived read-only connection; any PostgreSQL failure becomes DataUnavailable."""
    try:
        conn = psycopg2.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S,
                                application_name="fleetlake-dashboard",
                                options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS} "
                                        "-c TimeZone=UTC")
    except psycopg2.Error as exc:
        raise _unavailable(dsn, exc) from None
    try:
        conn.set_session(readonly=True, autocommit=False)
        yield Reader(conn)
    except psycopg2.Error as exc:
        raise _unavailable(dsn, exc) from None
    finally:
        conn.close()


def read_frames(dsn: str, queries: Sequence[tuple[Query, Mapping[str, Any]]]) -> list[pd.DataFrame]:
    """Run read-only queries on one short-lived connection; one DataFrame per query."""
    with reader(dsn) as db:
        return [db.frame(query, params) for query, params in queries]


def read_frame(dsn: str, query: Query, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Run one read-only query; its rows as a DataFrame."""
    return read_frames(dsn, [(query, params or {})])[0]


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _unavailable(dsn: str, exc: psycopg2.Error) -> DataUnavailable:
    where, reason = endpoint(dsn), _first_line(exc)
    if isinstance(exc, errors.UndefinedTable):
        return DataUnavailable(
            f"The gold tables are not in PostgreSQL at {where} yet ({reason}): run "
            "`fleetlake pipeline run`, which creates them.", "schema")
    if isinstance(exc, errors.InsufficientPrivilege):
        return DataUnavailable(
            f"The dashboard's role may not read schema gold at {where} ({reason}): run "
            "`fleetlake services up`, which grants the reader role.", "permission")
    if isinstance(exc, errors.QueryCanceled):
        return DataUnavailable(
            f"PostgreSQL at {where} took longer than {STATEMENT_TIMEOUT_MS // 1000} s to answer "
            f"({reason}): it is overloaded; the page tries again at the next refresh.", "timeout")
    if not isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)):
        return DataUnavailable(
            f"PostgreSQL at {where} rejected a dashboard query ({reason}): this is a bug in the "
            "dashboard; please report it with this message.", "query")
    text = str(exc).lower()
    if any(marker in text for marker in ("authentication", "password", "does not exist",
                                         "pg_hba.conf", "permission denied for database")):
        return DataUnavailable(
            f"PostgreSQL at {where} refused the dashboard's login ({reason}): check the reader "
            "DSN (`fleetlake services status` prints it).", "login")
    return DataUnavailable(
        f"PostgreSQL at {where} is unreachable ({reason}): {START_HINT}. The page shows the "
        "data again by itself once PostgreSQL answers.", "unreachable")
