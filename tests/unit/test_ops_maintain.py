"""maintain on small Delta tables: compaction and clustering keep the rows, reduce the files,
change nothing a streaming reader sees; beside a pipeline only append-only tables are rewritten."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from delta import exceptions as delta_errors
from delta.tables import DeltaTable

from ops.catalog import LakeTable, lake_table
from ops.maintain import maintain_table, summary_line, with_retries
from silver.schema import QUARANTINE_SCHEMA, SILVER_SCHEMA

T0 = dt.datetime(2026, 3, 1, 10, 0)


def silver_row(i: int) -> tuple:
    return (f"e{i}", f"car-{i % 3}", None, T0 + dt.timedelta(seconds=i), 50.0 + i, 50.0, 90.0,
            26.4, 50.1, True, "raw", i % 2, i, T0)


def write_in_small_commits(spark, path, schema, rows, commits: int) -> None:
    for k in range(commits):
        part = rows[k::commits]
        spark.createDataFrame(part, schema).coalesce(1).write.format("delta").mode(
            "append").save(path)


def rows_of(spark, path):
    return sorted(tuple(r) for r in spark.read.format("delta").load(path).collect())


def test_maintain_compacts_and_clusters_without_changing_a_row(spark, settings,
                                                               no_auto_compaction):
    table = lake_table("silver/telemetry")
    path = table.path(settings)
    write_in_small_commits(spark, path, SILVER_SCHEMA, [silver_row(i) for i in range(12)], 6)
    before = rows_of(spark, path)
    # a streaming reader of the table (like a downstream query) that has read everything so far
    seen = (spark.readStream.format("delta").load(path).writeStream.format("memory")
            .queryName("maintain_reader").trigger(availableNow=True).start())
    seen.awaitTermination()
    logs = []
    report = maintain_table(spark, settings, table, beside_pipeline=False, vacuum=True,
                            log=logs.append)
    assert (report.files_before, report.files_after) == (6, 1)
    assert report.done[0] == "retention 30 days"
    assert report.done[1:3] == ["clustered by car_id, event_ts (all files)", "vacuumed"]
    latest = DeltaTable.forPath(spark, path).history(1).first().version
    assert report.done[3:] in ([], [f"checkpoint at version {latest}"])  # or Delta's own
    assert (Path(path) / "_delta_log" / f"{latest:020d}.checkpoint.parquet").is_file()
    assert rows_of(spark, path) == before
    detail = DeltaTable.forPath(spark, path).detail().first()
    assert detail.clusteringColumns == ["car_id", "event_ts"]
    assert detail.properties["delta.deletedFileRetentionDuration"] == "interval 30 days"
    operations = [r.operation for r in DeltaTable.forPath(spark, path).history().collect()]
    assert operations[:5] == ["VACUUM END", "VACUUM START", "OPTIMIZE", "CLUSTER BY",
                              "SET TBLPROPERTIES"]
    # OPTIMIZE is dataChange=false: the streaming reader gets no row twice
    again = (spark.readStream.format("delta").load(path).writeStream.format("memory")
             .queryName("maintain_reader_2").trigger(availableNow=True)
             .option("checkpointLocation", str(settings.checkpoint_path("reader"))).start())
    again.awaitTermination()
    assert spark.table("maintain_reader").count() == 12
    second = maintain_table(spark, settings, table, beside_pipeline=False, vacuum=False,
                            log=logs.append)
    assert second.done == ["clustered by car_id, event_ts"]  # nothing left to set or checkpoint
    assert summary_line([report, second]) == (
        f"maintain: 2 table(s): files 7 -> 2, {_size_text(report, second)}")
    assert logs == []


def _size_text(*reports) -> str:
    from ops.maintain import _size

    return (f"{_size(sum(r.bytes_before for r in reports))} -> "
            f"{_size(sum(r.bytes_after for r in reports))}")


def test_beside_a_pipeline_only_append_only_tables_are_rewritten(spark, settings,
                                                                 no_auto_compaction):
    # a table the pipeline MERGEs into (silver's layout, gold's role), and one it appends to
    silver = LakeTable("silver/telemetry", ("event_id",), ("car_id", "event_ts"))
    quarantine = lake_table("silver/quarantine")
    write_in_small_commits(spark, silver.path(settings), SILVER_SCHEMA,
                           [silver_row(i) for i in range(4)], 4)
    write_in_small_commits(spark, quarantine.path(settings), QUARANTINE_SCHEMA,
                           [(b"{", ["MALFORMED_JSON"], "raw", 0, i, T0, T0) for i in range(4)], 4)
    kept = maintain_table(spark, settings, silver, beside_pipeline=True, vacuum=True,
                          log=print)
    assert (kept.files_before, kept.files_after) == (4, 4)
    assert kept.done[:2] == ["not optimized: the running pipeline rewrites it", "vacuumed"]
    assert DeltaTable.forPath(spark, silver.path(settings)).detail().first().clusteringColumns == []
    compacted = maintain_table(spark, settings, quarantine, beside_pipeline=True, vacuum=True,
                               log=print)
    assert (compacted.files_before, compacted.files_after) == (4, 1)
    assert compacted.done[:2] == ["compacted", "vacuumed"]


def test_missing_tables_are_skipped(spark, settings):
    report = maintain_table(spark, settings, lake_table("gold/alerts"), beside_pipeline=False,
                            vacuum=True, log=print)
    assert report.line() == "gold/alerts: skipped (does not exist yet)"


def test_conflicts_are_retried_then_raised():
    calls, logs = [], []

    def conflicting():
        calls.append(1)
        if len(calls) < 3:
            raise delta_errors.ConcurrentAppendException(message="files were added")
        return "done"

    assert with_retries(conflicting, 3, logs.append, "t: OPTIMIZE", sleep=lambda s: None) == "done"
    assert logs == ["t: OPTIMIZE: a concurrent commit conflicted (ConcurrentAppendException); "
                    "retrying (1/2)", "t: OPTIMIZE: a concurrent commit conflicted "
                    "(ConcurrentAppendException); retrying (2/2)"]
    calls.clear()
    with pytest.raises(delta_errors.ConcurrentAppendException):
        with_retries(conflicting, 2, logs.append, "t", sleep=lambda s: None)


def test_vacuum_lists_a_table_in_a_few_tasks_not_ten_thousand(spark, settings, tmp_path):
    path = str(tmp_path / "quarantine")
    write_in_small_commits(spark, path, SILVER_SCHEMA, [silver_row(i) for i in range(6)], 3)
    context = spark.sparkContext
    context.setJobGroup("vacuum-tasks", "VACUUM of a small table")
    try:
        DeltaTable.forPath(spark, path).vacuum()
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
    tracker = context.statusTracker()
    stages = [tracker.getStageInfo(stage) for job in tracker.getJobIdsForGroup("vacuum-tasks")
              for stage in tracker.getJobInfo(job).stageIds]
    assert stages and max(s.numTasks for s in stages) == settings.spark.shuffle_partitions
