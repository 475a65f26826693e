"""SQL-injection strings in every filter of the dashboard are values (or refused), never SQL.

The app runs here on the pipeline (owner) role's DSN, which may write: so what keeps the
database unchanged is parameterised SQL, not the read-only role. Every gold table is digested
before and after; every page must render without an error, and filters must match nothing.
"""
from __future__ import annotations

import pytest

from .dashboard_app import known_database, open_page
from .dashboard_app import frame as table
from .dashboard_rows import table_digest

pytestmark = pytest.mark.integration

INJECTIONS = [
    "' OR '1'='1",
    "car-2' OR '1'='1' --",
    "'; DELETE FROM gold.alerts; --",
    "car-2'); DROP TABLE gold.alerts; --",
    "' UNION SELECT now(), rolname, rolpassword, '', '', 0, 0, '' FROM pg_authid --",
    "\\'; TRUNCATE gold.device_latest; --",
    "%(car)s' OR 1=1 --",
    "car-2\x00' OR 1=1",
    "$$; UPDATE gold.device_latest SET speed_kmph = 0; $$",
]
NO_MATCH = ["No alert matches these filters."]


@pytest.fixture
def writer_dsn(make_pg_database, base_settings) -> str:
    owner = make_pg_database()
    known_database(owner, base_settings)
    return owner


@pytest.fixture
def unchanged(writer_dsn):
    before = table_digest(writer_dsn)
    yield writer_dsn
    assert table_digest(writer_dsn) == before


def rendered_cleanly(at) -> None:
    assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]


@pytest.mark.parametrize("text", INJECTIONS)
def test_alert_filters_take_injections_as_values(unchanged, text):
    # each query reaches SQL with the string as a parameter (a severity alone would not: no type
    # has it, so nothing is asked)
    for query in ({"car": text}, {"type": text}, {"type": ["OVERSPEED", text]},
                  {"severity": ["HIGH", text], "car": text}):
        at = open_page(unchanged, "alerts", query)
        rendered_cleanly(at)
        if "type" in query and isinstance(query["type"], list):  # OVERSPEED still matches
            assert set(table(at, "alert_type")["alert_type"]) == {"OVERSPEED"}
        else:
            assert [i.value for i in at.info] == NO_MATCH, query
            assert not at.dataframe


@pytest.mark.parametrize("text", INJECTIONS[:4])
def test_time_filters_refuse_what_is_not_a_time(unchanged, text):
    at = open_page(unchanged, "alerts", {"since": text, "until": text}, page_size=25)
    rendered_cleanly(at)
    assert [d.value for d in at.datetime_input] == [None, None]
    assert len(table(at, "alert_id")) == 25  # unfiltered: the first page of all 76 alerts


@pytest.mark.parametrize("text", INJECTIONS)
def test_car_page_takes_injections_as_a_car_id(unchanged, text):
    at = open_page(unchanged, "car", {"car": text})
    rendered_cleanly(at)
    assert [w.value for w in at.warning] == [
        "This car is not in gold (no latest reading, no minute KPIs)."]
    assert not at.metric and not at.dataframe
