"""The declarative rule source: codes, ranges from settings, timestamp forms."""
from __future__ import annotations

import re

import pytest

from infra.settings import ValidationRules
from silver import rules as R


def test_range_rules_come_from_settings():
    rules = ValidationRules(speed_min=1.0, speed_max=2.0, fuel_min=3.0, fuel_max=4.0,
                            engine_temp_min=5.0, engine_temp_max=6.0)
    assert R.range_rules(rules) == (R.RangeRule("speed_kmph", 1.0, 2.0),
                                    R.RangeRule("fuel_level", 3.0, 4.0),
                                    R.RangeRule("engine_temp_c", 5.0, 6.0))


def test_all_reason_codes():
    assert R.all_reason_codes(ValidationRules()) == (
        "BAD_TIMESTAMP", "MALFORMED_JSON",
        "MISSING_FIELD:car_id", "MISSING_FIELD:engine_temp_c", "MISSING_FIELD:event_timestamp",
        "MISSING_FIELD:fuel_level", "MISSING_FIELD:speed_kmph",
        "OUT_OF_RANGE:engine_temp_c", "OUT_OF_RANGE:fuel_level", "OUT_OF_RANGE:speed_kmph",
        "PAYLOAD_TOO_LARGE", "TIMESTAMP_IN_FUTURE",
        "TYPE_MISMATCH:car_id", "TYPE_MISMATCH:engine_temp_c", "TYPE_MISMATCH:event_id",
        "TYPE_MISMATCH:event_timestamp", "TYPE_MISMATCH:fuel_level",
        "TYPE_MISMATCH:latitude", "TYPE_MISMATCH:longitude", "TYPE_MISMATCH:speed_kmph",
        "TYPE_MISMATCH:trip_id", "TYPE_MISMATCH:trip_start_latitude",
        "TYPE_MISMATCH:trip_start_longitude")


def test_type_mismatch_codes_sort_last():
    # validate appends the (sorted) TYPE_MISMATCH codes after all others
    codes = R.all_reason_codes(ValidationRules())
    others = [code for code in codes if not code.startswith(R.TYPE_MISMATCH_PREFIX)]
    assert max(others) < R.TYPE_MISMATCH_PREFIX


@pytest.mark.parametrize("text, accepted", [
    ("2024-05-01T12:00:00Z", True), ("2024-05-01T12:00:00.123456789Z", True),
    ("2024-05-01T12:00:00+03:00", True), ("2024-05-01T12:00:00-02:30", True),
    ("2024-05-01 12:00:00", True), ("2024-05-01 12:00:00.5", True),
    ("2024-05-01T12:00:00", True), ("2024-05-01", False), ("2024-05-01 12:00", False),
    ("2024-5-1 1:2:3", False), ("2024-05-01T12:00:00+0300", False),
    ("2024-05-01T12:00:00 UTC", False), ("1714564800", False), ("", False),
])
def test_timestamp_regex(text, accepted):
    assert bool(re.match(R.TIMESTAMP_REGEX, text)) == accepted


def test_required_fields():
    assert R.REQUIRED_FIELDS == ("car_id", "event_timestamp", "speed_kmph", "fuel_level",
                                 "engine_temp_c")
