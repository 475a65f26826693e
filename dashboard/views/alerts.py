"""Alerts: filtered by type, severity, car and time, newest first, one keyset page at a time."""
from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import quote

import pandas as pd
import streamlit as st

from dashboard import data, ui
from dashboard.catalog import ALERT_TYPES, SEVERITIES
from dashboard.config import AppConfig
from dashboard.queries import AlertFilter

CURSOR_KEY, FILTER_SIG_KEY = "alerts_cursor", "alerts_filter_signature"
PAGE_SIZES = (25, 50, 100, 200)


def page() -> None:
    st.title("Alerts")
    config = ui.current_config()
    flt, limit = _filters(config)
    signature = (flt, limit)
    if st.session_state.get(FILTER_SIG_KEY) != signature:  # new filters: back to the newest
        st.session_state[FILTER_SIG_KEY] = signature
        st.session_state[CURSOR_KEY] = []
    ui.live_section(lambda cfg: render(cfg, flt, limit), banner=False)


def _filters(config: AppConfig) -> tuple[AlertFilter, int]:
    """The filter widgets; each is bound to a URL query parameter of the same name."""
    top = st.columns([3, 2, 2])
    # accept_new_options: a value from the URL that is no known type is still a value to match
    types = top[0].multiselect("Type", ALERT_TYPES, key="type", bind="query-params",
                               accept_new_options=True, placeholder="any type")
    severities = top[1].multiselect("Severity", SEVERITIES, key="severity",
                                    bind="query-params", accept_new_options=True,
                                    placeholder="any severity")
    car = top[2].text_input("Car", key="car", bind="query-params", placeholder="any car (exact id)")
    bottom = st.columns([2, 2, 1])
    since = bottom[0].datetime_input("From (UTC)", value=None, key="since", bind="query-params",
                                     format="YYYY-MM-DD")
    until = bottom[1].datetime_input("Until (UTC, exclusive)", value=None, key="until",
                                     bind="query-params", format="YYYY-MM-DD")
    default_size = config.settings.page_size
    sizes = sorted({*PAGE_SIZES, default_size})
    limit = bottom[2].selectbox("Rows per page", sizes, index=sizes.index(default_size),
                                key="alerts_page_size")
    flt = AlertFilter(types=tuple(types), severities=tuple(severities),
                      car=car.strip() or None, since=_utc(since), until=_utc(until))
    return flt, int(limit)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def render(config: AppConfig, flt: AlertFilter, limit: int) -> None:
    cursor: list[tuple[datetime, str]] = st.session_state.get(CURSOR_KEY, [])
    after = cursor[-1] if cursor else None
    rows = data.alerts_page(config.dsn, flt, after, limit)
    has_older = len(rows) > limit
    rows = rows.iloc[:limit]
    st.caption(f"Page {len(cursor) + 1} · {len(rows)} alert(s) · newest first"
               + ("" if has_older else " · no older alerts match"))
    if rows.empty:
        st.info("No alert matches these filters.")
    else:
        st.dataframe(_table(rows), hide_index=True, width="stretch", key="alerts_table",
                     column_config={"car": st.column_config.LinkColumn(
                         "car", display_text=r"car\?car=(.*)", help="Open the car's page")})
    nav = st.columns([1, 1, 1, 5])
    nav[0].button("Newest", on_click=_set_cursor, args=([],), disabled=not cursor,
                  key="alerts_newest")
    nav[1].button("Newer", on_click=_set_cursor, args=(cursor[:-1],), disabled=not cursor,
                  key="alerts_newer")
    last = None if rows.empty else (rows["event_ts"].iloc[-1], rows["alert_id"].iloc[-1])
    nav[2].button("Older", on_click=_set_cursor, args=([*cursor, last],),
                  disabled=not has_older, key="alerts_older")


def _set_cursor(stack: list[tuple[datetime, str]]) -> None:
    st.session_state[CURSOR_KEY] = stack


def car_link(car_id: str) -> str:
    """Relative URL of a car's page (pages share one path level)."""
    return f"car?car={quote(str(car_id), safe='')}"


def _table(rows: pd.DataFrame) -> pd.DataFrame:
    table = rows.copy()
    table.insert(1, "car", table.pop("car_id").map(car_link))
    return table.rename(columns={"event_ts": "time (UTC)"})
