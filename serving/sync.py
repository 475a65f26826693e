"""Exactly-once gold -> PostgreSQL sync: one transaction per (app_id, batch_id), with a ledger.

Per batch, in ONE transaction: lock the app's ledger, skip if (app_id, batch_id) is recorded,
then per table delete the given keys and upsert the given rows (COPY into a temp staging table,
one INSERT ... ON CONFLICT DO UPDATE), record the ledger row, commit. A crash anywhere leaves
nothing; a re-sent batch is skipped, even when the connection died after PostgreSQL committed.

`app_id` must identify the writing stream for the life of its checkpoint (e.g. include the Spark
query id): Spark batch ids restart at 0 with a new checkpoint and would otherwise be skipped.
"""
from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from psycopg2 import errors, extensions, sql
from psycopg2.extras import Json

from serving import frames
from serving.db import RetryPolicy, connect, run_with_retry
from serving.policies import KEEP_EXISTING, REPLACE, Upsert
from serving.tables import LEDGER, SCHEMA, TABLE_COLUMNS, TABLE_KEYS, TABLES, TableSpec

log = logging.getLogger("fleetlake.serving")

# First key of pg_advisory_xact_lock(int, int); the second is hashtext(app_id).
LEDGER_LOCK_CLASS = 0x666C6B73

__all__ = ["KEEP_EXISTING", "LEDGER_LOCK_CLASS", "REPLACE", "RetryPolicy", "SyncError",
           "TABLE_COLUMNS", "TABLE_KEYS", "Upsert", "sync_batch"]


class SyncError(RuntimeError):
    """The batch cannot be synced as it is (schema missing or mismatched); never retried."""


@dataclass(frozen=True)
class _TableBatch:
    """One table's part of a batch, converted once: CSV of the keys to delete and rows to upsert."""

    spec: TableSpec
    delete_csv: bytes | None
    delete_rows: int
    upsert_csv: bytes | None
    upsert_rows: int
    upsert: Upsert = REPLACE


def sync_batch(dsn: str, app_id: str, batch_id: int, upserts: Mapping[str, Any],
               deletes: Mapping[str, Any], retry: RetryPolicy | None = None,
               policies: Mapping[str, Upsert] | None = None) -> bool:
    """Apply one batch of deletes then upserts per gold table; False if the ledger had it already.

    `upserts`/`deletes` map a gold table name to a Spark, pandas or Arrow table (deletes: key
    columns only). Each is collected once, before connecting. `policies` maps a table name to
    its `Upsert` (default REPLACE). Transient PostgreSQL failures are retried with `retry`
    (default: forever, logging one line per attempt).
    """
    batches = _prepare(upserts, deletes, policies or {})
    policy = retry if retry is not None else RetryPolicy()
    return run_with_retry(dsn, policy, lambda: _apply(dsn, app_id, batch_id, batches))


def _prepare(upserts: Mapping[str, Any], deletes: Mapping[str, Any],
             policies: Mapping[str, Upsert]) -> list[_TableBatch]:
    unknown = sorted((set(upserts) | set(deletes) | set(policies)) - set(TABLES))
    if unknown:
        raise ValueError(f"unknown gold table(s) {unknown}; known: {sorted(TABLES)}")
    batches = []
    for name, spec in TABLES.items():  # a fixed order: the same lock order in every transaction
        if name not in upserts and name not in deletes:
            continue
        delete_table = _conformed(spec, deletes.get(name), spec.keys)
        upsert_table = _conformed(spec, upserts.get(name), spec.column_names)
        if upsert_table is not None:
            frames.check_unique_keys(spec, upsert_table)
        batches.append(_TableBatch(spec, _csv(delete_table), _rows(delete_table),
                                   _csv(upsert_table), _rows(upsert_table),
                                   policies.get(name, REPLACE)))
    return batches


def _conformed(spec: TableSpec, frame: Any, columns: tuple[str, ...]) -> pa.Table | None:
    if frame is None:
        return None
    return frames.conform(spec, frames.to_arrow(frame), columns)


def _csv(table: pa.Table | None) -> bytes | None:
    if table is None or table.num_rows == 0:
        return None
    return frames.csv_bytes(table)


def _rows(table: pa.Table | None) -> int:
    return 0 if table is None else table.num_rows


def _apply(dsn: str, app_id: str, batch_id: int, batches: list[_TableBatch]) -> bool:
    """One attempt: the whole batch in one transaction on a fresh connection."""
    conn = connect(dsn, "fleetlake-sync")
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SET LOCAL TIME ZONE 'UTC'")
            cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                        (LEDGER_LOCK_CLASS, app_id))
            if _already_applied(cur, app_id, batch_id):
                log.info("batch %s of %s is already in PostgreSQL: skipped", batch_id, app_id)
                return False
            counts = {b.spec.name: _apply_table(cur, b) for b in batches}
            cur.execute(sql.SQL("INSERT INTO {} (app_id, batch_id, rows) VALUES (%s, %s, %s)")
                        .format(LEDGER), (app_id, batch_id, Json(counts)))
        return True
    except errors.UndefinedTable as exc:
        raise SyncError(f"PostgreSQL has no gold tables yet ({exc.pgerror.strip()}): apply the "
                        f"migrations first (serving.migrate.apply_migrations)") from exc
    finally:
        conn.close()


def _already_applied(cur: extensions.cursor, app_id: str, batch_id: int) -> bool:
    cur.execute(sql.SQL("SELECT 1 FROM {} WHERE app_id = %s AND batch_id = %s").format(LEDGER),
                (app_id, batch_id))
    return cur.fetchone() is not None


def _apply_table(cur: extensions.cursor, batch: _TableBatch) -> dict[str, int]:
    """Deletes then upserts of one table; returns input and affected row counts for the ledger."""
    deleted = _delete(cur, batch.spec, batch.delete_csv) if batch.delete_csv else 0
    written = _upsert(cur, batch.spec, batch.upsert_csv, batch.upsert) if batch.upsert_csv else 0
    return {"deletes": batch.delete_rows, "deleted": deleted,
            "upserts": batch.upsert_rows, "written": written}


def _identifiers(names: tuple[str, ...]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def _copy(cur: extensions.cursor, stage: sql.Identifier, columns: tuple[str, ...],
          payload: bytes) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
        stage, _identifiers(columns))
    cur.copy_expert(statement.as_string(cur), io.BytesIO(payload))


def _delete(cur: extensions.cursor, spec: TableSpec, payload: bytes) -> int:
    target, stage = sql.Identifier(SCHEMA, spec.name), sql.Identifier(f"_delete_{spec.name}")
    keys = _identifiers(spec.keys)
    cur.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA")
                .format(stage, keys, target))
    _copy(cur, stage, spec.keys, payload)
    cur.execute(sql.SQL("ANALYZE {}").format(stage))  # small key sets: use the PK index
    match = sql.SQL(" AND ").join(
        sql.SQL("t.{k} = s.{k}").format(k=sql.Identifier(k)) for k in spec.keys)
    cur.execute(sql.SQL("DELETE FROM {} AS t USING {} AS s WHERE {}").format(target, stage, match))
    return cur.rowcount


def _upsert(cur: extensions.cursor, spec: TableSpec, payload: bytes, upsert: Upsert) -> int:
    """COPY into a staging copy of the table, then one INSERT ... ON CONFLICT."""
    target, stage = sql.Identifier(SCHEMA, spec.name), sql.Identifier(f"_stage_{spec.name}")
    columns = _identifiers(spec.column_names)
    cur.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DROP").format(stage, target))
    _copy(cur, stage, spec.column_names, payload)
    insert = sql.SQL("INSERT INTO {target} AS t ({columns}) SELECT {columns} FROM {stage} "
                     "ON CONFLICT ({keys}) ").format(target=target, columns=columns, stage=stage,
                                                    keys=_identifiers(spec.keys))
    if not upsert.update:
        cur.execute(insert + sql.SQL("DO NOTHING"))
        return cur.rowcount
    values = spec.value_columns
    assignments = sql.SQL(", ").join(
        sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in values)
    current = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in values)
    incoming = sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in values)
    # unchanged rows: no new row version
    condition = sql.SQL("({}) IS DISTINCT FROM ({})").format(current, incoming)
    if upsert.only_if:
        condition = condition + sql.SQL(" AND ({})").format(sql.SQL(upsert.only_if))
    cur.execute(insert + sql.SQL("DO UPDATE SET {} WHERE {}").format(assignments, condition))
    return cur.rowcount
