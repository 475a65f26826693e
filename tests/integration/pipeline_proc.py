"""`fleetlake pipeline run` as a subprocess of a test, with its log read line by line as it goes.

Waits poll the collected log with a deadline (no fixed sleeps): a test waits for the line that
proves a state (a batch done, a retry logged) before acting on it.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from infra.settings import Settings

# A gold batch with rows, synced to PostgreSQL (fleetlake/gold_query.py logs it last).
BATCH_DONE = re.compile(r"fleetlake\.gold batch (\d+): \d+ in, ")


def pipeline_env(settings: Settings, config_path: Path) -> dict[str, str]:
    """Environment of a pipeline process on the test's topic, lake, database and TOML config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETLAKE_")}
    env.update({"FLEETLAKE_KAFKA_BOOTSTRAP": settings.effective_kafka_bootstrap,
                "FLEETLAKE_TOPIC": settings.topic, "FLEETLAKE_LAKE_ROOT": settings.lake_root,
                "FLEETLAKE_PG_DSN": settings.effective_pg_dsn,
                "FLEETLAKE_CONFIG": str(config_path)})
    return env


class PipelineProcess:
    """A running `fleetlake pipeline run --no-services [--available-now]` and its stderr lines."""

    def __init__(self, env: dict[str, str], available_now: bool = True):
        command = [sys.executable, "-m", "fleetlake.cli", "pipeline", "run", "--no-services"]
        self.proc = subprocess.Popen(command + (["--available-now"] if available_now else []),
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def matching(self, pattern: re.Pattern) -> list[str]:
        """The log lines so far that match `pattern`."""
        with self._changed:
            return [line for line in self.lines if pattern.search(line)]

    def tail(self, lines: int = 40) -> str:
        with self._changed:
            return "\n".join(self.lines[-lines:])

    def wait_for(self, pattern: re.Pattern, count: int = 1, timeout_s: float = 300.0) -> list[str]:
        """Block until `count` log lines match `pattern`; fail if the process ends first."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                found = [line for line in self.lines if pattern.search(line)]
                if len(found) >= count:
                    return found
                if not self._reader.is_alive():
                    raise AssertionError(f"the pipeline exited ({self.proc.poll()}) before "
                                         f"{count} line(s) matched {pattern.pattern!r}:\n"
                                         f"{self.tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {count} line(s) matched {pattern.pattern!r} "
                                         f"within {timeout_s:.0f}s:\n{self.tail()}")
                self._changed.wait(min(left, 1.0))

    def finish(self, timeout_s: float = 600.0) -> int:
        """Wait for the process to exit; its return code."""
        code = self.proc.wait(timeout=timeout_s)
        self._reader.join(timeout=30)
        return code

    def kill(self) -> None:
        """SIGKILL the process group if it still runs (no-op otherwise)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._reader.join(timeout=30)
