"""Data quality: quarantine reasons and duplicates over time, the per-batch accounting identity,
and the latest `fleetlake dq report` results."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, data, transform, ui
from dashboard.config import AppConfig

IDENTITY = ("rows_in = valid_rows + quarantined_rows, and valid_rows - duplicate_rows = rows "
            "added to silver (never negative)")


def page() -> None:
    st.title("Data quality")
    minutes = ui.window_picker("dq_window")
    ui.live_section(lambda config: render(config, minutes))


def render(config: AppConfig, minutes: int) -> None:
    totals, reasons = data.dq_minutes(config.dsn, minutes)
    batches = transform.batch_identity(data.dq_batches(config.dsn))
    results = data.dq_results(config.dsn)
    db_now, _ = data.freshness(config.dsn)
    totals = transform.mark_partial(totals, "minute", db_now)
    reasons = transform.mark_partial(reasons, "minute", db_now)
    _tiles(totals)
    if totals.empty:
        st.info("No batch metrics in gold yet (gold.dq_batch_metrics is empty).")
    else:
        st.caption(f"Batches processed in the latest {ui.WINDOWS.get(minutes, minutes)} of "
                   "batch metrics, per minute of processing time.")
        left, right = st.columns(2)
        charts.show(left, reasons, charts.minute_bars(
            "minute", "reason", "Quarantined rows per minute by reason", value="rows"))
        charts.show(right, totals, charts.minute_line("minute", "duplicate_rows",
                                                      "Duplicate rows per minute"))
    st.subheader("Accounting identity per batch")
    st.caption(f"Each batch must satisfy {IDENTITY}. Newest {data.BATCHES_SHOWN} batches.")
    broken = batches[~batches["identity_holds"]]
    if len(broken):
        st.error(f"{len(broken)} of the newest {len(batches)} batches break the identity: "
                 f"batch ids {', '.join(str(b) for b in broken['batch_id'].head(10))}.")
    st.dataframe(batches, hide_index=True, width="stretch", key="dq_batches")
    _report(results)


def _tiles(totals: pd.DataFrame) -> None:
    cols = st.columns(5)
    rows_in = totals["rows_in"].sum() if len(totals) else 0
    cols[0].metric("Batches", ui.format_count(totals["batches"].sum() if len(totals) else 0))
    cols[1].metric("Rows in", ui.format_count(rows_in))
    cols[2].metric("Quarantine rate", ui.format_rate(
        transform.rate(totals["quarantined_rows"].sum() if len(totals) else 0, rows_in)))
    cols[3].metric("Duplicates", ui.format_count(
        totals["duplicate_rows"].sum() if len(totals) else 0))
    cols[4].metric("Identity breaches", ui.format_count(
        totals["identity_breaches"].sum() if len(totals) else 0),
        help="Batches in the window that break " + IDENTITY)


def _report(results: pd.DataFrame) -> None:
    """The newest `fleetlake dq report` run: when, how many expectations failed, and each one."""
    st.subheader("Data-quality report")
    if results.empty:
        st.info("No data-quality report yet: run `fleetlake dq report` (or set "
                "[dq] report_every_minutes for `pipeline run`); its results land in "
                "gold.dq_results.")
        return
    failed = results[~results["success"]]
    critical = failed[failed["severity"] == "critical"]
    cols = st.columns(3)
    cols[0].metric("Last report", ui.format_time(results["run_at"].iloc[0]))
    cols[1].metric("Expectations", ui.format_count(len(results)))
    cols[2].metric("Failed (critical)", f"{len(failed)} ({len(critical)})")
    if len(critical):
        st.error("Critical expectations failed: " + ", ".join(
            f"{row.suite}: {row.expectation}" for row in critical.itertuples()))
    st.dataframe(results.drop(columns=["run_at"]), hide_index=True, width="stretch",
                 key="dq_results")