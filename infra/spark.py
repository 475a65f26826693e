"""Spark session factory: local jars (no download at job start), Delta, UTC, sized for 2 cores."""
from __future__ import annotations

import os
import shutil

from pyspark.sql import SparkSession

from infra.jvm_deps import spark_extra_jars
from infra.settings import Settings


class JavaMissingError(RuntimeError):
    """No Java runtime; Spark and Kafka need Java 17."""


def check_java() -> None:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise JavaMissingError("Java is not installed: install Java 17 "
                               "(`apt-get install -y openjdk-17-jre-headless`) or set JAVA_HOME")


def build_spark(settings: Settings, app_name: str = "fleetlake") -> SparkSession:
    """Return the process' Spark session with Delta and the Kafka source configured."""
    check_java()
    sp = settings.spark
    builder = (
        SparkSession.builder.master(settings.spark_master)
        .appName(app_name)
        .config("spark.jars", ",".join(spark_extra_jars()))
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
        # optimizeWrite adds a shuffle to every write; small files are compacted by
        # autoCompact (after 50 of them) instead
        .config("spark.databricks.delta.optimizeWrite.enabled", "false")
        .config("spark.databricks.delta.autoCompact.enabled", "true")
        .config("spark.databricks.delta.merge.repartitionBeforeWrite.enabled", "true")
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC -XX:+UseG1GC")
        .config("spark.sql.warehouse.dir", f"{settings.local.home}/spark-warehouse")
        .config("spark.sql.streaming.noDataMicroBatches.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # small Delta logs: don't spread snapshot state over 50 tasks on 2 cores
        .config("spark.databricks.delta.snapshotPartitions", "2")
    )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
