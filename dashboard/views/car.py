"""Car detail: one car's latest reading, its speed / engine temperature / fuel per minute with its
alerts marked, its alerts, and its driving sessions (derived from the minute KPIs)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, data, transform, ui
from dashboard.config import AppConfig
from dashboard.db import DataUnavailable
from dashboard.queries import storable

SESSION_GAP_MINUTES = 5  # no event for this long ends a driving session
NOT_IN_GOLD = "This car is not in gold (no latest reading, no minute KPIs)."
CHOOSE = "Choose a car, or open one from the Alerts or Fleet map page."


def page() -> None:
    st.title("Car detail")
    config = ui.current_config()
    known = _known_cars(config)
    if known is None:  # PostgreSQL failed: the banner, until the list loads and the page reruns
        ui.live_section(_rerun_when_cars_load, banner=False)
        return
    top = st.columns([2, 3])
    # bound to ?car=...; a car that is not in gold is still looked up (and found to be absent)
    car = top[0].selectbox("Car", known, index=None, key="car", bind="query-params",
                           accept_new_options=True, placeholder="choose a car")
    with top[1]:
        minutes = ui.window_picker("car_window")
    if not car:  # the list may come from the cache: the live section still checks PostgreSQL
        ui.live_section(lambda _: st.info(CHOOSE))
        return
    ui.live_section(lambda cfg: render(cfg, str(car), minutes), banner=False)


def _known_cars(config: AppConfig) -> list[str] | None:
    """The cars in gold; None when PostgreSQL fails."""
    try:
        return data.car_ids(config.dsn)
    except DataUnavailable:
        return None


def _rerun_when_cars_load(config: AppConfig) -> None:
    data.car_ids(config.dsn)  # raises DataUnavailable (the banner) while PostgreSQL fails
    st.rerun()


def render(config: AppConfig, car: str, minutes: int) -> None:
    if not storable(car):
        st.warning(NOT_IN_GOLD)
        return
    latest, kpis, alerts = data.car_detail(config.dsn, car, minutes)
    if latest.empty and kpis.empty:
        st.warning(NOT_IN_GOLD)
        return
    if not latest.empty:
        _latest_tiles(latest.iloc[0], int(kpis["alerts"].sum()) if len(kpis) else 0)
    if kpis.empty:
        st.info("No minute KPIs for this car yet.")
        return
    st.caption(f"Latest {ui.WINDOWS.get(minutes, f'{minutes} min')} of this car's data: "
               f"{len(kpis)} minute(s) with events, {len(alerts)} alert(s) marked.")
    left, right = st.columns(2)
    for container, y, title in ((left, "avg_speed_kmph", "Average speed per minute (km/h)"),
                                (right, "max_engine_temp_c",
                                 "Max engine temperature per minute (°C)"),
                                (left, "min_fuel_level", "Min fuel level per minute (%)")):
        charts.show(container, charts.car_series(kpis, alerts, y),
                    charts.series_with_alerts(y, title))
    st.subheader("Alerts")
    st.dataframe(alerts.rename(columns={"event_ts": "time (UTC)"}), hide_index=True,
                 width="stretch", key="car_alerts")
    _sessions(latest, kpis)


def _latest_tiles(row: pd.Series, alerts: int) -> None:
    """The latest reading; `alerts`: the car's alerts in the window (from its minute KPIs)."""
    valid = bool(transform.has_valid_position(row.to_frame().T).iloc[0])
    cols = st.columns(5)
    cols[0].metric("Speed km/h", f"{row['speed_kmph']:.1f}")
    cols[1].metric("Engine °C", f"{row['engine_temp_c']:.1f}")
    cols[2].metric("Fuel %", f"{row['fuel_level']:.1f}")
    cols[3].metric("GPS", "valid" if valid else "invalid")
    cols[4].metric("Alerts in window", f"{alerts:,}")
    where = (f"at {row['latitude']:.5f}, {row['longitude']:.5f}" if valid
             else "without a valid position")
    st.caption(f"Latest reading {ui.format_time(row['event_ts'])} {where}, "
               f"trip {row['trip_id'] or '-'}.")


def _sessions(latest: pd.DataFrame, kpis: pd.DataFrame) -> None:
    st.subheader("Driving sessions")
    trip = None if latest.empty else latest.iloc[0]["trip_id"]
    st.caption(f"Derived from the minute KPIs: a gap of {SESSION_GAP_MINUTES}+ minutes without "
               f"events ends a session. Gold keeps only the current trip id ({trip or '-'}); "
               "trip history needs a gold trips table.")
    st.dataframe(transform.driving_sessions(kpis, SESSION_GAP_MINUTES), hide_index=True,
                 width="stretch", key="car_sessions")
