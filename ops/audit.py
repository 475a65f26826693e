"""`fleetlake audit history|show|diff`: time travel over the lake's Delta tables (read-only).

Versions are named by number or by a timestamp (the table as it was at that moment: the latest
commit at or before it). A version outside what the table can still read (retention, see
ops/deltalog.py) is refused with one line naming the oldest readable version.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from infra.settings import Settings
from ops import render
from ops.catalog import LakeTable, table_exists
from ops.deltalog import Commit, ReadableRange, history, readable_range
from ops.diff import AFTER, BEFORE, CHANGE, change_counts, changed_columns, diff_by_key
from ops.errors import OpsError
from ops.where import checked_filter

UTC = timezone.utc


class AuditError(OpsError):
    """A version, timestamp or table an audit cannot read; the message says which exist."""


@dataclass(frozen=True)
class TableVersion:
    """One readable version of a table, resolved from the user's VERSION or TIMESTAMP."""

    table: LakeTable
    version: int
    timestamp: datetime
    frame: DataFrame


def _iso(ts: datetime | None) -> str:
    return "?" if ts is None else ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(rng: ReadableRange) -> str:
    """The retention in the largest whole-ish unit: '30 days', '12 hours', '1 second'."""
    seconds = rng.retention.total_seconds()
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1)):
        if seconds >= size or unit == "second":
            count = round(seconds / size, 2)
            return f"{count:g} {unit}{'' if count == 1 else 's'}"
    return ""


def parse_timestamp(text: str) -> datetime:
    """ISO-8601 (`Z` or an offset) or `YYYY-MM-DD[ HH:MM:SS[.f]]`; no zone means UTC."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        raise AuditError(f"{text!r} is neither a version number nor a timestamp such as "
                         f"2026-01-31T12:00:00Z") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def resolve_version(table: LakeTable, rng: ReadableRange, as_of: str) -> int:
    """The version a VERSION or TIMESTAMP names; AuditError when it is not readable."""
    text = as_of.strip()
    if text.isdigit():
        version, named = int(text), f"version {text}"
        if version > rng.latest:
            raise AuditError(f"{table.name} has no version {version}: its latest is {rng.latest}")
    else:
        moment = parse_timestamp(text)
        before = [v for v, ts in rng.commits if ts <= moment]
        if not before:
            first = rng.commits[0] if rng.commits else (rng.oldest, None)
            raise AuditError(f"{table.name} did not exist yet at {_iso(moment)}: its first "
                             f"version {first[0]} is from {_iso(first[1])}")
        version, named = max(before), f"{_iso(moment)} (version {max(before)})"
    if version < rng.oldest:
        raise AuditError(
            f"{table.name} {named} is beyond the table's retention ({_duration(rng)}, "
            f"delta.deletedFileRetentionDuration): the oldest readable version is {rng.oldest} "
            f"({_iso(rng.timestamp_of(rng.oldest))})")
    return version


def _path(spark: SparkSession, settings: Settings, table: LakeTable) -> str:
    path = table.path(settings)
    if not table_exists(spark, path):
        raise AuditError(f"{table.name} does not exist yet at {path}: run "
                         f"`fleetlake pipeline run` first (or check FLEETLAKE_LAKE_ROOT)")
    return path


def open_version(spark: SparkSession, settings: Settings, table: LakeTable,
                 as_of: str) -> TableVersion:
    """The table as of VERSION or TIMESTAMP (checked against what is readable)."""
    path = _path(spark, settings, table)
    rng = readable_range(spark, path)
    version = resolve_version(table, rng, as_of)
    frame = spark.read.format("delta").option("versionAsOf", version).load(path)
    return TableVersion(table, version, rng.timestamp_of(version), frame)


def _metric(metrics: dict[str, str], *names: str) -> int:
    return sum(int(metrics[n]) for n in names if metrics.get(n, "").lstrip("-").isdigit())


def metric_summary(commit: Commit) -> tuple[str, str]:
    """('+inserted ~updated -deleted' rows, '+added -removed' files) of one commit."""
    m = commit.metrics
    if "numTargetRowsInserted" in m:  # MERGE
        inserted = _metric(m, "numTargetRowsInserted")
    else:  # WRITE, STREAMING UPDATE: a replaceWhere also rewrites (copies) kept rows
        inserted = _metric(m, "numOutputRows") - _metric(m, "numCopiedRows")
    updated = _metric(m, "numTargetRowsUpdated", "numUpdatedRows")
    deleted = _metric(m, "numTargetRowsDeleted", "numDeletedRows")
    if commit.operation == "OPTIMIZE":
        inserted = 0
    added = _metric(m, "numFiles", "numAddedFiles", "numTargetFilesAdded")
    removed = _metric(m, "numRemovedFiles", "numTargetFilesRemoved")
    rows = f"+{inserted} ~{updated} -{deleted}" if m else ""
    files = f"+{added} -{removed}" if m else ""
    return rows, files


def history_report(spark: SparkSession, settings: Settings, table: LakeTable, limit: int,
                   fmt: str) -> str:
    commits = history(spark, settings, _path(spark, settings, table), limit or None)
    if fmt == "json":
        rows = [[c.version, _iso(c.timestamp), c.operation, c.written_by, c.parameters,
                 c.metrics] for c in commits]
        columns = ["version", "timestamp", "operation", "written_by", "parameters", "metrics"]
        return render.render(columns, rows, fmt, {"table": table.name})
    rows = [[c.version, _iso(c.timestamp), c.operation, c.written_by, *metric_summary(c)]
            for c in commits]
    return render.render(["version", "timestamp", "operation", "written_by", "rows", "files"],
                         rows, fmt)


def show_report(spark: SparkSession, settings: Settings, table: LakeTable, as_of: str,
                where: str | None, limit: int, fmt: str) -> tuple[str, str]:
    """(the rendered rows, a one-line summary for stderr)."""
    snapshot = open_version(spark, settings, table, as_of)
    frame = snapshot.frame
    if where:
        frame = frame.where(checked_filter(spark, where, frame.columns))
    ordered = frame.orderBy(*[F.col(f"`{k}`") for k in table.keys]) if table.keys else frame
    shown = ordered.limit(limit) if limit else ordered
    rows = [list(r) for r in render.printable(shown).collect()]
    total = frame.count() if limit and len(rows) == limit else len(rows)
    summary = (f"{table.name} version {snapshot.version} ({_iso(snapshot.timestamp)}): "
               f"{len(rows)} of {total} row(s){' matching --where' if where else ''}")
    extra = {"table": table.name, "version": snapshot.version,
             "timestamp": _iso(snapshot.timestamp), "total_rows": total}
    return render.render(frame.columns, rows, fmt, extra), summary


def _details(change: str, before: dict | None, after: dict | None) -> tuple[list[str], str]:
    """(changed column names, one readable line) of a diff row."""
    if change == "changed":
        names = changed_columns(before, after)
        return names, "; ".join(f"{n}: {before.get(n)} -> {after.get(n)}" for n in names)
    row = after if change == "added" else before
    return [], ", ".join(f"{k}={v}" for k, v in (row or {}).items())


def diff_report(spark: SparkSession, settings: Settings, table: LakeTable, v_from: str,
                v_to: str, limit: int, fmt: str) -> tuple[str, str]:
    """(the rendered changes, a one-line summary for stderr): rows added, removed, changed
    from `v_from` to `v_to`, by the table's key."""
    if not table.keys:
        raise AuditError(f"{table.name} has no declared key, so rows cannot be matched across "
                         f"versions: add it to ops/catalog.py")
    old, new = (open_version(spark, settings, table, v) for v in (v_from, v_to))
    diff = diff_by_key(old.frame, new.frame, table.keys).persist()
    try:
        counts = change_counts(diff)
        ordered = diff.orderBy(CHANGE, *[F.col(f"`{k}`") for k in table.keys])
        shown = ordered.limit(limit) if limit else ordered
        types = {f.name: f.dataType for f in diff.schema.fields}
        collected = shown.select(
            *[render.printable_value(F.col(f"`{k}`"), types[k]).alias(k) for k in table.keys],
            CHANGE, render.printable_struct(F.col(BEFORE), types[BEFORE]).alias(BEFORE),
            render.printable_struct(F.col(AFTER), types[AFTER]).alias(AFTER)).collect()
    finally:
        diff.unpersist()
    summary = (f"{table.name} version {old.version} -> {new.version}: {counts['added']} added, "
               f"{counts['removed']} removed, {counts['changed']} changed")
    rows = []
    for r in collected:
        data = r.asDict(recursive=True)
        before, after = data[BEFORE], data[AFTER]
        names, line = _details(data[CHANGE], before, after)
        rows.append((data[CHANGE], [data[k] for k in table.keys], names, line, before, after))
    if fmt == "json":
        extra = {"table": table.name, "from": old.version, "to": new.version, "counts": counts}
        return render.render(
            ["change", "key", "changed_columns", "before", "after"],
            [[c, dict(zip(table.keys, k)), n, b, a] for c, k, n, _, b, a in rows], fmt,
            extra), summary
    if fmt == "csv":
        return render.render(["change", *table.keys, "changed_columns", "before", "after"],
                             [[c, *k, " ".join(n), b, a] for c, k, n, _, b, a in rows],
                             fmt), summary
    return render.render(["change", *table.keys, "details"],
                         [[c, *k, line] for c, k, _, line, _, _ in rows], fmt), summary
