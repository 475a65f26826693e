"""Silver validation rules as data: the one source for Spark predicates and data-quality suites.

Everything here is plain data (tuples of frozen dataclasses, strings, a regex) so that the Spark
validation (silver/validate.py) and generated Great Expectations suites agree by construction.
Thresholds come from `infra.settings.ValidationRules`; nothing here is a tunable literal except
geography (latitude/longitude bounds) and the wire format itself.
"""
from __future__ import annotations

from dataclasses import dataclass

from infra.settings import ValidationRules

# --- reason codes (docs/contracts.md "Validation: silver or quarantine") ----------------------
MALFORMED_JSON = "MALFORMED_JSON"
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
BAD_TIMESTAMP = "BAD_TIMESTAMP"
TIMESTAMP_IN_FUTURE = "TIMESTAMP_IN_FUTURE"
MISSING_FIELD_PREFIX = "MISSING_FIELD:"
TYPE_MISMATCH_PREFIX = "TYPE_MISMATCH:"
OUT_OF_RANGE_PREFIX = "OUT_OF_RANGE:"


def missing_field(name: str) -> str:
    return f"{MISSING_FIELD_PREFIX}{name}"


def type_mismatch(name: str) -> str:
    return f"{TYPE_MISMATCH_PREFIX}{name}"


def out_of_range(name: str) -> str:
    return f"{OUT_OF_RANGE_PREFIX}{name}"


# --- JSON types a field may have ----------------------------------------------------------------
STRING = "string"  # a JSON string
NUMBER = "number"  # a JSON number (1e400 reads as Infinity: a number, out of any range)
STRING_OR_INTEGER = "string_or_integer"  # a JSON string or an integral JSON number (ids)


@dataclass(frozen=True)
class FieldRule:
    """One event field silver looks at: its JSON type and whether it is required."""

    name: str
    json_type: str
    required: bool
    non_blank: bool = False  # "" (or only spaces) counts as missing


@dataclass(frozen=True)
class RangeRule:
    """Inclusive valid range of a numeric field: min <= value <= max."""

    field: str
    min: float
    max: float


# Field order = the order of the parse schema. Fields not listed (trip_start_time,
# trip_start_date, message_key, anything else) are kept in bronze and ignored by silver.
FIELDS: tuple[FieldRule, ...] = (
    FieldRule("car_id", STRING, required=True, non_blank=True),
    FieldRule("event_timestamp", STRING, required=True),
    FieldRule("speed_kmph", NUMBER, required=True),
    FieldRule("fuel_level", NUMBER, required=True),
    FieldRule("engine_temp_c", NUMBER, required=True),
    FieldRule("latitude", NUMBER, required=False),
    FieldRule("longitude", NUMBER, required=False),
    FieldRule("event_id", STRING, required=False),
    FieldRule("trip_id", STRING_OR_INTEGER, required=False),
    FieldRule("trip_start_latitude", NUMBER, required=False),
    FieldRule("trip_start_longitude", NUMBER, required=False),
)

FIELD_BY_NAME = {rule.name: rule for rule in FIELDS}
REQUIRED_FIELDS = tuple(rule.name for rule in FIELDS if rule.required)
TIMESTAMP_FIELD = "event_timestamp"

# Geography, not policy: where a GPS fix is plausible (gps_valid; never a quarantine reason).
GPS_RANGES: tuple[RangeRule, ...] = (
    RangeRule("latitude", -90.0, 90.0),
    RangeRule("longitude", -180.0, 180.0),
)

# Accepted `event_timestamp` text. The regex is the rule; the formats are its description.
# No zone means UTC. Fractions up to 9 digits (stored to microseconds).
TIMESTAMP_FORMATS: tuple[str, ...] = (
    "yyyy-MM-dd'T'HH:mm:ss[.fffffffff](Z|+HH:MM|-HH:MM)",
    "yyyy-MM-dd HH:mm:ss[.fffffffff][Z|+HH:MM|-HH:MM]",
    "yyyy-MM-dd'T'HH:mm:ss[.fffffffff]",
)
TIMESTAMP_REGEX = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}"
                   r"(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})?$")

# Derived event_id: first EVENT_ID_HEX_CHARS hex chars of sha2(concat_ws('|', fields), 256),
# with a missing trip_id as ''. event_timestamp is the raw string as sent.
EVENT_ID_HASH_FIELDS: tuple[str, ...] = ("car_id", "trip_id", "event_timestamp")
EVENT_ID_SEPARATOR = "|"
EVENT_ID_HEX_CHARS = 32


def range_rules(rules: ValidationRules) -> tuple[RangeRule, ...]:
    """The OUT_OF_RANGE rules, one per measured field, from the settings."""
    return (
        RangeRule("speed_kmph", rules.speed_min, rules.speed_max),
        RangeRule("fuel_level", rules.fuel_min, rules.fuel_max),
        RangeRule("engine_temp_c", rules.engine_temp_min, rules.engine_temp_max),
    )


def all_reason_codes(rules: ValidationRules) -> tuple[str, ...]:
    """Every reason code validation can emit, sorted (the order rows carry them in)."""
    codes = {MALFORMED_JSON, PAYLOAD_TOO_LARGE, BAD_TIMESTAMP, TIMESTAMP_IN_FUTURE}
    codes.update(missing_field(name) for name in REQUIRED_FIELDS)
    codes.update(type_mismatch(rule.name) for rule in FIELDS)
    codes.update(out_of_range(rule.field) for rule in range_rules(rules))
    return tuple(sorted(codes))
