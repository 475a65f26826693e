"""Render pages without a browser (Streamlit's AppTest) and EXPLAIN the queries they run.

Shared by scripts/bench_dashboard.py and the dashboard's tests; not used by the app itself.
"""
from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.config import CONFIG_KEY, AppConfig
from dashboard.db import observe_queries
from infra.settings import DashboardSettings

APP = Path(__file__).with_name("app.py")
PAGES = ("overview", "alerts", "fleet_map", "car", "data_quality", "pipeline")
# Tables whose size grows with time: no plan may read them without an index. device_latest
# (one row per car) is read whole by the fleet map, by design.
GROWING_TABLES = frozenset({"alerts", "device_minute_kpis", "fleet_minute_kpis",
                            "dq_batch_metrics", "pipeline_progress", "sync_ledger"})


# page title -> (URL path, Vega-Lite charts, tables, maps it draws), for browser checks; the car
# page is shown for car `car-1` (the tests' rows) or `car-0001` (dashboard/seed.py)
PAGE_ELEMENTS = {
    "Overview": ("", 5, 0, 0),
    "Alerts": ("alerts", 0, 1, 0),
    "Fleet map": ("fleet_map", 0, 2, 1),
    "Car detail": ("car?car={car}", 3, 2, 0),
    "Data quality": ("data_quality", 2, 1, 0),
    "Pipeline health": ("pipeline", 2, 1, 0),
}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def wait_drawn(page: Any, title: str, timeout_ms: int = 20_000) -> None:
    """Wait until a Playwright page shows `title` with all its charts, tables and map drawn."""
    from playwright.sync_api import expect

    _, charts, tables, maps = PAGE_ELEMENTS[title]
    main = page.locator('[data-testid="stMain"]')
    expect(main.locator("h1")).to_have_text(title, timeout=timeout_ms)
    for testid, count, drawn in (("stVegaLiteChart", charts, "canvas, svg"),
                                 ("stDataFrame", tables, "canvas"),
                                 ("stDeckGlJsonChart", maps, "canvas")):
        shown = main.locator(f'[data-testid="{testid}"]').filter(visible=True)
        expect(shown).to_have_count(count, timeout=timeout_ms)
        for element in shown.all():
            expect(element.locator(drawn).first).to_be_visible(timeout=timeout_ms)


def loopback_only(route: Any) -> None:
    """Playwright route handler: let the browser reach 127.0.0.1 only (no map tiles, no CDN)."""
    host = route.request.url.split("://", 1)[-1].split("/", 1)[0].split(":")[0]
    if host in ("127.0.0.1", "localhost"):
        route.continue_()
    else:
        route.abort()


@dataclass
class Rendered:
    """One page render: the AppTest, its wall time and the queries it ran."""

    app: AppTest
    seconds: float
    queries: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def render_page(dsn: str, page: str, query: Mapping[str, Any] | None = None,
                **settings: Any) -> Rendered:
    """Run the app on `page` with URL query parameters and empty caches; time the run."""
    st.cache_data.clear()
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state[CONFIG_KEY] = AppConfig(dsn, DashboardSettings(**settings))
    # before the first run a page is found by its file name: app.py's url_paths are the same
    at.switch_page(f"routes/{page}.py")
    at.query_params.update(query or {})
    seen: list[tuple[str, dict[str, Any]]] = []
    with observe_queries(lambda text, params: seen.append((text, params))):
        started = time.perf_counter()
        at.run()
        seconds = time.perf_counter() - started
    return Rendered(at, seconds, seen)


def time_reruns(rendered: Rendered, runs: int, clear_cache: bool) -> list[float]:
    """Seconds of `runs` more runs of the same page (same session), caches cleared or kept."""
    times = []
    for _ in range(runs):
        if clear_cache:
            st.cache_data.clear()
        started = time.perf_counter()
        rendered.app.run()
        times.append(time.perf_counter() - started)
    return times


@dataclass(frozen=True)
class Plan:
    """What EXPLAIN ANALYZE says about one query."""

    sql: str
    unindexed: tuple[str, ...]  # growing gold tables read by a Seq Scan
    alert_rows_read: int  # rows gold.alerts index scans returned or filtered out
    ms: float


def explain(dsn: str, text: str, params: Mapping[str, Any]) -> Plan:
    """EXPLAIN (ANALYZE, FORMAT JSON) one query and summarise its plan."""
    conn = psycopg2.connect(dsn)
    try:
        conn.set_session(readonly=True)
        with conn.cursor() as cur:
            cur.execute("SET TimeZone = 'UTC'")
            cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + text, dict(params))
            doc = cur.fetchone()[0]
    finally:
        conn.close()
    doc = json.loads(doc) if isinstance(doc, str) else doc
    nodes = list(_nodes(doc[0]["Plan"]))
    unindexed = tuple(sorted({n["Relation Name"] for n in nodes if n["Node Type"] == "Seq Scan"
                              and n.get("Relation Name") in GROWING_TABLES}))
    alert_rows = sum((n.get("Actual Rows", 0) + n.get("Rows Removed by Filter", 0))
                     * n.get("Actual Loops", 1)
                     for n in nodes if n.get("Relation Name") == "alerts")
    return Plan(text, unindexed, int(alert_rows), float(doc[0]["Execution Time"]))


def _nodes(plan: dict[str, Any]):
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)
