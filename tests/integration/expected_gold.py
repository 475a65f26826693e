"""Expected gold rows computed in plain Python from the literal events a test sends.

An independent reference (no project code) for the contract of docs/contracts.md with the default
thresholds and the threshold rules only (the tests using it disable the stateful rules): every
matching rule fires, one-minute windows on event_ts (UTC), KPIs per (car, minute) and per
minute, the latest reading per car by (event_ts, Kafka timestamp, event_id). Averages are exact
decimal sums over the count, so tests pick readings whose averages are exact binary numbers.
Rows come in the normalised form of lake_equality (aware UTC datetimes), sorted the same way.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from .lake_equality import sorted_rows

UTC = dt.timezone.utc
OVERSPEED_KMPH, OVERHEAT_C, LOW_FUEL_PCT = 140.0, 110.0, 10.0
ALERT_TYPES = ("OVERSPEED", "ENGINE_OVERHEAT", "LOW_FUEL", "GPS_INVALID", "SUSTAINED_OVERHEAT",
               "FUEL_DROP", "GPS_JUMP", "SPEED_ANOMALY")


@dataclass(frozen=True)
class Reading:
    """One valid, unique event as sent (body fields) plus its Kafka record timestamp."""

    event_id: str
    car_id: str
    event_ts: dt.datetime
    speed: float
    fuel: float
    temp: float
    lat: float | None
    lon: float | None
    trip_id: str | None
    kafka_ts: dt.datetime


def reading(body: dict, kafka_ms: int) -> Reading:
    """A Reading from an event body with an ISO-8601 `event_timestamp` (Z or an offset)."""
    ts = dt.datetime.fromisoformat(body["event_timestamp"].replace("Z", "+00:00"))
    return Reading(body["event_id"], body["car_id"], ts.astimezone(UTC),
                   float(body["speed_kmph"]), float(body["fuel_level"]),
                   float(body["engine_temp_c"]), body.get("latitude"), body.get("longitude"),
                   body.get("trip_id"), dt.datetime.fromtimestamp(kafka_ms / 1000, UTC))


def gps_valid(r: Reading) -> bool:
    if r.lat is None or r.lon is None:
        return False
    return -90 <= r.lat <= 90 and -180 <= r.lon <= 180 and not (r.lat == 0 and r.lon == 0)


def _alert(r: Reading, kind: str, severity: str, message: str, observed, threshold) -> tuple:
    alert_id = hashlib.sha256(f"{r.event_id}|{kind}".encode()).hexdigest()[:32]
    return (alert_id, r.event_id, r.car_id, r.event_ts, kind, severity, message, observed,
            threshold)


def alerts(readings: list[Reading]) -> list[tuple]:
    """gold.alerts rows: one per (reading, matching threshold rule)."""
    rows = []
    for r in readings:
        if r.speed > OVERSPEED_KMPH:
            rows.append(_alert(r, "OVERSPEED", "MEDIUM", f"Speed {r.speed!r} km/h above 140 km/h",
                               r.speed, OVERSPEED_KMPH))
        if r.temp > OVERHEAT_C:
            rows.append(_alert(r, "ENGINE_OVERHEAT", "HIGH",
                               f"Engine temperature {r.temp!r} °C above 110 °C", r.temp,
                               OVERHEAT_C))
        if r.fuel < LOW_FUEL_PCT:
            rows.append(_alert(r, "LOW_FUEL", "LOW", f"Fuel level {r.fuel!r}% below 10%", r.fuel,
                               LOW_FUEL_PCT))
        if not gps_valid(r):
            text = ("GPS position missing" if r.lat is None or r.lon is None
                    else f"GPS position invalid (lat {float(r.lat)!r}, lon {float(r.lon)!r})")
            rows.append(_alert(r, "GPS_INVALID", "LOW", text, None, None))
    return sorted_rows(rows)


def minute(ts: dt.datetime) -> dt.datetime:
    return ts.replace(second=0, microsecond=0)


def _exact_sum(speeds: list[float]) -> Decimal:
    """The sum as gold stores it: each reading rounded to 9 decimals, summed exactly."""
    return sum((Decimal(repr(s)).quantize(Decimal("1e-9")) for s in speeds), Decimal(0))


def _average(speeds: list[float]) -> float:
    return float(sum(Decimal(repr(s)) for s in speeds) / len(speeds))


def device_minute_kpis(readings: list[Reading]) -> list[tuple]:
    """gold.device_minute_kpis rows: per (car_id, minute) with readings."""
    groups: dict[tuple, list[Reading]] = defaultdict(list)
    for r in readings:
        groups[(r.car_id, minute(r.event_ts))].append(r)
    fired = defaultdict(int)
    for a in alerts(readings):
        fired[(a[2], minute(a[3]))] += 1
        fired[(a[2], minute(a[3]), a[4])] += 1
    return sorted_rows([
        (car, start, len(rs), _average([r.speed for r in rs]), max(r.speed for r in rs),
         max(r.temp for r in rs), min(r.fuel for r in rs), fired[(car, start)],
         _exact_sum([r.speed for r in rs]), *[fired[(car, start, kind)] for kind in ALERT_TYPES])
        for (car, start), rs in groups.items()])


def fleet_minute_kpis(readings: list[Reading]) -> list[tuple]:
    """gold.fleet_minute_kpis rows: per minute with readings, alert counts in total and by type."""
    groups: dict[dt.datetime, list[Reading]] = defaultdict(list)
    for r in readings:
        groups[minute(r.event_ts)].append(r)
    by_type = defaultdict(int)
    for a in alerts(readings):
        by_type[(minute(a[3]), a[4])] += 1
    return sorted_rows([
        (start, len({r.car_id for r in rs}), len(rs), _average([r.speed for r in rs]),
         sum(by_type[(start, kind)] for kind in ALERT_TYPES),
         *[by_type[(start, kind)] for kind in ALERT_TYPES])
        for start, rs in groups.items()])


def device_latest(readings: list[Reading]) -> list[tuple]:
    """gold.device_latest rows: per car, its reading latest by (event_ts, kafka_ts, event_id)."""
    latest: dict[str, Reading] = {}
    for r in readings:
        key = (r.event_ts, r.kafka_ts, r.event_id)
        current = latest.get(r.car_id)
        if current is None or key > (current.event_ts, current.kafka_ts, current.event_id):
            latest[r.car_id] = r
    return sorted_rows([
        (r.car_id, r.event_id, r.trip_id, r.event_ts, r.speed, r.fuel, r.temp,
         None if r.lat is None else float(r.lat), None if r.lon is None else float(r.lon),
         gps_valid(r), r.kafka_ts)
        for r in latest.values()])


def expected_gold(readings: list[Reading]) -> dict[str, list[tuple]]:
    """Every gold table except dq_batch_metrics, from all valid unique readings."""
    return {"alerts": alerts(readings), "device_minute_kpis": device_minute_kpis(readings),
            "fleet_minute_kpis": fleet_minute_kpis(readings),
            "device_latest": device_latest(readings)}
