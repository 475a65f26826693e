"""The fault campaign's CI subset: each fault of fleetlake/campaign/faults.py injected once into a
running pipeline under steady load; after each, nothing lost, nothing duplicated, the
accounting identity holds and PostgreSQL equals Delta (longer runs: scripts/fault_campaign.py).
The pipeline survives every fault but a full lake root, where it stops with one clear line, and
a damaged checkpoint, from which it refuses to start (one line) until `pipeline repair`."""
from __future__ import annotations

import dataclasses
import re

import pytest

from fleetlake.bench.workspace import create_workspace
from fleetlake.campaign.faults import FAULTS, OUT_OF_SPACE, REFUSAL
from fleetlake.campaign.run import Campaign, CampaignPlan, markdown_table, summarise

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def test_every_fault_once_loses_and_duplicates_nothing(spark, base_settings, tmp_path):
    if not (base_settings.uses_local_pg and base_settings.uses_local_kafka):
        pytest.skip("kills and restarts the embedded Kafka and PostgreSQL")
    settings = dataclasses.replace(base_settings, spark=dataclasses.replace(
        base_settings.spark, driver_memory="1g"))
    workspace = create_workspace(settings, tmp_path, "campaign", prefix="campaign")
    plan = CampaignPlan(rounds=1, rate=150.0, hold_s=3.0, gap_s=(0.5, 2.0), seed=3)
    try:
        records = Campaign(spark, base_settings, workspace, plan, print).run()
    finally:
        workspace.remove(base_settings.effective_pg_dsn)

    assert sorted(r.fault for r in records) == sorted(FAULTS)
    for record in records:
        exits = 1 if record.fault == OUT_OF_SPACE else 0  # it stops the pipeline, by design
        assert (record.fault, record.lost, record.duplicated, record.problems,
                record.pipeline_exits) == (record.fault, 0, 0, [], exits), record
        assert record.recover_s < plan.catch_up_timeout_s
    logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("campaign/pipeline-*.log"))
    errors = [line for line in logs.splitlines() if line.startswith("fleetlake: error:")]
    refusals = [line for line in errors if REFUSAL.fullmatch(line)]
    assert len(refusals) == 1, errors  # the damaged checkpoint's refused start
    errors.remove(refusals[0])
    assert len(errors) == 1 and re.fullmatch(
        r"fleetlake: error: streaming query fleetlake_(hot|gold) stopped: no space left on the "
        f"device of the lake root {re.escape(workspace.settings.lake_root)}; free space there, "
        r"then run `fleetlake pipeline run` again \(it resumes from its checkpoints; nothing "
        r"is lost\)", errors[0]), errors
    assert sum(r.in_flight for r in records) > 0  # faults hit a pipeline with work under way
    table = markdown_table(summarise(records)).splitlines()
    assert len(table) == 2 + len(FAULTS)
    assert all(row.split(" | ")[3:5] == ["0", "0"] for row in table[2:])
