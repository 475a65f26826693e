"""Overview: fleet tiles and per-minute series over the latest N minutes of data."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, data, transform, ui
from dashboard.config import AppConfig


def page() -> None:
    st.title("Overview")
    minutes = ui.window_picker("overview_window")
    ui.live_section(lambda config: render(config, minutes))


def render(config: AppConfig, minutes: int) -> None:
    fleet = data.fleet_minutes(config.dsn, minutes)
    dq, _ = data.dq_minutes(config.dsn, minutes)
    db_now, newest = data.freshness(config.dsn)
    age, _ = ui.data_age_s(config)
    complete_until = transform.settled_through(newest, config.settings.partial_grace_s)
    fleet = transform.mark_partial(fleet, "window_start", complete_until)
    dq = transform.mark_partial(dq, "minute", db_now)  # processing time: done once it is past
    dq["quarantine_rate"] = dq["quarantined_rows"] / dq["rows_in"].where(dq["rows_in"] > 0)
    _tiles(fleet, dq, age)
    if fleet.empty:
        st.info("No minute KPIs in gold yet: they appear about 30 s after the pipeline starts.")
        return
    _caption(fleet, minutes)
    left, right = st.columns(2)
    charts.show(left, fleet, charts.minute_line("window_start", "events", "Events per minute"))
    charts.show(right, fleet, charts.minute_line("window_start", "active_cars",
                                                 "Active cars per minute"))
    charts.show(left, transform.alerts_by_type(fleet, "window_start"),
                charts.by_type("window_start", "Alerts per minute by type"))
    charts.show(right, transform.alerts_by_severity(fleet, "window_start"),
                charts.by_severity("window_start", "Alerts per minute by severity"))
    if not dq.empty:
        charts.show(left, dq, charts.minute_line(
            "minute", "quarantine_rate", "Quarantine rate per minute (processing time)",
            fmt=".2%"))
    with st.expander("Numbers per minute"):
        st.dataframe(fleet[["window_start", "partial", "events", "active_cars", "alerts",
                            "avg_speed_kmph"]].iloc[::-1], hide_index=True, width="stretch",
                     key="overview_minutes")


def _tiles(fleet: pd.DataFrame, dq: pd.DataFrame, age: float | None) -> None:
    done = fleet[~fleet["partial"]]
    last = done.iloc[-1] if len(done) else None
    before = done.iloc[-2] if len(done) > 1 else None
    cols = st.columns(5)
    cols[0].metric("Events / min", ui.format_count(None if last is None else last["events"]),
                   delta=None if before is None else int(last["events"] - before["events"]),
                   help="The last complete minute, against the one before it.")
    cols[1].metric("Active cars", ui.format_count(None if last is None else last["active_cars"]),
                   help="Cars that sent an event in the last complete minute.")
    cols[2].metric("Alerts in window", ui.format_count(fleet["alerts"].sum() if len(fleet) else 0))
    cols[3].metric("Quarantine rate", ui.format_rate(
        transform.rate(dq["quarantined_rows"].sum(), dq["rows_in"].sum())),
        help="Quarantined / received rows of the batches processed in the window.")
    cols[4].metric("Newest event age", "-" if age is None else ui.format_age_short(age),
                   help="Age of the newest event in gold (device_latest), by the database clock.")


def _caption(fleet: pd.DataFrame, minutes: int) -> None:
    newest = fleet.iloc[-1]
    text = (f"Latest {ui.WINDOWS.get(minutes, f'{minutes} min')} of data, up to minute "
            f"{ui.format_time(newest['window_start'])}.")
    partial = fleet[fleet["partial"]]
    if len(partial):
        text += (f" Partial (still filling, drawn hollow): "
                 + ", ".join(f"{t:%H:%M} ({int(e):,} events so far)"
                             for t, e in zip(partial["window_start"], partial["events"])) + ".")
    st.caption(text)
