"""`fleetlake bench` end to end on a small workload: the contract keys, no timing assertions."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CONTRACT_KEYS = {"events", "backlog_eps", "startup_s", "limit_eps", "ratio", "freshness_ms",
                 "small_batch_ms", "peak_rss_mb", "cpu_s_per_1k", "machine"}


def test_small_bench_run_prints_every_contract_figure(base_settings):
    # the product's settings (tests/conftest.py turns code generation off for other children)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FLEETLAKE_") and k != "PYSPARK_SUBMIT_ARGS"}
    command = [sys.executable, "-m", "fleetlake.cli", "bench", "--events", "3000", "--rate",
               "300", "--live-seconds", "10", "--trickle-rate", "20", "--trickle-seconds", "5",
               "--json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)

    assert CONTRACT_KEYS <= set(result)
    assert result["events"] == 3000
    for path in ("threshold", "stateful"):
        assert set(result["freshness_ms"][path]) == {"p50", "p95", "p99", "n"}
    assert result["freshness_ms"]["threshold"]["n"] > 0
    assert result["freshness_ms"]["device_latest"]["n"] > 0
    assert result["small_batch_detail"]["threshold"]["n"] > 0
    assert result["limit_eps"] > 0 and result["backlog_eps"] > 0 and result["peak_rss_mb"] > 0
    assert result["machine"]["cpus"] == os.cpu_count()
    assert Path(result["freshness_png"]).stat().st_size > 10_000
    assert "bench: backlog:" in done.stderr and "bench: live:" in done.stderr  # progress
    # the phases' lakes and databases are removed afterwards
    run_dirs = sorted((Path(base_settings.local.home) / "bench").iterdir())
    assert not any((run_dirs[-1] / phase / "lake").exists() for phase in ("backlog", "live"))
    assert "fleetlake.gold batch" in (run_dirs[-1] / "backlog" / "pipeline-backlog.log").read_text()
