"""`fleetlake demo`, the README's first command: with the settings it was given (`--config`),
traffic reaches PostgreSQL and the dashboard serves; one Ctrl-C stops every child (the pipeline
with its one clean line) and exits 0."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from fleetlake.stopping import STOPPED_LINE
from infra.procs import port_open
from serving.db import connect, temporary_database

from .test_dashboard import free_port, wait_healthy
from .test_restart import NOISE

pytestmark = pytest.mark.integration


def cars_served(dsn: str) -> int:
    """Cars in gold.device_latest (0 until the pipeline created and filled it)."""
    try:
        with connect(dsn, "fleetlake-tests") as conn, conn.cursor() as cur:
            cur.execute("SELECT to_regclass('gold.device_latest') IS NOT NULL")
            if not cur.fetchone()[0]:
                return 0
            cur.execute("SELECT count(*) FROM gold.device_latest")
            return cur.fetchone()[0]
    except Exception:  # noqa: BLE001 - not there yet: the caller polls
        return 0


def wait_until(ready, demo: subprocess.Popen, what: str, timeout_s: float = 240.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert demo.poll() is None, f"the demo exited ({demo.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} within {timeout_s:.0f}s"
        time.sleep(1.0)


def test_demo_serves_then_stops_every_child_on_one_ctrl_c(base_settings, tmp_path):
    if not base_settings.uses_local_pg:
        pytest.skip("points the demo's embedded PostgreSQL at a database of its own")
    pipeline_log = Path(base_settings.local.home) / "logs" / "pipeline.log"
    logged_before = pipeline_log.stat().st_size if pipeline_log.exists() else 0
    with temporary_database(base_settings.effective_pg_dsn, "fleetlake_test") as dsn:
        config = tmp_path / "fleetlake.toml"
        config.write_text(f'[local]\npg_port = {base_settings.local.pg_port}\n'
                          f'pg_database = "{dsn.split("dbname=")[1].split()[0]}"\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETLAKE_")}
        env.update(FLEETLAKE_TOPIC=f"t_{uuid.uuid4().hex[:12]}",
                   FLEETLAKE_LAKE_ROOT=str(tmp_path / "lake"))
        port = free_port()
        demo = subprocess.Popen([sys.executable, "-m", "fleetlake.cli", "--config", str(config),
                                 "demo", "--rate", "100", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            wait_until(lambda: cars_served(dsn) > 0, demo, "car in gold.device_latest")
            wait_healthy(f"http://127.0.0.1:{port}", demo)
            children = psutil.Process(demo.pid).children(recursive=True)
            commands = " | ".join(" ".join(child.cmdline()) for child in children)
            os.kill(demo.pid, signal.SIGINT)  # Ctrl-C in its terminal reaches the demo only
            code = demo.wait(timeout=120)
            _, alive = psutil.wait_procs(children, timeout=30)
        finally:
            if demo.poll() is None:  # the children have sessions of their own: kill each
                for proc in [*psutil.Process(demo.pid).children(recursive=True), demo]:
                    proc.kill()
                demo.wait()
        stderr = demo.stderr.read()

    assert code == 0, stderr[-3000:]
    assert "fleetlake demo is running" in stderr and "demo: stopping ..." in stderr
    assert [p.pid for p in alive] == []  # pipeline, producer, dashboard and Streamlit
    for child in ("pipeline run", "produce", "dashboard", "streamlit run"):
        assert child in commands, commands
    assert not port_open("127.0.0.1", port)
    with pipeline_log.open(errors="replace") as log:
        log.seek(logged_before)
        logged = log.read().splitlines()
    assert STOPPED_LINE in logged, logged[-40:]
    assert [line for line in logged if NOISE.search(line)] == []
