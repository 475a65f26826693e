"""The fleet model: cars driving trips between towns, one reading per car per interval.

Each car alternates STOPPED (parked at a town: speed 0, refuelled if needed) and DRIVING (a
route to another town). Speed follows the road's cruising speed, limited by acceleration and a
braking curve towards the destination; fuel falls with distance; engine temperature follows load
with a first-order lag; GPS moves exactly by speed x time along the route. Anomaly episodes
(speeding bursts, overheating, GPS dropouts, skipped refuels) start at configurable rates.
Every car has its own `random.Random` seeded from (seed, car index), so a car's readings do
not depend on how the fleet is split across producer processes.
"""
from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from typing import Sequence

from ingestion.event import GPS_MISSING, GPS_NULL, GPS_OK, GPS_ZERO, CarWire
from ingestion.regions import KM_PER_DEG_LAT, Region, Route, all_routes, get_region

MAX_ACCEL_KMPH_PER_S = 9.0  # 2.5 m/s^2
MAX_DECEL_KMPH_PER_S = 10.8  # 3 m/s^2
APPROACH_KMPH2_PER_KM = 38_880.0  # braking curve v = sqrt(k * d): 1.5 m/s^2
CREEP_KMPH = 4.0
REFUEL_PCT_PER_S = 1.5
REFUEL_RESERVE_PCT = 12.0
IDLE_TEMP_C, TEMP_TAU_S = 78.0, 40.0
_DEG = math.pi / 180.0
DRIVING, STOPPED = 0, 1


@dataclass(frozen=True)
class AnomalyRates:
    """Episodes per car per simulated hour, the share of needed refuels a driver skips, and
    the alert thresholds the episodes go past (speeding 5-35 km/h over, overheating 8-18 C)."""

    speeding_per_hour: float = 3.0
    overheat_per_hour: float = 0.5
    gps_dropout_per_hour: float = 3.0
    low_fuel_skip_rate: float = 0.3
    overspeed_kmph: float = 140.0
    overheat_c: float = 110.0

    @classmethod
    def from_settings(cls, producer, alerts=None) -> "AnomalyRates":
        """From `[producer]` (rates) and `[alerts]` (thresholds; defaults when None)."""
        limits = {} if alerts is None else {"overspeed_kmph": alerts.overspeed_kmph,
                                            "overheat_c": alerts.overheat_c}
        return cls(producer.speeding_per_hour, producer.overheat_per_hour,
                   producer.gps_dropout_per_hour, producer.low_fuel_skip_rate, **limits)


def run_tag(seed: int, start_ms: int, region: str, cars: int) -> str:
    """A short id of one simulated run, part of every event and trip id (unique across runs)."""
    return hashlib.sha1(f"{seed}|{start_ms}|{region}|{cars}".encode()).hexdigest()[:8]


def car_id(index: int, cars: int) -> str:
    return f"CAR-{index + 1:0{max(4, len(str(cars)))}d}"


class Car:
    """One vehicle's state; `step(t_ms)` advances it by one interval and returns the reading."""

    __slots__ = ("index", "car_id", "key", "rng", "wire", "dt", "routes", "towns", "rates",
                 "p_speed", "p_heat", "p_gps", "alpha", "state", "town", "route", "wp", "cruise",
                 "remaining", "lat", "lon", "speed", "fuel", "temp", "tank_l", "driver",
                 "dwell", "refuel_to", "speeding_s", "speeding_kmph", "heat_s", "heat_c", "gps_s",
                 "gps_mode", "seq", "trip_no", "trip_prefix")

    def __init__(self, index: int, name: str, rng: random.Random,
                 routes: dict[tuple[str, str], Route], dt_s: float, rates: AnomalyRates, tag: str,
                 start_ms: int) -> None:
        self.index, self.car_id, self.key, self.rng = index, name, name.encode(), rng
        self.wire = CarWire(name, tag)
        self.trip_prefix = f"{tag}-{name}-T"
        self.dt, self.routes, self.rates = dt_s, routes, rates
        self.towns = sorted({a for a, _ in routes})
        per_s = dt_s / 3600.0
        self.p_speed = rates.speeding_per_hour * per_s
        self.p_heat = self.p_speed + rates.overheat_per_hour * per_s
        self.p_gps = self.p_heat + rates.gps_dropout_per_hour * per_s
        self.alpha = min(1.0, dt_s / TEMP_TAU_S)
        self.town = rng.choice(self.towns)
        self.lat, self.lon = routes[(self.town, self._other_town())].points[0]
        self.speed, self.fuel = 0.0, rng.uniform(6.0, 100.0)
        self.temp, self.tank_l = rng.uniform(70.0, 90.0), rng.uniform(50.0, 80.0)
        self.driver = rng.uniform(0.9, 1.08)  # how far above/below the cruising speed
        self.speeding_s = self.speeding_kmph = self.heat_s = self.heat_c = self.gps_s = 0.0
        self.gps_mode, self.seq, self.trip_no = GPS_OK, 0, 0
        self.wp, self.cruise, self.remaining = 0, 0.0, 0.0
        self.wire.set_trip(f"{self.trip_prefix}0", start_ms, self.lat, self.lon)
        self._arrive()
        self.dwell = rng.uniform(0.0, 60.0)

    def _other_town(self) -> str:
        return self.rng.choice([t for t in self.towns if t != self.town])

    def _arrive(self) -> None:
        """Parked at `town`: pick the next trip, and refuel now if it needs more than we have."""
        rng = self.rng
        self.state, self.dwell, self.refuel_to = STOPPED, rng.uniform(30.0, 480.0), 0.0
        self.route = self.routes[(self.town, self._other_town())]
        need = self.route.length_km * 9.0 / self.tank_l * 1.25
        if self.fuel - need < REFUEL_RESERVE_PCT:
            skip = rng.random() < self.rates.low_fuel_skip_rate and self.fuel - need > 2.5
            if not skip:
                self.refuel_to = rng.uniform(90.0, 100.0)
                self.dwell = max(self.dwell, (self.refuel_to - self.fuel) / REFUEL_PCT_PER_S + 20.0)

    def _depart(self, t_ms: int) -> None:
        self.state, self.wp, self.refuel_to = DRIVING, 1, 0.0
        self.cruise, self.remaining = self.route.cruise_kmph[0], self.route.length_km
        self.trip_no += 1
        self.wire.set_trip(f"{self.trip_prefix}{self.trip_no}", t_ms, self.lat, self.lon)

    def _move(self, km: float) -> None:
        """Advance `km` along the route (waypoint to waypoint); park at the destination."""
        points = self.route.points
        lat, lon, wp = self.lat, self.lon, self.wp
        while True:
            t_lat, t_lon = points[wp]
            d_lat, d_lon = t_lat - lat, t_lon - lon
            dy, dx = d_lat * KM_PER_DEG_LAT, d_lon * KM_PER_DEG_LAT * math.cos(lat * _DEG)
            rem = math.sqrt(dx * dx + dy * dy)
            if km < rem:
                f = km / rem
                self.lat, self.lon, self.wp = lat + d_lat * f, lon + d_lon * f, wp
                self.remaining = rem - km + self.route.remaining_km[wp]
                return
            km -= rem
            lat, lon, wp = t_lat, t_lon, wp + 1
            if wp == len(points):
                self.lat, self.lon, self.remaining = lat, lon, 0.0
                self.town = self.route.destination
                self._arrive()
                return
            self.cruise = self.route.cruise_kmph[wp - 1]

    def _drive(self, u: float) -> float:
        """One driving interval; returns the engine temperature target."""
        dt, rng = self.dt, self.rng
        if u < self.p_speed and self.cruise >= 90.0 and self.speeding_s <= 0.0:
            self.speeding_s = rng.uniform(15.0, 60.0)
            self.speeding_kmph = self.rates.overspeed_kmph + rng.uniform(5.0, 35.0)
        target = self.cruise * self.driver + rng.uniform(-3.0, 3.0)
        if self.speeding_s > 0.0:
            target, self.speeding_s = self.speeding_kmph, self.speeding_s - dt
        approach = math.sqrt(APPROACH_KMPH2_PER_KM * self.remaining)
        if approach < target:
            target = max(approach, CREEP_KMPH)
        v = self.speed
        dv = max(-MAX_DECEL_KMPH_PER_S * dt, min(MAX_ACCEL_KMPH_PER_S * dt, target - v))
        v = self.speed = max(0.0, v + dv)
        km = v * dt / 3600.0
        self.fuel = max(0.0, self.fuel - km * (7.5 + 0.0006 * (v - 80.0) ** 2) / self.tank_l)
        self._move(km)
        return 82.0 + 0.09 * v + (4.0 if dv > 0.5 * MAX_ACCEL_KMPH_PER_S * dt else 0.0)

    def _park(self, t_ms: int) -> float:
        """One parked interval (stop rolling, refuel, wait); returns the temperature target."""
        dt = self.dt
        if self.speed > 0.0:
            self.speed = max(0.0, self.speed - MAX_DECEL_KMPH_PER_S * dt)
        elif self.fuel < self.refuel_to:
            self.fuel = min(self.refuel_to, self.fuel + REFUEL_PCT_PER_S * dt)
        else:
            self.dwell -= dt
            if self.dwell <= 0.0:
                self._depart(t_ms)
        return IDLE_TEMP_C

    def step(self, t_ms: int) -> bytes:
        """Advance one interval ending at `t_ms` and return that reading's wire bytes."""
        u = self.rng.random()
        target = self._drive(u) if self.state == DRIVING else self._park(t_ms)
        if self.p_speed <= u < self.p_heat and self.heat_s <= 0.0:
            self.heat_s = self.rng.uniform(60.0, 240.0)
            self.heat_c = self.rates.overheat_c + self.rng.uniform(8.0, 18.0)
        elif self.p_heat <= u < self.p_gps and self.gps_s <= 0.0:
            self.gps_s = self.rng.uniform(5.0, 45.0)
            self.gps_mode = self.rng.choice((GPS_MISSING, GPS_NULL, GPS_ZERO))
        if self.heat_s > 0.0:
            target, self.heat_s = max(target, self.heat_c), self.heat_s - self.dt
        self.temp += (target - self.temp) * self.alpha
        gps = GPS_OK
        if self.gps_s > 0.0:
            gps, self.gps_s = self.gps_mode, self.gps_s - self.dt
        self.seq += 1
        return self.wire.encode(t_ms, self.speed, self.fuel, self.temp + (u - 0.5) * 0.4, gps,
                                self.lat, self.lon, self.seq)


class Fleet:
    """N cars (or the subset `car_indices` of them) on one simulated clock."""

    def __init__(self, cars: int, seed: int, start_ms: int, interval_s: float = 1.0,
                 region: Region | str = "eastern_province", rates: AnomalyRates | None = None,
                 car_indices: Sequence[int] | None = None) -> None:
        if cars < 1 or interval_s <= 0:
            raise ValueError("a fleet needs at least one car and a positive interval")
        region = get_region(region) if isinstance(region, str) else region
        routes = all_routes(region)
        self.size, self.start_ms, self.interval_s = cars, start_ms, interval_s
        self.tag = run_tag(seed, start_ms, region.name, cars)
        rates = rates or AnomalyRates()
        indices = range(cars) if car_indices is None else car_indices
        self.cars = [Car(i, car_id(i, cars), random.Random(f"{seed}:car:{i}"), routes,
                         interval_s, rates, self.tag, start_ms) for i in indices]
        self._step_ms = interval_s * 1000.0 / cars

    def time_ms(self, tick: int, car: Car) -> int:
        """Event time of `car`'s reading in `tick` (cars are staggered evenly in a tick)."""
        return self.start_ms + int((tick * self.size + car.index) * self._step_ms)
