"""`fleetlake dashboard` in a real browser: Debian's Chromium, driven by Playwright.

The dashboard serves a fresh database holding the known rows (dashboard_rows.py, timed to end
now), read through the read-only role. Each page is opened and its key elements checked, with a
screenshot (into FLEETLAKE_DASHBOARD_SCREENSHOTS too, when set: docs/img/ was made that way).
Then PostgreSQL is stopped: every page shows the unreachable banner, an open page switches to it
by itself, and open pages show their data again by themselves once PostgreSQL is back. The
browser may reach 127.0.0.1 only.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dashboard.benchkit import CHROMIUM_ARGS, PAGE_ELEMENTS, loopback_only, wait_drawn
from infra.postgres_local import start_postgres, stop_postgres
from infra.procs import port_open
from serving.db import temporary_database

from .dashboard_app import known_database

pytestmark = pytest.mark.integration

UNREACHABLE = "is unreachable"
# page title -> texts it must show (numbers from dashboard_rows.py); the charts, tables and map
# each page must draw are benchkit.PAGE_ELEMENTS
TEXTS = {
    "Overview": ["Events / min", "640", "Alerts in window", "16"],
    "Alerts": ["Type", "Severity", "Rows per page", "Older",
               "Page 1 · 50 alert(s) · newest first"],
    "Fleet map": ["On the map", "Invalid GPS", "Cars by worst recent alert"],
    "Car detail": ["88.5", "at 26.30000, 50.10000", "Driving sessions"],
    "Data quality": ["Identity breaches", "1,690", "No data-quality report yet"],
    "Pipeline health": ["Query fleetlake_gold", "Query fleetlake_hot", "2,600 ms",
                        "PostgreSQL sync"],
}


def url_path(title: str) -> str:
    return PAGE_ELEMENTS[title][0].format(car="car-1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as response:
                if response.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    output = proc.stdout.read() if proc.poll() is not None and proc.stdout else ""
    raise AssertionError(f"dashboard did not come up: {output}")


@pytest.fixture(scope="module")
def dashboard_url(base_settings, tmp_path_factory):
    """`fleetlake dashboard` on a fresh database of known rows; stopped (and checked) after."""
    now = datetime.now(timezone.utc)
    base = (now - timedelta(seconds=45)).replace(second=0, microsecond=0)
    config = tmp_path_factory.mktemp("dashboard") / "fleetlake.toml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETLAKE_")}
    with temporary_database(base_settings.effective_pg_dsn, "fleetlake_test") as owner:
        known_database(owner, base_settings, base)
        database = owner.split("dbname=")[1].split()[0]
        if base_settings.uses_local_pg:
            config.write_text(f'[local]\npg_port = {base_settings.local.pg_port}\n'
                              f'pg_database = "{database}"\n')
        else:
            env["FLEETLAKE_PG_DSN"] = owner
            config.write_text("")
        with config.open("a") as toml:
            toml.write("[dashboard]\nrefresh_s = 2.0\nstale_after_s = 3600.0\n")
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "fleetlake.cli", "--config", str(config),
                                 "dashboard", "--port", str(port)], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        try:
            wait_healthy(f"http://127.0.0.1:{port}", proc)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        # stopping `fleetlake dashboard` stops Streamlit too (no orphan still serving the port)
        assert not port_open("127.0.0.1", port)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is missing: run `make setup`"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        context = chromium.new_context(viewport={"width": 1440, "height": 1000})
        context.route("**/*", loopback_only)
        yield context
        chromium.close()


def check_page(page, title: str) -> None:
    """The page shows its title, texts, charts, tables and map, and no traceback or banner."""
    from playwright.sync_api import expect

    main = page.locator('[data-testid="stMain"]')
    wait_drawn(page, title)
    for text in TEXTS[title]:
        expect(main).to_contain_text(text, timeout=20_000)
    expect(main).not_to_contain_text("Traceback")
    expect(main).not_to_contain_text(UNREACHABLE)


def save(page, name: str, tmp_path: Path) -> None:
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    target = os.environ.get("FLEETLAKE_DASHBOARD_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)


def test_every_page_in_chromium(dashboard_url, browser, tmp_path):
    page = browser.new_page()
    page.goto(dashboard_url)  # the default page; then the sidebar, as a user would
    check_page(page, "Overview")
    nav = page.locator('[data-testid="stSidebarNav"]')
    for title in TEXTS:
        path = url_path(title)
        if title == "Car detail":  # a car's page is opened by its link (?car=...)
            page.goto(f"{dashboard_url}/{path}")
        elif title != "Overview":
            nav.get_by_role("link", name=title).click()
        check_page(page, title)
        save(page, path.split("?")[0] or "overview", tmp_path)
    page.close()


def expect_banner(page, title: str) -> None:
    """The page titled `title` shows the unreachable banner (and no traceback)."""
    from playwright.sync_api import expect

    main = page.locator('[data-testid="stMain"]')
    expect(main.locator("h1")).to_have_text(title, timeout=30_000)
    expect(main.locator('[data-testid="stAlertContentError"]')).to_contain_text(
        "PostgreSQL at 127.0.0.1:", timeout=30_000)
    expect(main).to_contain_text(UNREACHABLE)
    expect(main).to_contain_text("fleetlake services up")
    expect(main).not_to_contain_text("Traceback")


def test_postgres_outage_is_a_banner_on_every_page_and_heals(dashboard_url, browser, base_settings,
                                                             tmp_path):
    """One tab watches the overview through the outage; another visits every page during it
    and stays on a car's page. Nobody reloads: the 2 s auto-refresh notices both changes."""
    if not base_settings.uses_local_pg:
        pytest.skip("needs the embedded PostgreSQL, which the test stops and starts")
    watcher = browser.new_page()
    watcher.goto(dashboard_url)
    check_page(watcher, "Overview")
    visitor = browser.new_page()
    try:
        stop_postgres(base_settings)
        expect_banner(watcher, "Overview")
        visitor.goto(f"{dashboard_url}/alerts")
        expect_banner(visitor, "Alerts")
        nav = visitor.locator('[data-testid="stSidebarNav"]')
        for title in ("Overview", "Fleet map", "Car detail", "Data quality", "Pipeline health"):
            nav.get_by_role("link", name=title).click()
            expect_banner(visitor, title)
        visitor.goto(f"{dashboard_url}/{url_path('Car detail')}")
        expect_banner(visitor, "Car detail")
        save(watcher, "outage", tmp_path)
    finally:
        start_postgres(base_settings)
    for tab, title in ((watcher, "Overview"), (visitor, "Car detail")):
        tab.bring_to_front()
        check_page(tab, title)
        tab.close()
