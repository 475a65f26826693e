"""Fleet map: every car's latest position, coloured by its worst recent alert."""
from __future__ import annotations

import pandas as pd
import pydeck as pdk
import streamlit as st

from dashboard import data, transform, ui
from dashboard.catalog import NONE_COLOUR, SEVERITIES, SEVERITY_COLOUR
from dashboard.config import AppConfig
from dashboard.views.alerts import car_link

SHOWN = ["car", "worst_alert", "event_ts", "speed_kmph", "engine_temp_c", "fuel_level",
         "latitude", "longitude"]


def page() -> None:
    st.title("Fleet map")
    ui.live_section(render)


def render(config: AppConfig) -> None:
    recent = config.settings.recent_alert_minutes
    latest, counts = data.fleet_latest(config.dsn, recent)
    plotted, invalid = transform.fleet_positions(latest, counts)
    cols = st.columns(4)
    cols[0].metric("Cars", f"{len(latest):,}")
    cols[1].metric("On the map", f"{len(plotted):,}")
    cols[2].metric("Invalid GPS", f"{len(invalid):,}")
    with_alerts = (plotted["worst_alert"].notna().sum() + invalid["worst_alert"].notna().sum())
    cols[3].metric(f"With alerts (last {recent} min)", f"{int(with_alerts):,}")
    st.caption(_legend(recent))
    if plotted.empty:
        st.info("No car has a valid GPS position yet.")
    else:
        st.pydeck_chart(_deck(plotted), height=480, key="fleet_map")
    st.subheader("Invalid GPS")
    if invalid.empty:
        st.caption("Every car's latest reading has a valid position.")
    else:
        st.caption("Latest reading without a usable position (missing, out of range or exactly "
                   "(0, 0)): listed here, never plotted.")
        st.dataframe(_table(invalid), hide_index=True, width="stretch", key="invalid_gps",
                     column_config=_link_config())
    st.subheader("Cars by worst recent alert")
    st.dataframe(_table(transform.worst_first(plotted)), hide_index=True, width="stretch",
                 key="cars_on_map", column_config=_link_config())


def _legend(recent: int) -> str:
    swatches = [f"{s}: rgb{SEVERITY_COLOUR[s]}" for s in SEVERITIES]
    return (f"Colour = worst alert of the car in the last {recent} minutes of data "
            f"({', '.join(swatches)}; none: rgb{NONE_COLOUR}).")


def _deck(cars: pd.DataFrame) -> pdk.Deck:
    points = cars.assign(time=cars["event_ts"].map(ui.format_time),
                         alert=cars["worst_alert"].fillna("none"))
    points = points[["car_id", "latitude", "longitude", "colour", "time", "alert",
                     "speed_kmph"]]
    layer = pdk.Layer("ScatterplotLayer", data=points, get_position="[longitude, latitude]",
                      get_fill_color="colour", get_radius=120, radius_min_pixels=5,
                      radius_max_pixels=14, pickable=True, stroked=True,
                      get_line_color=[40, 40, 40], line_width_min_pixels=1)
    view = pdk.ViewState(latitude=round(float(cars["latitude"].mean()), 2),
                         longitude=round(float(cars["longitude"].mean()), 2),
                         zoom=_zoom(cars))
    tooltip = {"text": "{car_id}\nworst alert: {alert}\n{speed_kmph} km/h\n{time}"}
    return pdk.Deck(layers=[layer], initial_view_state=view, tooltip=tooltip, map_style=None)


def _zoom(cars: pd.DataFrame) -> int:
    """A zoom level that fits the fleet's extent (rounded, so refreshes keep the view)."""
    extent = max(cars["latitude"].max() - cars["latitude"].min(),
                 cars["longitude"].max() - cars["longitude"].min(), 0.01)
    for zoom, span in ((12, 0.1), (10, 0.5), (8, 2.0), (6, 8.0), (4, 30.0)):
        if extent <= span:
            return zoom
    return 1


def _table(cars: pd.DataFrame) -> pd.DataFrame:
    table = cars.assign(car=cars["car_id"].map(car_link))
    return table[SHOWN]


def _link_config() -> dict:
    return {"car": st.column_config.LinkColumn("car", display_text=r"car\?car=(.*)")}
