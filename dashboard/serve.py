"""`fleetlake dashboard`: run the Streamlit app headless on loopback."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from infra.procs import require_free_port
from infra.settings import Settings

APP = Path(__file__).with_name("app.py")


def dashboard_command(settings: Settings, port: int) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(APP),
            "--server.headless", "true", "--server.address", "127.0.0.1",
            "--server.port", str(port), "--browser.gatherUsageStats", "false",
            "--global.developmentMode", "false",
            "--", "--dsn", settings.reader_pg_dsn]


def serve_dashboard(settings: Settings, port: int) -> int:
    require_free_port(port, "the dashboard", "pass another --port")
    print(f"dashboard: http://127.0.0.1:{port}", file=sys.stderr, flush=True)
    return subprocess.call(dashboard_command(settings, port))
