"""Small helpers around Spark streaming checkpoints."""
from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import SparkSession

from infra.checkpoint_files import HadoopDir, journal_batch, parse_metadata


def read_query_id(spark: SparkSession, checkpoint: str) -> str:
    """The streaming query id stored in the checkpoint: stable across restarts of the query, so
    it names the query's writes (Delta txnAppId, the PostgreSQL ledger) for its whole life."""
    query_id = parse_metadata(HadoopDir(spark, checkpoint).read("metadata"))
    if query_id is None:
        raise RuntimeError(f"the query id in {checkpoint}/metadata is unreadable")
    return query_id


def batch_committed(spark: SparkSession, checkpoint: str, batch_id: int) -> bool:
    """Whether the query's commit log holds `batch_id`: its sink returned, every write done."""
    return path_exists(spark, f"{checkpoint.rstrip('/')}/commits/{batch_id}")


def path_exists(spark: SparkSession, path: str) -> bool:
    """Whether `path` exists, on any file system Spark reaches (local, HDFS, object stores)."""
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return bool(fs.exists(hadoop_path))


def batch_timestamp(spark: SparkSession, checkpoint: str, batch_id: int,
                    query_id: str | None = None) -> datetime:
    """The micro-batch's timestamp (UTC) from the query's offset log: what current_timestamp()
    reads in that batch, the same when the batch is retried. Reading it journals the batch's
    offsets entry (and, given `query_id`, the query id) before the batch writes anything
    (infra/checkpoint_files.py: what `fleetlake pipeline repair` restores a damaged
    checkpoint from).

    Sinks stamp rows with it as a literal added after the heavy stages: a per-batch literal
    inside a stage changes its generated code, so Spark would compile it again every batch
    (measured: two classes, ~1-2 s per hot batch)."""
    entry = journal_batch(spark, checkpoint, batch_id, query_id)
    return datetime.fromtimestamp(int(entry[0]["batchTimestampMs"]) / 1000, tz=timezone.utc)
