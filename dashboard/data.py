"""Cached loaders: each runs its queries (dashboard.queries) with a short time-to-live.

The TTLs are shorter than the shortest refresh interval users pick, so a refresh shows new
data, while several browser sessions and reruns within a second share one query.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import streamlit as st

from dashboard import queries as q
from dashboard.db import Reader, read_frame, reader

LIVE_TTL_S = 1.5
SLOW_TTL_S = 30.0
BATCHES_SHOWN = 200
CAR_ALERTS_SHOWN = 500


def _cache(ttl: float):
    return st.cache_data(ttl=ttl, show_spinner=False, max_entries=256)


def window_start(newest: datetime, minutes: int) -> datetime:
    """Start of the latest `minutes` whole minutes ending with the minute of `newest`."""
    return pd.Timestamp(newest).floor("min").to_pydatetime() - timedelta(minutes=minutes - 1)


def _since(db: Reader, newest_query: str, minutes: int, **params: object) -> datetime | None:
    """Window start from the newest row that `newest_query` finds; None when the table is empty."""
    newest = db.frame(newest_query, params).iloc[0]["newest"]
    return None if pd.isna(newest) else window_start(newest, minutes)


@_cache(LIVE_TTL_S)
def freshness(dsn: str) -> tuple[datetime, datetime | None]:
    """(database now, newest event_ts in gold.device_latest or None)."""
    row = read_frame(dsn, q.FRESHNESS).iloc[0]
    newest = row["newest_event_ts"]
    return row["db_now"], (None if pd.isna(newest) else newest)


@_cache(LIVE_TTL_S)
def fleet_minutes(dsn: str, minutes: int) -> pd.DataFrame:
    """The fleet's minute KPIs over the latest `minutes` minutes."""
    with reader(dsn) as db:
        since = _since(db, q.NEWEST_FLEET_MINUTE, minutes)
        return db.frame(q.FLEET_MINUTES, {"since": since or datetime.max})


@_cache(LIVE_TTL_S)
def dq_minutes(dsn: str, minutes: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-minute batch totals, per-minute quarantine reason counts) of the latest minutes."""
    with reader(dsn) as db:
        params = {"since": _since(db, q.NEWEST_DQ_BATCH, minutes) or datetime.max}
        return db.frame(q.DQ_MINUTES, params), db.frame(q.DQ_REASONS, params)


@_cache(LIVE_TTL_S)
def dq_batches(dsn: str) -> pd.DataFrame:
    return read_frame(dsn, q.DQ_BATCHES, {"limit": BATCHES_SHOWN})


@_cache(LIVE_TTL_S)
def dq_results(dsn: str) -> pd.DataFrame:
    """Every result of the newest `fleetlake dq report` run, failures first (none: empty)."""
    return read_frame(dsn, q.DQ_LATEST_RUN)


@_cache(LIVE_TTL_S)
def fleet_latest(dsn: str, recent_minutes: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(every car's latest reading, each car's alert counts per type over the recent minutes)."""
    with reader(dsn) as db:
        since = _since(db, q.NEWEST_DEVICE_MINUTE, recent_minutes)
        return (db.frame(q.DEVICE_LATEST),
                db.frame(q.RECENT_CAR_ALERTS, {"since": since or datetime.max}))


@_cache(SLOW_TTL_S)
def car_ids(dsn: str) -> list[str]:
    return read_frame(dsn, q.DEVICE_LATEST)["car_id"].tolist()


@_cache(LIVE_TTL_S)
def car_detail(dsn: str, car: str, minutes: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(the car's latest reading, its minute KPIs over the window, its alerts in that window)."""
    with reader(dsn) as db:
        latest = db.frame(q.CAR_LATEST, {"car": car})
        since = _since(db, q.NEWEST_CAR_MINUTE, minutes, car=car) or datetime.max
        kpis = db.frame(q.CAR_MINUTES, {"car": car, "since": since})
        alerts = db.frame(q.CAR_ALERTS, {"car": car, "since": since, "limit": CAR_ALERTS_SHOWN})
    return latest, kpis, alerts


@_cache(LIVE_TTL_S)
def alerts_page(dsn: str, flt: q.AlertFilter, after: tuple[datetime, str] | None,
                limit: int) -> pd.DataFrame:
    """One page (+1 row, to tell whether an older page exists) of alerts, newest first."""
    built = q.alerts_page(flt, after, limit + 1)
    if built is None:
        return pd.DataFrame(columns=list(q.ALERT_COLUMNS))
    return read_frame(dsn, *built)


@_cache(LIVE_TTL_S)
def pipeline(dsn: str, minutes: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(newest batch per query, per-query per-minute batch stats, last sync per application)."""
    with reader(dsn) as db:
        latest, sync = db.frame(q.PIPELINE_LATEST), db.frame(q.SYNC_LATEST)
        sinces = [window_start(t, minutes) for t in latest["batch_started_at"]]
        per_minute = db.frame(q.PIPELINE_MINUTES, {"names": latest["query_name"].tolist(),
                                                   "sinces": sinces})
    return latest, per_minute, sync
