"""The alerts MERGE never commits beside an append of the same batch: a MERGE takes its
idempotency keys from session confs, which an append without writer options would take as its
own (and then Delta skips one of the two writes, or refuses the append)."""
from __future__ import annotations

import contextlib
import datetime as dt
import threading
from concurrent.futures import Future

import pyarrow as pa
import pytest

import gold.sink as sink
from gold.cars import CarModes
from gold.changes import INSERT, UPDATE
from infra.local_frames import arrow_schema

T0 = dt.datetime(2026, 3, 1, 10, tzinfo=dt.timezone.utc)


def changes(*ops: str) -> pa.Table:
    rows = [{"alert_id": f"a{i}", "event_id": f"e{i}", "car_id": "A", "event_ts": T0,
             "alert_type": "FUEL_DROP", "severity": "WARNING", "observed_value": 1.0,
             "threshold": 1.0, "message": "m", "_op": op} for i, op in enumerate(ops)]
    return pa.Table.from_pylist(rows, schema=arrow_schema(sink.CHANGES_SCHEMA))


def late(car: str = "A") -> CarModes:
    return CarModes({car: 0}, {car: 0}, {}, frozenset({car}))


class Stop(Exception):
    pass


def test_a_merge_waits_for_the_batchs_earlier_append(spark, settings, monkeypatch):
    appended, seen = Future(), []

    @contextlib.contextmanager
    def merge(*args):
        seen.append(appended.done())
        raise Stop  # the MERGE itself is not the point here
        yield

    monkeypatch.setattr(sink, "merge_transaction", merge)
    tables = sink._Tables(spark, settings, "app", 3, may_be_retry=False)
    threading.Timer(0.5, appended.set_result, [True]).start()
    with pytest.raises(Stop):
        sink._write_alerts(tables, changes(INSERT, UPDATE), late(), appended)
    assert seen == [True]


def test_all_inserts_are_appended_without_waiting(spark, settings, monkeypatch):
    appended = Future()  # never done: an append of inserts does not wait for it
    written = []
    monkeypatch.setattr(sink._Tables, "append",
                        lambda self, rows, name: written.append((name, rows.num_rows)))
    tables = sink._Tables(spark, settings, "app", 3, may_be_retry=False)
    sink._write_alerts(tables, changes(INSERT, INSERT), late(), appended)
    assert written == [("alerts", 2)]
