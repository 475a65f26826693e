"""`fleetlake bench`: every performance figure of docs/performance.md in one run on this machine.

Phases (each on its own topic, lake and database, removed afterwards unless --keep):
1. backlog (fleetlake/bench/backlog.py): N preloaded events through every layer into
   PostgreSQL, start-up measured apart, against a bare Spark parse of the same topic;
2. live (fleetlake/bench/live.py): freshness at a steady rate, then small batches.
Progress goes to stderr; the result is a table (or one JSON object with --json) and a PNG of
freshness over time under `<local home>/reports/`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

from fleetlake.bench import report
from fleetlake.bench.backlog import BenchError, run_backlog
from fleetlake.bench.live import run_live
from infra.settings import Settings


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def bench_command(settings: Settings, args: argparse.Namespace) -> int:
    from infra.services import ensure_services
    from infra.spark import build_spark

    ensure_services(settings, log=_progress)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    run_dir = Path(settings.local.home) / "bench" / stamp
    workspaces = []
    _progress(f"run {stamp}: starting Spark for the limit query and the analysis")
    spark = build_spark(settings, app_name="fleetlake-bench")
    try:
        backlog, space = run_backlog(settings, spark, run_dir, args.events, _progress)
        workspaces.append(space)
        result = _backlog_figures(backlog)
        if not args.skip_live:
            live, space = run_live(settings, run_dir, args.rate, args.live_seconds,
                                   args.trickle_rate, args.trickle_seconds, _progress,
                                   cars=args.cars)
            workspaces.append(space)
            result.update(_live_figures(spark, space.settings, live, settings, stamp))
    except BenchError as exc:
        print(f"fleetlake bench: error: {exc}", file=sys.stderr)
        return 1
    finally:
        spark.stop()
        if not args.keep:
            for space in workspaces:
                space.remove(settings.effective_pg_dsn)
    result["machine"] = report.machine()
    print(json.dumps(result, indent=2) if args.json else _table(result))
    return 0


def _backlog_figures(backlog) -> dict:
    return {
        "events": backlog.events, "backlog_eps": round(backlog.backlog_eps),
        "startup_s": round(backlog.startup_s, 1), "limit_eps": round(backlog.limit_eps),
        "ratio": round(backlog.ratio, 3), "produce_eps": round(backlog.produce_eps),
        "backlog_run_s": round(backlog.run_s, 1), "peak_rss_mb": round(backlog.peak_rss_mb),
        "cpu_s_per_1k": round(backlog.cpu_s / max(backlog.events / 1000, 1e-9), 3),
        "freshness_ms": {}, "small_batch_ms": None,
    }


def _live_figures(spark, live_settings: Settings, live, settings: Settings, stamp: str) -> dict:
    silver = (spark.read.format("delta").load(live_settings.table_path("silver", "telemetry"))
              .select("event_id", "car_id", "event_ts", "kafka_timestamp").toPandas())
    silver = silver.assign(kafka_timestamp=pd.to_datetime(silver["kafka_timestamp"], utc=True))
    steady = silver[silver["kafka_timestamp"] < live.trickle_started]
    delays = report.freshness(live.alerts, live.latest, live.kpis, steady)
    delays = {name: frame[_before(frame, live.trickle_started)] for name, frame in delays.items()}
    start = steady["kafka_timestamp"].min() if not steady.empty else live.trickle_started
    png = report.plot(delays, start, Path(settings.local.home) / "reports" /
                      f"bench-{stamp}-freshness.png")
    small = report.small_batches(live.progress, live.trickle_started)
    return {
        "freshness_ms": {name: report.percentiles(frame["delay_ms"])
                         for name, frame in delays.items()},
        "small_batch_ms": small["threshold"]["p50"],
        "small_batch_detail": small,
        "live": {"rate": live.rate, "seconds": live.seconds, "cars": live.cars,
                 "events": live.produced,
                 "peak_rss_mb": round(live.usage.peak_rss_mb)},
        "freshness_png": str(png),
    }


def _before(frame: pd.DataFrame, limit: pd.Timestamp) -> pd.Series:
    """Rows whose event reached Kafka before `limit` (the steady-rate part of the run)."""
    return pd.to_datetime(frame["kafka_timestamp"], utc=True) < limit


def _table(result: dict) -> str:
    lines = ["fleetlake bench", ""]
    order = ("events", "produce_eps", "limit_eps", "backlog_eps", "ratio", "startup_s",
             "backlog_run_s", "peak_rss_mb", "cpu_s_per_1k", "small_batch_ms")
    for key in order:
        if key in result:
            lines.append(f"  {key:<16} {result[key]}")
    for name, figures in result.get("freshness_ms", {}).items():
        lines.append(f"  freshness {name:<14} p50 {figures['p50']} ms  p95 {figures['p95']} ms"
                     f"  p99 {figures['p99']} ms  ({figures['n']} rows)")
    for name, figures in result.get("small_batch_detail", {}).items():
        lines.append(f"  small batches {name:<10} p50 {figures['p50']} ms  p95 {figures['p95']}"
                     f" ms  ({figures['n']} batches)")
    if "live" in result:
        lines.append(f"  live             {result['live']}")
    if "freshness_png" in result:
        lines.append(f"  freshness plot   {result['freshness_png']}")
    lines.append(f"  machine          {result['machine']}")
    return "\n".join(lines)

