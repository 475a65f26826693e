"""In-batch de-duplication. Grain: one row per event_id, the first copy by Kafka order."""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from silver.schema import SILVER_COLUMNS

KAFKA_ORDER = ("kafka_timestamp", "partition", "offset")


def first_copies(valid_df: DataFrame) -> DataFrame:
    """Keep, per event_id, the copy first by (kafka_timestamp, partition, offset)."""
    first_by_kafka_order = Window.partitionBy("event_id").orderBy(*KAFKA_ORDER)
    return (valid_df
            .withColumn("_copy", F.row_number().over(first_by_kafka_order))
            .where(F.col("_copy") == 1)
            .select(*SILVER_COLUMNS))
