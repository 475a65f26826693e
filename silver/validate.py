"""Validation: each bronze row -> one validated row (silver columns + sorted reason codes).

Shape (docs/validation.md, measured on Spark 4.2): every row is parsed once with
`from_json`; only rows that are not plainly clean are parsed again as VARIANT, under
`F.when(_diag, try_parse_json(...))`, so clean rows never pay for it (silver/diagnose.py).
No UDFs; every function used is total (`try_*`), so no input can raise, ANSI mode or not.
Deterministic: it reads only the bronze row (never the clock).

Decisions (docs/contracts.md states them for users):
- A number too large for a double (`1e400`) is a number: it reads as +-Infinity, so it is
  `OUT_OF_RANGE:<field>` for a ranged field and an invalid GPS fix for latitude/longitude.
  Numbers longer than 1000 digits and nesting deeper than 1000 levels exceed the JSON parser's
  limits: MALFORMED_JSON.
- A field of the wrong type gets only TYPE_MISMATCH (no BAD_TIMESTAMP / OUT_OF_RANGE for it).
- MALFORMED_JSON rows carry no field reasons (there are no fields); PAYLOAD_TOO_LARGE still
  applies. Text after the closing `}` (other than whitespace) is MALFORMED_JSON.
- A repeated key is never flagged: both parses keep its last value (from_json does; the VARIANT
  parse does with `spark.sql.variant.allowDuplicateKeys`, which infra/spark.py sets), so the same
  bytes get the same verdict whether or not the row is diagnosed.
- `trip_id` may be a string or an integral number (kept as its text); `car_id` of only spaces is
  missing; an empty `event_id` is replaced by the derived one.
"""
from __future__ import annotations

from functools import reduce
from operator import and_, or_

from pyspark.sql import Column, DataFrame, functions as F, types as T

from infra.settings import ValidationRules
from silver import rules as R
from silver.diagnose import ABSENT, JSON_OPTIONS, PARSE_SCHEMA, diagnose
from silver.schema import CANDIDATE_SCHEMA, QUARANTINE_SCHEMA, VALIDATED_SCHEMA

_JSON_WHITESPACE = " \t\r\n"
_FIELD_INDEX = {rule.name: i for i, rule in enumerate(R.FIELDS)}


def _parse(bronze_df: DataFrame, keep: tuple[str, ...]) -> DataFrame:
    """Per bronze row: byte size, UTF-8 and closing-brace checks, from_json (`_p`)."""
    text = F.col("value").cast("string")
    # Last byte first (O(1) on binary); trimming whitespace scans the whole string.
    ends_with_brace = F.substring("value", -1, 1) == F.lit(bytearray(b"}"))
    trimmed = F.expr(f"trim(TRAILING '{_JSON_WHITESPACE}' FROM CAST(value AS STRING))")
    closed = F.when(ends_with_brace, F.lit(True)).otherwise(trimmed.endswith("}"))
    return bronze_df.select(
        *keep, "value", "topic", "partition", "offset", "kafka_timestamp", "ingested_at",
        text.alias("_text"),
        F.coalesce(F.octet_length("value"), F.lit(0)).alias("_bytes"),
        F.coalesce(F.is_valid_utf8(text), F.lit(False)).alias("_utf8"),
        F.coalesce(closed, F.lit(False)).alias("_closed"),
        F.from_json(text, PARSE_SCHEMA, JSON_OPTIONS).alias("_p"),
    )


def _no_reasons() -> Column:
    return F.array().cast(T.ArrayType(T.StringType()))


def _value(name: str) -> Column:
    return F.col("_x").getField(name)


def _is_absent(name: str) -> Column:
    """Absent or null (the fast path only sees required fields present; see diagnose)."""
    exact_status = F.element_at(F.col("_slow")["status"], _FIELD_INDEX[name] + 1)
    return F.when(F.col("_diag"), exact_status == ABSENT).otherwise(_value(name).isNull())


def _reason_conditions(rules: ValidationRules) -> dict[str, Column]:
    """Reason code -> condition, for every code except TYPE_MISMATCH (see diagnose)."""
    json_ok = F.col("_json_ok")
    conditions = {R.MALFORMED_JSON: ~json_ok,
                  R.PAYLOAD_TOO_LARGE: F.col("_bytes") > F.lit(rules.max_payload_bytes)}
    for rule in R.FIELDS:
        if rule.required:
            value = _value(rule.name)
            is_blank = (F.trim(value) == "") if rule.non_blank else F.lit(False)
            conditions[R.missing_field(rule.name)] = json_ok & (_is_absent(rule.name) | is_blank)
    for rng in R.range_rules(rules):
        is_outside = ~_value(rng.field).between(rng.min, rng.max)
        conditions[R.out_of_range(rng.field)] = json_ok & is_outside
    event_ts, kafka_ts = F.col("event_ts"), F.col("kafka_timestamp")
    conditions[R.BAD_TIMESTAMP] = (json_ok & _value(R.TIMESTAMP_FIELD).isNotNull()
                                   & event_ts.isNull())
    tolerance_micros = F.lit(rules.future_tolerance_seconds * 1_000_000)
    conditions[R.TIMESTAMP_IN_FUTURE] = (
        json_ok & (F.unix_micros(event_ts) - F.unix_micros(kafka_ts) > tolerance_micros))
    return {code: F.coalesce(condition, F.lit(False)) for code, condition in conditions.items()}


def _with_reasons(df: DataFrame, rules: ValidationRules) -> DataFrame:
    """Adds `reasons`: sorted distinct codes, built only for rows that have any.

    Codes are literals, so they are sorted here once; TYPE_MISMATCH:* sort after every other
    code, so the diagnosed (already sorted) mismatch codes are appended at the end.
    """
    conditions = _reason_conditions(rules)
    codes = sorted(conditions)
    none = _no_reasons()
    flagged = df.select("*", *[conditions[code].alias(f"_r{i}") for i, code in enumerate(codes)],
                        F.when(F.col("_json_ok"), F.col("_slow")["mismatch"]).alias("_mm"))
    has_mismatch = F.coalesce(F.size("_mm") > 0, F.lit(False))
    has_reason = reduce(or_, [F.col(f"_r{i}") for i in range(len(codes))], has_mismatch)
    listed = F.concat(*[F.when(F.col(f"_r{i}"), F.array(F.lit(code))).otherwise(none)
                        for i, code in enumerate(codes)], F.coalesce("_mm", none))
    return flagged.withColumn("reasons", F.when(has_reason, listed).otherwise(none))


def _event_ts() -> Column:
    """event_timestamp -> UTC timestamp, null unless it has one of the accepted forms.

    Fast-path rows (UTF-8, not diagnosed) already matched R.TIMESTAMP_REGEX (see
    diagnose.needs_diagnosis).
    """
    text = _value(R.TIMESTAMP_FIELD)
    is_fast_path = F.col("_utf8") & ~F.col("_diag")
    has_form = F.when(is_fast_path, F.lit(True)).otherwise(text.rlike(R.TIMESTAMP_REGEX))
    return F.when(has_form, F.try_to_timestamp(text))


def _gps_valid() -> Column:
    in_bounds = [_value(rng.field).between(rng.min, rng.max) for rng in R.GPS_RANGES]
    is_null_island = (_value("latitude") == 0) & (_value("longitude") == 0)
    return F.coalesce(reduce(and_, in_bounds) & ~is_null_island, F.lit(False))


def _event_id() -> Column:
    """The given event_id (a non-empty JSON string) or the deterministic derived one."""
    given = _value("event_id")
    parts = [F.coalesce(_value(name), F.lit("")) if name == "trip_id" else _value(name)
             for name in R.EVENT_ID_HASH_FIELDS]
    derived = F.substring(F.sha2(F.concat_ws(R.EVENT_ID_SEPARATOR, *parts), 256),
                          1, R.EVENT_ID_HEX_CHARS)
    return F.when(given != "", given).otherwise(derived)


def _judge(df: DataFrame, rules: ValidationRules, keep: tuple[str, ...]) -> DataFrame:
    """Reasons and silver columns from either parse; the output contract is VALIDATED_SCHEMA."""
    diag = F.col("_diag")
    is_object = F.when(diag, F.coalesce(F.col("_slow")["is_object"], F.lit(False))).otherwise(True)
    judged = df.select(
        "*", F.when(diag, F.col("_slow")["values"]).otherwise(F.col("_p")).alias("_x"),
        (F.col("_utf8") & F.col("_closed") & is_object).alias("_json_ok"))
    judged = _with_reasons(judged.withColumn("event_ts", _event_ts()), rules)
    outputs = {
        "event_id": _event_id(), "car_id": _value("car_id"), "trip_id": _value("trip_id"),
        "speed_kmph": _value("speed_kmph"), "fuel_level": _value("fuel_level"),
        "engine_temp_c": _value("engine_temp_c"), "latitude": _value("latitude"),
        "longitude": _value("longitude"), "gps_valid": _gps_valid(),
    }
    return judged.select(*[outputs.get(f.name, F.col(f.name)).cast(f.dataType).alias(f.name)
                           for f in VALIDATED_SCHEMA.fields], *keep)


def validate(bronze_df: DataFrame, rules: ValidationRules,
             keep: tuple[str, ...] = ()) -> DataFrame:
    """One row per bronze row (VALIDATED_SCHEMA, then the `keep` columns of bronze as they are):
    silver columns, raw value, sorted reasons, ingested_at."""
    return _judge(diagnose(_parse(bronze_df, keep)), rules, keep)


def valid_rows(validated: DataFrame) -> DataFrame:
    """The rows without reasons, one per bronze row, as CANDIDATE_SCHEMA (see silver/dedup.py)."""
    return validated.where(F.size("reasons") == 0).select(*CANDIDATE_SCHEMA.fieldNames())


def quarantine_rows(validated: DataFrame, quarantined_at: Column) -> DataFrame:
    """The rows with reasons, one per bronze row, as QUARANTINE_SCHEMA."""
    return validated.where(F.size("reasons") > 0).select(
        [(quarantined_at if f.name == "quarantined_at" else F.col(f.name))
         .cast(f.dataType).alias(f.name) for f in QUARANTINE_SCHEMA.fields])
