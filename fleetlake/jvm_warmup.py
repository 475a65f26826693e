"""Records the Spark JVM's class archive (infra/class_archive.py): `make setup` runs this module.

A child process builds a Spark session that writes the archive when its JVM exits, and runs a
small workload through the classes the pipeline loads: validation, de-duplication and gold from
literal rows, Delta appends (with txn ids), MERGE, replaceWhere, time travel and history, a
streaming query with RocksDB state and foreachBatch, Arrow to pandas, and the Kafka source. A
class the workload misses still loads at run time, only without the archive's head start.
Without a recorded archive Spark starts as before; so a failure here is a warning, not an error.
"""
from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from bronze.schema import BRONZE_SCHEMA
from gold.rebuild import gold_from_silver
from infra.class_archive import (ARCHIVE_HOME, archive_key, archive_path, record_options,
                                 stale_archives)
from infra.jvm_deps import spark_extra_jars
from infra.settings import Settings, load_settings
from infra.spark import build_spark
from silver.dedup import first_copies
from silver.validate import quarantine_rows, valid_rows, validate

RECORD_TIMEOUT_S = 900.0
_START = dt.datetime(2026, 1, 1, 8, 0, tzinfo=dt.timezone.utc)


def _bronze_rows(count: int) -> list[tuple]:
    """Kafka records of three cars, one a second: some too fast or too hot, one repeated, one
    not JSON."""
    rows = []
    for i in range(count):
        event = {"event_id": f"w-{i}", "car_id": f"car-{i % 3}",
                 "event_timestamp": (_START + dt.timedelta(seconds=i)).isoformat(),
                 "speed_kmph": float(60 + i % 120), "fuel_level": float(90 - i % 88),
                 "engine_temp_c": float(80 + i % 50), "latitude": 26.4 + i / 1e4,
                 "longitude": 50.1}
        rows.append((b"car", json.dumps(event).encode(), "warmup", 0, i, _START, _START))
    return rows + [rows[0][:4] + (count, _START, _START),
                   (None, b"{not json", "warmup", 0, count + 1, _START, _START)]


def _append_batch(path: str, batch_df: DataFrame, batch_id: int) -> None:
    """The streaming part's sink: a Delta append with the batch's txn id."""
    (batch_df.write.format("delta").mode("append").option("txnAppId", "warmup")
     .option("txnVersion", batch_id).save(path))


def warm_up(spark: SparkSession, settings: Settings, workdir: Path) -> None:
    """Run each kind of work the pipeline does once, on a few hundred literal rows."""
    lake = str(workdir)
    bronze = spark.createDataFrame(_bronze_rows(300), BRONZE_SCHEMA)
    validated = validate(bronze, settings.validation)
    silver = first_copies(valid_rows(validated))
    quarantine = quarantine_rows(validated, F.current_timestamp())
    bronze.write.format("delta").option("txnAppId", "warmup").option("txnVersion", 0) \
        .save(f"{lake}/bronze")
    silver.write.format("delta").save(f"{lake}/silver")
    quarantine.write.format("delta").save(f"{lake}/quarantine")
    (DeltaTable.forPath(spark, f"{lake}/silver").alias("t")
     .merge(silver.alias("s"), "t.event_id = s.event_id").whenNotMatchedInsertAll().execute())
    for name, frame in gold_from_silver(spark.read.format("delta").load(f"{lake}/silver"),
                                        settings.alerts).items():
        frame.write.format("delta").save(f"{lake}/{name}")
        spark.read.format("delta").load(f"{lake}/{name}").toPandas()
    fleet = spark.read.format("delta").load(f"{lake}/fleet_minute_kpis")
    (fleet.where(F.col("window_start") >= F.lit(_START)).write.format("delta")
     .mode("overwrite").option("replaceWhere", f"window_start >= '{_START.isoformat()}'")
     .save(f"{lake}/fleet_minute_kpis"))
    spark.read.format("delta").option("versionAsOf", 0).load(f"{lake}/silver").collect()
    DeltaTable.forPath(spark, f"{lake}/silver").history().collect()
    query = (spark.readStream.format("delta").load(f"{lake}/bronze")
             .dropDuplicates(["topic", "partition", "offset"]).writeStream
             .foreachBatch(functools.partial(_append_batch, f"{lake}/streamed"))
             .option("checkpointLocation", f"{lake}/_checkpoint").trigger(availableNow=True)
             .start())
    query.awaitTermination()
    (spark.readStream.format("kafka").option("kafka.bootstrap.servers", "127.0.0.1:9")
     .option("subscribe", "warmup").load().schema)  # resolves the source; connects nowhere


def _record(settings: Settings, target: Path) -> None:
    """In the child: the workload in a JVM that writes the archive to `target` as it exits."""
    workdir = target.parent / f"warmup-{os.getpid()}"
    spark = build_spark(settings, app_name="fleetlake-jvm-warmup",
                        java_options=record_options(target))
    try:
        warm_up(spark, settings, workdir)
    finally:
        spark.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_for_group(pgid: int, deadline: float) -> None:
    """Until every process of the child's group (its JVM, which writes the archive as it
    exits) has ended."""
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise TimeoutError(f"the JVM did not exit within {RECORD_TIMEOUT_S:.0f}s")


def _say(message: str) -> None:
    print(f"setup: {message}", file=sys.stderr, flush=True)


def ensure_archive(home: Path = ARCHIVE_HOME) -> Path | None:
    """The class archive for the current JVM and jars, recorded now if missing (None: none)."""
    key = archive_key(spark_extra_jars())
    if key is None:
        _say("warning: no Java runtime found to record a class archive for")
        return None
    target = archive_path(key, home)
    if target.is_file():
        return target
    home.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    _say("recording the Spark JVM's class archive (once; about a minute) ...")
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "fleetlake.jvm_warmup", "--record",
                              str(partial)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
    try:
        _, errors = child.communicate(timeout=RECORD_TIMEOUT_S)
        _wait_for_group(child.pid, started + RECORD_TIMEOUT_S)
    except (subprocess.TimeoutExpired, TimeoutError) as exc:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        errors = str(exc)
    if child.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        why = (errors or "").strip().splitlines()[-1:] or [f"exit code {child.returncode}"]
        _say(f"warning: could not record the class archive ({why[0]}); Spark starts without "
             "it (slower): run `make setup` again to retry")
        return None
    partial.rename(target)
    for old in stale_archives(key, home):
        old.unlink()
    _say(f"class archive recorded in {time.monotonic() - started:.0f}s "
         f"({target.stat().st_size / 2**20:,.0f} MiB): {target}")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleetlake.jvm_warmup",
                                     description="Record the Spark JVM's class archive.")
    parser.add_argument("--record", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    settings = load_settings()
    if args.record is not None:
        _record(settings, args.record)
    else:
        ensure_archive()
    return 0


if __name__ == "__main__":
    sys.exit(main())
