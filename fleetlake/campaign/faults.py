"""The faults the campaign injects: each breaks something, holds it broken, then repairs it.

A fault is a function of the running campaign (fleetlake/campaign/run.py `Target`) that returns
once the repair is done: the campaign then times how long the pipeline takes to process
everything Kafka held at that moment. A fault whose repair is itself part of recovering (the
checkpoint's: a refused start, `pipeline repair`) returns the seconds it took, which count
toward the time to recover. Kafka and PostgreSQL faults need the embedded services
(`fleetlake services up`): they kill and restart the local processes.
"""
from __future__ import annotations

import errno
import os
import random
import re
import signal
import time
from pathlib import Path
from typing import Callable, Protocol

from kafka import KafkaProducer

from fleetlake import gold_query, hot
from infra.kafka_local import kafka_home, start_kafka
from infra.postgres_local import start_postgres, stop_postgres
from infra.procs import pid_alive, read_pid
from infra.settings import Settings


class Target(Protocol):
    """What a fault acts on (implemented by run.Campaign)."""

    services: Settings  # the embedded services' settings
    settings: Settings  # the campaign's topic, lake and database
    rng: random.Random
    hold_s: float  # how long a service stays down
    rate: float  # the steady load, events/s

    def kill_pipeline(self) -> None: ...
    def start_pipeline(self) -> None: ...
    def produce(self, rate: float, seconds: float) -> None: ...
    def pipeline_refusal(self, timeout_s: float) -> str | None: ...
    def repair_pipeline(self) -> str: ...


def pipeline_kill(target: Target) -> None:
    """kill -9 of the pipeline's whole process group (Python and its JVM), then a restart."""
    target.kill_pipeline()
    target.start_pipeline()


def postgres_restart(target: Target) -> None:
    """The embedded PostgreSQL stopped (fast shutdown: every connection cut), then started."""
    stop_postgres(target.services)
    time.sleep(target.hold_s)
    start_postgres(target.services)


def kafka_kill(target: Target) -> None:
    """kill -9 of the embedded Kafka broker, then a restart on the same data directory."""
    pid = read_pid(kafka_home(target.services) / "kafka.pid")
    if not pid or not pid_alive(pid):
        raise RuntimeError("the embedded Kafka broker is not running: run `fleetlake services up`")
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(target.hold_s)
    start_kafka(target.services)


MALFORMED_BURST = 2_000  # records of a malformed burst


def malformed_burst(target: Target) -> None:
    """MALFORMED_BURST records at once, none of them a valid event: truncated JSON, bare
    garbage, a JSON array, an empty value."""
    rng = target.rng
    shapes = [lambda i: b'{"event_id": "burst-%d", "car_id": "CAR-0' % i,
              lambda i: bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 40))),
              lambda i: b"[1, 2, %d]" % i, lambda i: b""]
    producer = KafkaProducer(bootstrap_servers=target.settings.effective_kafka_bootstrap,
                             acks="all", linger_ms=20)
    try:
        for i in range(MALFORMED_BURST):
            producer.send(target.settings.topic, key=b"burst", value=shapes[i % len(shapes)](i))
        producer.flush()
    finally:
        producer.close()


OVERLOAD_FACTOR = 10
OVERLOAD_SECONDS = 10.0


def producer_overload(target: Target) -> None:
    """The producer at OVERLOAD_FACTOR times the steady rate for OVERLOAD_SECONDS."""
    target.produce(target.rate * OVERLOAD_FACTOR, OVERLOAD_SECONDS)


BALLAST = ".campaign-ballast"  # the file that fills the lake root's file system


def lake_out_of_space(target: Target) -> None:
    """The lake root's file system full (a ballast file fills the campaign's small tmpfs) for
    `hold_s`, then freed. The pipeline's next write fails; it stops with a one-line error and
    is restarted by the campaign (run.Campaign, counted as a pipeline exit)."""
    ballast = Path(target.settings.lake_root) / BALLAST
    chunk = bytes(4 << 20)
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while True:
            os.write(fd, chunk)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)
    try:
        time.sleep(target.hold_s)
    finally:
        ballast.unlink()


def damage_checkpoint_file(checkpoint: Path, rng: random.Random) -> str:
    """Truncate (a torn write) or delete (as `rm` would: its checksum stays) one file Spark
    reads at start: the query id, the newest offsets entry or the newest commit."""
    kind = rng.choice(("metadata", "offsets", "commits"))
    relative = kind
    if kind != "metadata":
        relative += f"/{max(int(p.name) for p in (checkpoint / kind).iterdir() if p.name.isdigit())}"
    path = checkpoint / relative
    if rng.random() < 0.5:
        os.truncate(path, path.stat().st_size // 2)
        return f"truncated {checkpoint.name}/{relative}"
    path.unlink()
    return f"deleted {checkpoint.name}/{relative}"


REFUSAL = re.compile(r"fleetlake: error: the checkpoint of streaming query \S+ is damaged "
                     r"\(.+\): starting from it would skip or re-read data; run `fleetlake "
                     r"pipeline repair`.*")


def checkpoint_damage(target: Target) -> float:
    """kill -9 of the pipeline, one file of the hot or the gold query's checkpoint damaged,
    a restart: the pipeline must refuse with the repair line; `fleetlake pipeline repair`,
    then a restart. Returns the seconds from the first restart to the second (the refusal and
    the repair are part of the recovery)."""
    target.kill_pipeline()
    query = target.rng.choice((hot.QUERY_NAME, gold_query.QUERY_NAME))
    done = damage_checkpoint_file(Path(target.settings.checkpoint_path(query)), target.rng)
    started = time.monotonic()
    target.start_pipeline()
    refusal = target.pipeline_refusal(timeout_s=180.0)
    if refusal is None or not REFUSAL.fullmatch(refusal):
        raise RuntimeError(f"after {done}, the pipeline did not refuse to start with the repair "
                           f"line (it said: {refusal!r})")
    target.repair_pipeline()
    target.start_pipeline()
    return time.monotonic() - started


FAULTS: dict[str, Callable[[Target], float | None]] = {
    "pipeline kill -9": pipeline_kill,
    "PostgreSQL stop/start": postgres_restart,
    "Kafka broker kill -9": kafka_kill,
    "100% malformed burst": malformed_burst,
    "producer at 10x rate": producer_overload,
    "lake root out of space": lake_out_of_space,
    "checkpoint file truncated or deleted": checkpoint_damage,
}
OUT_OF_SPACE = "lake root out of space"  # needs the lake on a tmpfs (run.Campaign mounts one)
