"""`fleetlake maintain` beside a live pipeline: the output equals a run without it, the tables the
pipeline appends to are compacted, and a replay is refused while the pipeline holds the lease."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import signal

import pytest
from delta.tables import DeltaTable

from fleetlake.runner import run_available_now
from ingestion.admin import ensure_topic

from .lake_equality import assert_pg_mirrors_delta
from .ops_cli import delta_rows, fleetlake, last_line, write_config
from .pipeline_proc import PipelineProcess, pipeline_env
from .test_restart import produce, workload

pytestmark = pytest.mark.integration

ROWS_IN = re.compile(r"fleetlake\.gold batch \d+: (\d+) in")
SAME = (("silver/telemetry", ()), ("silver/quarantine", ("quarantined_at",)),
        ("gold/alerts", ()), ("gold/device_minute_kpis", ()), ("gold/fleet_minute_kpis", ()),
        ("gold/device_latest", ()), ("bronze/telemetry_raw", ("ingested_at",)))


def rows_in(live: PipelineProcess) -> int:
    return sum(int(ROWS_IN.search(line).group(1)) for line in live.matching(ROWS_IN))


def wait_until_all_processed(live: PipelineProcess, total: int) -> None:
    while rows_in(live) < total:
        live.wait_for(ROWS_IN, count=len(live.matching(ROWS_IN)) + 1, timeout_s=900)


def manual_optimizes(spark, settings, name: str) -> list[dict]:
    history = DeltaTable.forPath(spark, f"{settings.lake_root}/{name}").history().collect()
    return [dict(r.operationMetrics) for r in history
            if r.operation == "OPTIMIZE" and r.operationParameters.get("auto") == "false"]


def test_maintain_beside_a_live_pipeline(spark, e2e_settings, make_pg_database, tmp_path):
    settings = e2e_settings
    config = write_config(tmp_path / "small_batches.toml",
                          spark="max_offsets_per_trigger = 500\n"
                                "gold_trigger_interval = \"1 second\"\n")
    sent = workload(2000)
    ensure_topic(settings.effective_kafka_bootstrap, settings.topic, settings.topic_partitions)
    live = PipelineProcess(pipeline_env(settings, config), available_now=False)
    try:
        produce(settings, sent)
        live.wait_for(ROWS_IN, count=2, timeout_s=900)
        # the three tables the pipeline appends to, and one it MERGEs into
        maintained = fleetlake(settings, config, "maintain", "--json", "--tables",
                               "bronze/telemetry_raw,silver/telemetry,_pipeline/validated,"
                               "gold/alerts")
        assert maintained.returncode == 0, maintained.stderr[-3000:]
        assert "only the tables it appends to are optimized" in maintained.stderr
        reports = {r["name"]: r for r in json.loads(maintained.stdout)}
        assert reports["gold/alerts"]["done"][0] == (
            "not optimized: the running pipeline rewrites it")
        assert reports["silver/telemetry"]["done"][0] == "compacted"
        assert reports["bronze/telemetry_raw"]["done"][0] == "compacted"
        refused = fleetlake(settings, config, "replay")
        assert refused.returncode == 1
        assert last_line(refused).startswith(
            f"fleetlake: error: replay refused: pipeline (pid {live.proc.pid} on ")
        wait_until_all_processed(live, len(sent))
    finally:
        if live.proc.poll() is None:
            os.killpg(live.proc.pid, signal.SIGINT)  # the runner stops its query and exits
        assert live.finish(timeout_s=300) == 0, live.tail()
    for name in ("bronze/telemetry_raw", "silver/telemetry", "_pipeline/validated"):
        optimized = manual_optimizes(spark, settings, name)
        assert optimized and all(int(m["numRemovedFiles"]) > int(m["numAddedFiles"])
                                 for m in optimized), (name, optimized)

    reference = dataclasses.replace(settings, lake_root=str(tmp_path / "reference"),
                                    pg_dsn=make_pg_database())
    run_available_now(spark, reference)  # in this process: the reference needs no CLI
    for name, drop in SAME:
        assert delta_rows(spark, settings, name, drop) == \
            delta_rows(spark, reference, name, drop), f"{name} differs"
    for lake in (settings, reference):
        gold = assert_pg_mirrors_delta(spark, lake)
        assert sum(r[3] for r in gold["dq_batch_metrics"]) == len(sent)
