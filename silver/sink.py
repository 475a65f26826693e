"""Silver wiring: the validated staging table, silver/telemetry and silver/quarantine.

Grains: `_pipeline/validated` (internal) and `silver/quarantine`: one row per bronze row (the
staging table: valid and rejected; quarantine: rejected only); `silver/telemetry`: one row per
event_id (the first copy, silver/dedup.py).

The hot query validates each Kafka batch once and appends it, raw bytes and Kafka coordinates
included, to the staging table: its one Delta commit. The gold query reads it as a stream,
appends bronze from it, de-duplicates and appends to silver and quarantine. Every write is an
append made idempotent per (app_id, batch_id) (infra/delta_io.py): silver needs no MERGE,
because the gold query's de-duplication state already knows which event ids are new.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from infra.delta_io import STREAMED_TABLE_PROPERTIES, append_once, ensure_table
from infra.settings import Settings
from silver.schema import QUARANTINE_SCHEMA, SILVER_SCHEMA, STAGING_SCHEMA

TELEMETRY = ("silver", "telemetry")
QUARANTINE = ("silver", "quarantine")
STAGING = "validated"

# Min/max statistics only where queries filter (cheap writes; no stats on the raw value).
_TABLES = (
    (TELEMETRY, SILVER_SCHEMA, "event_id,car_id,event_ts,topic,partition,offset,kafka_timestamp",
     "fleetlake silver: validated telemetry, one row per event_id (first copy landed)"),
    (QUARANTINE, QUARANTINE_SCHEMA, "topic,partition,offset,kafka_timestamp,quarantined_at",
     "fleetlake silver: rejected bronze rows with their reason codes"),
)


def staging_path(settings: Settings) -> str:
    """The internal staging table between the hot and the gold query (not a contract)."""
    return settings.internal_path(STAGING)


def ensure_silver_tables(spark: SparkSession, settings: Settings) -> None:
    """Create silver/telemetry, silver/quarantine and the staging table if missing."""
    for table, schema, stats_columns, comment in _TABLES:
        ensure_table(spark, settings.table_path(*table), schema, comment,
                     stats_columns=stats_columns, retention_days=settings.retention.days)
    ensure_table(spark, staging_path(settings), STAGING_SCHEMA,
                 "fleetlake internal: each Kafka batch validated once (hot -> gold query)",
                 {**STREAMED_TABLE_PROPERTIES, "delta.appendOnly": "true"},
                 stats_columns="ingested_at,kafka_timestamp,partition,offset",
                 retention_days=settings.retention.days)


def to_staging(validated: DataFrame) -> DataFrame:
    """Validated rows (VALIDATED_SCHEMA + bronze's `key`) as staged: STAGING_SCHEMA."""
    return validated.select(*STAGING_SCHEMA.fieldNames())


def append_staging(staged: DataFrame, settings: Settings, app_id: str, batch_id: int,
                   may_be_retry: bool = True) -> None:
    append_once(staged.select(*STAGING_SCHEMA.fieldNames()), staging_path(settings), app_id,
                batch_id, may_be_retry)


def append_quarantine(quarantine_df: DataFrame, settings: Settings, app_id: str,
                      batch_id: int, may_be_retry: bool = True) -> None:
    """Append a batch's quarantined rows once, however often the batch is retried."""
    append_once(quarantine_df.select(*QUARANTINE_SCHEMA.fieldNames()),
                settings.table_path(*QUARANTINE), app_id, batch_id, may_be_retry)


def append_silver(new_events: DataFrame, settings: Settings, app_id: str, batch_id: int,
                  may_be_retry: bool = True) -> None:
    """Append a batch's new events (first copies of event ids silver does not hold yet)."""
    append_once(new_events.select(*SILVER_SCHEMA.fieldNames()),
                settings.table_path(*TELEMETRY), app_id, batch_id, may_be_retry)

