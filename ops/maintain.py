"""`fleetlake maintain`: compaction and clustering (OPTIMIZE), VACUUM, log checkpoints.

Per table: retention properties and liquid clustering (`LakeTable.cluster_by`, e.g. silver and
alerts by car and event time, what dashboards, audits and the late-event recompute filter on)
are set first, then OPTIMIZE (incremental clustering, or plain compaction), VACUUM with the
table's own retention (never below it), and a log checkpoint when the newest version has none.

Safe beside a running pipeline: OPTIMIZE only rewrites files (dataChange=false: no reader or
stream sees new data, exactly-once is untouched) and Delta retries its commit after concurrent
appends. But its commit removes files, so a concurrent MERGE or overwrite that read them fails
(ConcurrentDeleteReadException); and a metadata change (retention, clustering) fails every
concurrent commit. So beside a pipeline (`beside_pipeline=True`) only tables the pipeline
blind-appends to are optimized, no properties change, and every table still gets VACUUM (its
commits carry no data or metadata) and checkpoints. Own conflicts are retried.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from delta import exceptions as delta_errors
from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from infra.settings import Settings
from ops.catalog import LakeTable, discovered_pipeline_tables, known_tables, table_exists
from ops.table_settings import (apply_clustering, apply_retention, is_clustered,
                                partition_columns, sql_path)

Log = Callable[[str], None]
# Delta's commit conflicts (in PySpark they do not share a base class)
CONFLICTS = (delta_errors.DeltaConcurrentModificationException,
             delta_errors.ConcurrentWriteException, delta_errors.MetadataChangedException,
             delta_errors.ProtocolChangedException, delta_errors.ConcurrentAppendException,
             delta_errors.ConcurrentDeleteReadException,
             delta_errors.ConcurrentDeleteDeleteException,
             delta_errors.ConcurrentTransactionException)
_RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
_MIN_CHECKED_RETENTION_DAYS = 7.0  # Delta refuses shorter VACUUM retention unless told


@dataclass
class TableReport:
    """What maintenance did to one table: file counts and bytes before and after."""

    name: str
    files_before: int = 0
    bytes_before: int = 0
    files_after: int = 0
    bytes_after: int = 0
    done: list[str] = field(default_factory=list)
    skipped: str | None = None

    def line(self) -> str:
        if self.skipped:
            return f"{self.name}: skipped ({self.skipped})"
        return (f"{self.name}: files {self.files_before} -> {self.files_after}, "
                f"{_size(self.bytes_before)} -> {_size(self.bytes_after)}"
                f"{' (' + '; '.join(self.done) + ')' if self.done else ''}")


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def file_stats(spark: SparkSession, path: str) -> tuple[int, int]:
    """(files, bytes) of the table's current version."""
    row = DeltaTable.forPath(spark, path).detail().select("numFiles", "sizeInBytes").first()
    return int(row.numFiles or 0), int(row.sizeInBytes or 0)


def with_retries(work: Callable[[], object], attempts: int, log: Log, what: str,
                 sleep: Callable[[float], None] = time.sleep) -> object:
    """Run `work`, again after a concurrent Delta commit conflicted with it (up to `attempts`)."""
    for attempt in range(1, max(attempts, 1) + 1):
        try:
            return work()
        except CONFLICTS as exc:
            if attempt >= attempts:
                raise
            log(f"{what}: a concurrent commit conflicted ({type(exc).__name__}); "
                f"retrying ({attempt}/{attempts - 1})")
            sleep(min(2.0 * attempt, 10.0))
    return None


def _optimize(spark: SparkSession, table: LakeTable, path: str, full: bool) -> str:
    """OPTIMIZE the table; returns what was done."""
    if is_clustered(spark, path):
        spark.sql(f"OPTIMIZE {sql_path(path)}{' FULL' if full else ''}").collect()
        return f"clustered by {', '.join(table.cluster_by)}{' (all files)' if full else ''}"
    if table.cluster_by and partition_columns(spark, path):
        DeltaTable.forPath(spark, path).optimize().executeZOrderBy(*table.cluster_by)
        return f"z-ordered by {', '.join(table.cluster_by)}"
    DeltaTable.forPath(spark, path).optimize().executeCompaction()
    return "compacted"


def _vacuum(spark: SparkSession, settings: Settings, path: str) -> None:
    """VACUUM with the table's own delta.deletedFileRetentionDuration."""
    if settings.retention.days >= _MIN_CHECKED_RETENTION_DAYS:
        DeltaTable.forPath(spark, path).vacuum()
        return
    previous = spark.conf.get(_RETENTION_CHECK, None)
    spark.conf.set(_RETENTION_CHECK, "false")  # the configured retention is deliberate
    try:
        DeltaTable.forPath(spark, path).vacuum()
    finally:
        spark.conf.set(_RETENTION_CHECK, previous or "true")


def checkpoint_if_behind(spark: SparkSession, path: str) -> int | None:
    """Write a log checkpoint at the newest version unless it has one; that version or None."""
    jvm = spark.sparkContext._jvm
    delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
    snapshot = delta_log.update(False, jvm.scala.Option.empty(), jvm.scala.Option.empty())
    version = int(snapshot.version())
    if int(snapshot.logSegment().checkpointProvider().version()) == version:
        return None
    delta_log.checkpoint()
    return version


def maintain_table(spark: SparkSession, settings: Settings, table: LakeTable, *,
                   beside_pipeline: bool, vacuum: bool, log: Log) -> TableReport:
    """Maintain one table (see the module docstring for what runs beside a pipeline)."""
    report = TableReport(table.name)
    path = table.path(settings)
    if not table_exists(spark, path):
        report.skipped = "does not exist yet"
        return report
    report.files_before, report.bytes_before = file_stats(spark, path)
    attempts = settings.maintain.conflict_retries
    may_rewrite = not beside_pipeline or table.pipeline_appends_only
    if not beside_pipeline:
        if apply_retention(spark, settings, path):
            report.done.append(f"retention {settings.retention.days:g} days")
        newly_clustered = apply_clustering(spark, table, path)
    else:
        newly_clustered = False
    if may_rewrite:
        report.done.append(with_retries(lambda: _optimize(spark, table, path, newly_clustered),
                                        attempts, log, f"{table.name}: OPTIMIZE"))
    else:
        report.done.append("not optimized: the running pipeline rewrites it")
    if vacuum and settings.maintain.vacuum:
        with_retries(lambda: _vacuum(spark, settings, path), attempts, log,
                     f"{table.name}: VACUUM")
        report.done.append("vacuumed")
    version = checkpoint_if_behind(spark, path)
    if version is not None:
        report.done.append(f"checkpoint at version {version}")
    report.files_after, report.bytes_after = file_stats(spark, path)
    return report


def tables_to_maintain(spark: SparkSession, settings: Settings,
                       names: Sequence[str] | None = None) -> list[LakeTable]:
    """The catalog's tables plus discovered `_pipeline/` ones, or just `names` (in order)."""
    everything = list(known_tables()) + discovered_pipeline_tables(spark, settings)
    if not names:
        return everything
    from ops.catalog import lake_table

    return [lake_table(name) for name in names]


def maintain_lake(spark: SparkSession, settings: Settings, *, beside_pipeline: bool,
                  tables: Sequence[LakeTable] | None = None, vacuum: bool = True,
                  log: Log = print) -> list[TableReport]:
    """Maintain `tables` (default: all) one after the other, logging one line per table.

    The pipeline may call this on a schedule ([maintain] every_minutes): with
    beside_pipeline=True from any thread; with False only while no query of the pipeline
    writes `tables` (e.g. at the end of the micro-batch of the only query that writes them).
    """
    reports = []
    for table in tables if tables is not None else tables_to_maintain(spark, settings):
        started = time.monotonic()
        report = maintain_table(spark, settings, table, beside_pipeline=beside_pipeline,
                                vacuum=vacuum, log=log)
        reports.append(report)
        log(f"{report.line()} in {time.monotonic() - started:.0f}s")
    return reports


def summary_line(reports: Sequence[TableReport]) -> str:
    """Totals over the maintained tables (skipped ones excluded)."""
    done = [r for r in reports if not r.skipped]
    before = sum(r.files_before for r in done), sum(r.bytes_before for r in done)
    after = sum(r.files_after for r in done), sum(r.bytes_after for r in done)
    return (f"maintain: {len(done)} table(s): files {before[0]} -> {after[0]}, "
            f"{_size(before[1])} -> {_size(after[1])}")
