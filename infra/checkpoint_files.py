"""The files of a streaming checkpoint, and the pipeline's journal of them, on any Hadoop file
system Spark reaches.

A checkpoint (`<lake_root>/_checkpoints/<query>`) holds `metadata` (the query id, one JSON
line), `offsets/<batch>` (what each batch reads: a version line, the batch's JSON, one JSON line
per source) and `commits/<batch>` (the batch finished: a version line and one JSON line). On a
local disk every file has a checksum beside it (`.<name>.crc`).

The journal (`<lake_root>/_checkpoints/_journal/<query>`) keeps a copy of the query id and of
each batch's offsets, written by the query's sink before the batch writes anything
(fleetlake/hot.py, fleetlake/gold_query.py): `fleetlake pipeline repair` restores a damaged or
deleted entry from it exactly, so a batch is never planned again over a different range.
"""
from __future__ import annotations

import json
import uuid

from pyspark.sql import SparkSession

JOURNAL = "_journal"
JOURNAL_KEEP = 100  # batches the journal keeps (Spark's checkpoint keeps as many by default)


class HadoopDir:
    """A directory (that may not exist yet) on the file system of its path."""

    def __init__(self, spark: SparkSession, root: str):
        self._jvm = spark.sparkContext._jvm
        self.root = root.rstrip("/")
        conf = spark.sparkContext._jsc.hadoopConfiguration()
        self._fs = self._path("").getFileSystem(conf)
        # a checksummed file system (the local one) hides the .crc files its listings skip
        self._raw = (self._fs.getRawFileSystem()
                     if self._jvm.org.apache.hadoop.fs.ChecksumFileSystem._java_lang_class
                     .isInstance(self._fs) else self._fs)

    def _path(self, rel: str):
        return self._jvm.org.apache.hadoop.fs.Path(f"{self.root}/{rel}" if rel else self.root)

    def exists(self, rel: str = "") -> bool:
        return bool(self._fs.exists(self._path(rel)))

    def names(self, rel: str = "") -> list[str]:
        """Every name in the directory, checksum files included; [] when it does not exist."""
        path = self._path(rel)
        if not self._raw.exists(path):
            return []
        return sorted(str(s.getPath().getName()) for s in self._raw.listStatus(path))

    def read(self, rel: str) -> str | None:
        """The file's text; None when it is missing or cannot be read (a checksum mismatch)."""
        try:
            stream = self._fs.open(self._path(rel))
        except Exception:  # noqa: BLE001 - missing or unreadable: the caller says which
            return None
        try:
            return str(self._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
        except Exception:  # noqa: BLE001 - a checksum error surfaces while reading
            return None
        finally:
            stream.close()

    def write(self, rel: str, text: str) -> None:
        """Write the file whole: a temporary file renamed over it (no reader sees a part)."""
        target = self._path(rel)
        temp = self._path(f"{rel}.{uuid.uuid4().hex}.tmp")
        out = self._fs.create(temp, True)
        try:
            out.write(bytearray(text.encode("utf-8")))
        finally:
            out.close()
        if self._fs.exists(target):
            self._fs.delete(target, False)
        if not self._fs.rename(temp, target):
            raise OSError(f"could not write {self.root}/{rel}")

    def move_to(self, rel: str, destination: str) -> None:
        """Move one name (raw: a checksum file moves as itself) to `destination`."""
        target = self._jvm.org.apache.hadoop.fs.Path(destination)
        self._raw.mkdirs(target.getParent())
        if not self._raw.rename(self._path(rel), target):
            raise OSError(f"could not move {self.root}/{rel} to {destination}")

    def delete(self, rel: str) -> None:
        self._fs.delete(self._path(rel), False)


def batch_ids(names: list[str]) -> list[int]:
    """The batch ids among a log directory's names, ascending."""
    return sorted(int(name) for name in names if name.isdigit())


def parse_entry(text: str | None, min_lines: int = 2) -> list[dict] | None:
    """The JSON lines of a log entry (after its version line); None unless it is whole."""
    if text is None:
        return None
    lines = text.split("\n")
    if len(lines) < min_lines or not lines[0].startswith("v") or not lines[0][1:].isdigit():
        return None
    try:
        return [json.loads(line) for line in lines[1:]]
    except ValueError:
        return None


def parse_offsets(text: str | None) -> list[dict] | None:
    """An offsets entry: the batch's JSON (with batchTimestampMs) and one line per source."""
    entry = parse_entry(text, min_lines=3)
    if entry is None or not isinstance(entry[0], dict) or "batchTimestampMs" not in entry[0]:
        return None
    return entry


def parse_metadata(text: str | None) -> str | None:
    """The query id of a checkpoint's `metadata`; None unless it is whole."""
    if not text:
        return None
    try:
        query_id = json.loads(text.strip().split("\n")[0]).get("id")
    except (ValueError, AttributeError):
        return None
    return query_id if isinstance(query_id, str) and query_id else None


def journal_path(checkpoint: str) -> str:
    """`<lake_root>/_checkpoints/_journal/<query>` for `<lake_root>/_checkpoints/<query>`."""
    parent, _, name = checkpoint.rstrip("/").rpartition("/")
    return f"{parent}/{JOURNAL}/{name}"


def journal_batch(spark: SparkSession, checkpoint: str, batch_id: int,
                  query_id: str | None = None) -> list[dict]:
    """Copy the batch's offsets entry (and, given `query_id`, the query id) into the journal,
    before the batch writes anything; returns the parsed entry. Prunes old entries every
    JOURNAL_KEEP batches."""
    source = HadoopDir(spark, checkpoint)
    text = source.read(f"offsets/{int(batch_id)}")
    entry = parse_offsets(text)
    if entry is None:
        raise RuntimeError(f"the offsets entry of batch {batch_id} in {checkpoint} is unreadable")
    journal = HadoopDir(spark, journal_path(checkpoint))
    if query_id is not None and parse_metadata(journal.read("metadata")) != query_id:
        journal.write("metadata", json.dumps({"id": query_id}) + "\n")
    journal.write(f"offsets/{int(batch_id)}", text)
    if batch_id % JOURNAL_KEEP == 0:
        for old in batch_ids(journal.names("offsets")):
            if old < batch_id - JOURNAL_KEEP:
                journal.delete(f"offsets/{old}")
    return entry
