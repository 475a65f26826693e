"""Read-only SQL of the dashboard: every query parameterised, every one served by an index."""
from __future__ import annotations

from typing import Any

import pandas as pd
import psycopg2

RECENT_ALERTS = """
SELECT event_ts, car_id, alert_type, severity, message
FROM gold.alerts
WHERE (%(alert_type)s IS NULL OR alert_type = %(alert_type)s)
ORDER BY event_ts DESC
LIMIT %(limit)s
"""

FLEET_MINUTES = """
SELECT window_start, active_cars, events, avg_speed_kmph, alerts
FROM gold.fleet_minute_kpis
ORDER BY window_start DESC
LIMIT %(minutes)s
"""

DEVICE_LATEST = """
SELECT car_id, event_ts, speed_kmph, fuel_level, engine_temp_c, latitude, longitude, gps_valid
FROM gold.device_latest
ORDER BY car_id
"""

ALERT_TYPES_LAST_HOUR = """
SELECT alert_type, count(*) AS alerts
FROM gold.alerts
WHERE event_ts >= (SELECT max(event_ts) FROM gold.alerts) - interval '1 hour'
GROUP BY alert_type
ORDER BY alerts DESC
"""

DQ_RECENT = """
SELECT processed_at, rows_in, valid_rows, quarantined_rows, duplicate_rows
FROM gold.dq_batch_metrics
ORDER BY processed_at DESC
LIMIT %(limit)s
"""


def fetch(dsn: str, query: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    """Run one read-only query and return its rows as a DataFrame."""
    with psycopg2.connect(dsn, connect_timeout=5) as conn:
        conn.set_session(readonly=True)
        with conn.cursor() as cur:
            cur.execute(query, params or {})
            columns = [d.name for d in cur.description]
            return pd.DataFrame(cur.fetchall(), columns=columns)
