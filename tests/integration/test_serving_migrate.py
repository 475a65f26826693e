"""Migrations against a real PostgreSQL: idempotent, race-free, exact catalog, read-only reader.

Each test gets its own new database (`fresh_pg_dsn` in conftest.py, dropped afterwards).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from psycopg2 import errors, extensions

from serving.migrate import MigrationError, applied_versions, apply_migrations, list_migrations
from serving.tables import LEDGER_TABLE, PROGRESS_TABLE, TABLES

from .lake_equality import pg_query

pytestmark = pytest.mark.integration

READER = os.environ.get("FLEETLAKE_TEST_PG_READER", "fleetlake_reader")
# how the catalog spells serving/tables.py types (0002 declares numeric(38, 9))
PG_TYPES = {"timestamptz": "timestamp with time zone", "numeric": "numeric(38,9)"}
VERSIONS = [m.version for m in list_migrations()]
GOLD_TABLES = [*TABLES, LEDGER_TABLE, PROGRESS_TABLE, "dq_results"]  # 0003: dq report


def _catalog(dsn: str) -> dict[str, list[tuple]]:
    return {
        "columns": pg_query(dsn, """
            SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'gold' AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY c.relname, a.attnum"""),
        "indexes": pg_query(dsn, "SELECT tablename, indexdef FROM pg_indexes "
                               "WHERE schemaname = 'gold' ORDER BY indexname"),
        "grants": pg_query(dsn, "SELECT grantee, table_name, privilege_type "
                              "FROM information_schema.role_table_grants "
                              "WHERE table_schema = 'gold' AND grantee = %s ORDER BY 1, 2, 3",
                         (READER,)),
    }


def _primary_key(dsn: str, table: str) -> list[str]:
    rows = pg_query(dsn, """
        SELECT a.attname FROM pg_index i
        JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos) ON true
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY k.pos""", (f"gold.{table}",))
    return [r[0] for r in rows]


def test_migrations_apply_once_and_a_second_run_changes_nothing(fresh_pg_dsn):
    assert applied_versions(fresh_pg_dsn) == []
    assert apply_migrations(fresh_pg_dsn, READER) == VERSIONS
    before = _catalog(fresh_pg_dsn)
    assert apply_migrations(fresh_pg_dsn, READER) == []
    assert _catalog(fresh_pg_dsn) == before
    assert applied_versions(fresh_pg_dsn) == VERSIONS


def test_concurrent_runs_do_not_race(fresh_pg_dsn):
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: apply_migrations(fresh_pg_dsn, READER), range(3)))
    assert sorted(results) == [[], [], VERSIONS]
    assert applied_versions(fresh_pg_dsn) == VERSIONS


def test_catalog_mirrors_the_table_specs_keys_and_dashboard_indexes(fresh_pg_dsn):
    apply_migrations(fresh_pg_dsn, READER)
    columns = _catalog(fresh_pg_dsn)["columns"]
    for name, spec in TABLES.items():
        actual = [(col, typ) for table, col, typ, _ in columns if table == name]
        assert actual == [(c, PG_TYPES.get(t, t)) for c, t in spec.columns], name
        assert _primary_key(fresh_pg_dsn, name) == list(spec.keys), name
    assert [(c, t, nn) for table, c, t, nn in columns if table == "sync_ledger"] == [
        ("app_id", "text", True), ("batch_id", "bigint", True),
        ("applied_at", "timestamp with time zone", True), ("rows", "jsonb", True)]
    assert _primary_key(fresh_pg_dsn, "sync_ledger") == ["app_id", "batch_id"]
    definitions = {d.split(" USING btree ")[1] for t, d in _catalog(fresh_pg_dsn)["indexes"]
                   if "_pkey" not in d}
    assert definitions == {"(event_ts DESC)", "(car_id, event_ts DESC)",
                           "(alert_type, event_ts DESC)", "(window_start)", "(processed_at)",
                           "(query_name, batch_started_at DESC)",  # 0002: pipeline_progress
                           "(run_at DESC)",  # 0003: dq_results, the newest report
                           "(event_ts)"}  # 0005: device_latest, the dashboard's freshness


def test_reader_role_can_select_but_never_write_or_create(fresh_pg_dsn):
    apply_migrations(fresh_pg_dsn, READER)
    reader_dsn = extensions.make_dsn(fresh_pg_dsn, user=READER)
    for table in GOLD_TABLES:
        assert pg_query(reader_dsn, f"SELECT count(*) FROM gold.{table}") == [(0,)]
    assert pg_query(reader_dsn, "SELECT version FROM gold.schema_migrations ORDER BY 1") == [
        (v,) for v in VERSIONS]
    forbidden = [
        "INSERT INTO gold.alerts (alert_id) VALUES ('x')",
        "UPDATE gold.device_latest SET speed_kmph = 0",
        "DELETE FROM gold.sync_ledger",
        "TRUNCATE gold.fleet_minute_kpis",
        "CREATE TABLE gold.evil (x int)",
        "CREATE INDEX evil_idx ON gold.alerts (message)",
    ]
    for statement in forbidden:
        with pytest.raises(errors.InsufficientPrivilege):
            pg_query(reader_dsn, statement)
    pg_query(fresh_pg_dsn, "CREATE TABLE gold.added_later (x int)")
    assert pg_query(reader_dsn, "SELECT count(*) FROM gold.added_later") == [(0,)]
    with pytest.raises(errors.InsufficientPrivilege):
        pg_query(reader_dsn, "INSERT INTO gold.added_later VALUES (1)")


def test_grants_are_exactly_select(fresh_pg_dsn):
    apply_migrations(fresh_pg_dsn, READER)
    grants = _catalog(fresh_pg_dsn)["grants"]
    assert {g[2] for g in grants} == {"SELECT"}
    assert {g[1] for g in grants} == {*GOLD_TABLES, "schema_migrations"}


def test_a_migration_changed_after_it_was_applied_is_refused(fresh_pg_dsn):
    apply_migrations(fresh_pg_dsn, None)
    pg_query(fresh_pg_dsn, "UPDATE gold.schema_migrations SET checksum = 'edited'")
    with pytest.raises(MigrationError, match=r"0001_gold_schema.sql changed after it was applied"):
        apply_migrations(fresh_pg_dsn, None)


def test_an_unknown_reader_role_is_a_clear_error(fresh_pg_dsn):
    with pytest.raises(MigrationError, match="role 'no_such_reader_role' does not exist"):
        apply_migrations(fresh_pg_dsn, "no_such_reader_role")
    assert applied_versions(fresh_pg_dsn) == VERSIONS
