"""Regions the simulated fleet drives in: towns, the roads between them, and routes.

A region is a small road graph: towns (lat, lon) joined by roads with a cruising speed. Each
road is drawn as a gently bent polyline (one offset mid-point) so routes are not ruler-straight.
Routes are shortest paths (by length) and are precomputed once per region.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

EARTH_RADIUS_KM = 6371.0088
KM_PER_DEG_LAT = EARTH_RADIUS_KM * math.pi / 180.0


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class Region:
    """Towns (name -> (lat, lon)) and two-way roads (town, town, cruising km/h)."""

    name: str
    towns: dict[str, tuple[float, float]]
    roads: tuple[tuple[str, str, float], ...]


EASTERN_PROVINCE = Region(
    name="eastern_province",
    towns={
        "Dammam": (26.4207, 50.0888), "Khobar": (26.2794, 50.2083),
        "Dhahran": (26.2361, 50.0393), "Qatif": (26.5560, 50.0071),
        "Ras Tanura": (26.6442, 50.1597), "Jubail": (27.0046, 49.6460),
        "KFIA Airport": (26.4712, 49.7979), "Abqaiq": (25.9340, 49.6688),
        "Hofuf": (25.3800, 49.5883),
    },
    roads=(
        ("Dammam", "Khobar", 80.0), ("Khobar", "Dhahran", 70.0), ("Dammam", "Dhahran", 90.0),
        ("Dammam", "Qatif", 100.0), ("Qatif", "Ras Tanura", 100.0), ("Qatif", "Jubail", 120.0),
        ("Dammam", "KFIA Airport", 110.0), ("KFIA Airport", "Jubail", 120.0),
        ("Dhahran", "Abqaiq", 120.0), ("Dammam", "Abqaiq", 120.0), ("Abqaiq", "Hofuf", 120.0),
    ),
)

RIYADH = Region(
    name="riyadh",
    towns={
        "Olaya": (24.6909, 46.6850), "Diriyah": (24.7340, 46.5750),
        "KKIA Airport": (24.9578, 46.6988), "Al Malaz": (24.6620, 46.7350),
        "Al Kharj": (24.1556, 47.3120), "Al Muzahmiyah": (24.4690, 46.2600),
    },
    roads=(
        ("Olaya", "Diriyah", 80.0), ("Olaya", "KKIA Airport", 110.0),
        ("Olaya", "Al Malaz", 70.0), ("Al Malaz", "Al Kharj", 120.0),
        ("Diriyah", "Al Muzahmiyah", 120.0), ("Al Malaz", "KKIA Airport", 110.0),
    ),
)

REGIONS = {r.name: r for r in (EASTERN_PROVINCE, RIYADH)}


def get_region(name: str) -> Region:
    try:
        return REGIONS[name]
    except KeyError:
        known = ", ".join(sorted(REGIONS))
        raise ValueError(f"unknown region {name!r}: use one of {known}") from None


@dataclass(frozen=True)
class Route:
    """A drivable path: waypoints with the cruising speed of the leg that ends at each."""

    origin: str
    destination: str
    points: tuple[tuple[float, float], ...]  # first = origin
    cruise_kmph: tuple[float, ...]  # cruise_kmph[i]: the leg from points[i] to points[i + 1]
    remaining_km: tuple[float, ...]  # remaining_km[i]: path length from points[i] to the end

    @property
    def length_km(self) -> float:
        return self.remaining_km[0]


def _bent_road(a: tuple[float, float], b: tuple[float, float],
               bend: float) -> list[tuple[float, float]]:
    """a -> mid-point pushed sideways by `bend` x the length -> b."""
    mid_lat, mid_lon = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
    d_lat, d_lon = b[0] - a[0], b[1] - a[1]
    return [a, (mid_lat - d_lon * bend, mid_lon + d_lat * bend), b]


class RoadNetwork:
    """The region's roads as a graph, with shortest routes between any two towns."""

    def __init__(self, region: Region) -> None:
        self.region = region
        self.towns = sorted(region.towns)
        self._edges: dict[str, list[tuple[str, float, list[tuple[float, float]], float]]] = {
            t: [] for t in self.towns}
        for i, (a, b, cruise) in enumerate(region.roads):
            line = _bent_road(region.towns[a], region.towns[b], 0.04 if i % 2 else -0.04)
            km = sum(haversine_km(*p, *q) for p, q in zip(line, line[1:]))
            self._edges[a].append((b, km, line, cruise))
            self._edges[b].append((a, km, line[::-1], cruise))

    def route(self, origin: str, destination: str) -> Route:
        """The shortest route from `origin` to `destination` (different towns)."""
        dist, prev = {origin: 0.0}, {}
        heap = [(0.0, origin)]
        while heap:
            d, town = heapq.heappop(heap)
            if town == destination:
                break
            if d > dist[town]:
                continue
            for nxt, km, line, cruise in self._edges[town]:
                if d + km < dist.get(nxt, math.inf):
                    dist[nxt], prev[nxt] = d + km, (town, line, cruise)
                    heapq.heappush(heap, (d + km, nxt))
        if destination not in prev:
            raise ValueError(f"no road from {origin} to {destination} in {self.region.name}")
        legs = []
        town = destination
        while town != origin:
            town, line, cruise = prev[town]
            legs.append((line, cruise))
        points, cruises = [legs[-1][0][0]], []
        for line, cruise in reversed(legs):
            points.extend(line[1:])
            cruises.extend([cruise] * (len(line) - 1))
        lengths = [haversine_km(*p, *q) for p, q in zip(points, points[1:])] + [0.0]
        remaining = [sum(lengths[i:]) for i in range(len(points))]
        return Route(origin, destination, tuple(points), tuple(cruises), tuple(remaining))


def all_routes(region: Region) -> dict[tuple[str, str], Route]:
    """Every town-to-town route of `region` (built-in regions: computed once per process)."""
    cached = _ROUTES.get(region.name)
    if cached is not None and REGIONS.get(region.name) is region:
        return cached
    net = RoadNetwork(region)
    routes = {(a, b): net.route(a, b) for a in net.towns for b in net.towns if a != b}
    if REGIONS.get(region.name) is region:
        _ROUTES[region.name] = routes
    return routes


_ROUTES: dict[str, dict[tuple[str, str], Route]] = {}
