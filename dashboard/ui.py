"""Page building blocks: the live (auto-refreshing) section, banners, pickers, formatting."""
from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.config import CONFIG_KEY, AppConfig, parse_arguments
from dashboard.db import DataUnavailable

WINDOWS = {15: "15 min", 60: "1 h", 360: "6 h", 1440: "24 h"}
REFRESH_CHOICES = (2.0, 5.0, 10.0, 30.0, 60.0)
AUTO_REFRESH_KEY, INTERVAL_KEY, DB_DOWN_KEY = "auto_refresh", "refresh_interval_s", "db_down"


def current_config() -> AppConfig:
    """This session's AppConfig (parsed from the process arguments on first use)."""
    if CONFIG_KEY not in st.session_state:
        config = parse_arguments(sys.argv[1:])
        if config is None:
            st.error("The dashboard was started without a database: run it with "
                     "`fleetlake dashboard`.")
            st.stop()
        st.session_state[CONFIG_KEY] = config
    return st.session_state[CONFIG_KEY]


def refresh_controls(config: AppConfig) -> None:
    """Sidebar: auto-refresh on/off and its interval (they drive every page's live section)."""
    choices = sorted({*REFRESH_CHOICES, float(config.settings.refresh_s)})
    st.sidebar.toggle("Auto-refresh", value=True, key=AUTO_REFRESH_KEY,
                      help="Pause to read a page without it changing under you.")
    st.sidebar.select_slider("Refresh every (s)", options=choices,
                             value=float(config.settings.refresh_s), key=INTERVAL_KEY,
                             format_func=lambda s: f"{s:g}")


def refresh_every(interval_s: float, paused: bool, database_down: bool) -> float | None:
    """Seconds between reruns of the live parts; None: no automatic rerun.

    While PostgreSQL is down a page keeps polling, paused or not, so it recovers by itself.
    """
    return None if paused and not database_down else interval_s


def _run_every() -> float | None:
    return refresh_every(
        float(st.session_state.get(INTERVAL_KEY) or current_config().settings.refresh_s),
        paused=not st.session_state.get(AUTO_REFRESH_KEY, True),
        database_down=st.session_state.get(DB_DOWN_KEY, False))


def live_section(render: Callable[[AppConfig], None], *, banner: bool = True) -> None:
    """Run `render` in a fragment that reruns on the refresh interval; failures become a banner."""
    config = current_config()

    @st.fragment(run_every=_run_every())
    def section() -> None:
        try:
            if banner:
                freshness_banner(config)
            render(config)
        except DataUnavailable as exc:
            st.error(str(exc), icon=":material/cloud_off:")
            _note_database(down=True)
        else:
            _note_database(down=False)

    section()


def _note_database(down: bool) -> None:
    was_down = st.session_state.get(DB_DOWN_KEY, False)
    st.session_state[DB_DOWN_KEY] = down
    if down != was_down and not st.session_state.get(AUTO_REFRESH_KEY, True):
        st.rerun()  # paused: start (or stop again) the polling that brings the page back


def data_age_s(config: AppConfig) -> tuple[float | None, datetime | None]:
    """(seconds since the newest event in gold, on the database clock; its time), None if none."""
    now, newest = data.freshness(config.dsn)
    if newest is None:
        return None, None
    return max(0.0, (now - newest).total_seconds()), newest


def freshness_banner(config: AppConfig) -> None:
    """A warning when the newest event in gold is older than the stale threshold, or absent."""
    age, newest = data_age_s(config)
    limit = config.settings.stale_after_s
    if age is None:
        st.warning("No events in gold yet: start the pipeline (`fleetlake pipeline run`) and "
                   "traffic (`fleetlake produce`).", icon=":material/hourglass_empty:")
    elif age > limit:
        st.warning(f"Stale data: the newest event in gold is {format_age(age)} old "
                   f"({format_time(newest)}; the limit is {format_age(limit)}). Is the pipeline "
                   "running? Charts show the latest data there is.", icon=":material/schedule:")


def window_picker(key: str, default: int = 60) -> int:
    """Minutes of data to show (the latest N minutes there are)."""
    return st.segmented_control("Window", options=list(WINDOWS), format_func=WINDOWS.get,
                                default=default, key=key) or default


def format_age(seconds: float) -> str:
    """`42 s`, `5 min 3 s`, `3 h 12 min`, `2 d 4 h`."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def format_age_short(seconds: float) -> str:
    """A tile-sized age: `42 s`, `14 min`, `5 h`, `3 d`."""
    s = int(round(seconds))
    if s < 120:
        return f"{s} s"
    if s < 120 * 60:
        return f"{s // 60} min"
    if s < 48 * 3600:
        return f"{s // 3600} h"
    return f"{s // 86400} d"


def format_time(value: datetime | pd.Timestamp | None) -> str:
    """`2026-03-01 12:00:40 UTC` (or `-`)."""
    if value is None or pd.isna(value):
        return "-"
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S UTC")


def format_count(value: float | int | None) -> str:
    return "-" if value is None or pd.isna(value) else f"{int(value):,}"


def format_rate(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"
