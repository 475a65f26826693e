"""Versioned, idempotent PostgreSQL migrations (serving/migrations/NNNN_*.sql); reader grants."""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from psycopg2 import extensions, sql

from infra.settings import Settings
from serving.db import NO_RETRY, RetryPolicy, connect, endpoint, run_with_retry
from serving.tables import MIGRATIONS_TABLE, SCHEMA

log = logging.getLogger("fleetlake.serving")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# pg_advisory_xact_lock key shared by every fleetlake process that changes the schema or grants.
MIGRATION_LOCK_KEY = 0x666C_6B6D_6967_0001
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    """A migration cannot be applied as it is; the message says what to change."""


@dataclass(frozen=True)
class Migration:
    """One migration file: its version (the 4-digit prefix), name, SQL text and checksum."""

    version: str
    name: str
    sql: str
    checksum: str


def list_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every `NNNN_name.sql` in `directory`, ordered by version."""
    found: dict[str, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path} is not named NNNN_lowercase_name.sql: rename it")
        version, name = match.groups()
        if version in found:
            raise MigrationError(f"two migrations have version {version}: renumber {path.name}")
        text = path.read_bytes()
        found[version] = Migration(version, name, text.decode("utf-8"),
                                   hashlib.sha256(text).hexdigest())
    return [found[v] for v in sorted(found)]


def migrate(settings: Settings, retry: RetryPolicy | None = None) -> list[str]:
    """Migrate the pipeline's database and grant the dashboard's role read access, in any database.

    The reader role is FLEETLAKE_PG_READER_DSN's user, else `local.pg_reader`; only that default
    may be missing (an external database without a reader role: a warning, not an error).
    """
    return apply_migrations(settings.effective_pg_dsn, settings.reader_role, retry,
                            reader_optional=settings.pg_reader_dsn is None)


def apply_migrations(dsn: str, reader_role: str | None, retry: RetryPolicy | None = None,
                     reader_optional: bool = False) -> list[str]:
    """Apply pending migrations and grant `reader_role` read access; return versions applied now.

    `retry=None` tries once (a clear PostgresUnavailableError when the server is down); pass
    `RetryPolicy()` to wait for it instead. A missing `reader_role` is a MigrationError, or a
    warning when `reader_optional`.
    """
    return run_with_retry(dsn, retry or NO_RETRY,
                          lambda: _apply_all(dsn, reader_role, reader_optional))


def applied_versions(dsn: str) -> list[str]:
    """Versions recorded in gold.schema_migrations (empty when the schema does not exist yet)."""
    conn = connect(dsn, "fleetlake-migrate")
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.{MIGRATIONS_TABLE}",))
            if cur.fetchone()[0] is None:
                return []
            cur.execute(sql.SQL("SELECT version FROM {} ORDER BY version").format(_migrations()))
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def _migrations() -> sql.Composable:
    return sql.Identifier(SCHEMA, MIGRATIONS_TABLE)


def _apply_all(dsn: str, reader_role: str | None, reader_optional: bool) -> list[str]:
    migrations = list_migrations()
    conn = connect(dsn, "fleetlake-migrate")
    try:
        _hold_session_lock(conn)
        _bootstrap(conn)
        applied = [m.version for m in migrations if _apply_one(conn, m, dsn)]
        if applied:
            log.info("PostgreSQL at %s: applied migrations %s", endpoint(dsn), ", ".join(applied))
        if reader_role:
            _grant_reader(conn, reader_role, reader_optional, dsn)
        return applied
    finally:
        conn.close()


def _hold_session_lock(conn: extensions.connection) -> None:
    """Hold the migration lock until `conn` closes, so one run applies every pending migration.

    The per-transaction lock alone lets concurrent runs interleave (one applies 0001-0002, the
    other the rest): each is correct, but a run's result would not say what it applied.
    """
    with conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))


def _lock(cur: extensions.cursor) -> None:
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))


def _bootstrap(conn: extensions.connection) -> None:
    """Create schema gold and the migrations table (once, race-free)."""
    with conn, conn.cursor() as cur:
        _lock(cur)
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
        cur.execute(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (version text PRIMARY KEY, name text NOT NULL, "
            "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        ).format(_migrations()))


def _apply_one(conn: extensions.connection, migration: Migration, dsn: str) -> bool:
    """Apply one migration in its own transaction unless already applied; True if applied now."""
    with conn, conn.cursor() as cur:
        _lock(cur)
        cur.execute(sql.SQL("SELECT checksum FROM {} WHERE version = %s").format(_migrations()),
                    (migration.version,))
        row = cur.fetchone()
        if row is not None:
            if row[0] != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version}_{migration.name}.sql changed after it was "
                    f"applied to PostgreSQL at {endpoint(dsn)}: restore the file and put the "
                    f"change in a new migration file")
            return False
        cur.execute(migration.sql)
        cur.execute(sql.SQL("INSERT INTO {} (version, name, checksum) VALUES (%s, %s, %s)")
                    .format(_migrations()), (migration.version, migration.name, migration.checksum))
        return True


def _grant_reader(conn: extensions.connection, role: str, optional: bool, dsn: str) -> None:
    """Give `role` exactly USAGE on schema gold and SELECT on its (current and future) tables."""
    schema, reader = sql.Identifier(SCHEMA), sql.Identifier(role)
    statements = (
        "REVOKE ALL ON SCHEMA {schema} FROM {reader}",
        "GRANT USAGE ON SCHEMA {schema} TO {reader}",
        "REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {reader}",
        "GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {reader}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE ALL ON TABLES FROM {reader}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {reader}",
    )
    with conn, conn.cursor() as cur:
        cur.execute("SELECT current_user, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)",
                    (role,))
        owner, exists = cur.fetchone()
        if owner == role:
            log.info("reader role %s is the owner role: it can read gold already", role)
            return
        if not exists:
            if not optional:
                raise MigrationError(
                    f"role {role!r} does not exist in PostgreSQL at {endpoint(dsn)}: create it "
                    "(`fleetlake services up` does for the local cluster) or fix the user of "
                    "FLEETLAKE_PG_READER_DSN")
            log.warning("PostgreSQL at %s has no role %s: the dashboard has no read-only role; "
                        "create one and set FLEETLAKE_PG_READER_DSN (see docs/security.md)",
                        endpoint(dsn), role)
            return
        _lock(cur)
        for statement in statements:
            cur.execute(sql.SQL(statement).format(schema=schema, reader=reader))


__all__ = ["MIGRATIONS_DIR", "Migration", "MigrationError", "apply_migrations",
           "applied_versions", "list_migrations", "migrate"]
