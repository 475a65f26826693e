"""The PostgreSQL mirror of the gold Delta tables: names, columns, types and primary keys.

The single source of table and column names used in SQL by `serving.sync` (never user input).
It must match `serving/migrations/*.sql`; an integration test compares it with the catalog.
"""
from __future__ import annotations

from dataclasses import dataclass

from psycopg2 import sql

SCHEMA = "gold"
LEDGER_TABLE = "sync_ledger"
PROGRESS_TABLE = "pipeline_progress"
MIGRATIONS_TABLE = "schema_migrations"
# gold.sync_ledger: one row per (app_id, batch_id) PostgreSQL applied (serving/sync.py)
LEDGER = sql.Identifier(SCHEMA, LEDGER_TABLE)


@dataclass(frozen=True)
class TableSpec:
    """One gold table: ordered (column, PostgreSQL type) pairs and its primary key columns."""

    name: str
    columns: tuple[tuple[str, str], ...]
    keys: tuple[str, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def value_columns(self) -> tuple[str, ...]:
        """Non-key columns: the ones an upsert overwrites."""
        return tuple(name for name in self.column_names if name not in self.keys)

    def pg_type(self, column: str) -> str:
        return dict(self.columns)[column]


_ALERT_TYPES = ("overspeed", "engine_overheat", "low_fuel", "gps_invalid", "sustained_overheat",
                "fuel_drop", "gps_jump", "speed_anomaly")

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "alerts",
            (("alert_id", "text"), ("event_id", "text"), ("car_id", "text"),
             ("event_ts", "timestamptz"), ("alert_type", "text"), ("severity", "text"),
             ("message", "text"), ("observed_value", "double precision"),
             ("threshold", "double precision")),
            ("alert_id",)),
        TableSpec(
            "device_minute_kpis",
            (("car_id", "text"), ("window_start", "timestamptz"), ("events", "bigint"),
             ("avg_speed_kmph", "double precision"), ("max_speed_kmph", "double precision"),
             ("max_engine_temp_c", "double precision"), ("min_fuel_level", "double precision"),
             ("alerts", "bigint"), ("speed_sum_kmph", "numeric"))
            + tuple((f"{kind}_alerts", "bigint") for kind in _ALERT_TYPES),
            ("car_id", "window_start")),
        TableSpec(
            "fleet_minute_kpis",
            (("window_start", "timestamptz"), ("active_cars", "bigint"), ("events", "bigint"),
             ("avg_speed_kmph", "double precision"), ("alerts", "bigint"))
            + tuple((f"{kind}_alerts", "bigint") for kind in _ALERT_TYPES),
            ("window_start",)),
        TableSpec(
            "device_latest",
            (("car_id", "text"), ("event_id", "text"), ("trip_id", "text"),
             ("event_ts", "timestamptz"), ("speed_kmph", "double precision"),
             ("fuel_level", "double precision"), ("engine_temp_c", "double precision"),
             ("latitude", "double precision"), ("longitude", "double precision"),
             ("gps_valid", "boolean"), ("kafka_timestamp", "timestamptz")),
            ("car_id",)),
        TableSpec(
            "dq_batch_metrics",
            (("query_id", "text"), ("batch_id", "bigint"), ("processed_at", "timestamptz"),
             ("rows_in", "bigint"), ("valid_rows", "bigint"), ("quarantined_rows", "bigint"),
             ("duplicate_rows", "bigint"), ("quarantine_reasons", "jsonb")),
            ("query_id", "batch_id")),
    )
}

TABLE_KEYS: dict[str, tuple[str, ...]] = {name: spec.keys for name, spec in TABLES.items()}
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    name: spec.column_names for name, spec in TABLES.items()}
