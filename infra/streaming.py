"""Small helpers around Spark streaming checkpoints."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from pyspark.sql import SparkSession


def read_query_id(spark: SparkSession, checkpoint: str) -> str:
    """The streaming query id stored in the checkpoint: stable across restarts of the query, so
    it names the query's writes (Delta txnAppId, the PostgreSQL ledger) for its whole life."""
    line = spark.read.text(f"{checkpoint.rstrip('/')}/metadata").first()
    return json.loads(line.value)["id"]


def path_exists(spark: SparkSession, path: str) -> bool:
    """Whether `path` exists, on any file system Spark reaches (local, HDFS, object stores)."""
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return bool(fs.exists(hadoop_path))


def batch_timestamp(spark: SparkSession, checkpoint: str, batch_id: int) -> datetime:
    """The micro-batch's timestamp (UTC) from the query's offset log: what current_timestamp()
    reads in that batch, the same when the batch is retried.

    Sinks stamp rows with it as a literal added after the heavy stages: a per-batch literal
    inside a stage changes its generated code, so Spark would compile it again every batch
    (measured: two classes, ~1-2 s per hot batch)."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(f"{checkpoint.rstrip('/')}/offsets/{int(batch_id)}")
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    stream = fs.open(path)
    try:
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
        reader.readLine()  # the log format version ("v1")
        millis = int(json.loads(reader.readLine())["batchTimestampMs"])
    finally:
        stream.close()
    return datetime.fromtimestamp(millis / 1000, tz=timezone.utc)
