"""Explicit ownership of a micro-batch's cached DataFrames.

One `CacheScope` per batch, opened by the sink that runs the batch: every cache made while
processing it is registered there (`keep`) and released when the scope closes, after the last
read of anything built on it (the PostgreSQL sync). Releasing a cache earlier is unsafe: Spark
may recompute a frame built on an unpersisted plan, and Delta re-plans a MERGE source.
"""
from __future__ import annotations

from pyspark.sql import DataFrame


class CacheScope:
    """Context manager: `keep(frame)` persists a frame until the scope exits."""

    def __init__(self) -> None:
        self._frames: list[DataFrame] = []

    def keep(self, frame: DataFrame) -> DataFrame:
        """`frame`, persisted (MEMORY_AND_DISK) for the rest of the scope."""
        cached = frame.persist()
        self._frames.append(cached)
        return cached

    def freeze(self, frame: DataFrame) -> DataFrame:
        """`frame` computed now, with its lineage cut: use it for rows derived from a table this
        batch then writes. (Delta's write re-caches every cached plan that reads the table, so
        a cached frame built on the old rows would silently be recomputed on the new ones.)"""
        return frame.localCheckpoint(eager=True)

    def release(self) -> None:
        """Unpersist everything kept so far (newest first)."""
        while self._frames:
            self._frames.pop().unpersist()

    def __enter__(self) -> "CacheScope":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
