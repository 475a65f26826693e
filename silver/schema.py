"""Silver table contracts (docs/contracts.md "Tables"): validated events, quarantine, and the in-between."""
from pyspark.sql import types as T

SILVER_SCHEMA = T.StructType([
    T.StructField("event_id", T.StringType()),
    T.StructField("car_id", T.StringType()),
    T.StructField("trip_id", T.StringType()),
    T.StructField("event_ts", T.TimestampType()),
    T.StructField("speed_kmph", T.DoubleType()),
    T.StructField("fuel_level", T.DoubleType()),
    T.StructField("engine_temp_c", T.DoubleType()),
    T.StructField("latitude", T.DoubleType()),
    T.StructField("longitude", T.DoubleType()),
    T.StructField("gps_valid", T.BooleanType()),
    T.StructField("topic", T.StringType()),
    T.StructField("partition", T.IntegerType()),
    T.StructField("offset", T.LongType()),
    T.StructField("kafka_timestamp", T.TimestampType()),
])

QUARANTINE_SCHEMA = T.StructType([
    T.StructField("value", T.BinaryType()),
    T.StructField("reasons", T.ArrayType(T.StringType())),
    T.StructField("topic", T.StringType()),
    T.StructField("partition", T.IntegerType()),
    T.StructField("offset", T.LongType()),
    T.StructField("kafka_timestamp", T.TimestampType()),
    T.StructField("quarantined_at", T.TimestampType()),
])

# One row per bronze row: the silver columns (null where not derivable), the raw value, the
# sorted reason codes (empty array = valid) and when the pipeline landed the row (bronze's
# ingested_at: the micro-batch that read it, which orders copies of an event; silver/dedup.py).
VALIDATED_SCHEMA = T.StructType(list(SILVER_SCHEMA.fields) + [
    T.StructField("value", T.BinaryType()),
    T.StructField("reasons", T.ArrayType(T.StringType())),
    T.StructField("ingested_at", T.TimestampType()),
])

# The staging table between the two queries (silver/sink.py): every Kafka record once, validated,
# with everything bronze needs (the gold query writes bronze from it: the hot query commits once).
STAGING_SCHEMA = T.StructType(list(VALIDATED_SCHEMA.fields) + [
    T.StructField("key", T.BinaryType()),
])

# A valid row before de-duplication: the silver columns and when it landed.
CANDIDATE_SCHEMA = T.StructType(list(SILVER_SCHEMA.fields) + [
    T.StructField("ingested_at", T.TimestampType()),
])

SILVER_COLUMNS = tuple(SILVER_SCHEMA.fieldNames())
QUARANTINE_COLUMNS = tuple(QUARANTINE_SCHEMA.fieldNames())
CANDIDATE_COLUMNS = tuple(CANDIDATE_SCHEMA.fieldNames())
STAGING_COLUMNS = tuple(STAGING_SCHEMA.fieldNames())
