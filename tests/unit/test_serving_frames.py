"""Batch tables -> typed Arrow -> COPY CSV: exact bytes, types, NULLs, timestamps, jsonb maps."""
from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pyarrow as pa
import pytest

from serving import frames
from serving.tables import TABLE_COLUMNS, TABLE_KEYS, TABLES

UTC = dt.UTC
ALERTS = TABLES["alerts"]
DQ = TABLES["dq_batch_metrics"]


def _alerts(**overrides) -> pd.DataFrame:
    row = {"alert_id": "a1", "event_id": "e1", "car_id": "car-1",
           "event_ts": pd.Timestamp("2024-03-01T10:00:00.123456Z"), "alert_type": "OVERSPEED",
           "severity": "MEDIUM", "message": "speed 150 > 140", "observed_value": 150.0,
           "threshold": 140.0}
    row.update(overrides)
    return pd.DataFrame([row])


def test_table_specs_are_consistent():
    assert TABLE_KEYS["device_minute_kpis"] == ("car_id", "window_start")
    assert TABLE_KEYS["dq_batch_metrics"] == ("query_id", "batch_id")
    for name, spec in TABLES.items():
        assert set(spec.keys) <= set(TABLE_COLUMNS[name])
        assert len(set(spec.column_names)) == len(spec.column_names)
        assert {t for _, t in spec.columns} <= set(frames.ARROW_TYPES)
    assert TABLES["fleet_minute_kpis"].column_names[-8:] == (
        "overspeed_alerts", "engine_overheat_alerts", "low_fuel_alerts", "gps_invalid_alerts",
        "sustained_overheat_alerts", "fuel_drop_alerts", "gps_jump_alerts",
        "speed_anomaly_alerts")


def test_conform_orders_and_casts_columns_to_postgres_types():
    frame = _alerts()[list(reversed(ALERTS.column_names))]
    table = frames.conform(ALERTS, frames.to_arrow(frame), ALERTS.column_names)
    assert table.column_names == list(ALERTS.column_names)
    assert table.schema.field("event_ts").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("observed_value").type == pa.float64()


def test_conform_names_missing_and_unexpected_columns():
    frame = _alerts().drop(columns=["message"]).assign(extra=1)
    with pytest.raises(ValueError, match=r"missing \['message'\], unexpected \['extra'\]"):
        frames.conform(ALERTS, frames.to_arrow(frame), ALERTS.column_names)


def test_conform_rejects_lossy_casts():
    frame = pd.DataFrame({"query_id": ["q"], "batch_id": [1.5]})
    with pytest.raises(ValueError, match=r"dq_batch_metrics.batch_id: cannot convert double"):
        frames.conform(DQ, frames.to_arrow(frame), DQ.keys)


def test_csv_quotes_every_string_and_leaves_nulls_unquoted():
    frame = pd.DataFrame([
        {**_alerts().iloc[0].to_dict(), "message": 'say "hi",\nnext line', "event_id": ""},
        {**_alerts(alert_id="a2").iloc[0].to_dict(), "message": None, "event_ts": pd.NaT,
         "observed_value": math.nan, "threshold": math.inf, "car_id": "\\."},
    ])
    table = frames.conform(ALERTS, frames.to_arrow(frame), ALERTS.column_names)
    assert frames.csv_bytes(table).decode() == (
        '"a1","","car-1","2024-03-01 10:00:00.123456Z","OVERSPEED","MEDIUM",'
        '"say ""hi"",\nnext line",150,140\n'
        '"a2","e1","\\.",,"OVERSPEED","MEDIUM",,,inf\n')


def test_naive_timestamps_are_utc_and_nanoseconds_are_truncated():
    frame = pd.DataFrame({"car_id": ["c"], "window_start": [pd.Timestamp("2024-01-01 12:00:00")]})
    spec = TABLES["device_minute_kpis"]
    table = frames.conform(spec, frames.to_arrow(frame), spec.keys)
    assert table.column("window_start").to_pylist() == [dt.datetime(2024, 1, 1, 12, tzinfo=UTC)]
    frame = frame.assign(window_start=[pd.Timestamp("2024-01-01T12:00:00.000001999Z")])
    table = frames.conform(spec, frames.to_arrow(frame), spec.keys)
    assert table.column("window_start").to_pylist() == [
        dt.datetime(2024, 1, 1, 12, 0, 0, 1, tzinfo=UTC)]


def test_jsonb_column_from_dicts_arrow_maps_and_text():
    reasons = pa.array([[("MISSING_FIELD:car_id", 2), ("BAD_TIMESTAMP", 1)], [], None],
                       pa.map_(pa.string(), pa.int64()))
    table = pa.table({"query_id": ["q"] * 3, "batch_id": [1, 2, 3], "processed_at": [None] * 3,
                      "rows_in": [3, 0, 0], "valid_rows": [1, 0, 0], "quarantined_rows": [2, 0, 0],
                      "duplicate_rows": [0, 0, 0], "quarantine_reasons": reasons})
    out = frames.conform(DQ, table, DQ.column_names).column("quarantine_reasons").to_pylist()
    assert out == ['{"BAD_TIMESTAMP": 1, "MISSING_FIELD:car_id": 2}', "{}", None]
    frame = pd.DataFrame({"query_id": ["q", "q", "q"], "batch_id": [1, 2, 3],
                          "quarantine_reasons": [{"A": 1}, None, '{"B": 2}']})
    converted = frames.to_arrow(frame).column("quarantine_reasons").to_pylist()
    assert converted == ['{"A": 1}', None, '{"B": 2}']


def test_nul_characters_become_replacement_characters():
    table = frames.conform(ALERTS, frames.to_arrow(_alerts(car_id="c\x00r")), ALERTS.column_names)
    assert table.column("car_id").to_pylist() == ["c\ufffdr"]
    assert frames._json_text({"k\x00": 1}) == '{"k\\ufffd": 1}'


def test_duplicate_keys_in_one_batch_are_rejected_with_an_example():
    frame = pd.concat([_alerts(), _alerts(message="other"), _alerts(alert_id="a2")])
    table = frames.conform(ALERTS, frames.to_arrow(frame), ALERTS.column_names)
    with pytest.raises(ValueError, match=r"1 primary key\(s\) appear more than once.*'a1'"):
        frames.check_unique_keys(ALERTS, table)
    frames.check_unique_keys(ALERTS, table.slice(1))


def test_to_arrow_rejects_other_objects():
    with pytest.raises(TypeError, match="expected a Spark, pandas or Arrow table, got list"):
        frames.to_arrow([{"a": 1}])
