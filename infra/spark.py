"""Spark session factory: local jars (no download at job start), Delta, UTC, sized for 2 cores."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Mapping

from pyspark.sql import SparkSession

from infra.class_archive import archive_key, use_options
from infra.jvm_deps import spark_extra_jars
from infra.settings import Settings

FAIR_POOLS = Path(__file__).with_name("fairscheduler.xml")


class JavaMissingError(RuntimeError):
    """No Java runtime; Spark and Kafka need Java 17."""


def check_java() -> None:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise JavaMissingError("Java is not installed: install Java 17 "
                               "(`apt-get install -y openjdk-17-jre-headless`) or set JAVA_HOME")


def build_spark(settings: Settings, app_name: str = "fleetlake",
                java_options: str | None = None,
                extra_confs: Mapping[str, str] | None = None) -> SparkSession:
    """Return the process' Spark session with Delta and the Kafka source configured.
    `java_options`: extra options of the driver JVM; by default, those that map the class
    archive `make setup` recorded (infra/class_archive.py), if there is one for these jars.
    `extra_confs`: set last, so every session of the context starts from them."""
    check_java()
    sp = settings.spark
    extra_jars = spark_extra_jars()
    if java_options is None:
        java_options = use_options(archive_key(extra_jars))
    # glibc gives each thread that allocates natively (RocksDB, Netty, the JIT) an arena of its
    # own; Spark runs dozens of threads, so the JVM's resident set grows by GBs of mostly idle
    # arenas. The JVM this session launches inherits the environment.
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    builder = (
        SparkSession.builder.master(settings.spark_master)
        .appName(app_name)
        .config("spark.jars", ",".join(extra_jars))
        .config("spark.driver.memory", sp.driver_memory)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", str(sp.ui_enabled).lower())
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(sp.shuffle_partitions))
        .config("spark.default.parallelism", str(sp.shuffle_partitions))
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.sql.streaming.stateStore.providerClass",
                "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider")
        .config("spark.databricks.delta.schema.autoMerge.enabled", "false")
        # No shuffle before writes and no compaction inside commits: streamed tables get small
        # files that `fleetlake maintain` compacts off the latency path (docs/architecture.md).
        .config("spark.databricks.delta.optimizeWrite.enabled", "false")
        .config("spark.databricks.delta.autoCompact.enabled", "false")
        .config("spark.databricks.delta.merge.repartitionBeforeWrite.enabled", "true")
        # replaceWhere writes only rows of the replaced range (gold/sink.py): skip the extra
        # job that checks it, and the one that counts rows for commit metrics
        .config("spark.databricks.delta.replaceWhere.constraintCheck.enabled", "false")
        .config("spark.databricks.delta.replaceWhere.dataColumns.metrics.enabled", "false")
        # a repeated JSON key keeps its last value in both parses (silver/validate.py)
        .config("spark.sql.variant.allowDuplicateKeys", "true")
        # de-duplication state (RocksDB): commits write a changelog, not a full snapshot
        .config("spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled", "true")
        # one memory budget (block cache + write buffers) for every RocksDB instance of the
        # process, instead of ~64 MB of write buffers and a cache per state partition
        .config("spark.sql.streaming.stateStore.rocksdb.boundedMemoryUsage", "true")
        .config("spark.sql.streaming.stateStore.rocksdb.maxMemoryUsageMB", "256")
        # the two streaming queries share the cores through FAIR pools (infra/fairscheduler.xml)
        .config("spark.scheduler.mode", "FAIR")
        .config("spark.scheduler.allocation.file", str(FAIR_POOLS))
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.extraJavaOptions",
                f"-Duser.timezone=UTC -XX:+UseG1GC {java_options}".strip())
        .config("spark.sql.warehouse.dir", f"{settings.local.home}/spark-warehouse")
        .config("spark.sql.streaming.noDataMicroBatches.enabled", "false")
        # the raw `value` (bronze, staging, quarantine): every row's bytes are distinct, so a
        # dictionary and min/max statistics only cost CPU (measured: ~10% of a live run's
        # samples compared or hashed values); nothing filters on it
        .config("spark.hadoop.parquet.enable.dictionary#value", "false")
        .config("spark.hadoop.parquet.column.statistics.enabled#value", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # Generated classes are cached by their source: the default (100) is far fewer than the
        # distinct stages of the two queries' batches, so most were compiled (and JIT-compiled)
        # again every batch (measured: 1,608 compilations in 100 s at 2,000 events/s; 584 with
        # this); compiling was the largest part of the driver's CPU.
        .config("spark.sql.codegen.cache.maxEntries", "2000")
        # small Delta logs: don't spread snapshot state over 50 tasks on 2 cores
        .config("spark.databricks.delta.snapshotPartitions", "2")
        # VACUUM lists a table's directories in this many tasks: the default (10,000) cost
        # 20-27 s of task overhead per table of a few files on 2 cores (2.5-3.7 s with this)
        .config("spark.sql.sources.parallelPartitionDiscovery.parallelism",
                str(sp.shuffle_partitions))
    )
    for key, value in (extra_confs or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def query_session(spark: SparkSession, confs: Mapping[str, str]) -> SparkSession:
    """A session of its own for one streaming query: same SparkContext (cores, cache, FAIR
    pools), separate SQL confs. Delta takes a MERGE's idempotency keys from session confs, so
    two queries in one session could commit under each other's keys (infra/delta_io.py)."""
    session = spark.newSession()
    for key, value in confs.items():
        session.conf.set(key, value)
    return session
