"""`--where`: Spark's parser, then an allow-list; anything but a row filter is refused."""
from __future__ import annotations

import datetime as dt

import pytest

from ops.where import WhereError, checked_filter

COLUMNS = ["event_id", "car_id", "event_ts", "speed_kmph", "offset", "reasons"]
ROWS = [("e1", "car-01", dt.datetime(2026, 1, 1, 10, 0), 80.0, 1, ["MALFORMED_JSON"]),
        ("e2", "car-02", dt.datetime(2026, 1, 1, 11, 0), 150.0, 2, []),
        ("e3", "car-01", dt.datetime(2026, 1, 1, 12, 0), None, 3, [])]
SCHEMA = ("event_id string, car_id string, event_ts timestamp, speed_kmph double, "
          "offset long, reasons array<string>")


@pytest.fixture(scope="module")
def frame(spark):
    return spark.createDataFrame(ROWS, SCHEMA)


@pytest.mark.parametrize("text, expected", [
    ("speed_kmph > 100", ["e2"]),
    ("car_id = 'car-01' AND speed_kmph IS NULL", ["e3"]),
    ("car_id IN ('car-02', 'car-09') OR `offset` = 1", ["e1", "e2"]),
    ("speed_kmph BETWEEN 50 AND 100", ["e1"]),
    ("event_ts >= TIMESTAMP '2026-01-01 11:00:00' AND NOT (car_id LIKE '%02')", ["e3"]),
    ("lower(upper(car_id)) = 'car-02'", ["e2"]),
    ("array_contains(reasons, 'MALFORMED_JSON')", ["e1"]),
    ("coalesce(speed_kmph, -1) + 1 < 1", ["e3"]),
    ("EVENT_ID = 'e1'", ["e1"]),
])
def test_allowed_filters_select_exactly_the_matching_rows(spark, frame, text, expected):
    selected = frame.where(checked_filter(spark, text, COLUMNS)).orderBy("event_id")
    assert [r.event_id for r in selected.collect()] == expected


@pytest.mark.parametrize("text, message", [
    ("1 = 1; DROP TABLE x", "is not one SQL expression"),
    ("speed_kmph > 1) OR (1 = 1", "is not one SQL expression"),
    ("event_id IN (SELECT event_id FROM silver)", "may not use a subquery"),
    ("EXISTS (SELECT 1)", "may not use a subquery"),
    ("reflect('java.lang.Runtime', 'getRuntime') IS NOT NULL", "may not call reflect()"),
    ("java_method('java.lang.System', 'exit', 0) = 1", "may not call java_method()"),
    ("exists(reasons, r -> r = 'x')", "may not call exists()"),
    ("transform(reasons, r -> r)[0] = 'x'", "may not"),
    ("rand() > 0.5", "may not call rand()"),
    ("count(DISTINCT car_id) > 1", "may not call count()"),
    ("*", "may not use *"),
    ("car_id = :name", "may not use a query parameter"),
    ("password = 'x'", "unknown column 'password'"),
    ("silver.car_id = 'x'", "unknown column 'silver.car_id'"),
    ("car_id IN (lower('A'), 'b')", "IN (...) takes literal values only"),
    ("car_id RLIKE '(a+)+$'", "may not use RLike"),
    ("", "--where is empty"),
])
def test_anything_but_a_row_filter_is_refused(spark, text, message):
    with pytest.raises(WhereError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("*", r"\*").replace(".", r"\.")):
        checked_filter(spark, text, COLUMNS)


def test_overlong_filter_is_refused(spark):
    with pytest.raises(WhereError, match="longer than 2000"):
        checked_filter(spark, "car_id = '" + "x" * 2000 + "'", COLUMNS)
