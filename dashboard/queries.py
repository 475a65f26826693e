"""The dashboard's SQL. Each query is parameterised and bounded by an index (see
tests/integration/test_dashboard_indexes.py, which EXPLAINs every query the pages run).

Windows are anchored at the newest row of the table they read ("the latest N minutes of data"),
so a stalled pipeline still shows its last N minutes, under a stale-data banner. The newest row
is read first (an index lookup) and the window's start is passed as a value: with a constant
bound the planner estimates the range from the column statistics and picks the index.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from psycopg2 import sql

from dashboard.catalog import ALERT_TYPES, COUNT_COLUMNS, types_of

_COUNTS = ", ".join(f"coalesce({c}, 0) AS {c}" for c in COUNT_COLUMNS)
_COUNT_SUMS = ", ".join(f"coalesce(sum({c}), 0)::bigint AS {c}" for c in COUNT_COLUMNS)

# Age of the newest event in gold, measured on the database's clock.
FRESHNESS = """
SELECT now() AS db_now, (SELECT max(event_ts) FROM gold.device_latest) AS newest_event_ts
"""

NEWEST_FLEET_MINUTE = "SELECT max(window_start) AS newest FROM gold.fleet_minute_kpis"
NEWEST_DEVICE_MINUTE = "SELECT max(window_start) AS newest FROM gold.device_minute_kpis"
NEWEST_CAR_MINUTE = """
SELECT max(window_start) AS newest FROM gold.device_minute_kpis WHERE car_id = %(car)s
"""
NEWEST_DQ_BATCH = "SELECT max(processed_at) AS newest FROM gold.dq_batch_metrics"

FLEET_MINUTES = f"""
SELECT window_start, active_cars, events, avg_speed_kmph, alerts, {_COUNTS}
FROM gold.fleet_minute_kpis
WHERE window_start >= %(since)s
ORDER BY window_start
"""

# Per processing minute: batches, rows and the accounting identity's breaches.
DQ_MINUTES = """
SELECT date_trunc('minute', processed_at) AS minute, count(*) AS batches,
       sum(rows_in)::bigint AS rows_in, sum(valid_rows)::bigint AS valid_rows,
       sum(quarantined_rows)::bigint AS quarantined_rows,
       sum(duplicate_rows)::bigint AS duplicate_rows,
       count(*) FILTER (WHERE rows_in IS DISTINCT FROM valid_rows + quarantined_rows
                          OR duplicate_rows > valid_rows) AS identity_breaches
FROM gold.dq_batch_metrics
WHERE processed_at >= %(since)s
GROUP BY 1
ORDER BY 1
"""

DQ_REASONS = """
SELECT date_trunc('minute', d.processed_at) AS minute, r.key AS reason,
       sum(r.value::bigint)::bigint AS rows
FROM gold.dq_batch_metrics AS d
CROSS JOIN LATERAL jsonb_each_text(d.quarantine_reasons) AS r
WHERE d.processed_at >= %(since)s
GROUP BY 1, 2
ORDER BY 1, 2
"""

DQ_BATCHES = """
SELECT processed_at, query_id, batch_id, rows_in, valid_rows, quarantined_rows, duplicate_rows,
       quarantine_reasons::text AS quarantine_reasons
FROM gold.dq_batch_metrics
ORDER BY processed_at DESC
LIMIT %(limit)s
"""

# Every result of the newest `fleetlake dq report` run (migration 0003): the run through the
# run_at index, its rows through the primary key; failures first, critical ones first.
DQ_LATEST_RUN = """
SELECT run_at, suite, expectation, severity, success, column_name, expectation_type,
       observed::text AS observed
FROM gold.dq_results
WHERE run_id = (SELECT run_id FROM gold.dq_results ORDER BY run_at DESC LIMIT 1)
ORDER BY success, severity <> 'critical', suite, expectation
"""

# Every car's latest reading: the whole (one row per car) table, by design.
DEVICE_LATEST = """
SELECT car_id, event_ts, trip_id, speed_kmph, fuel_level, engine_temp_c, latitude, longitude,
       gps_valid
FROM gold.device_latest
ORDER BY car_id
"""

# Alerts per car and type over the recent minutes of KPIs (not a scan of gold.alerts).
RECENT_CAR_ALERTS = f"""
SELECT car_id, {_COUNT_SUMS}
FROM gold.device_minute_kpis
WHERE window_start >= %(since)s
GROUP BY car_id
"""

CAR_LATEST = """
SELECT car_id, event_ts, trip_id, speed_kmph, fuel_level, engine_temp_c, latitude, longitude,
       gps_valid
FROM gold.device_latest
WHERE car_id = %(car)s
"""

CAR_MINUTES = f"""
SELECT window_start, events, avg_speed_kmph, max_speed_kmph, max_engine_temp_c, min_fuel_level,
       alerts, {_COUNTS}
FROM gold.device_minute_kpis
WHERE car_id = %(car)s AND window_start >= %(since)s
ORDER BY window_start
"""

CAR_ALERTS = """
SELECT event_ts, alert_type, severity, message, observed_value, threshold, alert_id
FROM gold.alerts
WHERE car_id = %(car)s AND event_ts >= %(since)s
ORDER BY event_ts DESC, alert_id DESC
LIMIT %(limit)s
"""

# The newest batch of each streaming query: a loose index scan over (query_name, started).
PIPELINE_LATEST = """
WITH RECURSIVE names(query_name) AS (
    SELECT min(query_name) FROM gold.pipeline_progress
    UNION ALL
    SELECT (SELECT min(p.query_name) FROM gold.pipeline_progress AS p
            WHERE p.query_name > n.query_name)
    FROM names AS n WHERE n.query_name IS NOT NULL
)
SELECT last.* FROM names AS n
CROSS JOIN LATERAL (
    SELECT query_name, query_id, batch_id, batch_started_at, duration_ms, input_rows,
           source_lag, reported_at
    FROM gold.pipeline_progress AS p
    WHERE p.query_name = n.query_name
    ORDER BY batch_started_at DESC
    LIMIT 1) AS last
WHERE n.query_name IS NOT NULL
ORDER BY last.query_name
"""

# Per query and minute of batch start, from each query's own window start on.
PIPELINE_MINUTES = """
SELECT q.query_name, m.*
FROM unnest(%(names)s::text[], %(sinces)s::timestamptz[]) AS q(query_name, since)
CROSS JOIN LATERAL (
    SELECT date_trunc('minute', batch_started_at) AS minute, count(*) AS batches,
           avg(duration_ms)::double precision AS avg_duration_ms,
           max(duration_ms) AS max_duration_ms, sum(input_rows)::bigint AS input_rows,
           max(source_lag) AS max_source_lag
    FROM gold.pipeline_progress AS p
    WHERE p.query_name = q.query_name AND p.batch_started_at >= q.since
    GROUP BY 1) AS m
ORDER BY 1, 2
"""

# The last batch each sync application applied: a loose index scan over the ledger's key.
SYNC_LATEST = """
WITH RECURSIVE apps(app_id) AS (
    SELECT min(app_id) FROM gold.sync_ledger
    UNION ALL
    SELECT (SELECT min(l.app_id) FROM gold.sync_ledger AS l WHERE l.app_id > a.app_id)
    FROM apps AS a WHERE a.app_id IS NOT NULL
)
SELECT last.app_id,
       (SELECT p.query_name FROM gold.pipeline_progress AS p
        WHERE p.query_id = last.app_id ORDER BY p.batch_id DESC LIMIT 1) AS query_name,
       last.batch_id, last.applied_at
FROM apps AS a
CROSS JOIN LATERAL (
    SELECT app_id, batch_id, applied_at FROM gold.sync_ledger AS l
    WHERE l.app_id = a.app_id
    ORDER BY batch_id DESC
    LIMIT 1) AS last
WHERE a.app_id IS NOT NULL
ORDER BY last.applied_at DESC
"""

ALERT_COLUMNS = ("event_ts", "car_id", "alert_type", "severity", "message", "observed_value",
                 "threshold", "alert_id")
MAX_TYPE_FILTERS = 16


@dataclass(frozen=True)
class AlertFilter:
    """The alerts page's filters; every value reaches SQL as a parameter, never as text."""

    types: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    car: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


def storable(*values: str | None) -> bool:
    """False if a value holds NUL, which no PostgreSQL text can: such a filter matches nothing."""
    return not any(v is not None and "\x00" in v for v in values)


def branch_types(flt: AlertFilter) -> tuple[str, ...] | None:
    """Alert types to read one index range each; None: no type restriction; (): nothing matches.

    A type's severity is fixed (catalog.ALERT_SEVERITY), so a severity filter narrows the types,
    and each type is read through the (alert_type, event_ts) index.
    """
    if not flt.types and not flt.severities:
        return None
    candidates = flt.types or ALERT_TYPES
    if flt.severities:
        allowed = set(types_of(flt.severities))
        candidates = tuple(t for t in candidates if t in allowed)
    return tuple(dict.fromkeys(candidates))


def alerts_page(flt: AlertFilter, after: tuple[datetime, str] | None,
                limit: int) -> tuple[sql.Composed, dict[str, Any]] | None:
    """One page of alerts, newest first, after the keyset cursor `after` (event_ts, alert_id).

    Each selected type is its own ordered, LIMITed index range scan; the branches are merged.
    Returns None when the filter cannot match anything (no query is needed).
    """
    flt = _matchable(flt)
    types = None if flt is None else branch_types(flt)
    if flt is None or (types is not None and not types):
        return None
    if types is not None and len(types) > MAX_TYPE_FILTERS:
        raise ValueError(f"at most {MAX_TYPE_FILTERS} alert types can be filtered at once")
    params: dict[str, Any] = {"limit": int(limit)}
    common = _common_conditions(flt, after, params)
    order = sql.SQL(" ORDER BY event_ts DESC, alert_id DESC LIMIT %(limit)s")
    columns = sql.SQL(", ").join(map(sql.Identifier, ALERT_COLUMNS))
    branches = []
    for i, alert_type in enumerate(types or (None,)):
        conditions = list(common)
        if alert_type is not None:
            params[f"type_{i}"] = alert_type
            conditions.append(sql.SQL("alert_type = {}").format(sql.Placeholder(f"type_{i}")))
        where = sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("TRUE")
        branches.append(sql.SQL("SELECT {} FROM gold.alerts WHERE {}").format(columns, where)
                        + order)
    if len(branches) == 1:
        return branches[0], params
    union = sql.SQL(" UNION ALL ").join(sql.SQL("({})").format(b) for b in branches)
    return sql.SQL("SELECT * FROM ({}) AS page").format(union) + order, params


def _matchable(flt: AlertFilter) -> AlertFilter | None:
    """`flt` without the values no row can hold (NUL); None if a filter is left with none."""
    types = tuple(t for t in flt.types if storable(t))
    severities = tuple(s for s in flt.severities if storable(s))
    if not storable(flt.car) or (flt.types and not types) or (flt.severities and not severities):
        return None
    return replace(flt, types=types, severities=severities)


def _common_conditions(flt: AlertFilter, after: tuple[datetime, str] | None,
                       params: dict[str, Any]) -> list[sql.Composable]:
    conditions: list[sql.Composable] = []
    if flt.car is not None:
        params["car"] = flt.car
        conditions.append(sql.SQL("car_id = %(car)s"))
    if flt.severities:
        params["severities"] = list(flt.severities)
        conditions.append(sql.SQL("severity = ANY(%(severities)s)"))
    if flt.since is not None:
        params["since"] = flt.since
        conditions.append(sql.SQL("event_ts >= %(since)s"))
    if flt.until is not None:
        params["until"] = flt.until
        conditions.append(sql.SQL("event_ts < %(until)s"))
    if after is not None:
        params["after_ts"], params["after_id"] = after
        # the first term lets the planner bound the index range; the second is the exact cursor
        conditions.append(sql.SQL("event_ts <= %(after_ts)s AND "
                                  "(event_ts, alert_id) < (%(after_ts)s, %(after_id)s)"))
    return conditions
