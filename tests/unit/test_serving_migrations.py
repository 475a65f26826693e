"""Migration files: discovery, order, naming rules; the SQL mirrors serving/tables.py."""
from __future__ import annotations

import re
import socket

import pytest
from pyspark.sql import types as T

from gold.schema import GOLD_KEYS, GOLD_SCHEMAS
from serving.db import PostgresUnavailableError
from serving.migrate import MigrationError, apply_migrations, list_migrations
from serving.tables import TABLES


def test_shipped_migrations_are_ordered_and_start_with_the_gold_schema():
    migrations = list_migrations()
    versions = [m.version for m in migrations]
    assert versions[0] == "0001" and migrations[0].name == "gold_schema"
    assert versions == sorted(versions)
    assert all(len(m.checksum) == 64 for m in migrations)


def test_migrations_declare_every_table_column_in_order():
    """0001 creates each table; later migrations only add columns at the end (ALTER ... ADD)."""
    migrations = list_migrations()
    text = migrations[0].sql
    for name, spec in TABLES.items():
        body = re.search(rf"CREATE TABLE gold\.{name} \((.*?)\n\);", text, re.S)
        assert body, name
        declared = [line.split()[0] for line in body.group(1).strip().splitlines()
                    if not line.strip().startswith("PRIMARY KEY")]
        for later in migrations[1:]:
            altered = re.search(rf"ALTER TABLE gold\.{name}\s+(.*?);", later.sql, re.S)
            if altered:
                declared += re.findall(r"ADD COLUMN (\w+)", altered.group(1))
        assert declared == list(spec.column_names), name
    assert "CREATE TABLE gold.sync_ledger" in text


def test_migrations_are_ordered_by_version(tmp_path):
    (tmp_path / "0002_more.sql").write_text("SELECT 2;")
    (tmp_path / "0001_first.sql").write_text("SELECT 1;")
    assert [(m.version, m.name) for m in list_migrations(tmp_path)] == [
        ("0001", "first"), ("0002", "more")]


@pytest.mark.parametrize("names, message", [
    (["1_bad.sql"], "is not named NNNN_lowercase_name.sql"),
    (["0001_a.sql", "0001_b.sql"], "two migrations have version 0001"),
])
def test_bad_migration_files_are_refused(tmp_path, names, message):
    for name in names:
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=message):
        list_migrations(tmp_path)


def test_unreachable_postgres_fails_fast_by_default():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(PostgresUnavailableError, match=rf"127.0.0.1:{port} unreachable after 1"):
        apply_migrations(f"postgresql://fleetlake@127.0.0.1:{port}/fleetlake", None)


def test_table_specs_mirror_the_gold_delta_schemas():
    pg_type = {T.StringType(): "text", T.TimestampType(): "timestamptz",
               T.DoubleType(): "double precision", T.LongType(): "bigint",
               T.BooleanType(): "boolean", T.MapType(T.StringType(), T.LongType()): "jsonb",
               T.DecimalType(38, 9): "numeric"}
    assert set(TABLES) == set(GOLD_SCHEMAS)
    for name, schema in GOLD_SCHEMAS.items():
        expected = tuple((f.name, pg_type[f.dataType]) for f in schema.fields)
        assert TABLES[name].columns == expected, name
        assert TABLES[name].keys == tuple(GOLD_KEYS[name]), name
