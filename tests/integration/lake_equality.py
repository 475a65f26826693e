"""PostgreSQL `gold.*` versus the Delta gold tables in the integration tests (serving/mirror_check.py
has the normalised comparison)."""
from __future__ import annotations

from pyspark.sql import SparkSession

from infra.settings import Settings
from serving.mirror_check import (GOLD_TABLES, compare_mirror, delta_gold_rows, difference,
                                  pg_gold_rows, pg_ledger, pg_query, sorted_rows)

__all__ = ["GOLD_TABLES", "assert_pg_mirrors_delta", "delta_gold_rows", "difference",
           "pg_gold_rows", "pg_ledger", "pg_query", "sorted_rows"]


def assert_pg_mirrors_delta(spark: SparkSession, settings: Settings,
                            tables: tuple[str, ...] = GOLD_TABLES) -> dict[str, list[tuple]]:
    """Assert PostgreSQL gold.<name> equals Delta gold/<name> row for row for each of `tables`,
    and that gold.sync_ledger holds exactly one row per batch of Delta gold/dq_batch_metrics
    for the gold query (the hot query's ledger rows are its own).

    Returns the (normalised, sorted) Delta rows per table for further assertions.
    """
    dsn = settings.effective_pg_dsn
    delta, differences = compare_mirror(spark, settings, tables)
    assert not differences, "; ".join(f"PostgreSQL gold.{name} differs from Delta gold/{name}: "
                                      f"{diff}" for name, diff in differences.items())
    batches = sorted((row[0], row[1]) for row in delta_gold_rows(
        spark, settings, "dq_batch_metrics"))
    gold_apps = {app for app, _ in batches}
    gold_ledger = [row for row in pg_ledger(dsn) if row[0] in gold_apps]
    assert gold_ledger == batches, (
        f"gold.sync_ledger is not one row per batch of dq_batch_metrics: "
        f"{difference(batches, gold_ledger)}")
    return delta
