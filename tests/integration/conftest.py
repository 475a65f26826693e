"""Fixtures for tests on the real services: a fresh PostgreSQL database and Kafka topic each."""
from __future__ import annotations

import dataclasses
import uuid

import psycopg2
import pytest
from psycopg2 import sql

from infra.settings import Settings


@pytest.fixture
def make_pg_database(base_settings: Settings):
    """Factory of new, empty databases owned by the pipeline role; all dropped after the test."""
    admin = psycopg2.connect(base_settings.effective_pg_dsn, connect_timeout=5)
    admin.autocommit = True
    created: list[str] = []
    base = base_settings.effective_pg_dsn.rsplit("/", 1)[0]

    def make() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        return f"{base}/{name}"

    try:
        yield make
    finally:
        with admin.cursor() as cur:
            for name in created:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)))
        admin.close()


@pytest.fixture
def fresh_pg_dsn(make_pg_database) -> str:
    """A new, empty database owned by the pipeline role; dropped after the test."""
    return make_pg_database()


@pytest.fixture
def e2e_settings(settings: Settings, fresh_pg_dsn: str) -> Settings:
    """Settings on a unique topic, a tmp lake root and a fresh database (real services)."""
    return dataclasses.replace(
        settings, topic=f"t_{uuid.uuid4().hex[:12]}", topic_partitions=2,
        kafka_bootstrap=settings.effective_kafka_bootstrap, pg_dsn=fresh_pg_dsn)
