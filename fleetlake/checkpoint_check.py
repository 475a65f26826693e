"""The start-up check of both queries' checkpoints, and `fleetlake pipeline repair`.

`verify_checkpoints` runs before the queries start (fleetlake/runner.py): it compares each
checkpoint with its journal and with what the query's sink wrote (the newest batch tagged on the
query's Delta tables and in its PostgreSQL ledger) and refuses, in one line, when a file is
damaged or missing (fleetlake/checkpoint_rules.py says why that would skip or re-read data).
`repair_checkpoints` applies the rules' actions; the damaged files move to
`<lake_root>/_checkpoints/_damaged/<UTC time>/<query>/`.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

from pyspark.sql import SparkSession

from bronze.pipeline import bronze_path
from fleetlake import gold_query, hot
from fleetlake.checkpoint_rules import (RESTORE, SET_ASIDE, WRITE_METADATA, CheckpointView,
                                        Finding, diagnose)
from infra.checkpoint_files import (HadoopDir, batch_ids, journal_path, parse_entry,
                                    parse_metadata, parse_offsets)
from infra.delta_io import newest_tag
from infra.settings import Settings
from serving.db import last_served_batch
from silver.sink import QUARANTINE, TELEMETRY, staging_path

DAMAGED = "_damaged"


class CheckpointDamagedError(RuntimeError):
    """A streaming checkpoint is damaged: continuing would skip or re-read data."""


def written_tables(settings: Settings) -> dict[str, list[str]]:
    """Query name -> the Delta tables its sink writes first in a batch (tagged per batch)."""
    return {hot.QUERY_NAME: [staging_path(settings)],
            gold_query.QUERY_NAME: [bronze_path(settings), settings.table_path(*QUARANTINE),
                                    settings.table_path(*TELEMETRY)]}


def _sink_batch(spark: SparkSession, settings: Settings, query: str,
                app_id: str | None) -> tuple[int | None, str | None]:
    """(newest batch the query's sink wrote, the query id on its first table's newest tagged
    write); the batch counts the writes of `app_id` (else of that query id)."""
    paths = written_tables(settings)[query]
    newest = {path: newest_tag(spark, path) for path in paths}
    lake_id = next((tag[0] for tag in newest.values() if tag is not None), None)
    app_id = app_id or lake_id
    if app_id is None:
        return None, None
    # the newest tag of a table is usually the app's own: look further back only when it is not
    tags = [tag if tag is not None and tag[0] == app_id else newest_tag(spark, path, app_id)
            for path, tag in newest.items()]
    batches = [tag[1] for tag in tags if tag is not None]
    ledger = last_served_batch(settings.effective_pg_dsn, app_id, "fleetlake-checkpoint-check")
    batches += [ledger] if ledger is not None else []
    return (max(batches) if batches else None), lake_id


TAIL = 3  # newest entries of each log read: Spark reads at most the newest two offsets entries


def _log_view(directory: HadoopDir, log: str, parse) -> tuple[dict[int, bool], frozenset[str]]:
    """Listed batch -> whole (older entries than the TAIL newest are not read: Spark never
    reads them again)."""
    names = frozenset(directory.names(log))
    batches = batch_ids(list(names))
    tail = set(batches[-TAIL:])
    return ({b: b not in tail or parse(directory.read(f"{log}/{b}")) is not None
             for b in batches}, names)


def look(spark: SparkSession, settings: Settings, query: str) -> CheckpointView:
    """Gather what the rules need about one query."""
    checkpoint = HadoopDir(spark, settings.checkpoint_path(query))
    journal = HadoopDir(spark, journal_path(settings.checkpoint_path(query)))
    journal_id = parse_metadata(journal.read("metadata"))
    exists = checkpoint.exists()
    metadata_id = parse_metadata(checkpoint.read("metadata")) if exists else None
    sink, lake_id = _sink_batch(spark, settings, query, metadata_id or journal_id)
    if not exists:
        return CheckpointView(query, False, sink_batch=sink, lake_id=lake_id)
    offsets, offsets_names = _log_view(checkpoint, "offsets", parse_offsets)
    commits, commits_names = _log_view(checkpoint, "commits", parse_entry)
    newest = max([*offsets, *commits, *([sink] if sink is not None else [])], default=-1)
    journaled = frozenset(b for b in batch_ids(journal.names("offsets")) if b >= newest - 2
                          and parse_offsets(journal.read(f"offsets/{b}")) is not None)
    return CheckpointView(query, True, frozenset(checkpoint.names()), metadata_id, offsets,
                          offsets_names, commits, commits_names, journal_id, journaled, sink,
                          lake_id)


def _problem_line(query: str, settings: Settings, findings: list[Finding]) -> str:
    problems = "; ".join(f.problem for f in findings)
    where = settings.checkpoint_path(query)
    if all(f.repairable for f in findings):
        return (f"the checkpoint of streaming query {query} is damaged ({problems}): starting "
                f"from it would skip or re-read data; run `fleetlake pipeline repair` (it "
                f"restores the files from the pipeline's journal), then start the pipeline again")
    return (f"the checkpoint of streaming query {query} is damaged beyond repair from the lake "
            f"({problems}): restore {where} from a backup, or rebuild into a new lake root from "
            f"the topic (FLEETLAKE_LAKE_ROOT)")


def verify_checkpoints(spark: SparkSession, settings: Settings) -> None:
    """Raise CheckpointDamagedError, naming the damage and the fix, unless both queries may
    start from their checkpoints."""
    for query in (hot.QUERY_NAME, gold_query.QUERY_NAME):
        findings = diagnose(look(spark, settings, query))
        if findings:
            raise CheckpointDamagedError(_problem_line(query, settings, findings))


@dataclass
class RepairReport:
    done: list[str]
    unrepairable: list[str]


def _apply(checkpoint: HadoopDir, journal: HadoopDir, aside: str, finding: Finding) -> list[str]:
    done = []
    for action, target in finding.actions:
        if action == SET_ASIDE:
            checkpoint.move_to(target, f"{aside}/{target}")
            done.append(f"set aside {target}")
        elif action == RESTORE:
            text = journal.read(target)
            if parse_offsets(text) is None:
                raise CheckpointDamagedError(f"the journal's copy of {target} is unreadable")
            checkpoint.write(target, text)
            done.append(f"restored {target} from the journal")
        elif action == WRITE_METADATA:
            checkpoint.write("metadata", json.dumps({"id": target}) + "\n")
            done.append(f"wrote metadata (query id {target})")
    return done


def repair_checkpoints(spark: SparkSession, settings: Settings) -> RepairReport:
    """Apply every repairable finding of both queries; the damaged files are kept aside."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    report = RepairReport([], [])
    for query in (hot.QUERY_NAME, gold_query.QUERY_NAME):
        findings = diagnose(look(spark, settings, query))
        broken = [f for f in findings if not f.repairable]
        if broken:
            report.unrepairable.append(_problem_line(query, settings, broken))
            continue
        checkpoint = HadoopDir(spark, settings.checkpoint_path(query))
        journal = HadoopDir(spark, journal_path(settings.checkpoint_path(query)))
        aside = settings.checkpoint_path(f"{DAMAGED}/{stamp}/{query}")
        for finding in findings:
            report.done += [f"{query}: {line} ({finding.problem})"
                            for line in _apply(checkpoint, journal, aside, finding)]
        left = diagnose(look(spark, settings, query))
        if left:
            report.unrepairable.append(_problem_line(query, settings, left))
    return report
