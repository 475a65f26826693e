"""Stopping `pipeline run` on Ctrl-C or SIGTERM: one line, exit 0, nothing lost.

PySpark's own SIGINT handler raises KeyboardInterrupt in whatever py4j call the main thread is
making, which can leave the gateway unusable (the queries then die with pages of traces). So the
first signal only sets a `StopRequest` that the runner polls; it then stops both queries. A
second signal exits at once, as `kill -9` would (safe: docs/exactly-once.md).

Stopping a query interrupts the batch it is running. That batch is not committed, and the next
run redoes it (every write is idempotent: docs/exactly-once.md). `StopAwareSink` makes the
interrupted batch end quietly: Spark counts a `foreachBatch` failure as a clean stop only if its
message reads like an interrupted py4j call (StreamExecution.isInterruptionException), and the
message of the real error holds a Java stack trace long enough to overflow the stack of the
regex Spark matches it with.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Callable, Iterator

from pyspark.sql import DataFrame

STOPPED_LINE = "pipeline: stopped (the next run resumes from the checkpoints)"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Set once a stop was asked for (a signal, or a caller); queries poll it."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout_s: float) -> bool:
        return self._event.wait(timeout_s)


class BatchInterrupted(RuntimeError):
    """A batch cut short because the pipeline is stopping (it is redone on the next run)."""


def interrupted_message(query: str, batch_id: int) -> str:
    """The message Spark reads as 'interrupted by stop' (see the module docstring)."""
    return ("py4j.protocol.Py4JJavaError: An error occurred while calling the foreachBatch sink "
            f"of {query}: java.lang.InterruptedException: batch {batch_id} interrupted because "
            "the pipeline is stopping; the next run redoes it")


@dataclass
class StopAwareSink:
    """A `foreachBatch` sink whose failures while the pipeline stops end the query quietly."""

    sink: Callable[[DataFrame, int], None]
    query: str
    stop: StopRequest

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        try:
            self.sink(batch_df, batch_id)
        except Exception:
            if not self.stop.is_set():
                raise
            # py4j would log the whole chained trace before handing the error to Spark
            logging.getLogger("py4j.clientserver").setLevel(logging.CRITICAL)
            raise BatchInterrupted(interrupted_message(self.query, batch_id)) from None


@contextmanager
def stop_on_signals(stop: StopRequest, announce: Callable[[str], None] | None = None
                    ) -> Iterator[StopRequest]:
    """SIGINT and SIGTERM set `stop` (the first time) or end the process at once (the second);
    the previous handlers are back on exit. Only the main thread may install handlers: elsewhere
    this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    # os.write, not print: a handler printing while the main thread prints would raise
    # "reentrant call" in the main thread
    say = announce or (lambda line: os.write(sys.stderr.fileno(), f"{line}\n".encode()))

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            say(f"pipeline: {signal.Signals(signum).name} received again, exiting now")
            os._exit(128 + signum)  # the JVM exits with its parent; the next run resumes
        stop.set()
        say(f"pipeline: {signal.Signals(signum).name} received, stopping both queries (the "
            "batches under way are redone on the next run); send it again to exit at once")

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
