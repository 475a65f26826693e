"""Silver validation: every reason code, exact rows, timestamps, ids, GPS, no input can raise."""
from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from bronze.schema import BRONZE_SCHEMA
from infra.settings import ValidationRules
from silver.diagnose import diagnose
from silver.schema import CANDIDATE_SCHEMA, QUARANTINE_SCHEMA, VALIDATED_SCHEMA
from silver.validate import _parse, quarantine_rows, valid_rows, validate

UTC = dt.timezone.utc
KAFKA_TS = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
RULES = ValidationRules()
DROP = object()  # marks a field to leave out of the event
BASE = {"car_id": "car-007", "event_timestamp": "2024-05-01 11:59:58", "speed_kmph": 80.5,
        "fuel_level": 50.0, "engine_temp_c": 90.0, "latitude": 24.7, "longitude": 46.7}
COURSE = {"car_id": "CAR_12", "event_timestamp": "2024-05-01 11:59:59", "speed_kmph": 62.13,
          "fuel_level": 71.4, "engine_temp_c": 88.9, "latitude": 26.4207, "longitude": 50.0888,
          "trip_id": "TRIP_12_3", "trip_start_time": "2024-05-01 11:40:00",
          "trip_start_latitude": 26.41, "trip_start_longitude": 50.07,
          "trip_start_date": "2024-05-01", "message_key": "CAR_12"}


class Raw(str):
    """A JSON token written as is (NaN, 1e400, ...)."""


def event(base=BASE, **changes) -> bytes:
    """`base` with `changes` (DROP removes a field; Raw writes a token verbatim) as JSON bytes."""
    fields = {k: v for k, v in {**base, **changes}.items() if v is not DROP}
    placeholders = {k: f"@@{k}@@" for k, v in fields.items() if isinstance(v, Raw)}
    text = json.dumps({k: placeholders.get(k, v) for k, v in fields.items()}, ensure_ascii=False)
    for key, marker in placeholders.items():
        text = text.replace(json.dumps(marker), fields[key])
    return text.encode("utf-8")


def nested(depth: int) -> bytes:
    return event(extra=Raw("[" * depth + "]" * depth))


def padded(total_bytes: int) -> bytes:
    """A valid event padded to exactly `total_bytes` bytes."""
    skeleton = event(pad="")
    return event(pad="x" * (total_bytes - len(skeleton)))


MISSING = "MISSING_FIELD:"
MISMATCH = "TYPE_MISMATCH:"
RANGE = "OUT_OF_RANGE:"
REQUIRED = ("car_id", "event_timestamp", "speed_kmph", "fuel_level", "engine_temp_c")

# (case id, Kafka value, expected reasons)
CASES = [
    ("valid", event(), []),
    ("course pipeline shape", event(COURSE), []),
    ("unicode car id arabic", event(car_id="سيارة-٧"), []),
    ("unicode car id cjk and emoji", event(car_id="車-42-🚗"), []),
    ("extra unknown fields", event(driver={"name": "x"}, tags=[1, 2]), []),
    ("trailing whitespace", event() + b" \n\t", []),
    ("nested 50 deep in extra field", nested(50), []),
    ("gps missing keeps row valid", event(latitude=DROP, longitude=DROP), []),
    ("gps out of range keeps row valid", event(latitude=95.0, longitude=-181.0), []),
    ("gps null keeps row valid", event(latitude=None), []),
    ("integral trip_id", event(trip_id=7), []),
    ("numeric-looking string car id", event(car_id="42"), []),
    ("event_id given", event(event_id="abc-1"), []),
    ("exactly 64 KiB", padded(65_536), []),
    # MALFORMED_JSON
    ("not json", b'{"car_id": car-1}', ["MALFORMED_JSON"]),
    ("truncated", event()[:-5], ["MALFORMED_JSON"]),
    ("empty value", b"", ["MALFORMED_JSON"]),
    ("whitespace value", b"   ", ["MALFORMED_JSON"]),
    ("json null", b"null", ["MALFORMED_JSON"]),
    ("json array", b'[{"car_id": "car-1"}]', ["MALFORMED_JSON"]),
    ("json number", b"42", ["MALFORMED_JSON"]),
    ("json string", b'"car-1"', ["MALFORMED_JSON"]),
    ("tombstone", None, ["MALFORMED_JSON"]),
    ("invalid utf-8 in a string", event(car_id="car-@@").replace(b"@@", b"\xff\xfe"),
     ["MALFORMED_JSON"]),
    ("invalid utf-8 prefix", b"\xff\xfe" + event(), ["MALFORMED_JSON"]),
    ("NaN token", event(speed_kmph=Raw("NaN")), ["MALFORMED_JSON"]),
    ("Infinity token", event(fuel_level=Raw("Infinity")), ["MALFORMED_JSON"]),
    ("-Infinity token", event(engine_temp_c=Raw("-Infinity")), ["MALFORMED_JSON"]),
    ("single quotes", b"{'car_id': 'car-1'}", ["MALFORMED_JSON"]),
    ("text after the object", event() + b" trailing", ["MALFORMED_JSON"]),
    ("nested 1500 deep", nested(1500), ["MALFORMED_JSON"]),
    # a repeated key is never flagged: its last value counts, diagnosed or not
    ("duplicate keys, the last one a number",
     event(speed_kmph=Raw('"1", "speed_kmph": 2')), []),
    ("duplicate keys, the last one a string",
     event(speed_kmph=Raw('2, "speed_kmph": "1"')), [MISMATCH + "speed_kmph"]),
    ("duplicate keys on a row diagnosed for another reason",
     event(car_id=Raw('"car-1", "car_id": "car-2"'), fuel_level="x"), [MISMATCH + "fuel_level"]),
    ("2000-digit number", event(speed_kmph=Raw("9" * 2000)), ["MALFORMED_JSON"]),
    # PAYLOAD_TOO_LARGE
    ("64 KiB + 1", padded(65_537), ["PAYLOAD_TOO_LARGE"]),
    ("1 MB valid event", padded(1_000_000), ["PAYLOAD_TOO_LARGE"]),
    ("1 MB garbage", b"x" * 1_000_000, ["MALFORMED_JSON", "PAYLOAD_TOO_LARGE"]),
    # MISSING_FIELD
    *[(f"{name} absent", event(**{name: DROP}), [MISSING + name]) for name in REQUIRED],
    *[(f"{name} null", event(**{name: None}), [MISSING + name]) for name in REQUIRED],
    ("car_id empty", event(car_id=""), [MISSING + "car_id"]),
    ("car_id blank", event(car_id="   "), [MISSING + "car_id"]),
    ("empty object", b"{}", [MISSING + name for name in sorted(REQUIRED)]),
    # TYPE_MISMATCH
    ("speed as string", event(speed_kmph="87.5"), [MISMATCH + "speed_kmph"]),
    ("fuel as boolean", event(fuel_level=True), [MISMATCH + "fuel_level"]),
    ("engine temp as object", event(engine_temp_c={"v": 90}), [MISMATCH + "engine_temp_c"]),
    ("speed as array", event(speed_kmph=[80]), [MISMATCH + "speed_kmph"]),
    ("speed 'NaN' string", event(speed_kmph="NaN"), [MISMATCH + "speed_kmph"]),
    ("car_id as number", event(car_id=42), [MISMATCH + "car_id"]),
    ("car_id as float", event(car_id=4.5e3), [MISMATCH + "car_id"]),
    ("car_id as boolean", event(car_id=True), [MISMATCH + "car_id"]),
    ("car_id as object", event(car_id={"id": "car-1"}), [MISMATCH + "car_id"]),
    ("car_id as array", event(car_id=["car-1"]), [MISMATCH + "car_id"]),
    ("timestamp as epoch number", event(event_timestamp=1714564800),
     [MISMATCH + "event_timestamp"]),
    ("latitude as string", event(latitude="24.7"), [MISMATCH + "latitude"]),
    ("longitude as boolean", event(longitude=False), [MISMATCH + "longitude"]),
    ("trip_start_latitude as string", event(trip_start_latitude="x"),
     [MISMATCH + "trip_start_latitude"]),
    ("trip_id as boolean", event(trip_id=True), [MISMATCH + "trip_id"]),
    ("trip_id as fraction", event(trip_id=1.5), [MISMATCH + "trip_id"]),
    ("event_id as number", event(event_id=42), [MISMATCH + "event_id"]),
    # OUT_OF_RANGE: a number too large for a double is a number, out of every range
    ("speed 1e400", event(speed_kmph=Raw("1e400")), [RANGE + "speed_kmph"]),
    ("engine temp -1e400", event(engine_temp_c=Raw("-1e400")), [RANGE + "engine_temp_c"]),
    ("latitude 1e400: an invalid fix, not a reason", event(latitude=Raw("1e400")), []),
    ("1e400 on a row diagnosed for another reason",
     event(fuel_level=Raw("1e400"), car_id=42), [RANGE + "fuel_level", MISMATCH + "car_id"]),
    # BAD_TIMESTAMP
    ("timestamp text", event(event_timestamp="yesterday"), ["BAD_TIMESTAMP"]),
    ("timestamp empty", event(event_timestamp=""), ["BAD_TIMESTAMP"]),
    ("date only", event(event_timestamp="2024-05-01"), ["BAD_TIMESTAMP"]),
    ("no seconds", event(event_timestamp="2024-05-01 11:59"), ["BAD_TIMESTAMP"]),
    ("impossible date", event(event_timestamp="2024-02-30 10:00:00"), ["BAD_TIMESTAMP"]),
    ("hour 25", event(event_timestamp="2024-05-01 25:00:00"), ["BAD_TIMESTAMP"]),
    ("zone name", event(event_timestamp="2024-05-01T11:00:00 UTC"), ["BAD_TIMESTAMP"]),
    ("epoch as string", event(event_timestamp="1714564800"), ["BAD_TIMESTAMP"]),
    # TIMESTAMP_IN_FUTURE (Kafka timestamp 12:00:00 UTC, tolerance 300 s)
    ("exactly tolerance ahead", event(event_timestamp="2024-05-01 12:05:00"), []),
    ("1 ms beyond tolerance", event(event_timestamp="2024-05-01 12:05:00.001"),
     ["TIMESTAMP_IN_FUTURE"]),
    ("offset form within tolerance", event(event_timestamp="2024-05-01T15:05:00+03:00"), []),
    ("offset form beyond tolerance", event(event_timestamp="2024-05-01T15:05:01+03:00"),
     ["TIMESTAMP_IN_FUTURE"]),
    ("far past is fine", event(event_timestamp="2001-01-01T00:00:00Z"), []),
    # OUT_OF_RANGE: boundaries are valid
    *[(f"{name} = {value}", event(**{name: value}), [])
      for name, value in (("speed_kmph", 0), ("speed_kmph", 400), ("fuel_level", 0),
                          ("fuel_level", 100), ("engine_temp_c", -60), ("engine_temp_c", 250))],
    *[(f"{name} = {value}", event(**{name: value}), [RANGE + name])
      for name, value in (("speed_kmph", -0.001), ("speed_kmph", 400.001),
                          ("fuel_level", -0.1), ("fuel_level", 100.1),
                          ("engine_temp_c", -60.5), ("engine_temp_c", 250.5),
                          ("speed_kmph", Raw("1e308")))],
    # combinations: every reason that applies, sorted
    ("many reasons", event(car_id=42, event_timestamp="bad", speed_kmph=500, fuel_level="x",
                           engine_temp_c=DROP),
     ["BAD_TIMESTAMP", MISSING + "engine_temp_c", RANGE + "speed_kmph", MISMATCH + "car_id",
      MISMATCH + "fuel_level"]),
    ("future and out of range", event(event_timestamp="2024-05-01T13:00:00Z", fuel_level=-5,
                                      engine_temp_c=300),
     [RANGE + "engine_temp_c", RANGE + "fuel_level", "TIMESTAMP_IN_FUTURE"]),
    ("too large and missing", padded(70_000).replace(b'"car_id"', b'"carid"'),
     [MISSING + "car_id", "PAYLOAD_TOO_LARGE"]),
    ("blank car and bad ranges", event(car_id="", speed_kmph=-1, latitude="n"),
     [MISSING + "car_id", RANGE + "speed_kmph", MISMATCH + "latitude"]),
    ("duplicate keys on a clean row", event(car_id=Raw('"car-1", "car_id": "car-2"')), []),
]


def bronze(spark, values, kafka_ts=KAFKA_TS):
    rows = [(None, value, "raw_telemetry", i % 3, i, kafka_ts, kafka_ts)
            for i, value in enumerate(values)]
    return spark.createDataFrame(rows, BRONZE_SCHEMA)


@pytest.fixture(scope="module")
def validated_cases(spark):
    """All CASES validated in one DataFrame: offset -> reasons."""
    validated = validate(bronze(spark, [value for _, value, _ in CASES]), RULES)
    return {row["offset"]: row["reasons"] for row in validated.collect()}


@pytest.mark.parametrize("index", range(len(CASES)), ids=[case[0] for case in CASES])
def test_reasons(validated_cases, index):
    _, _, expected = CASES[index]
    assert validated_cases[index] == expected


def test_every_bronze_row_gives_one_validated_row(spark, validated_cases):
    assert spark.conf.get("spark.sql.ansi.enabled") == "true"  # and still no input raised
    assert sorted(validated_cases) == list(range(len(CASES)))
    actual = validate(bronze(spark, [event()]), RULES).schema
    assert actual.simpleString() == VALIDATED_SCHEMA.simpleString()


def silver_row(event_id, ts, offset, car="car-007", trip=None, speed=80.5, fuel=50.0,
               temp=90.0, lat=24.7, lon=46.7, gps_valid=True, partition=None):
    return (event_id, car, trip, ts, speed, fuel, temp, lat, lon, gps_valid, "raw_telemetry",
            offset % 3 if partition is None else partition, offset, KAFKA_TS)


def derived_id(car, trip, raw_ts):
    return hashlib.sha256(f"{car}|{trip}|{raw_ts}".encode()).hexdigest()[:32]


def test_timestamp_forms_normalised_to_utc(spark):
    forms = ["2024-05-01T11:59:58Z", "2024-05-01T14:59:58.250+03:00",
             "2024-05-01 11:59:58.125", "2024-05-01T11:59:58", "2024-05-01T09:29:58-02:30"]
    values = [event(event_timestamp=form, event_id=f"id-{i}") for i, form in enumerate(forms)]
    actual = valid_rows(validate(bronze(spark, values), RULES))
    at = dt.datetime(2024, 5, 1, 11, 59, 58, tzinfo=UTC)
    expected = [silver_row("id-0", at, 0),
                silver_row("id-1", at + dt.timedelta(milliseconds=250), 1),
                silver_row("id-2", at + dt.timedelta(milliseconds=125), 2),
                silver_row("id-3", at, 3),
                silver_row("id-4", at, 4)]
    assertDataFrameEqual(actual, spark.createDataFrame(landed(expected), CANDIDATE_SCHEMA))


def landed(rows):
    """Silver rows + the ingested_at of the test's bronze rows (the Kafka timestamp)."""
    return [(*row, KAFKA_TS) for row in rows]


def test_course_event_exact_row(spark):
    actual = valid_rows(validate(bronze(spark, [event(COURSE)]), RULES))
    expected = ("CAR_12", "TRIP_12_3", dt.datetime(2024, 5, 1, 11, 59, 59, tzinfo=UTC),
                62.13, 71.4, 88.9, 26.4207, 50.0888, True)
    event_id = derived_id("CAR_12", "TRIP_12_3", "2024-05-01 11:59:59")
    assertDataFrameEqual(actual, spark.createDataFrame(
        landed([(event_id, *expected, "raw_telemetry", 0, 0, KAFKA_TS)]), CANDIDATE_SCHEMA))


def test_event_ids(spark):
    values = [event(), event(), event(trip_id="T-1"), event(trip_id=7), event(event_id="given"),
              event(event_id="")]
    rows = validate(bronze(spark, values), RULES).orderBy("offset").collect()
    no_trip = derived_id("car-007", "", "2024-05-01 11:59:58")
    assert [row["event_id"] for row in rows] == [
        no_trip, no_trip, derived_id("car-007", "T-1", "2024-05-01 11:59:58"),
        derived_id("car-007", "7", "2024-05-01 11:59:58"), "given", no_trip]
    assert [row["trip_id"] for row in rows] == [None, None, "T-1", "7", None, None]


GPS_CASES = [  # (latitude, longitude, gps_valid)
    (24.7, 46.7, True), (90.0, 180.0, True), (-90.0, -180.0, True), (0.0, 46.7, True),
    (24.7, 0.0, True), (0.0, 0.0, False), (90.1, 46.7, False), (-90.1, 46.7, False),
    (24.7, 180.1, False), (24.7, -180.1, False), (None, 46.7, False), (24.7, None, False),
    (24.7, DROP, False), (DROP, DROP, False),
]


def test_gps_valid(spark):
    values = [event(latitude=lat, longitude=lon) for lat, lon, _ in GPS_CASES]
    rows = validate(bronze(spark, values), RULES).orderBy("offset").collect()
    assert [(row["reasons"], row["gps_valid"]) for row in rows] == [
        ([], gps_valid) for *_, gps_valid in GPS_CASES]


def test_values_of_quarantined_fields_are_null(spark):
    row = validate(bronze(spark, [event(speed_kmph="87.5", car_id=42)]), RULES).first()
    assert (row["speed_kmph"], row["car_id"], row["fuel_level"]) == (None, None, 50.0)


def test_rules_come_from_settings(spark):
    strict = ValidationRules(speed_max=100.0, fuel_min=20.0, engine_temp_max=95.0,
                             future_tolerance_seconds=0, max_payload_bytes=100)
    value = event(speed_kmph=100.5, fuel_level=19.0, engine_temp_c=95.0,
                  event_timestamp="2024-05-01 12:00:01")
    assert validate(bronze(spark, [value]), strict).first()["reasons"] == [
        RANGE + "fuel_level", RANGE + "speed_kmph", "PAYLOAD_TOO_LARGE", "TIMESTAMP_IN_FUTURE"]


def test_quarantine_rows_exact(spark):
    values = [event(), b"nope", event(speed_kmph=-1)]
    at = dt.datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
    actual = quarantine_rows(validate(bronze(spark, values), RULES), F.lit(at))
    expected = [(b"nope", ["MALFORMED_JSON"], "raw_telemetry", 1, 1, KAFKA_TS, at),
                (values[2], [RANGE + "speed_kmph"], "raw_telemetry", 2, 2, KAFKA_TS, at)]
    assertDataFrameEqual(actual, spark.createDataFrame(expected, QUARANTINE_SCHEMA))


def test_valid_and_quarantine_partition_the_input(spark):
    validated = validate(bronze(spark, [value for _, value, _ in CASES]), RULES)
    valid = valid_rows(validated).count()
    quarantined = quarantine_rows(validated, F.current_timestamp()).count()
    assert (valid, quarantined) == (sum(1 for *_, r in CASES if not r),
                                    sum(1 for *_, r in CASES if r))


def test_clean_events_take_the_fast_path(spark):
    values = [event(), event(COURSE), event(trip_id=7), event(event_id="e-1"),
              event(speed_kmph=-5), event(event_timestamp="2024-05-01T11:00:00Z"),
              event(car_id="")]
    diagnosed = diagnose(_parse(bronze(spark, values), ())).select("_diag").collect()
    assert [row["_diag"] for row in diagnosed] == [False] * len(values)


def test_one_json_parse_and_a_conditional_variant_parse(spark):
    plan = validate(bronze(spark, [event()]), RULES)._jdf.queryExecution().executedPlan()
    text = plan.toString()
    assert text.count("from_json(") == 1
    assert text.count("parseJson(") == 1
    before_parse = text[:text.index("parseJson(")]
    # the VARIANT parse sits in the THEN branch of the `_slow` column's CASE WHEN
    assert " AS " not in before_parse[before_parse.rindex("CASE WHEN"):]
