"""A bench phase's own topic, lake root and PostgreSQL database, and the pipeline run on them."""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from psycopg2 import extensions, sql

from fleetlake.bench.procs import MeasuredProcess
from fleetlake.runner import started_line
from infra.settings import Settings
from ingestion.admin import ensure_topic
from serving.db import drop_database, run_admin
from serving.migrate import apply_migrations

CLI = [sys.executable, "-m", "fleetlake.cli"]
# The line a continuous `pipeline run` logs once its services and tables are ready.
RUNNING_LINE = started_line(available_now=False)


def pipeline_start_error(proc: subprocess.Popen, log_path: Path, timeout_s: float) -> str | None:
    """None once the pipeline child logged RUNNING_LINE; else why not: its error line (or its
    log's end) when it exited, or that it did not start within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        exited = proc.poll() is not None
        text = log_path.read_text(errors="replace") if log_path.exists() else ""
        if RUNNING_LINE in text:
            return None
        if exited:
            return next((line for line in text.splitlines()
                         if line.startswith("fleetlake: error:")), text[-300:])
        time.sleep(0.5)
    return f"the pipeline did not start within {timeout_s:.0f}s"


@dataclass
class Workspace:
    """Settings pointing at a fresh topic, lake and database (dropped by `remove`, which keeps
    the phase's pipeline logs)."""

    name: str
    settings: Settings
    root: Path
    database: str

    def env(self) -> dict[str, str]:
        """Environment of a `fleetlake` child process working in this workspace."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETLAKE_")}
        env.update({"FLEETLAKE_KAFKA_BOOTSTRAP": self.settings.effective_kafka_bootstrap,
                    "FLEETLAKE_TOPIC": self.settings.topic,
                    "FLEETLAKE_LAKE_ROOT": self.settings.lake_root,
                    "FLEETLAKE_PG_DSN": self.settings.effective_pg_dsn})
        if self.settings.config_path:
            env["FLEETLAKE_CONFIG"] = self.settings.config_path
        return env

    def pipeline(self, label: str, available_now: bool) -> MeasuredProcess:
        """A `fleetlake pipeline run` on this workspace (not started yet)."""
        command = [*CLI, "pipeline", "run", "--no-services"]
        if available_now:
            command.append("--available-now")
        return MeasuredProcess(command, self.env(), self.root / f"{label}.log")

    def remove(self, admin_dsn: str) -> None:
        drop_database(admin_dsn, self.database)
        # the pipeline logs stay (per-batch step times: what to read after a slow run)
        for child in self.root.iterdir() if self.root.exists() else ():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)


def create_workspace(settings: Settings, run_dir: Path, name: str,
                     prefix: str = "bench") -> Workspace:
    """A new topic, lake root and migrated database named after `prefix`, the run and `name`."""
    tag = f"{name}_{uuid.uuid4().hex[:8]}"
    database = f"fleetlake_{prefix}_{tag}"
    _admin(settings.effective_pg_dsn, sql.SQL("CREATE DATABASE {}").format(
        sql.Identifier(database)))
    dsn = extensions.make_dsn(settings.effective_pg_dsn, dbname=database)
    root = run_dir / name
    local = dataclasses.replace(settings, topic=f"{prefix}_{tag}", lake_root=str(root / "lake"),
                                pg_dsn=dsn,
                                kafka_bootstrap=settings.effective_kafka_bootstrap)
    ensure_topic(local.effective_kafka_bootstrap, local.topic, local.topic_partitions)
    apply_migrations(dsn, settings.local.pg_reader if settings.uses_local_pg else None)
    return Workspace(name, local, root, database)


def _admin(dsn: str, statement: sql.Composable) -> None:
    run_admin(dsn, statement, "fleetlake-bench")
