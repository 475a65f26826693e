"""Every query the dashboard's pages run reads the growing gold tables through an index.

The database is seeded by dashboard/seed.py (the benchmark's generator, smaller); each page is
rendered by AppTest with a set of filters, every query it ran is recorded, and EXPLAIN ANALYZE of
each must show no Seq Scan on a growing table (benchkit.GROWING_TABLES: alerts above all) and
read at most 5,000 alert rows (of 300,000; a page is 50 or 200).
"""
from __future__ import annotations

from datetime import datetime, timezone

import psycopg2
import pytest
import streamlit as st

from dashboard.benchkit import explain, render_page
from dashboard.db import observe_queries
from dashboard.seed import SeedSize, seed_gold
from serving.db import temporary_database
from serving.migrate import apply_migrations

from .dashboard_app import reader_dsn

pytestmark = pytest.mark.integration

END = datetime(2026, 3, 1, 12, 0, 30, tzinfo=timezone.utc)
SIZE = SeedSize(cars=100, minutes=3000, alerts=300_000)
SCENARIOS = [
    ("overview", {}, {}), ("overview", {}, {"partial_grace_s": 0.0}),
    ("alerts", {}, {}),
    ("alerts", {"type": "ENGINE_OVERHEAT"}, {}),
    ("alerts", {"type": ["OVERSPEED", "FUEL_DROP", "GPS_JUMP"]}, {}),
    ("alerts", {"severity": "HIGH"}, {}),
    ("alerts", {"severity": ["LOW", "MEDIUM"], "car": "car-0007"}, {}),
    ("alerts", {"car": "car-0042"}, {"page_size": 200}),
    ("alerts", {"since": "2026-02-28T20:00", "until": "2026-02-28T21:00"}, {}),
    ("alerts", {"type": "no such type"}, {}),
    ("fleet_map", {}, {}), ("fleet_map", {}, {"recent_alert_minutes": 240}),
    ("car", {"car": "car-0003"}, {}), ("car", {}, {}),
    ("data_quality", {}, {}), ("pipeline", {}, {}),
]


@pytest.fixture(scope="module")
def seeded(base_settings) -> str:
    with temporary_database(base_settings.effective_pg_dsn, "fleetlake_test") as owner:
        apply_migrations(owner, base_settings.local.pg_reader if base_settings.uses_local_pg
                         else None)
        seed_gold(owner, SIZE, END)
        yield reader_dsn(owner, base_settings)


def test_every_page_query_uses_an_index(seeded):
    queries = []
    for page, query, settings in SCENARIOS:
        rendered = render_page(seeded, page, query, **settings)
        assert not rendered.app.exception, (page, query)
        assert not rendered.app.error, (page, query, [e.value for e in rendered.app.error])
        queries += rendered.queries
    # the alerts page's next page too (keyset cursor after the first page's last row)
    rendered = render_page(seeded, "alerts", {"severity": "MEDIUM"})
    rendered.app.button(key="alerts_older").click().run()
    assert rendered.app.caption[0].value.startswith("Page 2 · 50 alert(s)")
    queries.append(_last_alerts_query(rendered.app))
    reads_alerts = 0
    for text, params in queries:
        plan = explain(seeded, text, params)
        assert plan.unindexed == (), f"Seq Scan on {plan.unindexed}:\n{text}\n{params}"
        assert plan.alert_rows_read <= 5_000, (plan.alert_rows_read, text, params)
        reads_alerts += "gold.alerts" in text
    assert reads_alerts == 10  # 8 alerts scenarios, the car page, the next page


def test_the_freshness_query_uses_the_index_of_migration_0005(seeded):
    conn = psycopg2.connect(seeded)
    try:
        with conn.cursor() as cur:
            cur.execute("EXPLAIN SELECT max(event_ts) FROM gold.device_latest")
            text = "\n".join(r[0] for r in cur.fetchall())
    finally:
        conn.close()
    assert "device_latest_event_ts_idx" in text


def _last_alerts_query(app):
    """Re-record the alerts page's query with the cursor now in Session State."""
    seen = []
    st.cache_data.clear()
    with observe_queries(lambda text, params: seen.append((text, params))):
        app.run()
    (query,) = [q for q in seen if "gold.alerts" in q[0]]
    assert "after_ts" in query[1]
    return query
