"""Retry of transient PostgreSQL failures: backoff, the log line, what is never retried."""
from __future__ import annotations

import logging
import socket

import psycopg2
import pytest

from serving import db
from serving.db import PostgresUnavailableError, RetryPolicy, run_with_retry

DSN = "postgresql://fleetlake:secret@127.0.0.1:15432/fleetlake"


class FlakyOperation:
    """Raises the given exceptions in turn, then returns 'done'."""

    def __init__(self, *failures: BaseException):
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


def _policy(sleeps: list[float], max_attempts: int | None = None) -> RetryPolicy:
    return RetryPolicy(max_attempts=max_attempts, initial_delay=1.0, max_delay=5.0,
                       sleep=sleeps.append)


def _refused() -> psycopg2.OperationalError:
    return psycopg2.OperationalError(
        'connection to server at "127.0.0.1", port 15432 failed: Connection refused\n'
        '\tIs the server running on that host and accepting TCP/IP connections?\n')


def test_transient_failures_are_retried_with_capped_exponential_backoff(caplog):
    sleeps: list[float] = []
    operation = FlakyOperation(*(_refused() for _ in range(4)),
                               psycopg2.InterfaceError("connection already closed"))
    with caplog.at_level(logging.WARNING, logger="fleetlake.serving"):
        assert run_with_retry(DSN, _policy(sleeps), operation) == "done"
    assert operation.calls == 6
    assert sleeps == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert caplog.messages[0] == (
        'PostgreSQL at 127.0.0.1:15432 unreachable (connection to server at "127.0.0.1", port '
        '15432 failed: Connection refused); retrying in 1s -- start it with '
        '`fleetlake services up`')
    assert len(caplog.messages) == 5
    assert all("secret" not in m for m in caplog.messages)


def test_bounded_policy_gives_up_with_a_clear_error():
    sleeps: list[float] = []
    operation = FlakyOperation(*(_refused() for _ in range(5)))
    with pytest.raises(PostgresUnavailableError,
                       match=r"127.0.0.1:15432 unreachable after 3 attempt\(s\).*services up"):
        run_with_retry(DSN, _policy(sleeps, max_attempts=3), operation)
    assert operation.calls == 3
    assert sleeps == [1.0, 2.0]


@pytest.mark.parametrize("failure", [
    psycopg2.ProgrammingError("syntax error"),
    psycopg2.IntegrityError("duplicate key"),
    psycopg2.DataError("invalid input syntax for type json"),
    psycopg2.OperationalError('FATAL:  database "nope" does not exist'),
    psycopg2.OperationalError('FATAL:  password authentication failed for user "x"'),
    ValueError("not a database error"),
])
def test_programming_data_and_configuration_errors_are_never_retried(failure):
    sleeps: list[float] = []
    operation = FlakyOperation(failure)
    with pytest.raises(type(failure)):
        run_with_retry(DSN, _policy(sleeps), operation)
    assert operation.calls == 1
    assert sleeps == []


def test_server_shutdown_and_lost_connections_are_transient():
    assert db.is_transient(psycopg2.errors.AdminShutdown("terminating connection"))
    assert db.is_transient(psycopg2.OperationalError("server closed the connection unexpectedly"))
    assert db.is_transient(psycopg2.OperationalError("the database system is starting up"))
    assert not db.is_transient(psycopg2.errors.UndefinedTable("relation does not exist"))


def test_a_real_refused_connection_is_transient():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    with pytest.raises(psycopg2.OperationalError) as caught:
        db.connect(f"postgresql://nobody@127.0.0.1:{port}/none")
    assert db.is_transient(caught.value)


def test_endpoint_of_uri_and_keyword_dsns_hides_the_password():
    assert db.endpoint(DSN) == "127.0.0.1:15432"
    assert db.endpoint("host=db.example port=6543 dbname=x password=p") == "db.example:6543"
    assert db.endpoint("dbname=x") == "local socket:5432"
    assert db.endpoint("not a dsn") == "<invalid DSN>"


def test_default_policy_retries_forever():
    policy = RetryPolicy()
    assert policy.max_attempts is None
    assert policy.delay(100) == policy.max_delay


def test_drop_database_waits_for_a_backend_it_may_not_terminate(monkeypatch):
    calls = []
    blocked = psycopg2.errors.InsufficientPrivilege(
        "must be a member of the role whose process is being terminated")

    def run_admin(dsn, statement, application_name="fleetlake-admin"):
        calls.append(statement)
        if len(calls) <= 2:  # an autovacuum worker is attached for a moment
            raise blocked

    monkeypatch.setattr(db, "run_admin", run_admin)
    monkeypatch.setattr(db.time, "sleep", lambda s: None)
    db.drop_database(DSN, "fleetlake_test_x")
    assert len(calls) == 3 and len(set(map(repr, calls))) == 1
    calls.clear()
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        db.drop_database(DSN, "fleetlake_test_x", attempts=2)
    assert len(calls) == 2
