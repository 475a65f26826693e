"""Alert types, their severities and the KPI columns that count them (docs/contracts.md "Alerts").

A type's severity is fixed by the contract, so per-severity counts come from the per-type count
columns of the minute KPIs instead of from a scan of gold.alerts.
"""
from __future__ import annotations

ALERT_SEVERITY: dict[str, str] = {
    "OVERSPEED": "MEDIUM",
    "ENGINE_OVERHEAT": "HIGH",
    "LOW_FUEL": "LOW",
    "GPS_INVALID": "LOW",
    "SUSTAINED_OVERHEAT": "HIGH",
    "FUEL_DROP": "HIGH",
    "GPS_JUMP": "MEDIUM",
    "SPEED_ANOMALY": "LOW",
}
ALERT_TYPES: tuple[str, ...] = tuple(ALERT_SEVERITY)
SEVERITIES: tuple[str, ...] = ("HIGH", "MEDIUM", "LOW")  # worst first
SEVERITY_RANK: dict[str, int] = {name: rank for rank, name in enumerate(reversed(SEVERITIES), 1)}
# RGB of a car on the map by its worst recent alert; no alert: NONE_COLOUR
SEVERITY_COLOUR: dict[str, tuple[int, int, int]] = {
    "HIGH": (214, 39, 40), "MEDIUM": (255, 127, 14), "LOW": (188, 189, 34)}
NONE_COLOUR: tuple[int, int, int] = (44, 160, 44)


def count_column(alert_type: str) -> str:
    """The minute-KPI column counting alerts of `alert_type` (e.g. `overspeed_alerts`)."""
    return f"{alert_type.lower()}_alerts"


COUNT_COLUMNS: tuple[str, ...] = tuple(count_column(t) for t in ALERT_TYPES)


def types_of(severities: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Alert types whose (contract) severity is one of `severities`."""
    return tuple(t for t, s in ALERT_SEVERITY.items() if s in severities)
