"""Stopping `pipeline run` on a signal: the request, the quiet end of an interrupted batch, and
the runner's wait that a stop request ends (fleetlake/stopping.py, fleetlake/runner.py)."""
from __future__ import annotations

import os
import re
import signal
import threading
import time

import pytest

from fleetlake import runner
from fleetlake.stopping import (BatchInterrupted, StopAwareSink, StopRequest,
                                interrupted_message, stop_on_signals)

# StreamExecution.isInterruptionException (Spark 4.2): a py4j error it takes for a stop
SPARK_INTERRUPTED = re.compile(
    r"py4j.protocol.Py4JJavaError: An error occurred while calling((.|\r\n|\r|\n)*)"
    r"(java.lang.InterruptedException|java.io.InterruptedIOException|"
    r"java.nio.channels.ClosedByInterruptException)")


def failing_sink(error: Exception):
    def sink(batch_df, batch_id):
        raise error
    return sink


def test_a_failing_batch_fails_as_it_is_while_nobody_stops():
    sink = StopAwareSink(failing_sink(ValueError("bad batch")), "fleetlake_gold", StopRequest())
    with pytest.raises(ValueError, match="^bad batch$"):
        sink(None, 7)


def test_a_batch_failing_while_stopping_ends_as_an_interruption_spark_recognises():
    stop = StopRequest()
    stop.set()
    sink = StopAwareSink(failing_sink(RuntimeError("x" * 100_000)), "fleetlake_gold", stop)
    with pytest.raises(BatchInterrupted) as raised:
        sink(None, 7)
    message = str(raised.value)
    assert message == interrupted_message("fleetlake_gold", 7)
    assert SPARK_INTERRUPTED.search(message)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # short trace
    assert "batch 7" in message and "fleetlake_gold" in message


def test_a_batch_that_completes_while_stopping_completes():
    stop = StopRequest()
    stop.set()
    seen = []
    StopAwareSink(lambda df, batch_id: seen.append(batch_id), "fleetlake_hot", stop)(None, 3)
    assert seen == [3]


def test_the_first_signal_sets_the_request_and_the_handlers_come_back():
    said: list[str] = []
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals(StopRequest(), said.append) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5.0)
    assert signal.getsignal(signal.SIGTERM) is before
    assert said == ["pipeline: SIGTERM received, stopping both queries (the batches under way "
                    "are redone on the next run); send it again to exit at once"]


def test_the_second_signal_exits_at_once(monkeypatch):
    exits: list[int] = []
    monkeypatch.setattr(os, "_exit", exits.append)
    said: list[str] = []
    with stop_on_signals(StopRequest(), said.append):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
    assert exits == [128 + signal.SIGINT]
    assert said[1] == "pipeline: SIGINT received again, exiting now"


class FakeQuery:
    """The parts of a StreamingQuery the runner's wait reads."""

    def __init__(self, name: str, error: str | None = None):
        self.name, self.error, self.isActive, self.lastProgress = name, error, True, None
        self.drained = threading.Event()

    def exception(self):
        return self.error

    def awaitTermination(self, timeout_s):
        time.sleep(timeout_s)

    def processAllAvailable(self):
        self.drained.wait(60.0)


def test_the_wait_for_the_queries_ends_when_a_stop_is_requested():
    stop = StopRequest()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    runner.await_queries([FakeQuery("fleetlake_hot")], None, report_every_s=0.5, stop=stop)
    assert time.monotonic() - started < 5.0


def test_draining_gold_is_given_up_on_a_stop_request():
    stop, gold = StopRequest(), FakeQuery("fleetlake_gold")
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    runner.process_all_available(gold, stop)
    assert time.monotonic() - started < 5.0
    gold.drained.set()


def test_an_interrupted_batch_is_no_failure_only_while_stopping():
    stop = StopRequest()
    error = f"{BatchInterrupted.__name__}: {interrupted_message('fleetlake_hot', 4)}"
    query = FakeQuery("fleetlake_hot", error)
    assert runner._failure(query, stop) == f"streaming query fleetlake_hot failed: {error}"
    stop.set()
    assert runner._failure(query, stop) is None
    other = FakeQuery("fleetlake_gold", "java.io.IOException: disk")
    assert runner._failure(other, stop) == "streaming query fleetlake_gold failed: java.io." \
                                           "IOException: disk"
