"""gold/kpi_minutes: which minutes' held KPI rows are read ahead, and the touched ones taken out."""
from __future__ import annotations

import datetime as dt

import pyarrow as pa

from gold import kpi_minutes
from gold.ranges import MINUTE_US

M0 = 1_700_000_040_000_000  # a minute start (µs)
SECOND = 1_000_000


def minute(i: int) -> int:
    return M0 + i * MINUTE_US


def whole(first: int, last: int) -> tuple[int, int]:
    return minute(first), minute(last) + MINUTE_US - 1


def held_rows(*minutes: int) -> pa.Table:
    starts = [dt.datetime.fromtimestamp(minute(i) / SECOND, dt.timezone.utc) for i in minutes]
    return pa.table({"car_id": [f"car-{i}" for i in minutes],
                     "window_start": pa.array(starts, pa.timestamp("us", tz="UTC"))})


def test_readings_minutes_and_late_cars_recomputed_minutes_are_read_ahead():
    late = {"a": [(minute(5) + 10 * SECOND, minute(7) + 5 * SECOND)],
            "b": [(minute(6), minute(6) + 59 * SECOND), (minute(20) + SECOND, minute(20) + SECOND)]}
    spans = kpi_minutes.prefetch_spans({minute(0), minute(1)}, late)
    assert spans == [whole(0, 1), whole(5, 7), whole(20, 20)]


def test_late_stretches_longer_than_a_day_are_left_to_a_read_on_demand():
    late = {"a": [(minute(10), minute(10) + kpi_minutes.MAX_PREFETCH_MINUTES * MINUTE_US)]}
    assert kpi_minutes.prefetch_spans({minute(0)}, late) == [whole(0, 0)]


def test_the_touched_minutes_rows_are_taken_from_the_rows_read_ahead():
    rows = held_rows(0, 1, 2, 5, 6)
    taken = kpi_minutes.held_in(rows, [whole(0, 6)], [whole(1, 1), whole(5, 5)])
    assert taken.column("car_id").to_pylist() == ["car-1", "car-5"]


def test_minutes_outside_what_was_read_ahead_are_read_again():
    rows = held_rows(0, 1)
    assert kpi_minutes.held_in(rows, [whole(0, 1)], [whole(1, 2)]) is None
    assert kpi_minutes.held_in(rows, [whole(0, 0), whole(2, 3)], [whole(1, 1)]) is None
