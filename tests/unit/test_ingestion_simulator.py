"""The fleet model's invariants: physics consistent with itself, ranges, anomalies, determinism."""
from __future__ import annotations

import json
from collections import defaultdict

import pytest

from infra.settings import ValidationRules
from ingestion.contract import parse_event_time_ms, reasons_for
from ingestion.regions import EASTERN_PROVINCE, RIYADH, all_routes, haversine_km
from ingestion.simulator import MAX_ACCEL_KMPH_PER_S, MAX_DECEL_KMPH_PER_S, AnomalyRates, Fleet

T0 = 1_767_225_600_000
RULES = ValidationRules()


def run(fleet: Fleet, ticks: int) -> list[bytes]:
    return [car.step(fleet.time_ms(t, car)) for t in range(ticks) for car in fleet.cars]


def by_car(raw: list[bytes]) -> dict[str, list[dict]]:
    cars = defaultdict(list)
    for value in raw:
        event = json.loads(value)
        cars[event["car_id"]].append(event)
    return cars


@pytest.fixture(scope="module", params=[1.0, 0.05], ids=["1s", "50ms"])
def readings(request):
    """10 cars for 3 simulated hours (1 s interval) or 8 minutes (50 ms interval)."""
    interval = request.param
    fleet = Fleet(10, seed=7, start_ms=T0, interval_s=interval,
                  rates=AnomalyRates(speeding_per_hour=6, overheat_per_hour=3,
                                     gps_dropout_per_hour=6, low_fuel_skip_rate=0.5))
    ticks = 3 * 3600 if interval == 1.0 else 9_600
    return interval, by_car(run(fleet, ticks))


def pairs(events):
    return zip(events, events[1:])


def test_times_advance_by_the_interval(readings):
    interval, cars = readings
    step = int(interval * 1000)
    for events in cars.values():
        times = [parse_event_time_ms(e["event_timestamp"]) for e in events]
        assert all(b - a in (step - 1, step, step + 1) for a, b in zip(times, times[1:]))


def test_every_reading_is_valid(readings):
    _, cars = readings
    for events in cars.values():
        assert all(RULES.speed_min <= e["speed_kmph"] <= RULES.speed_max and
                   RULES.fuel_min <= e["fuel_level"] <= RULES.fuel_max and
                   RULES.engine_temp_min <= e["engine_temp_c"] <= RULES.engine_temp_max
                   for e in events)
        sample = events[:: max(1, len(events) // 500)]
        assert all(reasons_for(json.dumps(e).encode(), T0 + 86_400_000, RULES) == ()
                   for e in sample)


def test_fuel_never_rises_while_driving(readings):
    _, cars = readings
    refuels = 0
    for events in cars.values():
        for a, b in pairs(events):
            if b["fuel_level"] > a["fuel_level"]:
                refuels += 1
                assert a["speed_kmph"] == 0.0 and b["speed_kmph"] == 0.0
            assert 0.0 <= b["fuel_level"] <= 100.0
    assert refuels > 0


def test_speed_changes_smoothly(readings):
    interval, cars = readings
    most = max(MAX_ACCEL_KMPH_PER_S, MAX_DECEL_KMPH_PER_S) * interval + 0.1  # + wire rounding
    for events in cars.values():
        assert all(abs(b["speed_kmph"] - a["speed_kmph"]) <= most for a, b in pairs(events))


def test_position_moves_no_farther_than_speed_allows(readings):
    interval, cars = readings
    moved = 0.0
    for events in cars.values():
        last_fix, allowed = None, 0.0
        for e in events:
            allowed += (e["speed_kmph"] + 0.05) * interval / 3600.0
            if e.get("latitude") in (None, 0.0):
                continue
            here = (e["latitude"], e["longitude"])
            if last_fix is not None:
                step = haversine_km(*last_fix, *here)
                assert step <= allowed * 1.001 + 0.0005, (e["event_id"], step, allowed)
                moved += step
            last_fix, allowed = here, 0.0
    assert moved > 10.0


def test_positions_stay_in_the_region(readings):
    _, cars = readings
    lats = [lat for lat, _ in EASTERN_PROVINCE.towns.values()]
    lons = [lon for _, lon in EASTERN_PROVINCE.towns.values()]
    for events in cars.values():
        for e in events:
            if e.get("latitude") not in (None, 0.0):
                assert min(lats) - 0.2 <= e["latitude"] <= max(lats) + 0.2
                assert min(lons) - 0.2 <= e["longitude"] <= max(lons) + 0.2


def test_trips_start_where_the_car_stood():
    fleet = Fleet(6, seed=3, start_ms=T0)
    cars = by_car(run(fleet, 3 * 3600))
    trips = 0
    for events in cars.values():
        for a, b in pairs(events):
            if a["trip_id"] != b["trip_id"]:
                trips += 1
                assert b["speed_kmph"] == 0.0
                assert (b["trip_start_latitude"], b["trip_start_longitude"]) == (
                    a["latitude"], a["longitude"]) or a.get("latitude") in (None, 0.0)
                assert b["trip_start_time"] == b["event_timestamp"]
    assert trips >= 6


def test_anomalies_happen_so_alerts_mean_something():
    fleet = Fleet(20, seed=11, start_ms=T0)
    events = [json.loads(v) for v in run(fleet, 3600)]
    assert sum(e["speed_kmph"] > 140 for e in events) > 0
    assert sum(e["engine_temp_c"] > 110 for e in events) > 0
    assert sum(e["fuel_level"] < 10 for e in events) > 0
    dropouts = [e for e in events if e.get("latitude") in (None, 0.0)]
    assert {("latitude" in e, e.get("latitude")) for e in dropouts} == {
        (False, None), (True, None), (True, 0.0)}


def test_anomalies_go_past_the_configured_alert_thresholds():
    rates = AnomalyRates(6.0, 6.0, 0.0, 0.0, overspeed_kmph=180.0, overheat_c=130.0)
    events = [json.loads(v) for v in run(Fleet(10, seed=4, start_ms=T0, rates=rates), 3600)]
    assert sum(e["speed_kmph"] > 180 for e in events) > 0
    assert sum(e["engine_temp_c"] > 130 for e in events) > 0


def test_no_anomalies_when_their_rates_are_zero():
    fleet = Fleet(10, seed=11, start_ms=T0, rates=AnomalyRates(0.0, 0.0, 0.0, 0.0))
    events = [json.loads(v) for v in run(fleet, 3600)]
    assert max(e["speed_kmph"] for e in events) <= 140
    assert max(e["engine_temp_c"] for e in events) <= 110
    assert all(e.get("latitude") not in (None, 0.0) for e in events)


def test_same_seed_same_bytes_different_seed_different_bytes():
    first = run(Fleet(5, seed=1, start_ms=T0), 600)
    assert run(Fleet(5, seed=1, start_ms=T0), 600) == first
    assert run(Fleet(5, seed=2, start_ms=T0), 600) != first


def test_a_car_reads_the_same_whichever_process_simulates_it():
    whole = by_car(run(Fleet(6, seed=9, start_ms=T0), 900))
    part = by_car(run(Fleet(6, seed=9, start_ms=T0, car_indices=(1, 4)), 900))
    assert set(part) == {"CAR-0002", "CAR-0005"}
    assert all(part[c] == whole[c] for c in part)


def test_event_ids_are_unique_and_differ_between_runs():
    a = [json.loads(v)["event_id"] for v in run(Fleet(4, seed=1, start_ms=T0), 300)]
    b = [json.loads(v)["event_id"] for v in run(Fleet(4, seed=2, start_ms=T0), 300)]
    assert len(set(a)) == len(a) and not set(a) & set(b)


def test_other_regions_and_unknown_ones():
    fleet = Fleet(3, seed=1, start_ms=T0, region="riyadh")
    events = [json.loads(v) for v in run(fleet, 600)]
    assert all(24.0 < e["latitude"] < 25.2 for e in events if e.get("latitude"))
    assert len(all_routes(RIYADH)) == len(RIYADH.towns) * (len(RIYADH.towns) - 1)
    with pytest.raises(ValueError, match="unknown region"):
        Fleet(3, seed=1, start_ms=T0, region="atlantis")
