"""The wire contract: field names and order, exact JSON, timestamp shapes."""
from __future__ import annotations

import json

import pytest

from ingestion.contract import parse_event_time_ms
from ingestion.event import (FIELDS, GPS_MISSING, GPS_NULL, GPS_OK, GPS_ZERO, CarWire,
                             encode_json, format_timestamp, json_string, to_course_shape)

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@pytest.fixture
def wire() -> CarWire:
    w = CarWire("CAR-0007", "abcd1234")
    w.set_trip("abcd1234-CAR-0007-T3", T0 - 61_500, 26.4207, 50.0888)
    return w


def test_encode_is_exact_compact_json(wire):
    raw = wire.encode(T0 + 1_234, 87.46, 55.556, 92.04, GPS_OK, 26.123456789, 50.1, 42)
    assert raw == (
        b'{"car_id":"CAR-0007","event_timestamp":"2026-01-01T00:00:01.234Z","speed_kmph":87.5,'
        b'"fuel_level":55.56,"engine_temp_c":92.0,"latitude":26.123457,"longitude":50.100000,'
        b'"event_id":"abcd1234-CAR-0007-42","trip_id":"abcd1234-CAR-0007-T3",'
        b'"trip_start_time":"2025-12-31T23:58:58.500Z","trip_start_latitude":26.420700,'
        b'"trip_start_longitude":50.088800,"trip_start_date":"2025-12-31",'
        b'"message_key":"CAR-0007"}')
    assert list(json.loads(raw)) == list(FIELDS)


@pytest.mark.parametrize("gps", [GPS_OK, GPS_MISSING, GPS_NULL, GPS_ZERO])
def test_encode_equals_to_dict(wire, gps):
    args = (T0 + 999, 141.25, 9.994, 110.05, gps, 26.5, 49.9, 7)
    assert json.loads(wire.encode(*args)) == wire.to_dict(*args)


def test_gps_dropout_forms(wire):
    def where(gps):
        event = json.loads(wire.encode(T0, 1.0, 2.0, 3.0, gps, 26.5, 49.9, 1))
        return event.get("latitude", "absent"), event.get("longitude", "absent")

    assert where(GPS_MISSING) == ("absent", "absent")
    assert where(GPS_NULL) == (None, None)
    assert where(GPS_ZERO) == (0.0, 0.0)


def test_timestamps_are_utc_with_millis_and_z():
    assert format_timestamp(T0) == "2026-01-01T00:00:00.000Z"
    assert format_timestamp(T0 + 86_399_999) == "2026-01-01T23:59:59.999Z"
    assert format_timestamp(T0 + 5_500, "course") == "2026-01-01 00:00:05"
    assert parse_event_time_ms(format_timestamp(T0 + 7_007)) == T0 + 7_007


def test_course_shape_drops_event_id_and_millis(wire):
    event = wire.to_dict(T0 + 2_500, 50.0, 40.0, 90.0, GPS_OK, 26.5, 49.9, 3)
    course = to_course_shape(event)
    assert "event_id" not in course
    assert course["event_timestamp"] == "2026-01-01 00:00:02"
    assert course["trip_start_time"] == "2025-12-31 23:58:58"
    assert course["message_key"] == "CAR-0007"
    assert encode_json(course, "course").startswith(b'{"car_id": "CAR-0007", "event_timestamp"')


def test_strings_needing_escapes_are_escaped():
    assert json_string("CAR-1") == '"CAR-1"'
    assert json.loads(json_string('a"b\\c\u00e9')) == 'a"b\\c\u00e9'
    w = CarWire('weird "car"', "t")
    w.set_trip("trip\n1", T0, 1.0, 2.0)
    event = json.loads(w.encode(T0, 1.0, 2.0, 3.0, GPS_OK, 1.0, 2.0, 1))
    assert (event["car_id"], event["trip_id"], event["event_id"]) == (
        'weird "car"', "trip\n1", 't-weird "car"-1')


def test_non_finite_numbers_never_reach_the_wire():
    with pytest.raises(ValueError):
        CarWire("CAR-1", "t").set_trip("T", T0, float("nan"), 2.0)
