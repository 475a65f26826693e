"""One producer process: its share of the fleet + faults -> the topic, paced or flat out.

Choices (measured on the 2-core machine, see scripts/bench_producer.py):
- acks="all" with idempotence (kafka-python's default): on one broker it costs nothing over
  acks=1, and it is what makes producer retries invisible (no duplicate or reordered records),
  so the broker holds exactly what the summary says and duplicates are only the injected ones.
- key = car_id bytes; the partition is computed once per car with the Java client's murmur2
  partitioner and passed explicitly (same partitions as the default partitioner, ~10 % less
  CPU per send): one car's events stay ordered within one partition.
- No compression by default: only gzip is installed (no lz4/snappy/zstd codecs) and on a
  loopback broker it costs CPU that the producer lacks (measured ~20 % fewer events/s);
  `producer.compression = "gzip"` exists for a remote broker.
- batch_size 1,000,000 bytes (just under the broker's default message.max.bytes) with
  linger_ms 10: ~17 us of CPU per record against ~22 us with 256 KiB batches; at low paced
  rates batches close after 10 ms, so freshness does not suffer.
- A chunk's last future is kept; past MAX_INFLIGHT_CHUNKS un-acknowledged chunks `send`
  waits (kafka-python 3 has no buffer_memory bound of its own).
"""
from __future__ import annotations

import math
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Callable, Protocol

from kafka import KafkaProducer
from kafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from kafka.partitioner.default import murmur2

from ingestion.admin import KafkaUnavailableError
from ingestion.faults import Tag
from ingestion.simulator import AnomalyRates, Fleet
from ingestion.stream import MessageStream, wall_clock_ms
from ingestion.summary import ProduceSummary

MAX_INFLIGHT_CHUNKS = 64  # un-acknowledged chunks before `send` waits (bounds memory)


class StopFlag(Protocol):
    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class WorkerPlan:
    """Everything one producer process needs (picklable)."""

    worker: int
    bootstrap: str
    topic: str
    cars: int
    car_indices: tuple[int, ...]
    seed: int
    start_ms: int
    interval_s: float
    region: str
    anomalies: AnomalyRates
    fault_rates: dict[str, float]
    validation: object
    quota: int | None  # messages to send; None = until the deadline or a stop
    duration_s: float | None
    rate: float  # this process' share; 0 = as fast as possible
    linger_ms: int = 10
    batch_size: int = 1_000_000
    compression: str = "none"


def new_producer(bootstrap: str, client_id: str, linger_ms: int = 10, batch_size: int = 1_000_000,
                 compression: str = "none") -> KafkaProducer:
    """A KafkaProducer with fleetlake's settings, or KafkaUnavailableError."""
    try:
        return KafkaProducer(
            bootstrap_servers=bootstrap, client_id=client_id, acks="all",
            enable_idempotence=True, linger_ms=linger_ms, batch_size=batch_size,
            compression_type=None if compression == "none" else compression,
            metrics_enabled=False, max_block_ms=15_000, bootstrap_timeout_ms=15_000)
    except (KafkaTimeoutError, KafkaConnectionError):
        raise KafkaUnavailableError(
            f"Kafka is not reachable at {bootstrap}: run `fleetlake services up` "
            "or fix FLEETLAKE_KAFKA_BOOTSTRAP") from None


def partition_of(key: bytes, partitions: list[int]) -> int:
    """The partition Kafka's default partitioner picks for `key` (murmur2, like Java)."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]


class _Counts:
    """Per-process tallies: sent, clean, fault tags, errors (errbacks run on the I/O thread)."""

    def __init__(self) -> None:
        self.sent = self.clean = self.errors = 0
        self.tags: Counter[Tag] = Counter()
        self.first_error: str | None = None

    def on_error(self, exc: BaseException) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = f"{type(exc).__name__}: {exc}"


def run_worker(plan: WorkerPlan, stop: StopFlag,
               report: Callable[[int, int], None] | None = None) -> ProduceSummary:
    """Produce this process' share of the stream; flushes before returning."""
    fleet = Fleet(plan.cars, plan.seed, plan.start_ms, plan.interval_s, plan.region,
                  plan.anomalies, plan.car_indices)
    stream = MessageStream(fleet, plan.fault_rates, plan.seed, plan.validation,
                           clock_guard=wall_clock_ms)
    producer = new_producer(plan.bootstrap, f"fleetlake-producer-{plan.worker}",
                            plan.linger_ms, plan.batch_size, plan.compression)
    counts = _Counts()
    started = time.monotonic()
    partitions: list[int] = []
    try:
        partitions = sorted(producer.partitions_for(plan.topic))
        part_of = {car.key: partition_of(car.key, partitions) for car in fleet.cars}
        _send_loop(plan, stream, producer, part_of, stop, report, counts)
    except KafkaError as exc:
        counts.on_error(exc)
    finally:
        producer.flush()
        producer.close()
    summary = ProduceSummary(topic=plan.topic, partitions=len(partitions), sent=counts.sent,
                             errors=counts.errors, acked=counts.sent - counts.errors,
                             first_error=counts.first_error, interrupted=stop.is_set(),
                             elapsed_s=time.monotonic() - started)
    summary.add_tags(counts.tags, counts.clean)
    return summary


def _send_loop(plan: WorkerPlan, stream: MessageStream, producer: KafkaProducer,
               part_of: dict[bytes, int], stop: StopFlag,
               report: Callable[[int, int], None] | None, counts: _Counts) -> None:
    """Fill chunks from the stream and send them, paced to `plan.rate` when it is > 0."""
    chunk = max(1, min(2000, int(plan.rate / 100))) if plan.rate > 0 else 2000
    deadline = math.inf if plan.duration_s is None else time.monotonic() + plan.duration_s
    t0 = last_report = time.monotonic()
    inflight: deque = deque()
    batch: list = []
    while not stop.is_set() and time.monotonic() < deadline and not counts.errors:
        budget = chunk
        if plan.quota is not None:
            budget = min(chunk, plan.quota - counts.sent - stream.pending)
        if budget <= 0:
            break
        batch.clear()
        stream.fill(batch, budget)
        if not batch:  # the simulated clock caught up with the wall clock
            time.sleep(0.01)
            continue
        if plan.rate > 0:
            time.sleep(max(0.0, t0 + counts.sent / plan.rate - time.monotonic()))
        inflight.append(_send_all(producer, plan.topic, batch, part_of, counts))
        while len(inflight) > MAX_INFLIGHT_CHUNKS:
            _wait(inflight.popleft())
        if report is not None and time.monotonic() - last_report >= 0.5:
            report(counts.sent, counts.errors)
            last_report = time.monotonic()
    batch.clear()
    stream.drain(batch)  # held-back late events were counted when held: send them now
    if batch:
        _send_all(producer, plan.topic, batch, part_of, counts)
    if report is not None:
        report(counts.sent, counts.errors)


def _send_all(producer: KafkaProducer, topic: str, batch: list, part_of: dict[bytes, int],
              counts: _Counts):
    """Send every message of `batch`; returns the last future."""
    send, on_error, tags = producer.send, counts.on_error, counts.tags
    future = None
    sent = clean = 0
    try:
        for key, value, tag in batch:
            future = send(topic, value, key, None, part_of[key])
            future.add_errback(on_error)
            sent += 1
            if tag is None:
                clean += 1
            else:
                tags[tag] += 1
    finally:
        counts.clean += clean
        counts.sent += sent
    return future


def _wait(future) -> None:
    try:
        future.get(timeout=120)
    except KafkaError:
        pass  # counted by the errback
