"""`fleetlake dashboard` serves the Streamlit app headless on loopback."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from infra.procs import port_open

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def test_dashboard_serves_headless(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETLAKE_")}
    proc = subprocess.Popen([sys.executable, "-m", "fleetlake.cli", "dashboard", "--port",
                             str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    try:
        deadline, health = time.monotonic() + 90, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = get(f"http://127.0.0.1:{port}/_stcore/health")
                break
            except OSError:
                time.sleep(0.5)
        assert health == (200, "ok"), proc.stdout.read() if proc.poll() is not None else health
        status, page = get(f"http://127.0.0.1:{port}/")
        assert status == 200 and "<title>" in page
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # stopping `fleetlake dashboard` stops Streamlit too (no orphan still serving the port)
    assert not port_open("127.0.0.1", port)


def test_dashboard_port_taken_is_one_clear_error(tmp_path):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "fleetlake.cli", "dashboard", "--port",
                                 str(port)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"fleetlake: error: port {port} for the dashboard is already "
                                     "taken by another process: stop that process or pass "
                                     "another --port")
