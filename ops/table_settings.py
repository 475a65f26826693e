"""Table properties that come from the settings: retention (how far audits reach), clustering.

Both are metadata commits, and a metadata commit makes every concurrent commit to the same
table fail (Delta: MetadataChangedException): apply them only while no pipeline writes the
table (replay and maintain hold the lake's lease; the pipeline may call `apply_retention` in
its start-up, before its queries start). Applying is idempotent: no commit when nothing
differs.
"""
from __future__ import annotations

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from infra import delta_io
from infra.settings import Settings
from ops.catalog import LakeTable

LOG_RETENTION = "delta.logRetentionDuration"
FILE_RETENTION = "delta.deletedFileRetentionDuration"


def retention_interval(days: float) -> str:
    """A Delta interval string for `days` (whole days as days, else seconds)."""
    return delta_io.retention_properties(days)[LOG_RETENTION]


def retention_properties(settings: Settings) -> dict[str, str]:
    return delta_io.retention_properties(settings.retention.days)


def sql_path(path: str) -> str:
    """`delta.`<path>`` for SQL statements; refuses paths that would need escaping."""
    if "`" in path:
        raise ValueError(f"lake path {path!r} contains a backtick: choose another lake root")
    return f"delta.`{path}`"


def _detail(spark: SparkSession, path: str):
    return DeltaTable.forPath(spark, path).detail().select(
        "properties", "clusteringColumns", "partitionColumns").first()


def apply_retention(spark: SparkSession, settings: Settings, path: str) -> dict[str, str]:
    """Set the retention properties on the table at `path` where they differ; return the set."""
    current = dict(_detail(spark, path).properties or {})
    pending = {k: v for k, v in retention_properties(settings).items() if current.get(k) != v}
    if pending:
        assignments = ", ".join(f"'{k}' = '{v}'" for k, v in sorted(pending.items()))
        spark.sql(f"ALTER TABLE {sql_path(path)} SET TBLPROPERTIES ({assignments})")
    return pending


def apply_clustering(spark: SparkSession, table: LakeTable, path: str) -> bool:
    """Make `table.cluster_by` the table's liquid-clustering columns; True if changed now.

    Partitioned tables cannot be clustered (Delta): they are Z-ordered by `maintain` instead.
    """
    detail = _detail(spark, path)
    if not table.cluster_by or list(detail.partitionColumns or []):
        return False
    if list(detail.clusteringColumns or []) == list(table.cluster_by):
        return False
    columns = ", ".join(f"`{c}`" for c in table.cluster_by)
    spark.sql(f"ALTER TABLE {sql_path(path)} CLUSTER BY ({columns})")
    return True


def is_clustered(spark: SparkSession, path: str) -> bool:
    return bool(_detail(spark, path).clusteringColumns)


def partition_columns(spark: SparkSession, path: str) -> list[str]:
    return list(_detail(spark, path).partitionColumns or [])


def apply_retention_everywhere(spark: SparkSession, settings: Settings) -> list[str]:
    """Set the retention properties on every existing lake table; the names changed now.

    For the pipeline's start-up (after it created its tables, before its queries start)."""
    from ops.catalog import known_tables, table_exists

    changed = []
    for table in known_tables():
        path = table.path(settings)
        if table_exists(spark, path) and apply_retention(spark, settings, path):
            changed.append(table.name)
    return changed
