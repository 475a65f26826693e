"""De-duplication within a batch: one row per event_id, the first copy by Kafka position."""
from __future__ import annotations

from pyspark.sql import DataFrame, Window, functions as F

from silver.schema import SILVER_SCHEMA

# The first copy of an event (DESIGN.md "Validation"): earliest Kafka timestamp, then partition,
# then offset; topic only breaks ties between topics so that the choice is total.
FIRST_COPY_ORDER = ("kafka_timestamp", "partition", "offset", "topic")


def first_copies(valid_df: DataFrame) -> DataFrame:
    """One row per event_id (SILVER_SCHEMA): the first by (kafka_timestamp, partition, offset)."""
    order = Window.partitionBy("event_id").orderBy(
        *[F.col(name).asc_nulls_last() for name in FIRST_COPY_ORDER])
    return (valid_df.withColumn("_copy", F.row_number().over(order))
            .where(F.col("_copy") == 1)
            .select(*SILVER_SCHEMA.fieldNames()))
