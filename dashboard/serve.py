"""`fleetlake dashboard`: run the Streamlit app headless on loopback."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from infra.procs import require_free_port, stop_process
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
    child = subprocess.Popen(dashboard_command(settings, port))
    # Stopping `fleetlake dashboard` (SIGTERM, Ctrl-C) must stop Streamlit too: left alone it
    # outlived its parent, and it does not always exit on SIGTERM, so it is killed after 10 s.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        return child.wait()
    except KeyboardInterrupt:
        return 130
    finally:
        stop_process(child, grace_s=10.0)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)
