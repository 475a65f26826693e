"""The fault campaign's table (fleetlake/campaign/run.py): one row per fault, sums per column."""
from __future__ import annotations

from fleetlake.campaign.checks import CheckResult
from fleetlake.campaign.run import FaultRecord, markdown_table, summarise


def test_one_row_per_fault_in_first_seen_order_with_sums_and_the_slowest_recovery():
    records = [FaultRecord("Kafka broker kill -9", 120, 14.2, 0, 0, 0),
               FaultRecord("pipeline kill -9", 300, 31.0, 0, 0, 0),
               FaultRecord("Kafka broker kill -9", 80, 18.5, 0, 2, 1, ["2 duplicated row(s)"])]
    summary = summarise(records)
    assert [(r["fault"], r["injected"], r["in_flight"], r["lost"], r["duplicated"],
             r["recover_s_max"], r["pipeline_exits"], r["problems"]) for r in summary] == [
        ("Kafka broker kill -9", 2, 200, 0, 2, 18.5, 1, ["2 duplicated row(s)"]),
        ("pipeline kill -9", 1, 300, 0, 0, 31.0, 0, [])]
    assert markdown_table(summary).splitlines()[2:] == [
        "| Kafka broker kill -9 | 2 | 200 | 0 | 2 | 18.5 s | 1 |",
        "| pipeline kill -9 | 1 | 300 | 0 | 0 | 31.0 s | 0 |"]


def test_a_check_result_names_each_problem_and_passes_only_without_any():
    clean = CheckResult(kafka_records=10, lost=0, duplicated=0, identity="")
    assert clean.passed and clean.problems() == []
    broken = CheckResult(kafka_records=10, lost=2, duplicated=1,
                         identity="bronze 10 != silver 7 + quarantine 1 + duplicates 0",
                         mirror={"alerts": "1 row(s) missing"})
    assert not broken.passed
    assert broken.problems() == [
        "2 Kafka offset(s) missing from bronze", "1 duplicated row(s) in bronze or silver",
        "accounting identity broken: bronze 10 != silver 7 + quarantine 1 + duplicates 0",
        "PostgreSQL gold.alerts differs from Delta: 1 row(s) missing"]
