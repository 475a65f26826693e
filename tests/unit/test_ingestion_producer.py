"""Producer planning, the summary and the CLI glue (no broker: see the integration test)."""
from __future__ import annotations

import argparse
import dataclasses
import json

import pytest

from infra.settings import Settings
from ingestion import cli
from ingestion.faults import CLEAN, RETRANSMIT, Tag
from ingestion.producer import plan_workers
from ingestion.summary import ProduceSummary, merge

NOW_S = 1_767_225_600.7


def plans(settings=None, **kw):
    args = dict(events=100_000, duration_s=None, rate=0.0, fault_rates={}, seed=1, topic="t",
                cars=50, now_s=NOW_S)
    args.update(kw)
    return plan_workers(settings or Settings(), **args)


def with_processes(n: int) -> Settings:
    s = Settings()
    return dataclasses.replace(s, producer=dataclasses.replace(s.producer, processes=n))


@pytest.mark.parametrize("events, cars, processes", [(100_000, 50, 2), (100_001, 7, 3),
                                                     (50_000, 2, 5), (25_000, 1, 2)])
def test_workers_share_cars_and_events_exactly(events, cars, processes):
    ps = plans(with_processes(processes), events=events, cars=cars, rate=3_000.0)
    assert len(ps) == min(processes, cars)
    assert sum(p.quota for p in ps) == events
    assert sorted(i for p in ps for i in p.car_indices) == list(range(cars))
    assert sum(p.rate for p in ps) == pytest.approx(3_000.0)


def test_auto_process_count():
    assert len(plans(rate=0.0)) == 2
    assert len(plans(rate=5_000.0)) == 1
    assert len(plans(rate=50_000.0)) == 2
    assert len(plans(rate=0.0, events=10_000)) == 1  # a short run is not worth a fork


def test_paced_clock_runs_with_the_wall_clock_from_now():
    (p,) = plans(rate=500.0, cars=50)
    assert p.interval_s == pytest.approx(0.1)  # 50 cars x 10 readings/s = 500 events/s
    assert p.start_ms == 1_767_225_600_000


def test_flat_out_backlog_ends_before_now():
    for kw in ({"events": 1_000_000}, {"events": None, "duration_s": 30.0},
               {"events": None, "duration_s": None}):
        p = plans(rate=0.0, **kw)[0]
        assert p.interval_s == 1.0
        if kw.get("events"):
            assert p.start_ms + (1_000_000 // 50) * 1000 <= NOW_S * 1000
        assert p.start_ms < NOW_S * 1000 - 3_600_000


def test_summary_counts_by_kind_outcome_and_reason():
    s = ProduceSummary(topic="t")
    bad = Tag("missing_field", "quarantined", ("MISSING_FIELD:car_id", "MISSING_FIELD:fuel_level"))
    s.add_tags({bad: 2, RETRANSMIT: 3, Tag("late", "valid"): 1}, clean=10)
    assert s.by_kind == {"clean": 10, "duplicate": 3, "late": 1, "missing_field": 2}
    assert s.by_outcome == {"valid": 11, "quarantined": 2, "duplicate": 3}
    assert s.quarantine_reasons == {"MISSING_FIELD:car_id": 2, "MISSING_FIELD:fuel_level": 2}
    assert s.quarantine_reason_sets == {"MISSING_FIELD:car_id,MISSING_FIELD:fuel_level": 2}
    other = ProduceSummary(topic="t", sent=5, acked=5)
    other.add_tags({}, clean=5)
    total = merge([s, other], ProduceSummary(topic="t", elapsed_s=2.0))
    assert total.by_kind["clean"] == 15 and total.sent == 5 and total.events_per_s == 2.5
    data = json.loads(total.to_json())
    assert data["by_outcome"]["valid"] == 16 and data["events_per_s"] == 2.5
    table = total.to_table()
    assert "acknowledged events/s" in table and "MISSING_FIELD:car_id" in table
    assert CLEAN.outcome == "valid"


def test_cli_defaults_come_from_settings(monkeypatch, capsys):
    seen = {}

    def fake_run(settings, **kw):
        seen.update(kw)
        return ProduceSummary(topic=kw["topic"], sent=1, acked=1)

    monkeypatch.setattr(cli, "run_produce", fake_run)
    parser = argparse.ArgumentParser()
    cli.add_produce_arguments(parser)
    assert cli.produce_command(Settings(), parser.parse_args([])) == 0
    assert "sent" in capsys.readouterr().out
    assert seen == {"events": 10_000, "duration_s": None, "rate": 1000.0, "faults": "default",
                    "seed": 42, "topic": "raw_telemetry", "cars": 50, "progress": True}
    args = parser.parse_args(["--duration", "5", "--rate", "0", "--faults", "none", "--seed", "3",
                              "--topic", "x", "--cars", "2", "--json"])
    assert cli.produce_command(Settings(), args) == 0
    assert seen["events"] is None and seen["duration_s"] == 5.0 and seen["rate"] == 0.0
    assert json.loads(capsys.readouterr().out)["topic"] == "x"
    assert cli.produce_command(Settings(), parser.parse_args(["--forever"])) == 0
    assert seen["events"] is None and seen["duration_s"] is None


def test_cli_reports_bad_input_without_a_traceback(capsys):
    parser = argparse.ArgumentParser()
    cli.add_produce_arguments(parser)
    assert cli.produce_command(Settings(), parser.parse_args(["--faults", "typo=1"])) == 2
    assert "unknown fault kind 'typo'" in capsys.readouterr().err
    assert cli.produce_command(Settings(), parser.parse_args(["--cars", "0"])) == 2
    assert "--cars must be at least 1" in capsys.readouterr().err
