"""The alerts page's SQL: one ordered index range per type, values only as parameters."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from dashboard.catalog import ALERT_SEVERITY, ALERT_TYPES, COUNT_COLUMNS, types_of
from dashboard.queries import AlertFilter, alerts_page, branch_types
from gold.schema import SEVERITIES
from serving.tables import TABLES

T = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)


def test_catalog_matches_the_contract_tables():
    for table in ("fleet_minute_kpis", "device_minute_kpis"):
        assert set(COUNT_COLUMNS) <= set(TABLES[table].column_names)
    assert len(COUNT_COLUMNS) == len([c for c in TABLES["fleet_minute_kpis"].column_names
                                      if c.endswith("_alerts")])
    assert set(ALERT_SEVERITY.values()) == set(SEVERITIES)
    assert types_of(["HIGH"]) == ("ENGINE_OVERHEAT", "SUSTAINED_OVERHEAT", "FUEL_DROP")


@pytest.mark.parametrize("flt, types", [
    (AlertFilter(), None),
    (AlertFilter(car="car-1"), None),
    (AlertFilter(types=("OVERSPEED", "LOW_FUEL", "OVERSPEED")), ("OVERSPEED", "LOW_FUEL")),
    (AlertFilter(severities=("MEDIUM",)), ("OVERSPEED", "GPS_JUMP")),
    (AlertFilter(types=("OVERSPEED", "LOW_FUEL"), severities=("LOW",)), ("LOW_FUEL",)),
    (AlertFilter(types=("x' OR '1'='1",)), ("x' OR '1'='1",)),  # a value: matches nothing
    (AlertFilter(severities=("x' OR '1'='1",)), ()),  # no type has it: no query at all
])
def test_branch_types(flt, types):
    assert branch_types(flt) == types


def test_every_filter_value_is_a_parameter():
    flt = AlertFilter(types=("OVERSPEED", "'; DROP TABLE gold.alerts; --"),
                      severities=("MEDIUM", "HIGH"), car="car' OR 1=1 --", since=T, until=T)
    query, params = alerts_page(flt, (T, "al-'1"), 25)
    assert params == {"limit": 25, "car": "car' OR 1=1 --", "severities": ["MEDIUM", "HIGH"],
                      "since": T, "until": T, "after_ts": T, "after_id": "al-'1",
                      "type_0": "OVERSPEED"}  # the unknown type has no severity: dropped
    text = repr(query)
    assert "DROP" not in text and "OR 1=1" not in text and "al-'1" not in text


def test_no_query_when_nothing_can_match():
    assert alerts_page(AlertFilter(severities=("CRITICAL",)), None, 10) is None
    with pytest.raises(ValueError, match="at most 16 alert types"):
        alerts_page(AlertFilter(types=tuple(f"t{i}" for i in range(17))), None, 10)
    assert len(ALERT_TYPES) == 8


def test_values_no_text_can_hold_match_nothing():
    assert alerts_page(AlertFilter(car="car-1\x00' OR 1=1"), None, 10) is None
    assert alerts_page(AlertFilter(types=("\x00",)), None, 10) is None
    _, params = alerts_page(AlertFilter(types=("OVERSPEED", "x\x00")), None, 10)
    assert params == {"limit": 10, "type_0": "OVERSPEED"}
