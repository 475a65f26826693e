"""A damaged checkpoint on the real services: the pipeline refuses to start from it with one
line, `pipeline repair` restores it from the journal, and the restarted pipeline loses and
duplicates nothing (bronze holds every Kafka offset once; PostgreSQL equals Delta)."""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest

from fleetlake import gold_query, hot
from fleetlake.campaign.checks import kafka_offsets
from fleetlake.checkpoint_check import CheckpointDamagedError, repair_checkpoints
from fleetlake.runner import prepare, run_available_now

from .lake_equality import assert_pg_mirrors_delta
from .test_restart import produce, workload

pytestmark = pytest.mark.integration


def newest(log: Path) -> int:
    return max(int(p.name) for p in log.iterdir() if p.name.isdigit())


def bronze_offsets(spark, settings) -> list[tuple[int, int]]:
    rows = spark.read.format("delta").load(settings.table_path("bronze", "telemetry_raw")) \
        .select("partition", "offset").collect()
    return sorted((r["partition"], r["offset"]) for r in rows)


def test_damaged_checkpoints_are_refused_repaired_and_nothing_is_lost(spark, e2e_settings):
    settings = dataclasses.replace(e2e_settings, spark=dataclasses.replace(
        e2e_settings.spark, max_offsets_per_trigger=1500))
    prepare(spark, settings)
    sent = workload(4000)
    produce(settings, sent[:2000])
    run_available_now(spark, settings)

    hot_dir = Path(settings.checkpoint_path(hot.QUERY_NAME))
    gold_dir = Path(settings.checkpoint_path(gold_query.QUERY_NAME))
    hot_batch, gold_batch = newest(hot_dir / "offsets"), newest(gold_dir / "commits")
    original = (hot_dir / "offsets" / str(hot_batch)).read_bytes()
    os.truncate(hot_dir / "offsets" / str(hot_batch), 40)  # a torn write
    (gold_dir / "metadata").unlink()  # the query id gone, its checksum left
    (gold_dir / "commits" / str(gold_batch)).unlink()

    with pytest.raises(CheckpointDamagedError) as refused:
        run_available_now(spark, settings)
    assert str(refused.value) == (
        f"the checkpoint of streaming query fleetlake_hot is damaged (offsets/{hot_batch} is "
        "truncated or unreadable): starting from it would skip or re-read data; run `fleetlake "
        "pipeline repair` (it restores the files from the pipeline's journal), then start the "
        "pipeline again")

    report = repair_checkpoints(spark, settings)
    problem = f"offsets/{hot_batch} is truncated or unreadable"
    gold_id = re.search(r"query id (\S+)\)", " ".join(report.done))
    assert report.unrepairable == []
    assert report.done == [
        f"fleetlake_hot: set aside offsets/{hot_batch} ({problem})",
        f"fleetlake_hot: set aside offsets/.{hot_batch}.crc ({problem})",
        f"fleetlake_hot: restored offsets/{hot_batch} from the journal ({problem})",
        "fleetlake_gold: set aside .metadata.crc (metadata (the query id) is deleted)",
        f"fleetlake_gold: wrote metadata (query id {gold_id.group(1)}) (metadata (the query "
        "id) is deleted)",
        f"fleetlake_gold: set aside commits/.{gold_batch}.crc (commits/{gold_batch} is deleted "
        f"(its checksum .{gold_batch}.crc is left))"]
    assert (hot_dir / "offsets" / str(hot_batch)).read_bytes() == original
    assert repair_checkpoints(spark, settings).done == []  # whole again

    produce(settings, sent[2000:])
    run_available_now(spark, settings)
    expected = sorted((p, o) for p, (first, end) in kafka_offsets(
        settings.effective_kafka_bootstrap, settings.topic).items() for o in range(first, end))
    assert len(expected) == len(sent)
    assert bronze_offsets(spark, settings) == expected  # each offset once: none lost or re-read
    gold = assert_pg_mirrors_delta(spark, settings)
    assert sum(r[3] for r in gold["dq_batch_metrics"]) == len(sent)  # rows_in: each once
    silver = spark.read.format("delta").load(settings.table_path("silver", "telemetry"))
    assert silver.count() == silver.select("event_id").distinct().count()
