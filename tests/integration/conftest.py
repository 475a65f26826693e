"""Fixtures for tests on the real services: a fresh PostgreSQL database and Kafka topic each.

Every database is created and dropped on its own short-lived connection (no connection is held
across the test), so a test may stop and restart the PostgreSQL server in between.
"""
from __future__ import annotations

import contextlib
import dataclasses
import uuid

import psycopg2
import pytest

from infra.settings import Settings
from serving.db import connect, endpoint, temporary_database
from serving.migrate import apply_migrations


@pytest.fixture
def make_pg_database(base_settings: Settings):
    """Factory of new, empty databases owned by the pipeline role; all dropped after the test."""
    admin_dsn = base_settings.effective_pg_dsn
    try:
        connect(admin_dsn, "fleetlake-tests").close()
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL for integration tests unreachable at {endpoint(admin_dsn)} "
                    f"({exc}): run `fleetlake services up` or set FLEETLAKE_PG_DSN",
                    pytrace=False)
    with contextlib.ExitStack() as databases:
        yield lambda: databases.enter_context(temporary_database(admin_dsn, "fleetlake_test"))


@pytest.fixture
def fresh_pg_dsn(make_pg_database) -> str:
    """A new, empty database owned by the pipeline role; dropped after the test."""
    return make_pg_database()


@pytest.fixture
def gold_dsn(fresh_pg_dsn: str) -> str:
    """A new database with the gold schema migrated (no reader grants); dropped after the test."""
    apply_migrations(fresh_pg_dsn, None)
    return fresh_pg_dsn


@pytest.fixture
def e2e_settings(settings: Settings, fresh_pg_dsn: str) -> Settings:
    """Settings on a unique topic, a tmp lake root and a fresh database (real services)."""
    return dataclasses.replace(
        settings, topic=f"t_{uuid.uuid4().hex[:12]}", topic_partitions=2,
        kafka_bootstrap=settings.effective_kafka_bootstrap, pg_dsn=fresh_pg_dsn)


@pytest.fixture
def threshold_only_settings(e2e_settings: Settings) -> Settings:
    """e2e_settings with the stateful rules off: expected rows cover the threshold rules only."""
    alerts = dataclasses.replace(
        e2e_settings.alerts, sustained_overheat_enabled=False, fuel_drop_enabled=False,
        gps_jump_enabled=False, speed_anomaly_enabled=False)
    return dataclasses.replace(e2e_settings, alerts=alerts)
