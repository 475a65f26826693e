"""Pure shaping of the dashboard's query results: partial minutes, severities, GPS, sessions."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd

from dashboard import transform
from dashboard.catalog import COUNT_COLUMNS
from dashboard.data import window_start
from dashboard.ui import format_age, format_age_short, refresh_every

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def minutes(*offsets: int) -> pd.DataFrame:
    return pd.DataFrame({"window_start": [pd.Timestamp(T0 + timedelta(minutes=m))
                                          for m in offsets]})


def counts(**by_type: list[int]) -> dict[str, list[int]]:
    size = len(next(iter(by_type.values())))
    return {c: by_type.get(c, [0] * size) for c in COUNT_COLUMNS}


def test_a_minute_is_partial_until_the_newest_event_is_grace_past_its_end():
    until = transform.settled_through(T0 + timedelta(seconds=40), grace_s=30)
    assert until == T0 + timedelta(seconds=10)
    marked = transform.mark_partial(minutes(-2, -1, 0), "window_start", until)
    assert marked["partial"].tolist() == [False, False, True]
    marked = transform.mark_partial(minutes(-2, -1, 0), "window_start", T0)  # ends exactly: done
    assert marked["partial"].tolist() == [False, False, True]
    assert transform.mark_partial(minutes(-1), "window_start", None)["partial"].tolist() == [True]
    assert transform.settled_through(None, 30) is None


def test_last_complete_skips_the_partial_minute():
    marked = transform.mark_partial(minutes(-1, 0).assign(events=[7, 3]), "window_start", T0)
    assert transform.last_complete(marked)["events"] == 7
    assert transform.last_complete(marked.iloc[1:]) is None


def test_alerts_by_severity_sums_types_by_their_contract_severity():
    frame = minutes(0, 1).assign(partial=[False, True], alerts=[6, 1], **counts(
        overspeed_alerts=[1, 0], gps_jump_alerts=[2, 0], low_fuel_alerts=[0, 1],
        fuel_drop_alerts=[3, 0]))
    by_type = transform.alerts_by_type(frame, "window_start")
    assert by_type[["alert_type", "alerts"]].values.tolist() == [
        ["OVERSPEED", 1], ["LOW_FUEL", 1], ["FUEL_DROP", 3], ["GPS_JUMP", 2]]
    by_severity = transform.alerts_by_severity(frame, "window_start")
    assert by_severity[["severity", "alerts", "partial"]].values.tolist() == [
        ["HIGH", 3, False], ["MEDIUM", 3, False], ["LOW", 1, True]]


def test_worst_severity_per_row():
    frame = pd.DataFrame(counts(low_fuel_alerts=[1, 1, 0, 0], overspeed_alerts=[0, 2, 0, 0],
                                sustained_overheat_alerts=[0, 1, 0, 0],
                                speed_anomaly_alerts=[0, 0, 0, 4]))
    assert transform.worst_severity(frame).tolist() == ["LOW", "HIGH", None, "LOW"]


def test_invalid_positions_are_never_plotted():
    latest = pd.DataFrame({
        "car_id": ["ok", "zero", "none", "flagged", "range", "alerting"],
        "latitude": [26.3, 0.0, None, 26.3, 95.0, 26.4],
        "longitude": [50.1, 0.0, None, 50.1, 50.1, 50.2],
        "gps_valid": [True, True, False, False, True, True],
        "event_ts": [pd.Timestamp(T0)] * 6})
    recent = pd.DataFrame({"car_id": ["alerting", "zero"], **counts(
        engine_overheat_alerts=[1, 0], gps_invalid_alerts=[0, 3])})
    plotted, invalid = transform.fleet_positions(latest, recent)
    assert plotted["car_id"].tolist() == ["ok", "alerting"]
    assert plotted["colour"].tolist() == [[44, 160, 44], [214, 39, 40]]
    assert invalid["car_id"].tolist() == ["zero", "none", "flagged", "range"]
    assert invalid["worst_alert"].tolist() == ["LOW", None, None, None]
    assert transform.worst_first(plotted)["car_id"].tolist() == ["alerting", "ok"]


def test_driving_sessions_split_on_gaps():
    kpis = minutes(0, 1, 2, 10, 11).assign(events=[5, 6, 7, 8, 9], max_speed_kmph=[1, 9, 3, 4, 2],
                                            alerts=[0, 1, 0, 2, 0])
    sessions = transform.driving_sessions(kpis, gap_minutes=5)
    assert sessions.to_dict("records") == [
        {"started": pd.Timestamp(T0 + timedelta(minutes=10)),
         "ended": pd.Timestamp(T0 + timedelta(minutes=12)), "minutes": 2, "events": 17,
         "max_speed_kmph": 4, "alerts": 2},
        {"started": pd.Timestamp(T0), "ended": pd.Timestamp(T0 + timedelta(minutes=3)),
         "minutes": 3, "events": 18, "max_speed_kmph": 9, "alerts": 1}]
    assert transform.driving_sessions(kpis.iloc[:0], 5).empty


def test_batch_identity():
    batches = pd.DataFrame({"rows_in": [10, 10, 10], "valid_rows": [8, 7, 2],
                            "quarantined_rows": [2, 2, 8], "duplicate_rows": [1, 0, 3]})
    out = transform.batch_identity(batches)
    assert out["added_to_silver"].tolist() == [7, 7, -1]
    assert out["identity_holds"].tolist() == [True, False, False]


def test_window_start_and_formatting():
    assert window_start(T0 + timedelta(seconds=59), 60) == T0 - timedelta(minutes=59)
    assert window_start(T0, 1) == T0
    assert [format_age(s) for s in (4.6, 61, 3 * 3600 + 12 * 60, 2 * 86400 + 4 * 3600)] == [
        "5 s", "1 min 1 s", "3 h 12 min", "2 d 4 h"]
    assert transform.rate(1, 0) is None and transform.rate(1, 4) == 0.25


def test_refresh_pauses_except_while_postgres_is_down():
    assert refresh_every(5.0, paused=False, database_down=False) == 5.0
    assert refresh_every(5.0, paused=True, database_down=False) is None
    assert refresh_every(5.0, paused=True, database_down=True) == 5.0
    assert [format_age_short(s) for s in (119, 120, 7199, 7200, 172_800)] == [
        "119 s", "2 min", "119 min", "2 h", "2 d"]
