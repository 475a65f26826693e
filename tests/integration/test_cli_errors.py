"""Errors a user can hit give one line naming the problem and the fix, never a stack trace."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def run_cli(args: list[str], env_extra: dict[str, str], tmp_path, path: str | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETLAKE_")}
    env.update({"FLEETLAKE_LAKE_ROOT": str(tmp_path / "lake"), **env_extra})
    if path is not None:
        env["PATH"] = path
        env.pop("JAVA_HOME", None)
    return subprocess.run([sys.executable, "-m", "fleetlake.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def assert_one_line_error(result, *fragments: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, result.stderr
    assert lines[-1].startswith("fleetlake: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[-1]


def test_kafka_unreachable(tmp_path):
    result = run_cli(["services", "up"], {"FLEETLAKE_KAFKA_BOOTSTRAP": "127.0.0.1:1"}, tmp_path)
    assert_one_line_error(result, "Kafka is not reachable at 127.0.0.1:1", "FLEETLAKE_KAFKA_BOOTSTRAP")


def test_postgres_unreachable(tmp_path, base_settings):
    result = run_cli(["services", "up"], {
        "FLEETLAKE_KAFKA_BOOTSTRAP": base_settings.effective_kafka_bootstrap,
        "FLEETLAKE_PG_DSN": "postgresql://nobody@127.0.0.1:1/none"}, tmp_path)
    assert_one_line_error(result, "PostgreSQL is not reachable", "FLEETLAKE_PG_DSN")


def test_port_already_taken(tmp_path):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        config = tmp_path / "f.toml"
        config.write_text(f'[local]\nhome = "{tmp_path / "local"}"\nkafka_port = {port}\n')
        result = run_cli(["services", "up"], {"FLEETLAKE_CONFIG": str(config)}, tmp_path)
    assert_one_line_error(result, f"port {port} for Kafka is already taken", "kafka_port")


def test_java_missing(tmp_path, base_settings):
    result = run_cli(["pipeline", "run", "--available-now", "--no-services"], {}, tmp_path,
                     path=str(tmp_path))
    assert_one_line_error(result, "Java is not installed", "openjdk-17")


def test_bad_config(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[alerts]\noverspeed_kmph = 'fast'\n")
    result = run_cli(["services", "status"], {"FLEETLAKE_CONFIG": str(config)}, tmp_path)
    assert_one_line_error(result, "alerts.overspeed_kmph", "must be a number")


def test_status_json_contract(tmp_path):
    import json

    result = run_cli(["services", "status", "--json"], {}, tmp_path)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert {"kafka_bootstrap", "pg_dsn", "lake_root"} <= status.keys()
    assert status["lake_root"] == str(tmp_path / "lake")


def test_a_lake_of_the_single_query_version_is_refused(tmp_path, base_settings):
    # fleetlake 0.1 kept one checkpoint; starting the hot query on it would re-read the topic
    (tmp_path / "lake" / "_checkpoints" / "fleetlake_medallion" / "offsets").mkdir(parents=True)
    result = run_cli(["pipeline", "run", "--available-now", "--no-services"], {
        "FLEETLAKE_KAFKA_BOOTSTRAP": base_settings.effective_kafka_bootstrap,
        "FLEETLAKE_PG_DSN": base_settings.effective_pg_dsn}, tmp_path)
    assert_one_line_error(result, "written by fleetlake 0.1", "FLEETLAKE_LAKE_ROOT")
    assert not (tmp_path / "lake" / "_checkpoints" / "fleetlake_hot").exists()
