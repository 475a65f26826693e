#!/usr/bin/env python
"""Measure the producer: acknowledged events/s against the broker, and generation alone.

    .venv/bin/python scripts/bench_producer.py [--events N] [--processes P] [--faults SPEC]
        [--compression none|gzip] [--generate-only] [--keep-topic]

Sends N events flat out (`--rate 0`, the path of `fleetlake produce --rate 0`) to a fresh topic
on settings.effective_kafka_bootstrap (FLEETLAKE_KAFKA_BOOTSTRAP, else the local broker), waits
for every acknowledgement (acks=all) and prints one JSON object. The topic is deleted afterwards
unless --keep-topic. `--generate-only` measures the simulator + fault injection without Kafka.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kafka.record.util import crc32c_c  # noqa: E402

from infra.settings import load_settings  # noqa: E402
from ingestion.admin import admin_client  # noqa: E402
from ingestion.faults import parse_faults  # noqa: E402
from ingestion.producer import run_produce  # noqa: E402
from ingestion.simulator import AnomalyRates, Fleet  # noqa: E402
from ingestion.stream import MessageStream  # noqa: E402


def measure_generation(settings, events: int, cars: int, faults: str, seed: int) -> dict:
    """Simulator + faults + JSON in this one process, no Kafka."""
    fleet = Fleet(cars, seed, int(time.time() * 1000) - 10**9, settings.producer.interval_s,
                  settings.producer.region, AnomalyRates.from_settings(settings.producer, settings.alerts))
    stream = MessageStream(fleet, parse_faults(faults), seed, settings.validation)
    out: list = []
    started = time.perf_counter()
    made = 0
    while made + stream.pending < events:
        out.clear()
        stream.fill(out, min(2000, events - made - stream.pending))
        made += len(out)
    out.clear()
    stream.drain(out)
    elapsed = time.perf_counter() - started
    return {"mode": "generate-only", "events": made + len(out), "elapsed_s": round(elapsed, 3),
            "generated_events_per_s": round((made + len(out)) / elapsed), "cars": cars,
            "faults": faults}


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (the producer processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure_produce(settings, events: int, cars: int, faults: str, seed: int, keep: bool) -> dict:
    topic = f"bench_producer_{uuid.uuid4().hex[:10]}"
    cpu_before = cpu_seconds()
    try:
        summary = run_produce(settings, events=events, duration_s=None, rate=0.0, faults=faults,
                              seed=seed, topic=topic, cars=cars, progress=True)
    finally:
        cpu = cpu_seconds() - cpu_before
        if not keep:
            client = admin_client(settings.effective_kafka_bootstrap)
            try:
                client.delete_topics([topic])
            except Exception:  # the topic may not exist if the broker was unreachable
                pass
            finally:
                client.close()
    return {"mode": "produce", "bootstrap": settings.effective_kafka_bootstrap, "topic": topic,
            "partitions": summary.partitions, "processes": summary.processes,
            "compression": settings.producer.compression, "events": summary.sent,
            "acked": summary.acked, "errors": summary.errors,
            "elapsed_s": round(summary.elapsed_s, 3),
            "acked_events_per_s": round(summary.events_per_s), "cars": cars, "faults": faults,
            "crc32c": "c extension" if crc32c_c is not None else "pure python (slow)",
            # CPU cost, which other load on the machine does not distort (wall-clock rates do)
            "producer_cpu_s": round(cpu, 2),
            "events_per_producer_cpu_s": round(summary.acked / cpu) if cpu else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--cars", type=int, default=50)
    parser.add_argument("--faults", default="default")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--processes", type=int, default=None, help="0 = auto (the default)")
    parser.add_argument("--compression", choices=("none", "gzip"), default=None)
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument("--keep-topic", action="store_true")
    args = parser.parse_args()
    settings = load_settings()
    producer = settings.producer
    if args.processes is not None:
        producer = dataclasses.replace(producer, processes=args.processes)
    if args.compression is not None:
        producer = dataclasses.replace(producer, compression=args.compression)
    settings = dataclasses.replace(settings, producer=producer)
    if args.generate_only:
        result = measure_generation(settings, args.events, args.cars, args.faults, args.seed)
    else:
        result = measure_produce(settings, args.events, args.cars, args.faults, args.seed,
                                 args.keep_topic)
    print(json.dumps(result))
    return 0 if result.get("errors", 0) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
