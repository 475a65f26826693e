"""Bronze table contract: one row per consumed Kafka record, exactly as received."""
from pyspark.sql import types as T

BRONZE_SCHEMA = T.StructType([
    T.StructField("key", T.BinaryType()),
    T.StructField("value", T.BinaryType()),
    T.StructField("topic", T.StringType()),
    T.StructField("partition", T.IntegerType()),
    T.StructField("offset", T.LongType()),
    T.StructField("kafka_timestamp", T.TimestampType()),
    T.StructField("ingested_at", T.TimestampType()),
])
