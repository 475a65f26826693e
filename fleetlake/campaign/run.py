"""A fault campaign: the pipeline (both queries) under steady load, faults at random moments.

Grain of the result: one FaultRecord per injected fault. Per fault: the campaign waits a random
gap, notes the events in flight (in Kafka, not yet counted by the gold query in PostgreSQL),
injects the fault (fleetlake/campaign/faults.py), which returns once it is repaired; then it
pauses the load and times the recovery: until PostgreSQL counts every record Kafka holds. On
the quiet pipeline it runs the three checks (fleetlake/campaign/checks.py); what they find that
the previous checks did not is the fault's. The load resumes for the next fault. A pipeline
that exits on its own is restarted and counted.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from pyspark.sql import SparkSession

from fleetlake.bench.workspace import CLI, Workspace, pipeline_start_error
from fleetlake.campaign.checks import CheckResult, kafka_records, run_checks
from fleetlake.campaign.faults import FAULTS, OUT_OF_SPACE
from fleetlake.gold_query import QUERY_NAME as GOLD_QUERY
from infra.settings import Settings
from infra.streaming import batch_committed, read_query_id
from serving.db import last_served_batch, processed_rows

# Seconds a gold batch may take to land in Delta (bronze included) after it served PostgreSQL.
LANDING_S = 60.0


class CampaignError(RuntimeError):
    """The campaign could not go on (the pipeline never started, or never caught up)."""


@dataclass(frozen=True)
class CampaignPlan:
    rounds: int = 1  # each fault is injected once per round, in a random order
    rate: float = 200.0  # steady load, events/s
    hold_s: float = 8.0  # how long a killed service stays down
    gap_s: tuple[float, float] = (3.0, 12.0)  # random wait before each fault
    faults: tuple[str, ...] = tuple(FAULTS)
    seed: int = 7
    catch_up_timeout_s: float = 420.0
    lake_mib: int = 2048  # size of the tmpfs the lake root lives on (for OUT_OF_SPACE)


@dataclass
class FaultRecord:
    fault: str
    in_flight: int  # records in Kafka not yet processed when the fault was injected
    recover_s: float  # from the repair (or the refused restart) to all then in Kafka processed
    lost: int
    duplicated: int
    pipeline_exits: int  # times the pipeline exited by itself (and was restarted)
    problems: list[str] = field(default_factory=list)


class Campaign:
    """The running campaign: its workspace, pipeline process and load (faults.Target)."""

    def __init__(self, spark: SparkSession, services: Settings, workspace: Workspace,
                 plan: CampaignPlan, progress: Callable[[str], None]):
        self.spark, self.services, self.workspace, self.plan = spark, services, workspace, plan
        self.settings = workspace.settings
        self.rng = random.Random(plan.seed)
        self.hold_s, self.rate = plan.hold_s, plan.rate
        self.progress = progress
        self.exits = 0
        self._pipelines = 0
        self._seed = plan.seed * 1000
        self._load_on = threading.Event()
        self._stopped = threading.Event()
        self._idle = threading.Event()
        self._proc: subprocess.Popen | None = None

    # --- faults.Target ---------------------------------------------------------------------
    def start_pipeline(self) -> None:
        self._pipelines += 1
        self.workspace.root.mkdir(parents=True, exist_ok=True)
        log = open(self.workspace.root / f"pipeline-{self._pipelines}.log", "wb")  # noqa: SIM115
        self._proc = subprocess.Popen([*CLI, "pipeline", "run", "--no-services"],
                                      env=self.workspace.env(), stdout=log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True)
        log.close()

    def _log(self) -> Path:
        return self.workspace.root / f"pipeline-{self._pipelines}.log"

    def pipeline_refusal(self, timeout_s: float) -> str | None:
        """The error line of a pipeline that exited before starting its queries (or that it
        did not start within `timeout_s`); None once it started them."""
        if self._proc is None:
            return "the pipeline was never started"
        return pipeline_start_error(self._proc, self._log(), timeout_s)

    def repair_pipeline(self) -> str:
        """`fleetlake pipeline repair`; its output (raises unless it repaired)."""
        done = subprocess.run([*CLI, "pipeline", "repair", "--no-services"],
                              env=self.workspace.env(), capture_output=True, text=True,
                              timeout=600, check=False)
        lines = [line for line in done.stderr.splitlines() if "pipeline repair" in line
                 or line.startswith("fleetlake: error:")]
        if done.returncode != 0:
            raise CampaignError(f"`fleetlake pipeline repair` failed: {lines[-3:]}")
        self.progress("; ".join(lines))
        return "\n".join(lines)

    def kill_pipeline(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()

    def produce(self, rate: float, seconds: float) -> None:
        """Simulated traffic with default faults; a failed run (broker down) is tolerated."""
        self._producer(rate, seconds).wait(timeout=seconds + 120)

    def _producer(self, rate: float, seconds: float) -> subprocess.Popen:
        self._seed += 1
        return subprocess.Popen([*CLI, "produce", "--rate", str(rate), "--duration",
                                 str(seconds), "--faults", "default", "--seed", str(self._seed),
                                 "--topic", self.settings.topic, "--json"],
                                env=self.workspace.env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    # --- load and progress ---------------------------------------------------------------
    def _load(self) -> None:
        """The steady load: producer runs back to back while the load is on; a pause stops
        the running one at once (SIGINT: it flushes what it sent and exits)."""
        while not self._stopped.is_set():
            if not self._load_on.is_set():
                self._idle.set()
                self._load_on.wait(0.5)
                continue
            self._idle.clear()
            producer = self._producer(self.rate, 300.0)
            while producer.poll() is None:
                if not self._load_on.is_set() or self._stopped.is_set():
                    producer.send_signal(signal.SIGINT)
                    producer.wait(timeout=60)
                    break
                time.sleep(0.2)

    def _pause_load(self) -> None:
        self._load_on.clear()
        self._idle.wait(60.0)

    def processed(self) -> int | None:
        """Records the gold query counted in PostgreSQL (None while it is unreachable)."""
        try:
            return processed_rows(self.settings.effective_pg_dsn, "fleetlake-campaign")
        except Exception:  # noqa: BLE001 - PostgreSQL down: the caller waits
            return None

    def _wait_processed(self, records: int) -> float:
        """Seconds until PostgreSQL counts `records`; restarts a pipeline that exited."""
        started = time.monotonic()
        while time.monotonic() - started < self.plan.catch_up_timeout_s:
            if self._proc is not None and self._proc.poll() is not None:
                self.exits += 1
                self.progress(f"the pipeline exited ({self._proc.returncode}); restarting it")
                self.start_pipeline()
            done = self.processed()
            if done is not None and done >= records:
                return time.monotonic() - started
            time.sleep(0.5)
        raise CampaignError(f"the pipeline did not catch up ({self.processed()} of {records} "
                            f"records) within {self.plan.catch_up_timeout_s:.0f}s: see "
                            f"{self.workspace.root}")

    def _wait_landed(self) -> None:
        """Until the gold query committed the newest batch PostgreSQL holds: a batch serves
        PostgreSQL before its Delta writes, and is committed once they are done
        (docs/architecture.md), so the checks then see Delta and PostgreSQL alike."""
        checkpoint = self.settings.checkpoint_path(GOLD_QUERY)
        query_id = read_query_id(self.spark, checkpoint)
        deadline = time.monotonic() + LANDING_S
        while time.monotonic() < deadline:
            served = last_served_batch(self.settings.effective_pg_dsn, query_id,
                                       "fleetlake-campaign")
            if served is None or batch_committed(self.spark, checkpoint, served):
                return
            time.sleep(0.5)
        raise CampaignError(f"the gold query's batch {served} reached PostgreSQL but was not "
                            f"committed within {LANDING_S:.0f}s: see {self.workspace.root}")

    def _records(self) -> int:
        return kafka_records(self.settings.effective_kafka_bootstrap, self.settings.topic)

    def _recover_and_check(self, name: str) -> tuple[float, CheckResult]:
        """Right after a repair: the load paused, seconds until everything Kafka holds is
        processed, then the checks on the quiet pipeline; the load resumes."""
        self._pause_load()
        recover_s = self._wait_processed(self._records())
        checked = time.monotonic()
        self._wait_landed()
        result = run_checks(self.spark, self.settings)
        self._load_on.set()
        self.progress(f"{name}: recovered in {recover_s:.1f}s; checks "
                      f"{'passed' if result.passed else 'FAILED'} over "
                      f"{result.kafka_records:,} records in {time.monotonic() - checked:.1f}s")
        return recover_s, result

    # --- the lake's own file system (for OUT_OF_SPACE) -------------------------------------
    def _mount_lake(self) -> None:
        lake = Path(self.settings.lake_root)
        lake.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.plan.lake_mib}m",
                               "tmpfs", str(lake)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise CampaignError(f"cannot mount a {self.plan.lake_mib} MiB tmpfs on {lake} for "
                                f"the '{OUT_OF_SPACE}' fault ({done.stderr.strip()}): run as "
                                "root, or leave that fault out")

    def _unmount_lake(self) -> None:
        subprocess.run(["umount", "--lazy", self.settings.lake_root], capture_output=True,
                       check=False)

    # --- the campaign --------------------------------------------------------------------
    def run(self) -> list[FaultRecord]:
        """Inject every fault of the plan; the lake root on a tmpfs of its own when the plan
        fills it up (unmounted at the end)."""
        own_mount = OUT_OF_SPACE in self.plan.faults
        if own_mount:
            self._mount_lake()
        try:
            return self._run()
        finally:
            if own_mount:
                self._unmount_lake()

    def _run(self) -> list[FaultRecord]:
        order = [name for _ in range(self.plan.rounds)
                 for name in self.rng.sample(self.plan.faults, len(self.plan.faults))]
        loader = threading.Thread(target=self._load, daemon=True)
        self.start_pipeline()
        loader.start()
        try:
            self._load_on.set()
            self.progress(f"steady load {self.rate:g} events/s; waiting for the first batch")
            self._wait_processed(1)
            before = CheckResult(0, 0, 0, "")  # a fresh topic, lake and database
            records = []
            for number, name in enumerate(order, 1):
                time.sleep(self.rng.uniform(*self.plan.gap_s))
                exits, done = self.exits, self.processed() or 0
                in_flight = max(self._records() - done, 0)
                self.progress(f"fault {number}/{len(order)}: {name} ({in_flight:,} in flight)")
                repair_s = FAULTS[name](self) or 0.0
                recover_s, after = self._recover_and_check(name)
                recover_s += repair_s
                records.append(FaultRecord(
                    name, in_flight, round(recover_s, 1), after.lost - before.lost,
                    after.duplicated - before.duplicated, self.exits - exits,
                    [p for p in after.problems() if p not in before.problems()]))
                before = after
            return records
        finally:
            self._stopped.set()
            self._load_on.set()
            loader.join(timeout=60)
            if self._proc is not None and self._proc.poll() is None:
                self._proc.send_signal(signal.SIGINT)
                try:
                    self._proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    self.kill_pipeline()


def summarise(records: list[FaultRecord]) -> list[dict]:
    """One row per fault: times injected, events in flight, lost, duplicated, recovery."""
    rows = []
    for name in dict.fromkeys(r.fault for r in records):
        mine = [r for r in records if r.fault == name]
        rows.append({"fault": name, "injected": len(mine),
                     "in_flight": sum(r.in_flight for r in mine),
                     "lost": sum(r.lost for r in mine),
                     "duplicated": sum(r.duplicated for r in mine),
                     "recover_s_max": max(r.recover_s for r in mine),
                     "pipeline_exits": sum(r.pipeline_exits for r in mine),
                     "problems": sorted({p for r in mine for p in r.problems})})
    return rows


def markdown_table(summary: list[dict]) -> str:
    lines = ["| fault | times injected | events in flight | events lost | events duplicated | "
             "time to recover (max) | pipeline exits |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['fault']} | {r['injected']} | {r['in_flight']:,} | {r['lost']} | "
              f"{r['duplicated']} | {r['recover_s_max']:.1f} s | {r['pipeline_exits']} |"
              for r in summary]
    return "\n".join(lines)


def records_json(records: list[FaultRecord]) -> list[dict]:
    return [asdict(r) for r in records]

