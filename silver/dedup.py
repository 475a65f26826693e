"""De-duplication order: which copy of an event silver keeps (docs/contracts.md "Duplicates").

A duplicate is a retransmission: a valid row whose event_id is already in silver, or appears
again in the same input. Exactly one copy is kept: the first landed (bronze's `ingested_at`, the
micro-batch that read it from Kafka), then the first by Kafka position (timestamp, partition,
offset). Copies in different micro-batches are therefore never compared by Kafka timestamp, so
a copy landed later can never displace one already in silver, and a replay from bronze (which
carries `ingested_at`) keeps the same copy as the stream did.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window, functions as F

from silver.schema import SILVER_SCHEMA

# topic only breaks ties between topics so that the order is total.
FIRST_COPY_ORDER = ("ingested_at", "kafka_timestamp", "partition", "offset", "topic")


def first_copies(candidates_df: DataFrame) -> DataFrame:
    """One row per event_id (SILVER_SCHEMA) of valid rows (CANDIDATE_SCHEMA): the first copy."""
    return first_per_key(candidates_df, ("event_id",)).select(*SILVER_SCHEMA.fieldNames())


def first_per_key(df: DataFrame, keys: tuple[str, ...]) -> DataFrame:
    """One row per `keys` (all columns kept): the one that comes from the first copy of its
    event by FIRST_COPY_ORDER (e.g. per alert id, the alert of the copy silver keeps)."""
    order = Window.partitionBy(*keys).orderBy(
        *[F.col(name).asc_nulls_last() for name in FIRST_COPY_ORDER])
    return (df.withColumn("_copy", F.row_number().over(order))
            .where(F.col("_copy") == 1).drop("_copy"))


def first_new_copies(rows: DataFrame, marker: str) -> DataFrame:
    """SILVER_SCHEMA rows: for each event id `rows` marks new (a row whose boolean `marker` is
    true: at most one per id), its first valid copy by FIRST_COPY_ORDER.

    The same rows as `first_copies` of the marked ids' valid copies, in one shuffle and one
    sort: the marker sorts first within its id, so the first copy ranks second.
    """
    is_candidate = F.col(marker) | ((F.size("reasons") == 0) & F.col("event_id").isNotNull())
    order = Window.partitionBy("event_id").orderBy(
        F.col(marker).desc(), *[F.col(name).asc_nulls_last() for name in FIRST_COPY_ORDER])
    ranked = rows.where(is_candidate).select(
        *SILVER_SCHEMA.fieldNames(), F.row_number().over(order).alias("_rank"),
        F.first(marker).over(order).alias("_marked"))
    return (ranked.where(F.col("_marked") & (F.col("_rank") == 2))
            .select(*SILVER_SCHEMA.fieldNames()))
