"""De-duplication cost per batch against a large index of event ids already seen.

    .venv/bin/python scripts/bench_dedup.py [--ids 10000000] [--batches 8] [--batch-rows 4000]

The gold query de-duplicates with Spark's `dropDuplicates(event_id)` on a RocksDB state store
(fleetlake/gold_query.gold_source): a batch looks up its own ids only, so its cost should not
grow with the number of ids seen (silver's size). This measures it, with the gold query's own
plan (`gold_source` over a staging table) and session settings, into `noop`:

1. a staging table seeded with `--ids` distinct event ids in one commit, streamed once to fill
   the index (0 ids: the baseline);
2. then, with the query running, `--batches` appends of `--batch-rows` rows each (half new ids,
   half ids seen before, in random order), one micro-batch each.

Per batch it reports Spark's own durations (triggerExecution, addBatch) and the state's rows
and memory; the query's first batch, which loads the index from the checkpoint as a restarted
pipeline's does, separately. A table, and `.local/reports/dedup-<stamp>.json`. Needs a quiet
machine (no other Spark).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from fleetlake.gold_query import gold_source  # noqa: E402
from infra.settings import Settings, load_settings  # noqa: E402
from infra.spark import build_spark, query_session  # noqa: E402
from silver.schema import STAGING_SCHEMA  # noqa: E402
from silver.sink import staging_path  # noqa: E402


def staged_ids(spark: SparkSession, ids: DataFrame) -> DataFrame:
    """Staging rows carrying only an event id (valid: no reasons); every other column null."""
    hashed = F.sha2(F.col("id").cast("string"), 256).substr(1, 32)
    columns = {"event_id": hashed, "reasons": F.array().cast("array<string>")}
    return ids.select(*[columns.get(f.name, F.lit(None)).cast(f.dataType).alias(f.name)
                        for f in STAGING_SCHEMA.fields])


def append(frame: DataFrame, path: str) -> None:
    frame.write.format("delta").mode("append").save(path)


def run_size(spark: SparkSession, settings: Settings, ids: int, batches: int, rows: int,
             seed: int) -> dict:
    """Seed `ids` ids, then time `batches` small batches against them."""
    path = staging_path(settings)
    append(staged_ids(spark, spark.range(0, max(ids, 1), numPartitions=8)), path)
    session = query_session(spark, {"spark.sql.adaptive.enabled": "false"})
    checkpoint = f"{settings.lake_root}/_checkpoints/dedup"
    started = time.monotonic()
    seeding = gold_source(session, settings).writeStream.format("noop").option(
        "checkpointLocation", checkpoint).trigger(availableNow=True).start()
    seeding.awaitTermination()
    seed_s = time.monotonic() - started
    query = gold_source(session, settings).writeStream.format("noop").option(
        "checkpointLocation", checkpoint).trigger(processingTime="500 milliseconds").start()
    measured = []
    try:
        for number in range(batches):
            new = spark.range(ids + number * rows, ids + number * rows + rows // 2)
            seen = spark.range(0, max(ids, 1)).sample(False, min(1.0, rows / 2 / max(ids, 1)),
                                                      seed + number).limit(rows // 2)
            done = len(query.recentProgress)
            append(staged_ids(spark, new.unionByName(seen).orderBy(F.rand(seed))), path)
            progress = _next_batch(query, done)
            state = progress["stateOperators"][0]
            # both sources of the plan (rows, markers) read each appended row
            measured.append({"appended_rows": progress["numInputRows"] // 2,
                             "trigger_ms": progress["durationMs"]["triggerExecution"],
                             "add_batch_ms": progress["durationMs"].get("addBatch"),
                             "state_rows": state["numRowsTotal"],
                             "state_memory_mb": round(state["memoryUsedBytes"] / 2**20, 1)})
            print(f"  {ids:,} ids: batch {number + 1}/{batches}: {measured[-1]}", flush=True)
    finally:
        query.stop()
    # the query's first batch loads the index from the checkpoint (a restart pays the same)
    steady = [m["trigger_ms"] for m in measured[1:]] or [m["trigger_ms"] for m in measured]
    return {"ids": ids, "seed_s": round(seed_s, 1), "batches": measured,
            "first_trigger_ms": measured[0]["trigger_ms"],
            "median_trigger_ms": statistics.median(steady), "max_trigger_ms": max(steady)}


def _next_batch(query, done: int, timeout_s: float = 300.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        fresh = [p for p in query.recentProgress[done:] if p["numInputRows"] > 0]
        if fresh:
            return fresh[0]
        time.sleep(0.2)
    raise RuntimeError("the de-duplication query did not run the batch")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=10_000_000)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--batch-rows", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    base = load_settings()
    spark = build_spark(base, app_name="fleetlake-bench-dedup")
    spark.sparkContext.setLogLevel("ERROR")
    results = []
    for ids in (0, args.ids):
        root = tempfile.mkdtemp(prefix="dedup-", dir=ROOT / ".local")
        settings = dataclasses.replace(base, lake_root=root)
        try:
            print(f"index of {ids:,} ids: seeding", flush=True)
            results.append(run_size(spark, settings, ids, args.batches, args.batch_rows,
                                    args.seed))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    print("\n| ids already seen | seeding them | first batch after start | later batches of "
          f"~{args.batch_rows:,} rows, median | max |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['ids']:,} | {r['seed_s']} s | {r['first_trigger_ms']:,} ms | "
              f"{r['median_trigger_ms']:,} ms | {r['max_trigger_ms']:,} ms |")
    reports = ROOT / ".local" / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (reports / f"dedup-{stamp}.json").write_text(json.dumps(results, indent=2))
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
