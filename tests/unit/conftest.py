"""Fixtures of the unit tests that write small Delta tables."""
from __future__ import annotations

import pytest


@pytest.fixture
def no_auto_compaction(spark):
    """Table versions exactly as a test writes them: no auto-compaction commits in between."""
    key = "spark.databricks.delta.autoCompact.enabled"
    before = spark.conf.get(key, None)
    spark.conf.set(key, "false")
    yield
    if before is None:
        spark.conf.unset(key)
    else:
        spark.conf.set(key, before)
