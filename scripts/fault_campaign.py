"""Run a fault campaign and write its table (fleetlake/campaign/run.py).

    .venv/bin/python scripts/fault_campaign.py --rounds 3 --rate 500 [--readme]

Needs the embedded services (`fleetlake services up`) and a quiet machine. Writes
`.local/reports/fault-campaign-<stamp>.md` and `.json`; with `--readme` it also replaces the
table between the fault-campaign markers in README.md. Exit 1 if any check failed.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fleetlake.bench.workspace import create_workspace  # noqa: E402
from fleetlake.campaign.run import (Campaign, CampaignPlan, markdown_table,  # noqa: E402
                                    records_json, summarise)
from infra.settings import load_settings  # noqa: E402
from infra.spark import build_spark  # noqa: E402

START, END = "<!-- fault-campaign:start -->", "<!-- fault-campaign:end -->"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--hold", type=float, default=10.0, help="seconds a service stays down")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--readme", action="store_true", help="update README.md's table")
    args = parser.parse_args()
    settings = load_settings()
    if not (settings.uses_local_pg and settings.uses_local_kafka):
        print("fault campaign: needs the embedded Kafka and PostgreSQL (unset "
              "FLEETLAKE_KAFKA_BOOTSTRAP and FLEETLAKE_PG_DSN; run `fleetlake services up`)",
              file=sys.stderr)
        return 2
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    run_dir = ROOT / ".local" / "campaign" / stamp
    plan = CampaignPlan(rounds=args.rounds, rate=args.rate, hold_s=args.hold, seed=args.seed)
    spark = build_spark(dataclasses.replace(settings, spark=dataclasses.replace(
        settings.spark, driver_memory="1g")), app_name="fleetlake-campaign")
    workspace = create_workspace(settings, run_dir, "campaign", prefix="campaign")
    try:
        records = Campaign(spark, settings, workspace, plan,
                           lambda m: print(f"campaign: {m}", file=sys.stderr, flush=True)).run()
    finally:
        workspace.remove(settings.effective_pg_dsn)
        spark.stop()
    summary = summarise(records)
    machine = (f"{stamp} UTC, {platform.machine()}, {os.cpu_count()}"
               f" cores; {args.rounds} round(s) at {args.rate:g} events/s, services down "
               f"{args.hold:g} s")
    table = f"{markdown_table(summary)}\n\n_Produced by `scripts/fault_campaign.py`: {machine}._"
    reports = ROOT / ".local" / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / f"fault-campaign-{stamp}.md").write_text(table + "\n")
    (reports / f"fault-campaign-{stamp}.json").write_text(json.dumps(
        {"plan": dataclasses.asdict(plan), "summary": summary,
         "records": records_json(records)}, indent=2))
    print(table)
    if args.readme:
        readme = ROOT / "README.md"
        text = readme.read_text()
        pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
        if not pattern.search(text):
            print(f"README.md has no {START} ... {END} markers", file=sys.stderr)
            return 2
        readme.write_text(pattern.sub(lambda _: f"{START}\n{table}\n{END}", text))
    failed = [p for row in summary for p in row["problems"]]
    for problem in failed:
        print(f"campaign: FAILED: {problem}", file=sys.stderr)
    return 1 if failed or any(r["lost"] or r["duplicated"] for r in summary) else 0


if __name__ == "__main__":
    sys.exit(main())
