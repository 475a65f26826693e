"""Gold tables (docs/contracts.md "Tables"): schemas in contract column order, keys, alert types."""
from pyspark.sql import types as T

# Alert types in the order of the fleet KPI count columns; the first four are per-reading
# threshold rules, the last four stateful rules over a car's ordered history.
THRESHOLD_ALERT_TYPES = ("OVERSPEED", "ENGINE_OVERHEAT", "LOW_FUEL", "GPS_INVALID")
STATEFUL_ALERT_TYPES = ("SUSTAINED_OVERHEAT", "FUEL_DROP", "GPS_JUMP", "SPEED_ANOMALY")
ALERT_TYPES = THRESHOLD_ALERT_TYPES + STATEFUL_ALERT_TYPES
SEVERITIES = ("LOW", "MEDIUM", "HIGH")


def alert_count_column(alert_type: str) -> str:
    """Fleet KPI column counting one alert type, e.g. OVERSPEED -> overspeed_alerts."""
    return f"{alert_type.lower()}_alerts"


def _fields(*pairs: tuple[str, T.DataType]) -> list[T.StructField]:
    return [T.StructField(name, dtype) for name, dtype in pairs]


_S, _TS, _D, _L = T.StringType(), T.TimestampType(), T.DoubleType(), T.LongType()

ALERTS_SCHEMA = T.StructType(_fields(
    ("alert_id", _S), ("event_id", _S), ("car_id", _S), ("event_ts", _TS), ("alert_type", _S),
    ("severity", _S), ("message", _S), ("observed_value", _D), ("threshold", _D),
))

# Exact sum of a minute's speeds: averages recombine exactly across batches (gold/kpis.py).
SPEED_SUM_TYPE = T.DecimalType(38, 9)

DEVICE_MINUTE_KPIS_SCHEMA = T.StructType(_fields(
    ("car_id", _S), ("window_start", _TS), ("events", _L), ("avg_speed_kmph", _D),
    ("max_speed_kmph", _D), ("max_engine_temp_c", _D), ("min_fuel_level", _D), ("alerts", _L),
    ("speed_sum_kmph", SPEED_SUM_TYPE), *[(alert_count_column(kind), _L) for kind in ALERT_TYPES],
))

FLEET_MINUTE_KPIS_SCHEMA = T.StructType(_fields(
    ("window_start", _TS), ("active_cars", _L), ("events", _L), ("avg_speed_kmph", _D),
    ("alerts", _L), *[(alert_count_column(kind), _L) for kind in ALERT_TYPES],
))

DEVICE_LATEST_SCHEMA = T.StructType(_fields(
    ("car_id", _S), ("event_id", _S), ("trip_id", _S), ("event_ts", _TS), ("speed_kmph", _D),
    ("fuel_level", _D), ("engine_temp_c", _D), ("latitude", _D), ("longitude", _D),
    ("gps_valid", T.BooleanType()), ("kafka_timestamp", _TS),
))

DQ_BATCH_METRICS_SCHEMA = T.StructType(_fields(
    ("query_id", _S), ("batch_id", _L), ("processed_at", _TS), ("rows_in", _L),
    ("valid_rows", _L), ("quarantined_rows", _L), ("duplicate_rows", _L),
    ("quarantine_reasons", T.MapType(_S, _L)),
))

GOLD_SCHEMAS: dict[str, T.StructType] = {
    "alerts": ALERTS_SCHEMA,
    "device_minute_kpis": DEVICE_MINUTE_KPIS_SCHEMA,
    "fleet_minute_kpis": FLEET_MINUTE_KPIS_SCHEMA,
    "device_latest": DEVICE_LATEST_SCHEMA,
    "dq_batch_metrics": DQ_BATCH_METRICS_SCHEMA,
}

GOLD_KEYS: dict[str, list[str]] = {
    "alerts": ["alert_id"],
    "device_minute_kpis": ["car_id", "window_start"],
    "fleet_minute_kpis": ["window_start"],
    "device_latest": ["car_id"],
    "dq_batch_metrics": ["query_id", "batch_id"],
}

ALERTS_COLUMNS = tuple(ALERTS_SCHEMA.fieldNames())
DEVICE_MINUTE_KPIS_COLUMNS = tuple(DEVICE_MINUTE_KPIS_SCHEMA.fieldNames())
FLEET_MINUTE_KPIS_COLUMNS = tuple(FLEET_MINUTE_KPIS_SCHEMA.fieldNames())
DEVICE_LATEST_COLUMNS = tuple(DEVICE_LATEST_SCHEMA.fieldNames())
DQ_BATCH_METRICS_COLUMNS = tuple(DQ_BATCH_METRICS_SCHEMA.fieldNames())
