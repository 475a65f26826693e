"""Known gold rows for the dashboard tests, and the helpers that load them into PostgreSQL.

Times are offsets from `base`, the start of the newest KPI minute (12:00 in the comments); the
newest event in gold is at base + 40 s. Minutes 11:55 ... 12:00 are m0 ... m5.

  car    KPI minutes                         alerts (type x count at minute)          GPS
  car-1  m0..m5, 150 events (m5: 40)         ENGINE_OVERHEAT m1, m4                   valid
  car-2  m0..m5, 150 events (m5: 40)         OVERSPEED m0, m2 x2, m4, m5; 60 older    valid
  car-3  m0..m5, 150 events (m5: 45)         GPS_INVALID m0..m4                       (0, 0)
  car-4  m0..m4, 150 160 170 180 190         LOW_FUEL m0 x2, m3; SPEED_ANOMALY m4     missing
  car-5  no KPI minutes                      none                                     valid

Fleet minutes m0..m5: events 600 610 620 630 640 125, active cars 4 4 4 4 4 3, alerts
4 2 3 2 4 1 (16). The 60 older OVERSPEED alerts of car-2 (one a minute from 09:55, the 9th and
10th newest at the same instant) are outside every KPI window: 76 alerts in all.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import psycopg2
from psycopg2 import sql
from psycopg2.extras import Json, execute_values

from dashboard.catalog import ALERT_SEVERITY, COUNT_COLUMNS, count_column

MINUTES = 6
EVENTS = {"car-1": [150] * 5 + [40], "car-2": [150] * 5 + [40], "car-3": [150] * 5 + [45],
          "car-4": [150, 160, 170, 180, 190]}
# (car, minute, alert_type, second within the minute)
RECENT_ALERTS = [
    ("car-1", 1, "ENGINE_OVERHEAT", 10), ("car-1", 4, "ENGINE_OVERHEAT", 20),
    ("car-2", 0, "OVERSPEED", 30), ("car-2", 2, "OVERSPEED", 5), ("car-2", 2, "OVERSPEED", 45),
    ("car-2", 4, "OVERSPEED", 50), ("car-2", 5, "OVERSPEED", 15),
    ("car-3", 0, "GPS_INVALID", 30), ("car-3", 1, "GPS_INVALID", 30),
    ("car-3", 2, "GPS_INVALID", 30), ("car-3", 3, "GPS_INVALID", 30),
    ("car-3", 4, "GPS_INVALID", 30),
    ("car-4", 0, "LOW_FUEL", 10), ("car-4", 0, "LOW_FUEL", 40), ("car-4", 3, "LOW_FUEL", 25),
    ("car-4", 4, "SPEED_ANOMALY", 35),
]
OLDER_ALERTS = 60
# the 9th and 10th newest older alerts share one instant: page 1 (25 rows) ends between them
TIED_OLDER = (8, 9)


def _alert(alert_id: str, car: str, ts: datetime, alert_type: str) -> dict[str, Any]:
    return {"alert_id": alert_id, "event_id": f"ev-{alert_id}", "car_id": car, "event_ts": ts,
            "alert_type": alert_type, "severity": ALERT_SEVERITY[alert_type],
            "message": f"{alert_type} on {car}", "observed_value": 150.0, "threshold": 140.0}


def alerts(base: datetime) -> list[dict[str, Any]]:
    start = base - timedelta(minutes=MINUTES - 1)
    rows = [_alert(f"al-r{i:02d}", car, start + timedelta(minutes=m, seconds=s), kind)
            for i, (car, m, kind, s) in enumerate(RECENT_ALERTS)]
    older_start = start - timedelta(hours=2)
    for k in range(OLDER_ALERTS):
        newest_rank = OLDER_ALERTS - 1 - k
        minute = k if newest_rank != TIED_OLDER[1] else k + 1
        rows.append(_alert(f"al-x{k:02d}", "car-2", older_start + timedelta(minutes=minute),
                           "OVERSPEED"))
    return rows


def device_minutes(base: datetime) -> list[dict[str, Any]]:
    start = base - timedelta(minutes=MINUTES - 1)
    counts = Counter((car, m, kind) for car, m, kind, _ in RECENT_ALERTS)
    rows = []
    for car, per_minute in EVENTS.items():
        for m, events in enumerate(per_minute):
            by_type = {count_column(t): counts[(car, m, t)] for t in ALERT_SEVERITY}
            rows.append({"car_id": car, "window_start": start + timedelta(minutes=m),
                         "events": events, "avg_speed_kmph": 80.0 + m,
                         "max_speed_kmph": 100.0 + m, "max_engine_temp_c": 95.0 + 3 * m,
                         "min_fuel_level": 50.0 - m, "alerts": sum(by_type.values()),
                         "speed_sum_kmph": (80 + m) * events, **by_type})
    return rows


def fleet_minutes(device: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for window in sorted({d["window_start"] for d in device}):
        cars = [d for d in device if d["window_start"] == window]
        events = sum(d["events"] for d in cars)
        rows.append({"window_start": window, "active_cars": len(cars), "events": events,
                     "avg_speed_kmph": sum(d["speed_sum_kmph"] for d in cars) / events,
                     "alerts": sum(d["alerts"] for d in cars),
                     **{c: sum(d[c] for d in cars) for c in COUNT_COLUMNS}})
    return rows


def device_latest(base: datetime) -> list[dict[str, Any]]:
    def car(car_id, seconds, lat, lon, valid):
        return {"car_id": car_id, "event_id": f"ev-latest-{car_id}", "trip_id": f"trip-{car_id}",
                "event_ts": base + timedelta(seconds=seconds), "speed_kmph": 88.5,
                "fuel_level": 42.0, "engine_temp_c": 97.5, "latitude": lat, "longitude": lon,
                "gps_valid": valid, "kafka_timestamp": base + timedelta(seconds=seconds)}
    return [car("car-1", 40, 26.30, 50.10, True), car("car-2", 20, 26.40, 50.20, True),
            car("car-3", 30, 0.0, 0.0, False), car("car-4", 10, None, None, False),
            car("car-5", -600, 26.50, 50.30, True)]


def dq_batches(base: datetime) -> list[dict[str, Any]]:
    def batch(batch_id, seconds, rows_in, valid, quarantined, duplicates, reasons):
        return {"query_id": "gold-q", "batch_id": batch_id,
                "processed_at": base + timedelta(seconds=seconds), "rows_in": rows_in,
                "valid_rows": valid, "quarantined_rows": quarantined,
                "duplicate_rows": duplicates, "quarantine_reasons": Json(reasons)}
    return [batch(0, -110, 650, 640, 10, 3, {"MALFORMED_JSON": 6, "MISSING_FIELD:speed_kmph": 4}),
            batch(1, -50, 640, 640, 0, 0, {}),
            batch(2, -20, 300, 290, 5, 1, {"BAD_TIMESTAMP": 5}),  # 290 + 5 != 300: a breach
            batch(3, 10, 100, 98, 2, 0, {"MALFORMED_JSON": 2})]


def progress(base: datetime) -> list[dict[str, Any]]:
    def row(name, query_id, batch_id, seconds, ms, rows, lag):
        return {"query_name": name, "query_id": query_id, "batch_id": batch_id,
                "batch_started_at": base + timedelta(seconds=seconds), "duration_ms": ms,
                "input_rows": rows, "source_lag": lag,
                "reported_at": base + timedelta(seconds=seconds + 1)}
    return [row("fleetlake_hot", "hot-q", 0, 30, 150, 40, 3),
            row("fleetlake_hot", "hot-q", 1, 32, 160, 42, 2),
            row("fleetlake_hot", "hot-q", 2, 34, 170, 44, 1),
            row("fleetlake_gold", "gold-q", 0, 0, 2500, 500, 100),
            row("fleetlake_gold", "gold-q", 1, 20, 2600, 510, 7)]


def ledger(base: datetime) -> list[dict[str, Any]]:
    return ([{"app_id": "hot-q", "batch_id": b, "applied_at": base + timedelta(seconds=31 + 2 * b),
              "rows": Json({"alerts": b})} for b in range(3)]
            + [{"app_id": "gold-q", "batch_id": b,
                "applied_at": base + timedelta(seconds=5 + 20 * b), "rows": Json({})}
               for b in range(2)])


def gold_rows(base: datetime) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows for a newest KPI minute starting at `base`."""
    device = device_minutes(base)
    return {"alerts": alerts(base), "device_minute_kpis": device,
            "fleet_minute_kpis": fleet_minutes(device), "device_latest": device_latest(base),
            "dq_batch_metrics": dq_batches(base), "pipeline_progress": progress(base),
            "sync_ledger": ledger(base)}


def insert_rows(dsn: str, tables: dict[str, list[dict[str, Any]]]) -> None:
    """INSERT the rows into gold.<table> (one transaction)."""
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            for table, rows in tables.items():
                columns = list(rows[0])
                statement = sql.SQL("INSERT INTO {} ({}) VALUES %s").format(
                    sql.Identifier("gold", table), sql.SQL(", ").join(map(sql.Identifier, columns)))
                execute_values(cur, statement, [tuple(r[c] for c in columns) for r in rows])
    finally:
        conn.close()


def table_digest(dsn: str) -> dict[str, tuple[int, str]]:
    """(row count, md5 of all rows in a fixed order) per gold table: detects any change."""
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'gold' ORDER BY 1")
            digest = {}
            for (table,) in cur.fetchall():
                cur.execute(sql.SQL("SELECT count(*), md5(coalesce(string_agg(t::text, '|' "
                                    "ORDER BY t::text), '')) FROM {} AS t").format(
                                        sql.Identifier("gold", table)))
                digest[table] = cur.fetchone()
            return digest
    finally:
        conn.close()
