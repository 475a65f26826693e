"""`run_produce`: the simulated fleet, with faults, into Kafka; one or several processes.

Measured CPU per event (scripts/bench_producer.py, 2 cores): kafka-python ~16-20 us (pure
Python: send + its I/O thread), simulation + default faults ~5-6 us. So one process tops out
near 25k acknowledged events/s; `--rate 0` and rates above 10k/s use two processes (three gave
no more on 2 cores next to the broker), each with its own producer and its own share of the
cars, so one car's events still come from one process, in order.

Event time: with `--rate R` every car reports every cars/R seconds and the simulated clock runs
with the wall clock (from now, floored to the second). With `--rate 0` each car reports every
`producer.interval_s` simulated seconds and the run starts far enough in the past that it ends
near now (a backlog); either way the simulated clock never runs ahead of the wall clock, so only
the injected future-timestamp faults are in the future.
"""
from __future__ import annotations

import math
import multiprocessing
import queue
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from infra.settings import Settings
from ingestion.admin import KafkaUnavailableError, ensure_topic
from ingestion.event import format_timestamp
from ingestion.faults import parse_faults
from ingestion.sender import WorkerPlan, run_worker
from ingestion.simulator import AnomalyRates
from ingestion.summary import ProduceSummary, merge

AUTO_SINGLE_PROCESS_RATE = 10_000.0  # paced rates up to this need one process
SMALL_RUN_EVENTS = 20_000  # runs this short are not worth a second process
ASSUMED_MAX_RATE = 100_000.0  # sizes the backlog of duration-bound --rate 0 runs
PROGRESS_EVERY_S = 2.0
PROGRESS_TO_LOG_EVERY_S = 30.0


class ProduceError(RuntimeError):
    """A producer process failed; the message says which and why."""


def run_produce(settings: Settings, *, events: int | None, duration_s: float | None, rate: float,
                faults: str, seed: int, topic: str, cars: int,
                progress: bool = True) -> ProduceSummary:
    """Send `events` messages (or for `duration_s`, or until Ctrl-C) of `cars` simulated cars
    with `faults` to `topic` at `rate` events/s (0 = as fast as possible); flushes, then
    returns what was sent, by kind and by the outcome silver must give each message."""
    _check_arguments(events, duration_s, rate, cars)
    fault_rates = parse_faults(faults)
    bootstrap = settings.effective_kafka_bootstrap
    ensure_topic(bootstrap, topic, settings.topic_partitions)
    plans = plan_workers(settings, events=events, duration_s=duration_s, rate=rate,
                         fault_rates=fault_rates, seed=seed, topic=topic, cars=cars,
                         now_s=time.time())
    summary = ProduceSummary(topic=topic, processes=len(plans), cars=cars, seed=seed,
                             faults=faults, rate=rate,
                             first_event_time=format_timestamp(plans[0].start_ms))
    meter = _Progress(progress)
    started = time.monotonic()
    if len(plans) == 1:
        stop = threading.Event()
        with _sigint_sets(stop):
            parts = [run_worker(plans[0], stop, meter.update)]
    else:
        parts = _run_processes(plans, meter)
    merge(parts, summary)
    summary.partitions = max(p.partitions for p in parts)
    summary.elapsed_s = time.monotonic() - started
    meter.done()
    return summary


def _check_arguments(events: int | None, duration_s: float | None, rate: float, cars: int) -> None:
    if events is not None and events < 0:
        raise ValueError("--events must be 0 or more")
    if duration_s is not None and duration_s <= 0:
        raise ValueError("--duration must be more than 0 seconds")
    if rate < 0 or not math.isfinite(rate):
        raise ValueError("--rate must be 0 (as fast as possible) or a positive events/s")
    if cars < 1:
        raise ValueError("--cars must be at least 1")


def plan_workers(settings: Settings, *, events: int | None, duration_s: float | None,
                 rate: float, fault_rates: dict[str, float], seed: int, topic: str, cars: int,
                 now_s: float) -> list[WorkerPlan]:
    """Split the run over producer processes (cars dealt round-robin) and set its clock."""
    ps = settings.producer
    processes = ps.processes or (1 if 0 < rate <= AUTO_SINGLE_PROCESS_RATE else 2)
    if events is not None and events < SMALL_RUN_EVENTS:
        processes = 1
    processes = max(1, min(processes, cars))
    if rate > 0:
        interval_s, start_s = cars / rate, math.floor(now_s)
    else:
        interval_s = ps.interval_s
        if events is not None:
            ticks = math.ceil(events / cars)
        elif duration_s is not None:
            ticks = math.ceil(duration_s * ASSUMED_MAX_RATE / cars)
        else:
            ticks = math.ceil(3600 / interval_s)
        start_s = math.floor(now_s - ticks * interval_s - 1)
    plans = []
    anomalies = AnomalyRates.from_settings(ps, settings.alerts)
    for w in range(processes):
        indices = tuple(range(w, cars, processes))
        quota = None if events is None else _share(events, cars, w, processes)
        plans.append(WorkerPlan(
            worker=w, bootstrap=settings.effective_kafka_bootstrap, topic=topic, cars=cars,
            car_indices=indices, seed=seed, start_ms=int(start_s) * 1000, interval_s=interval_s,
            region=ps.region, anomalies=anomalies, fault_rates=fault_rates,
            validation=settings.validation, quota=quota, duration_s=duration_s,
            rate=rate * len(indices) / cars, linger_ms=ps.linger_ms, batch_size=ps.batch_size,
            compression=ps.compression))
    return plans


def _share(events: int, cars: int, w: int, processes: int) -> int:
    """Worker w's part of `events`, proportional to its cars (the parts add up exactly)."""
    def cars_before(k: int) -> int:
        return sum(len(range(i, cars, processes)) for i in range(k))
    return events * cars_before(w + 1) // cars - events * cars_before(w) // cars


@contextmanager
def _sigint_sets(stop) -> Iterator[None]:
    """While inside: the first Ctrl-C sets `stop` (flush, then return); a second one aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nproduce: stopping after a flush (Ctrl-C again to abort)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _worker_main(plan: WorkerPlan, stop, counters, results) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl-C into `stop`

    def report(sent: int, errors: int) -> None:
        counters[2 * plan.worker], counters[2 * plan.worker + 1] = sent, errors

    try:
        results.put(("ok", plan.worker, run_worker(plan, stop, report)))
    except KafkaUnavailableError as exc:
        results.put(("unavailable", plan.worker, str(exc)))
    except Exception as exc:  # reported by the parent with the worker's number
        results.put(("error", plan.worker, f"{type(exc).__name__}: {exc}"))


def _run_processes(plans: list[WorkerPlan], meter: "_Progress") -> list[ProduceSummary]:
    """Run each plan in its own (forked) process; Ctrl-C stops them all after their flush."""
    ctx = multiprocessing.get_context("fork")
    stop, results = ctx.Event(), ctx.Queue()
    counters = ctx.Array("q", 2 * len(plans), lock=False)
    procs = [ctx.Process(target=_worker_main, args=(p, stop, counters, results),
                         name=f"fleetlake-producer-{p.worker}", daemon=True) for p in plans]
    collected: dict[int, tuple[str, object]] = {}
    with _sigint_sets(stop):
        for proc in procs:
            proc.start()
        while len(collected) < len(procs):
            try:
                status, worker, payload = results.get(timeout=0.25)
                collected[worker] = (status, payload)
            except queue.Empty:
                meter.update(sum(counters[0::2]), sum(counters[1::2]))
                dead = [i for i, p in enumerate(procs) if p.exitcode not in (None, 0)]
                for i in dead:
                    collected.setdefault(i, ("error", f"exited with code {procs[i].exitcode}"))
    for proc in procs:
        proc.join()
    return _collect(collected)


def _collect(collected: dict[int, tuple[str, object]]) -> list[ProduceSummary]:
    for status, payload in collected.values():
        if status == "unavailable":
            raise KafkaUnavailableError(str(payload))
    failed = [f"process {w}: {payload}" for w, (status, payload) in sorted(collected.items())
              if status != "ok"]
    if failed:
        raise ProduceError("a producer process failed (" + "; ".join(failed) + ")")
    return [payload for _, (_, payload) in sorted(collected.items())]  # type: ignore[misc]


class _Progress:
    """A `sent, rate, errors` line on stderr every ~2 s (every 30 s into a log file); runs
    shorter than that print none. The rate is the one since the previous line."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.started = enabled, time.monotonic()
        self.every = PROGRESS_EVERY_S if sys.stderr.isatty() else PROGRESS_TO_LOG_EVERY_S
        self.next_at, self.shown = self.started + min(self.every, PROGRESS_EVERY_S), False
        self.last_at, self.last_sent = self.started, 0

    def update(self, sent: int, errors: int) -> None:
        now = time.monotonic()
        if not self.enabled or now < self.next_at:
            return
        rate = (sent - self.last_sent) / (now - self.last_at)
        self.next_at, self.shown = now + self.every, True
        self.last_at, self.last_sent = now, sent
        print(f"produce: {sent:,} sent  {rate:,.0f} events/s  {errors:,} errors  "
              f"{now - self.started:,.0f} s", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.shown:
            print("produce: done", file=sys.stderr, flush=True)
