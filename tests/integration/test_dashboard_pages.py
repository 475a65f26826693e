"""Every dashboard page, rendered by Streamlit's AppTest against PostgreSQL holding known rows
(tests/integration/dashboard_rows.py): the numbers on the page are asserted."""
from __future__ import annotations

import json
import socket
from datetime import timedelta

import pandas as pd
import psycopg2
import pytest

from serving.db import temporary_database
from serving.migrate import apply_migrations

from .dashboard_app import BASE, PAGES, known_database, metrics, open_page
from .dashboard_app import frame as table
from .dashboard_rows import alerts as known_alerts

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def owner_dsn(base_settings):
    with temporary_database(base_settings.effective_pg_dsn, "fleetlake_test") as dsn:
        yield dsn


@pytest.fixture(scope="module")
def dsn(owner_dsn, base_settings) -> str:
    """The reader's DSN on a database with the known rows (read by every test here)."""
    return known_database(owner_dsn, base_settings)


def ts(minutes: float = 0, seconds: float = 0) -> pd.Timestamp:
    return pd.Timestamp(BASE + timedelta(minutes=minutes, seconds=seconds))


def test_overview_tiles_partial_minute_and_stale_banner(dsn):
    at = open_page(dsn, "overview")
    assert metrics(at)[:4] == [("Events / min", "640"), ("Active cars", "4"),
                               ("Alerts in window", "16"), ("Quarantine rate", "1.01 %")]
    assert at.metric[0].delta == "10"  # 11:59 against 11:58
    assert metrics(at)[4][0] == "Newest event age" and metrics(at)[4][1].endswith(" d")
    assert len(at.warning) == 1 and at.warning[0].value.startswith(
        "Stale data: the newest event in gold is ")
    assert "(2026-03-01 12:00:40 UTC; the limit is 1 min 0 s)" in at.warning[0].value
    minutes = table(at, "window_start", "partial")
    assert minutes["window_start"].tolist() == [ts(-m) for m in range(6)]
    assert minutes["partial"].tolist() == [True, False, False, False, False, False]
    assert minutes["events"].tolist() == [125, 640, 630, 620, 610, 600]
    assert minutes["alerts"].tolist() == [1, 4, 2, 3, 2, 4]
    assert any("Partial (still filling, drawn hollow): 12:00 (125 events so far)" in c.value
               for c in at.caption)
    assert len(at.get("vega_lite_chart")) == 5


def test_overview_grace_decides_which_minutes_are_partial(dsn):
    # newest event 12:00:40; with a 100 s grace 11:59 (ending 12:00:00 > 11:59:00) is partial too
    at = open_page(dsn, "overview", partial_grace_s=100.0, stale_after_s=10**9)
    assert table(at, "partial")["partial"].tolist() == [True, True, False, False, False, False]
    assert metrics(at)[:2] == [("Events / min", "630"), ("Active cars", "4")]
    assert not at.warning  # under the (huge) stale limit: no banner


def test_overview_window_keeps_the_latest_minutes(dsn):
    at = open_page(dsn, "overview")
    at.segmented_control(key="overview_window").set_value(15).run()
    assert len(table(at, "partial")) == 6  # all six minutes are in the latest 15
    # a window of 1 minute would hold 12:00 only: checked on the query level
    from dashboard import data
    assert data.fleet_minutes(dsn, 1)["events"].tolist() == [125]
    assert data.fleet_minutes(dsn, 2)["events"].tolist() == [640, 125]


def expected_alerts(keep=lambda a: True) -> list[str]:
    rows = sorted((a for a in known_alerts(BASE) if keep(a)),
                  key=lambda a: (a["event_ts"], a["alert_id"]), reverse=True)
    return [a["alert_id"] for a in rows]


def test_alerts_newest_first_with_keyset_pages(dsn):
    at = open_page(dsn, "alerts", page_size=25)
    everything = expected_alerts()
    assert len(everything) == 76
    seen = []
    for page in range(1, 5):
        rows = table(at, "alert_id", "car")
        seen += rows["alert_id"].tolist()
        assert at.caption[0].value.startswith(f"Page {page} · {len(rows)} alert(s)")
        if page < 4:
            at.button(key="alerts_older").click().run()
    assert seen == everything  # no row lost or repeated, ties (same instant) included
    assert at.caption[0].value == "Page 4 · 1 alert(s) · newest first · no older alerts match"
    at.button(key="alerts_newer").click().run()
    assert table(at, "alert_id")["alert_id"].tolist() == everything[50:75]
    at.button(key="alerts_newest").click().run()
    assert table(at, "alert_id")["alert_id"].tolist() == everything[:25]


def test_alerts_rows_link_to_their_car(dsn):
    rows = table(open_page(dsn, "alerts"), "alert_id", "car")
    first = rows.iloc[0]
    assert (first["alert_id"], first["car"], first["alert_type"], first["severity"]) == (
        "al-r06", "car?car=car-2", "OVERSPEED", "MEDIUM")
    assert first["time (UTC)"] == ts(0, 15)


@pytest.mark.parametrize("query, keep", [
    ({"type": "ENGINE_OVERHEAT"}, lambda a: a["alert_type"] == "ENGINE_OVERHEAT"),
    ({"severity": "HIGH"}, lambda a: a["severity"] == "HIGH"),
    ({"severity": "LOW"}, lambda a: a["severity"] == "LOW"),
    ({"type": ["OVERSPEED", "LOW_FUEL"]}, lambda a: a["alert_type"] in ("OVERSPEED", "LOW_FUEL")),
    ({"type": ["OVERSPEED", "GPS_INVALID"], "severity": "LOW"},
     lambda a: a["alert_type"] == "GPS_INVALID"),
    ({"car": "car-4"}, lambda a: a["car_id"] == "car-4"),
    ({"car": "car-2", "type": "OVERSPEED"}, lambda a: a["car_id"] == "car-2"),
    ({"since": "2026-03-01T11:57", "until": "2026-03-01T11:59"},
     lambda a: ts(-3) <= a["event_ts"] < ts(-1)),
    ({"car": "car-9"}, lambda a: False),
])
def test_alert_filters(dsn, query, keep):
    at = open_page(dsn, "alerts", query, page_size=200)
    expected = expected_alerts(keep)
    shown = table(at, "alert_id")["alert_id"].tolist() if expected else []
    assert shown == expected
    if not expected:
        assert [i.value for i in at.info] == ["No alert matches these filters."]


def test_fleet_map_colours_cars_and_lists_invalid_gps(dsn):
    at = open_page(dsn, "fleet_map")
    assert metrics(at) == [("Cars", "5"), ("On the map", "3"), ("Invalid GPS", "2"),
                           ("With alerts (last 15 min)", "4")]
    assert [s.value for s in at.subheader] == ["Invalid GPS", "Cars by worst recent alert"]
    invalid, ranked = (d.value for d in at.dataframe)
    assert invalid["car"].tolist() == ["car?car=car-3", "car?car=car-4"]
    assert invalid["worst_alert"].tolist() == ["LOW", "LOW"]
    assert ranked["car"].tolist() == ["car?car=car-1", "car?car=car-2", "car?car=car-5"]
    assert ranked["worst_alert"].tolist() == ["HIGH", "MEDIUM", None]
    spec = json.loads(at.get("deck_gl_json_chart")[0].proto.json)
    points = {p["car_id"]: p for p in spec["layers"][0]["data"]}
    assert sorted(points) == ["car-1", "car-2", "car-5"]  # never (0, 0), never a missing fix
    assert [points[c]["colour"] for c in ("car-1", "car-2", "car-5")] == [
        [214, 39, 40], [255, 127, 14], [44, 160, 44]]
    assert (points["car-1"]["latitude"], points["car-1"]["longitude"]) == (26.3, 50.1)


def test_fleet_map_recent_window_is_configurable(dsn):
    # only 12:00 is recent: car-2's OVERSPEED there is the one alert
    at = open_page(dsn, "fleet_map", recent_alert_minutes=1)
    assert metrics(at)[3] == ("With alerts (last 1 min)", "1")
    assert at.dataframe[1].value["worst_alert"].tolist() == ["MEDIUM", None, None]


def test_car_detail(dsn):
    at = open_page(dsn, "car", {"car": "car-1"})
    assert metrics(at) == [("Speed km/h", "88.5"), ("Engine °C", "97.5"), ("Fuel %", "42.0"),
                           ("GPS", "valid"), ("Alerts in window", "2")]
    assert at.caption[0].value == ("Latest reading 2026-03-01 12:00:40 UTC at 26.30000, "
                                   "50.10000, trip trip-car-1.")
    alerts = table(at, "alert_type", "severity", "message")
    assert alerts["alert_id"].tolist() == ["al-r01", "al-r00"]
    assert alerts["alert_type"].tolist() == ["ENGINE_OVERHEAT", "ENGINE_OVERHEAT"]
    sessions = table(at, "started", "ended")
    assert sessions.to_dict("records") == [{
        "started": ts(-5), "ended": ts(1), "minutes": 6, "events": 790,
        "max_speed_kmph": 105.0, "alerts": 2}]
    assert len(at.get("vega_lite_chart")) == 3
    assert any("6 minute(s) with events, 2 alert(s) marked" in c.value for c in at.caption)


def test_car_detail_invalid_gps_and_unknown_car(dsn):
    at = open_page(dsn, "car", {"car": "car-3"})
    assert ("GPS", "invalid") in metrics(at)
    assert at.caption[0].value == ("Latest reading 2026-03-01 12:00:30 UTC without a valid "
                                   "position, trip trip-car-3.")
    at = open_page(dsn, "car", {"car": "car-404"})
    assert [w.value for w in at.warning] == [
        "This car is not in gold (no latest reading, no minute KPIs)."]
    at = open_page(dsn, "car")
    assert [i.value for i in at.info] == [
        "Choose a car, or open one from the Alerts or Fleet map page."]
    assert at.selectbox(key="car").options == ["car-1", "car-2", "car-3", "car-4", "car-5"]


def test_data_quality_identity_and_no_report_yet(dsn):
    at = open_page(dsn, "data_quality")
    assert metrics(at) == [("Batches", "4"), ("Rows in", "1,690"), ("Quarantine rate", "1.01 %"),
                           ("Duplicates", "4"), ("Identity breaches", "1")]
    assert [e.value for e in at.error] == [
        "1 of the newest 4 batches break the identity: batch ids 2."]
    batches = table(at, "batch_id", "identity_holds")
    assert batches["batch_id"].tolist() == [3, 2, 1, 0]
    assert batches["added_to_silver"].tolist() == [98, 289, 640, 637]
    assert batches["identity_holds"].tolist() == [True, False, True, True]
    assert at.info[-1].value.startswith("No data-quality report yet")


def test_data_quality_shows_the_latest_dq_report(owner_dsn, dsn):
    def result(run, hours, suite, name, severity, success):
        return (run, BASE + timedelta(hours=hours), suite, name, "expect_x", None, severity,
                success, '{"observed_value": 1}')

    conn = psycopg2.connect(owner_dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.executemany("INSERT INTO gold.dq_results VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)", [
                result("old", 0, "gold/alerts", "severity in set", "critical", False),
                result("new", 1, "silver/telemetry", "event_id unique", "critical", True),
                result("new", 1, "gold/alerts", "alert_id unique", "critical", False),
                result("new", 1, "silver/telemetry", "newest event fresh", "warning", False)])
        at = open_page(dsn, "data_quality")
        assert metrics(at)[-3:] == [("Last report", "2026-03-01 13:00:00 UTC"),
                                    ("Expectations", "3"), ("Failed (critical)", "2 (1)")]
        assert [e.value for e in at.error][-1] == (
            "Critical expectations failed: gold/alerts: alert_id unique")
        report = table(at, "expectation", "success")
        assert report[["suite", "expectation", "success"]].values.tolist() == [
            ["gold/alerts", "alert_id unique", False],
            ["silver/telemetry", "newest event fresh", False],
            ["silver/telemetry", "event_id unique", True]]
    finally:
        with conn, conn.cursor() as cur:
            cur.execute("DELETE FROM gold.dq_results")
        conn.close()


def test_pipeline_health(dsn):
    at = open_page(dsn, "pipeline")
    shown = metrics(at)
    assert [m for m in shown if m[0] != "Last batch"] == [
        ("Duration", "2,600 ms"), ("Input rows", "510"), ("Source lag", "7"),
        ("Duration", "170 ms"), ("Input rows", "44"), ("Source lag", "1")]
    assert [s.value for s in at.subheader] == ["Query fleetlake_gold", "Query fleetlake_hot",
                                               "PostgreSQL sync"]
    assert any(w.value.startswith("fleetlake_hot has not started a batch for ")
               for w in at.warning)
    sync = table(at, "app_id", "applied_at")
    assert sync[["app_id", "query_name", "batch_id"]].values.tolist() == [
        ["hot-q", "fleetlake_hot", 2], ["gold-q", "fleetlake_gold", 1]]
    assert sync["applied_at"].tolist() == [ts(0, 35), ts(0, 25)]


@pytest.mark.parametrize("page, query",
                         [(p, None) for p in PAGES] + [("car", {"car": "car-1"})])
def test_unreachable_postgres_is_a_banner_not_a_traceback(page, query):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dsn = f"postgresql://fleetlake_reader@127.0.0.1:{port}/fleetlake"
    at = open_page(dsn, page, query)
    assert len(at.error) == 1
    assert at.error[0].value.startswith(f"PostgreSQL at 127.0.0.1:{port} is unreachable (")
    assert at.error[0].value.endswith("start it with `fleetlake services up`. The page shows "
                                      "the data again by itself once PostgreSQL answers.")
    assert not at.exception


EMPTY = {
    "overview": ["No minute KPIs in gold yet: they appear about 30 s after the pipeline starts."],
    "alerts": ["No alert matches these filters."],
    "fleet_map": ["No car has a valid GPS position yet."],
    "car": ["Choose a car, or open one from the Alerts or Fleet map page."],
    "data_quality": ["No batch metrics in gold yet (gold.dq_batch_metrics is empty).",
                     "No data-quality report yet: run `fleetlake dq report` (or set "
                     "[dq] report_every_minutes for `pipeline run`); its results land in "
                     "gold.dq_results."],
    "pipeline": ["No streaming progress in gold.pipeline_progress yet: is the pipeline running "
                 "(`fleetlake pipeline run`)?", "Nothing synced yet (gold.sync_ledger is empty)."],
}


@pytest.mark.parametrize("page", PAGES)
def test_empty_gold_tables_say_so(make_pg_database, base_settings, page):
    dsn = make_pg_database()
    apply_migrations(dsn, None)
    at = open_page(dsn, page)
    assert [i.value for i in at.info] == EMPTY[page]
    no_events = ("No events in gold yet: start the pipeline (`fleetlake pipeline run`) and "
                 "traffic (`fleetlake produce`).")
    assert [w.value for w in at.warning] == ([] if page == "alerts" else [no_events])
    assert not at.error


def test_missing_gold_schema_is_a_banner(make_pg_database):
    at = open_page(make_pg_database(), "overview")
    assert len(at.error) == 1 and at.error[0].value.startswith(
        "The gold tables are not in PostgreSQL at ")
