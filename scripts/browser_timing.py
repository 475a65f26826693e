"""Time dashboard pages in Debian's headless Chromium (for scripts/bench_dashboard.py --browser).

Serves `fleetlake dashboard` on the given database of the local cluster, opens it once, then
per round clicks each page in the sidebar and times the click until the page's title, charts,
tables and map are drawn (dashboard.benchkit.wait_drawn). The car page shows `car-0001` (opened
once by its URL; the sidebar keeps it). `first_load` times opening the app's URL in a new tab:
loading Streamlit's own JavaScript dominates it.
"""
from __future__ import annotations

import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from dashboard.benchkit import CHROMIUM_ARGS, PAGE_ELEMENTS, loopback_only, wait_drawn
from infra.procs import stop_process
from infra.settings import Settings

SLUG = {"Alerts": "alerts", "Fleet map": "fleet_map", "Car detail": "car",
        "Data quality": "data_quality", "Pipeline health": "pipeline", "Overview": "overview"}


def _serve(settings: Settings, database: str, workdir: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = workdir / "fleetlake.toml"
    config.write_text(f'[local]\npg_port = {settings.local.pg_port}\npg_database = "{database}"\n'
                      "[dashboard]\nrefresh_s = 60.0\n")
    proc = subprocess.Popen([sys.executable, "-m", "fleetlake.cli", "--config", str(config),
                             "dashboard", "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.3)
    stop_process(proc)
    raise RuntimeError("the dashboard did not start")


def time_pages(settings: Settings, database: str, rounds: int) -> dict[str, dict[str, float]]:
    """Median and max milliseconds from click (or URL) to a fully drawn page, per page."""
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {slug: [] for slug in (*SLUG.values(), "first_load")}
    with tempfile.TemporaryDirectory() as workdir:
        proc, url = _serve(settings, database, Path(workdir))
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=shutil.which("chromium"),
                                                     args=CHROMIUM_ARGS)
                context = browser.new_context(viewport={"width": 1440, "height": 1000})
                context.route("**/*", loopback_only)
                for _ in range(rounds + 1):
                    page = context.new_page()
                    started = time.perf_counter()
                    page.goto(url)
                    wait_drawn(page, "Overview", timeout_ms=60_000)
                    times["first_load"].append(1000 * (time.perf_counter() - started))
                    page.close()
                page = context.new_page()
                page.goto(f"{url}/" + PAGE_ELEMENTS["Car detail"][0].format(car="car-0001"))
                wait_drawn(page, "Car detail", timeout_ms=60_000)
                for _ in range(rounds + 1):  # the first round warms the browser up: dropped
                    for title in SLUG:
                        started = time.perf_counter()
                        page.locator('[data-testid="stSidebarNav"]').get_by_role(
                            "link", name=title).click()
                        wait_drawn(page, title, timeout_ms=60_000)
                        times[SLUG[title]].append(1000 * (time.perf_counter() - started))
                browser.close()
        finally:
            stop_process(proc)
    return {slug: {"median": round(statistics.median(ms[1:]), 1), "max": round(max(ms[1:]), 1)}
            for slug, ms in times.items()}
