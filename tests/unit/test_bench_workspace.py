"""fleetlake.bench.workspace.pipeline_start_error: how the bench and the campaign learn that a
pipeline child started, or why it did not (child processes standing in for the pipeline)."""
from __future__ import annotations

import subprocess
from pathlib import Path

from fleetlake.bench.workspace import RUNNING_LINE, pipeline_start_error


def _child(script: str, log_path: Path) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        return subprocess.Popen(["sh", "-c", script], stdout=log, stderr=subprocess.STDOUT)


def test_a_pipeline_that_logs_its_running_line_has_started(tmp_path):
    log_path = tmp_path / "pipeline.log"
    proc = _child(f"echo 'starting'; sleep 0.3; echo '{RUNNING_LINE}, topic t'; sleep 30",
                  log_path)
    try:
        assert pipeline_start_error(proc, log_path, timeout_s=20.0) is None
    finally:
        proc.kill()
        proc.wait()


def test_a_pipeline_that_exits_first_gives_its_error_line(tmp_path):
    log_path = tmp_path / "pipeline.log"
    proc = _child("echo 'some warning'; echo 'fleetlake: error: port 9092 is taken: stop it'; "
                  "echo 'trailer'; exit 2", log_path)
    assert pipeline_start_error(proc, log_path, timeout_s=20.0) == \
        "fleetlake: error: port 9092 is taken: stop it"
    proc.wait()


def test_a_pipeline_that_exits_without_an_error_line_gives_its_log_end(tmp_path):
    log_path = tmp_path / "pipeline.log"
    proc = _child("echo 'Traceback: boom'; exit 1", log_path)
    assert pipeline_start_error(proc, log_path, timeout_s=20.0) == "Traceback: boom\n"
    proc.wait()


def test_a_pipeline_that_neither_starts_nor_exits_times_out(tmp_path):
    log_path = tmp_path / "pipeline.log"
    proc = _child("sleep 30", log_path)
    try:
        assert pipeline_start_error(proc, log_path, timeout_s=1.0) == \
            "the pipeline did not start within 1s"
    finally:
        proc.kill()
        proc.wait()
