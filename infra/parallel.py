"""Independent Spark writes of one micro-batch, run side by side from driver threads.

Most of a small batch's time is driver-side work per Delta commit (planning, reading the log,
writing the commit), not executor work, so commits to different tables overlap well even on
two cores. Only writes whose idempotency comes from writer options (txnAppId/txnVersion) may
run in the background: MERGEs take them from session confs, which every thread shares.
(PySpark's default pinned-thread mode gives each Python thread its own JVM thread.)
"""
from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator

from pyspark.sql import SparkSession


# Spark local properties a worker thread takes from the thread that created the Background (a
# new Python thread starts without them): the query's FAIR pool (infra/fairscheduler.xml) and
# its job group, so that stopping the query cancels the workers' jobs too and they count as
# the batch's (JobCounter).
DESCRIPTION = "spark.job.description"
INHERITED_PROPERTIES = ("spark.scheduler.pool", "spark.jobGroup.id", DESCRIPTION,
                        "spark.job.interruptOnCancel")


class Background:
    """Start callables on driver threads; `wait()` returns when all are done, raising the first
    error. Timings (seconds per name) are added to `steps` when given. With `spark`, the workers
    run their jobs in the creating thread's scheduler pool."""

    def __init__(self, steps: dict[str, float] | None = None, workers: int = 4,
                 spark: SparkSession | None = None):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fleetlake-write")
        self._futures: list[Future] = []
        self._steps = steps
        self._context = spark.sparkContext if spark is not None else None
        self._properties = {}
        if self._context is not None:
            for key in INHERITED_PROPERTIES:
                value = self._context.getLocalProperty(key)
                if value is not None:
                    self._properties[key] = value

    def start(self, name: str, work: Callable[[], object]) -> Future:
        def timed() -> object:
            started = time.monotonic()
            for key, value in self._properties.items():
                self._context.setLocalProperty(key, value)
            if self._context is not None:  # the Spark UI and event log name the step
                described = self._properties.get(DESCRIPTION)
                self._context.setLocalProperty(DESCRIPTION, f"{described or ''} [{name}]")
            try:
                return work()
            finally:
                if self._steps is not None:
                    self._steps[name] = self._steps.get(name, 0.0) + time.monotonic() - started
        future = self._pool.submit(timed)
        self._futures.append(future)
        return future

    def wait(self) -> None:
        try:
            for future in self._futures:
                future.result()
        finally:
            self._futures.clear()

    def __enter__(self) -> "Background":
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.wait()
            else:  # already failing: let the running writes end, keep the first error
                for future in self._futures:
                    future.exception()
        finally:
            self._pool.shutdown(wait=True)


@contextmanager
def timed(steps: dict[str, float], name: str,
          spark: SparkSession | None = None) -> Iterator[None]:
    """Add the wall time of the block to steps[name] (for the per-batch log line); with
    `spark`, the block's jobs are described as that step (Spark UI, event log)."""
    started = time.monotonic()
    context = spark.sparkContext if spark is not None else None
    described = context.getLocalProperty(DESCRIPTION) if context is not None else None
    if context is not None:
        context.setLocalProperty(DESCRIPTION, f"{described or ''} [{name}]")
    try:
        yield
    finally:
        if context is not None:
            context.setLocalProperty(DESCRIPTION, described)
        steps[name] = steps.get(name, 0.0) + time.monotonic() - started


class JobCounter:
    """Spark jobs started in the calling thread's job group (a streaming query's group: every
    batch's jobs, its driver threads' included) between construction and `count()`."""

    def __init__(self, spark: SparkSession):
        self._context = spark.sparkContext
        self._group = self._context.getLocalProperty("spark.jobGroup.id")
        self._before = set(self._jobs())

    def _jobs(self) -> list[int]:
        if self._group is None:
            return []
        return list(self._context.statusTracker().getJobIdsForGroup(self._group))

    def count(self) -> int:
        return len(set(self._jobs()) - self._before)
