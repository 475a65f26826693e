"""Vega-Lite specs of the per-minute charts; a partial minute is drawn apart (hollow, labelled).

Plain spec dicts for `st.vega_lite_chart(frame, spec)`: the frame travels as Arrow and no
schema validation runs on each refresh (Altair's validation cost ~40 ms per chart).
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from dashboard.catalog import ALERT_TYPES, SEVERITIES, SEVERITY_COLOUR

HEIGHT = 220
Spec = dict[str, Any]


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#%02x%02x%02x" % rgb


SEVERITY_SCALE = {"domain": list(SEVERITIES),
                  "range": [_hex(SEVERITY_COLOUR[s]) for s in SEVERITIES]}
TYPE_SCALE = {"domain": list(ALERT_TYPES), "scheme": "tableau10"}
_LEGEND = {"orient": "bottom", "title": None, "columns": 4}


def _x(field: str) -> Spec:
    return {"field": field, "type": "temporal", "title": None, "scale": {"type": "utc"},
            "axis": {"format": "%H:%M", "tickMinStep": 60_000, "labelOverlap": True}}


def _minute_tip(field: str) -> Spec:
    return {"field": field, "type": "temporal", "title": "minute (UTC)",
            "format": "%Y-%m-%d %H:%M", "scale": {"type": "utc"}}


def show(container: Any, frame: pd.DataFrame, spec: Spec) -> None:
    """Draw `spec` over `frame` in a Streamlit container, full width."""
    container.vega_lite_chart(frame, spec, width="stretch")


def minute_line(x: str, y: str, title: str, fmt: str = ",.0f") -> Spec:
    """Complete minutes as a line; the partial minute as a hollow point marked 'partial'."""
    partial = [{"filter": "datum.partial"}]
    return {
        "title": title, "height": HEIGHT,
        "encoding": {"x": _x(x), "y": {"field": y, "type": "quantitative", "title": None},
                     "tooltip": [_minute_tip(x), {"field": y, "type": "quantitative",
                                                  "format": fmt}, {"field": "partial"}]},
        "layer": [
            {"transform": [{"filter": "!datum.partial"}], "mark": {"type": "line", "point": True}},
            {"transform": partial, "mark": {"type": "point", "filled": False, "size": 90,
                                            "color": "gray"}},
            {"transform": partial, "mark": {"type": "text", "dy": -12, "color": "gray",
                                            "text": "partial"}},
        ]}


def minute_bars(x: str, colour: str, title: str, scale: Spec | None = None,
                value: str = "alerts") -> Spec:
    """Stacked bars per minute by `colour`; bars of a partial minute are faded."""
    colour_encoding = {"field": colour, "type": "nominal", "title": None, "legend": _LEGEND}
    if scale:
        colour_encoding["scale"] = scale
    return {
        "title": title, "height": HEIGHT, "mark": "bar",
        "encoding": {
            "x": _x(x), "y": {"aggregate": "sum", "field": value, "type": "quantitative",
                              "title": None},
            "color": colour_encoding,
            "opacity": {"condition": {"test": "datum.partial", "value": 0.35}, "value": 1.0},
            "tooltip": [_minute_tip(x), {"field": colour, "type": "nominal"},
                        {"field": value, "type": "quantitative", "aggregate": "sum"}]}}


def by_type(x: str, title: str) -> Spec:
    return minute_bars(x, "alert_type", title, TYPE_SCALE)


def by_severity(x: str, title: str) -> Spec:
    return minute_bars(x, "severity", title, SEVERITY_SCALE)


def per_query(y: str, title: str) -> Spec:
    """One line per streaming query over the minutes of batch start."""
    return {
        "title": title, "height": HEIGHT, "mark": {"type": "line", "point": True},
        "encoding": {
            "x": _x("minute"), "y": {"field": y, "type": "quantitative", "title": None},
            "color": {"field": "query_name", "type": "nominal", "title": None, "legend": _LEGEND},
            "tooltip": [_minute_tip("minute"), {"field": "query_name"},
                        {"field": y, "type": "quantitative", "format": ",.0f"},
                        {"field": "batches", "type": "quantitative"}]}}


def car_series(kpis: pd.DataFrame, alerts: pd.DataFrame, y: str) -> pd.DataFrame:
    """One frame for `series_with_alerts`: the car's minutes (kind kpi) and alerts (kind alert)."""
    return pd.concat([
        kpis[["window_start", y]].assign(kind="kpi"),
        alerts[["event_ts", "alert_type", "severity", "message"]].assign(kind="alert"),
    ], ignore_index=True)


def series_with_alerts(y: str, title: str) -> Spec:
    """A car's per-minute series, with its alerts as vertical rules coloured by severity."""
    return {
        "title": title, "height": HEIGHT,
        "layer": [
            {"transform": [{"filter": "datum.kind == 'alert'"}],
             "mark": {"type": "rule", "opacity": 0.6},
             "encoding": {
                 "x": _x("event_ts"),
                 "color": {"field": "severity", "type": "nominal", "title": "alert",
                           "scale": SEVERITY_SCALE, "legend": {"orient": "bottom"}},
                 "tooltip": [{"field": "event_ts", "type": "temporal", "title": "time (UTC)",
                              "format": "%H:%M:%S", "scale": {"type": "utc"}},
                             {"field": "alert_type"}, {"field": "severity"},
                             {"field": "message"}]}},
            {"transform": [{"filter": "datum.kind == 'kpi'"}],
             "mark": {"type": "line", "point": True},
             "encoding": {
                 "x": _x("window_start"),
                 "y": {"field": y, "type": "quantitative", "title": None,
                       "scale": {"zero": False}},
                 "tooltip": [_minute_tip("window_start"),
                             {"field": y, "type": "quantitative", "format": ".1f"}]}},
        ]}
