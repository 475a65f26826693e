"""Pipeline health: per streaming query its last batch, source lag and batch durations, and the
last PostgreSQL sync of each application."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, data, ui
from dashboard.config import AppConfig


def page() -> None:
    st.title("Pipeline health")
    minutes = ui.window_picker("pipeline_window")
    ui.live_section(lambda config: render(config, minutes))


def render(config: AppConfig, minutes: int) -> None:
    latest, per_minute, sync = data.pipeline(config.dsn, minutes)
    db_now, _ = data.freshness(config.dsn)
    if latest.empty:
        st.info("No streaming progress in gold.pipeline_progress yet: is the pipeline running "
                "(`fleetlake pipeline run`)?")
    for _, query in latest.iterrows():
        _query_tiles(query, db_now, config.settings.stale_after_s)
    if not per_minute.empty:
        per_minute = per_minute.assign(partial=(per_minute["minute"] + pd.Timedelta(minutes=1))
                                       > pd.Timestamp(db_now))
        left, right = st.columns(2)
        charts.show(left, per_minute, charts.per_query("max_duration_ms",
                                                       "Longest batch per minute (ms)"))
        charts.show(right, per_minute, charts.per_query(
            "max_source_lag", "Largest source lag per minute (records)"))
    st.subheader("PostgreSQL sync")
    if sync.empty:
        st.info("Nothing synced yet (gold.sync_ledger is empty).")
    else:
        ages = (pd.Timestamp(db_now) - sync["applied_at"]).dt.total_seconds()
        st.dataframe(sync.assign(age=ages.map(ui.format_age)), hide_index=True,
                     width="stretch", key="sync_latest")


def _query_tiles(query: pd.Series, db_now: pd.Timestamp, stale_after_s: float) -> None:
    st.subheader(f"Query {query['query_name']}")
    age = (pd.Timestamp(db_now) - query["batch_started_at"]).total_seconds()
    if age > stale_after_s:
        st.warning(f"{query['query_name']} has not started a batch for {ui.format_age(age)}: "
                   "is the pipeline running?", icon=":material/schedule:")
    cols = st.columns(4)
    cols[0].metric("Last batch", f"{ui.format_age_short(max(age, 0.0))} ago",
                   help=f"batch {query['batch_id']} started "
                        f"{ui.format_time(query['batch_started_at'])}")
    cols[1].metric("Duration", f"{int(query['duration_ms']):,} ms")
    cols[2].metric("Input rows", ui.format_count(query["input_rows"]))
    cols[3].metric("Source lag", ui.format_count(query["source_lag"]),
                   help="Records (Kafka) or files (staging) not yet read by this query.")
