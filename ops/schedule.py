"""Background jobs of `pipeline run`: table maintenance and data-quality reports on a schedule.

They run on one daemon thread of the pipeline's driver, beside (never inside) its micro-batches:
each job when its interval has passed since it last ended ([maintain] every_minutes,
[dq] report_every_minutes; 0 = off). A failing job logs one line and runs again at its next
time; the pipeline is never stopped by it. Wire it around the streaming queries:

    with scheduled_jobs(spark, settings):
        await_query(query)
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from pyspark.sql import SparkSession

from infra.settings import Settings

log = logging.getLogger("fleetlake.schedule")
POOL = "maintenance"  # infra/fairscheduler.xml: never ahead of the hot query's share


def _in_pool(spark: SparkSession, pool: str) -> None:
    """Run this thread's Spark jobs in `pool` (a thread-local property)."""
    spark.sparkContext.setLocalProperty("spark.scheduler.pool", pool)


@dataclass
class Job:
    """A named callable due every `interval_s` seconds after its previous run ended."""

    name: str
    interval_s: float
    run: Callable[[], object]
    next_at: float = 0.0


def pipeline_jobs(spark: SparkSession, settings: Settings) -> list[Job]:
    """The jobs the settings switch on (maintenance beside the pipeline, DQ reports)."""
    def maintain() -> object:
        from ops.maintain import maintain_lake

        _in_pool(spark, POOL)
        return maintain_lake(spark, settings, beside_pipeline=True, log=log.info)

    def dq_report() -> object:
        from ops.dq.report import run_report

        _in_pool(spark, POOL)
        return run_report(spark, settings, pipeline_running=True, log=log.info)

    jobs = [Job("maintain", settings.maintain.every_minutes * 60, maintain),
            Job("dq report", settings.dq.report_every_minutes * 60, dq_report)]
    return [job for job in jobs if job.interval_s > 0]


class _Runner(threading.Thread):
    def __init__(self, jobs: list[Job], clock: Callable[[], float] = time.monotonic):
        super().__init__(name="fleetlake-scheduled-jobs", daemon=True)
        self.jobs, self.clock = jobs, clock
        self.stopping = threading.Event()
        for job in jobs:
            job.next_at = clock() + job.interval_s

    def run(self) -> None:
        while not self.stopping.is_set():
            now = self.clock()
            for job in self.jobs:
                if now >= job.next_at and not self.stopping.is_set():
                    self._run_one(job)
            upcoming = min(job.next_at for job in self.jobs) - self.clock()
            self.stopping.wait(max(1.0, min(upcoming, 30.0)))

    def _run_one(self, job: Job) -> None:
        started = self.clock()
        try:
            job.run()
            log.info("scheduled %s done in %.0fs", job.name, self.clock() - started)
        except Exception as exc:  # noqa: BLE001 - a background job never stops the pipeline
            log.error("scheduled %s failed (%s: %s); next try in %.0f min", job.name,
                      type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "",
                      job.interval_s / 60)
        job.next_at = self.clock() + job.interval_s


@contextmanager
def scheduled_jobs(spark: SparkSession, settings: Settings,
                   jobs: list[Job] | None = None) -> Iterator[None]:
    """Run the due jobs in the background for the duration of the block."""
    jobs = pipeline_jobs(spark, settings) if jobs is None else jobs
    if not jobs:
        yield
        return
    runner = _Runner(jobs)
    runner.start()
    try:
        yield
    finally:
        runner.stopping.set()
        runner.join(timeout=600)
