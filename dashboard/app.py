"""fleetlake live dashboard (Streamlit): reads PostgreSQL `gold.*` through a read-only role."""
from __future__ import annotations

import argparse
import sys

import streamlit as st

from dashboard.queries import (ALERT_TYPES_LAST_HOUR, DEVICE_LATEST, DQ_RECENT, FLEET_MINUTES,
                               RECENT_ALERTS, fetch)


def _dsn() -> str:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--refresh", type=float, default=2.0)
    args, _ = parser.parse_known_args(sys.argv[1:])
    return args.dsn, args.refresh


DSN, REFRESH_S = _dsn()
st.set_page_config(page_title="fleetlake", layout="wide")
st.title("fleetlake: fleet telemetry, live")


@st.fragment(run_every=REFRESH_S)
def live() -> None:
    try:
        fleet = fetch(DSN, FLEET_MINUTES, {"minutes": 60})
        latest = fetch(DSN, DEVICE_LATEST)
        by_type = fetch(DSN, ALERT_TYPES_LAST_HOUR)
        alerts = fetch(DSN, RECENT_ALERTS, {"alert_type": None, "limit": 50})
        dq = fetch(DSN, DQ_RECENT, {"limit": 20})
    except Exception as exc:  # noqa: BLE001 - show the problem on the page, keep refreshing
        st.error(f"PostgreSQL is not reachable ({str(exc).strip().splitlines()[0]}): "
                 "start it with `fleetlake services up`")
        return
    now = fleet.iloc[0] if len(fleet) else None
    cols = st.columns(4)
    cols[0].metric("Cars reporting", len(latest))
    cols[1].metric("Events (last minute)", int(now["events"]) if now is not None else 0)
    cols[2].metric("Avg speed km/h", f"{now['avg_speed_kmph']:.1f}" if now is not None else "-")
    cols[3].metric("Alerts (last minute)", int(now["alerts"]) if now is not None else 0)
    left, right = st.columns(2)
    with left:
        st.subheader("Events per minute")
        if len(fleet):
            st.line_chart(fleet.set_index("window_start")[["events", "alerts"]])
        st.subheader("Alerts by type (last hour of data)")
        st.bar_chart(by_type.set_index("alert_type") if len(by_type) else by_type)
    with right:
        st.subheader("Where the cars are")
        located = latest[latest["gps_valid"] == True]  # noqa: E712 - pandas mask
        if len(located):
            st.map(located.rename(columns={"latitude": "lat", "longitude": "lon"})[["lat", "lon"]])
    st.subheader("Latest alerts")
    st.dataframe(alerts, hide_index=True, width="stretch")
    st.subheader("Data quality per batch")
    st.dataframe(dq, hide_index=True, width="stretch")


live()
