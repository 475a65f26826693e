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
from typing import Callable


class Background:
    """Start callables on driver threads; `wait()` returns when all are done, raising the first
    error. Timings (seconds per name) are added to `steps` when given."""

    def __init__(self, steps: dict[str, float] | None = None, workers: int = 4):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fleetlake-write")
        self._futures: list[Future] = []
        self._steps = steps

    def start(self, name: str, work: Callable[[], object]) -> Future:
        def timed() -> object:
            started = time.monotonic()
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
