"""Synthetic gold tables for trying and benchmarking the dashboard (not pipeline output).

Generated inside PostgreSQL (generate_series), consistent across tables: the per-type alert
counts of the minute KPIs are those of gold.alerts, the fleet minutes sum the device minutes.
Car k is `car-<k>` (1-based, zero-padded); every 20th car from car 3 has its GPS at (0, 0) and
every 20th from car 7 has none.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg2

from dashboard.catalog import ALERT_SEVERITY, COUNT_COLUMNS, count_column

# Share of alerts per type, in per-mille (sums to 1000).
TYPE_SHARE = {"OVERSPEED": 300, "LOW_FUEL": 200, "GPS_INVALID": 200, "SPEED_ANOMALY": 100,
              "GPS_JUMP": 80, "ENGINE_OVERHEAT": 60, "SUSTAINED_OVERHEAT": 30, "FUEL_DROP": 30}
TABLES = ("alerts", "device_minute_kpis", "fleet_minute_kpis", "device_latest",
          "dq_batch_metrics", "pipeline_progress", "sync_ledger")


@dataclass(frozen=True)
class SeedSize:
    """How much to generate: cars x minutes device-minute rows, `alerts` alert rows."""

    cars: int = 100
    minutes: int = 1000
    alerts: int = 1_000_000


def _type_case() -> str:
    """SQL CASE mapping a bucket b in [0, 1000) to an alert type by TYPE_SHARE."""
    parts, upper = [], 0
    for alert_type, share in TYPE_SHARE.items():
        upper += share
        parts.append(f"WHEN b < {upper} THEN '{alert_type}'")
    return "CASE " + " ".join(parts) + " END"


def _severity_case() -> str:
    return "CASE alert_type " + " ".join(
        f"WHEN '{t}' THEN '{s}'" for t, s in ALERT_SEVERITY.items()) + " END"


def _statements(size: SeedSize) -> list[str]:
    c, m = size.cars, size.minutes
    car = "'car-' || lpad(({k})::text, 4, '0')"
    counts = ", ".join(f"count(*) FILTER (WHERE alert_type = '{t}') AS {count_column(t)}"
                       for t in ALERT_SEVERITY)
    zero = ", ".join(f"coalesce(a.{col}, 0)" for col in COUNT_COLUMNS)
    sums = ", ".join(f"sum({col})" for col in COUNT_COLUMNS)
    cols = ", ".join(COUNT_COLUMNS)
    return [
        f"TRUNCATE {', '.join('gold.' + t for t in TABLES)}",
        # alert i: car i % cars, minute (i / cars) % minutes before the end, type by a hash
        f"""INSERT INTO gold.alerts
        SELECT 'al-' || i, 'ev-' || i, {car.format(k=f'mod(i, {c}) + 1')},
               %(start)s + mod(i / {c}, {m}) * interval '1 minute'
                         + (mod(i * 7, 60)) * interval '1 second',
               alert_type, {_severity_case()}, alert_type || ' (synthetic)', 100 + mod(i, 50), 100
        FROM (SELECT i, {_type_case()} AS alert_type
              FROM (SELECT i, mod(i * 7919, 1000) AS b
                    FROM generate_series(0::bigint, %(alerts)s - 1) i) s
             ) t""",
        f"""INSERT INTO gold.device_minute_kpis (car_id, window_start, events, avg_speed_kmph,
               max_speed_kmph, max_engine_temp_c, min_fuel_level, alerts, speed_sum_kmph, {cols})
        SELECT d.car_id, d.window_start, 60, 60 + mod(d.k, 40), 90 + mod(d.k, 60),
               85 + mod(d.k, 30),
               5 + mod(d.k, 90), coalesce(a.alerts, 0), 60 * (60 + mod(d.k, 40)), {zero}
        FROM (SELECT {car.format(k='ci')} AS car_id, ci + mi AS k,
                     %(start)s + mi * interval '1 minute' AS window_start
              FROM generate_series(1, {c}) ci, generate_series(0, {m} - 1) mi) d
        LEFT JOIN (SELECT car_id, date_trunc('minute', event_ts) AS window_start,
                          count(*) AS alerts, {counts}
                   FROM gold.alerts GROUP BY 1, 2) a USING (car_id, window_start)""",
        f"""INSERT INTO gold.fleet_minute_kpis (window_start, active_cars, events,
               avg_speed_kmph, alerts, {cols})
        SELECT window_start, count(*), sum(events), avg(avg_speed_kmph), sum(alerts), {sums}
        FROM gold.device_minute_kpis GROUP BY window_start""",
        f"""INSERT INTO gold.device_latest
        SELECT {car.format(k='ci')}, 'ev-latest-' || ci, 'trip-' || ci,
               %(end)s - (mod(ci, 5)) * interval '1 second', 60 + mod(ci, 40), 5 + mod(ci, 90),
               85 + mod(ci, 30),
               CASE WHEN mod(ci, 20) = 3 THEN 0 WHEN mod(ci, 20) = 7 THEN NULL
                    ELSE 26.0 + (mod(ci, 17)) * 0.05 END,
               CASE WHEN mod(ci, 20) = 3 THEN 0 WHEN mod(ci, 20) = 7 THEN NULL
                    ELSE 49.8 + (mod(ci, 13)) * 0.06 END,
               mod(ci, 20) NOT IN (3, 7), %(end)s
        FROM generate_series(1, {c}) ci""",
        # one gold batch every 10 s: rows_in = valid + quarantined, duplicates within valid
        f"""INSERT INTO gold.dq_batch_metrics
        SELECT 'q-gold', b, %(start)s + b * interval '10 seconds', 600 + mod(b, 50),
               600 + mod(b, 50) - mod(b, 7), mod(b, 7), mod(b, 5),
               jsonb_strip_nulls(jsonb_build_object(
                   'MALFORMED_JSON', nullif(mod(b, 7) - (mod(b, 7)) / 2, 0),
                   'OUT_OF_RANGE:speed_kmph', nullif((mod(b, 7)) / 2, 0)))
        FROM generate_series(0, {m} * 6 - 1) b""",
        f"""INSERT INTO gold.pipeline_progress
        SELECT q.name, q.id, b, %(start)s + b * q.every, q.ms + (mod(b, 10)) * 20,
               400 + mod(b, 100),
               mod(b, 30), %(start)s + b * q.every + interval '1 second'
        FROM (VALUES ('fleetlake_hot', 'q-hot', interval '2 seconds', 150, 30),
                     ('fleetlake_gold', 'q-gold', interval '10 seconds', 2500, 6))
             AS q(name, id, every, ms, per_min)
        CROSS JOIN LATERAL generate_series(0, {m} * q.per_min - 1) b""",
        """INSERT INTO gold.sync_ledger (app_id, batch_id, applied_at, rows)
        SELECT query_id, batch_id, reported_at, '{}'::jsonb FROM gold.pipeline_progress""",
    ]


def seed_gold(dsn: str, size: SeedSize, end: datetime) -> None:
    """Replace the gold tables' rows with synthetic data whose newest minute starts at `end`."""
    start = end.replace(second=0, microsecond=0)
    params = {"alerts": size.alerts, "end": end,
              "start": start - timedelta(minutes=size.minutes - 1)}
    conn = psycopg2.connect(dsn, application_name="fleetlake-seed")
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SET LOCAL synchronous_commit = off")
            for statement in _statements(size):
                cur.execute(statement, params)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE " + ", ".join(f"gold.{t}" for t in TABLES))
    finally:
        conn.close()
