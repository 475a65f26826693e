"""Bench figures from the raw measurements: freshness percentiles, small batches, the PNG."""
from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from gold.schema import STATEFUL_ALERT_TYPES, THRESHOLD_ALERT_TYPES

SMALL_BATCH_ROWS = 100


def percentiles(values_ms: pd.Series) -> dict[str, float | int | None]:
    """p50/p95/p99 (ms, rounded) and the number of samples."""
    values = pd.to_numeric(values_ms, errors="coerce").dropna()
    if values.empty:
        return {"p50": None, "p95": None, "p99": None, "n": 0}
    p50, p95, p99 = np.percentile(values.to_numpy(), [50, 95, 99])
    return {"p50": round(float(p50)), "p95": round(float(p95)), "p99": round(float(p99)),
            "n": int(values.size)}


def _ms(later: pd.Series, earlier: pd.Series) -> pd.Series:
    return (pd.to_datetime(later, utc=True) - pd.to_datetime(earlier, utc=True)) \
        .dt.total_seconds() * 1000.0


def alert_freshness(alerts: pd.DataFrame, events: pd.DataFrame, kinds: tuple[str, ...]
                    ) -> pd.DataFrame:
    """Per alert of `kinds` first written: its event's Kafka time and its delay (ms)."""
    rows = (alerts[alerts["alert_type"].isin(kinds)]
            .sort_values("seen_at").drop_duplicates("alert_id")
            .merge(events[["event_id", "kafka_timestamp"]], on="event_id"))
    return rows.assign(delay_ms=_ms(rows["seen_at"], rows["kafka_timestamp"]))


def latest_freshness(latest: pd.DataFrame) -> pd.DataFrame:
    """Per reading that became a car's latest row: its delay from Kafka to PostgreSQL (ms)."""
    first = latest.sort_values("seen_at").drop_duplicates(["car_id", "event_id"])
    return first.assign(delay_ms=_ms(first["seen_at"], first["kafka_timestamp"]))


def kpi_freshness(kpis: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Per event: when its car-minute's KPI row first counted it (arrival order in the minute)."""
    if kpis.empty or events.empty:
        return pd.DataFrame(columns=["kafka_timestamp", "delay_ms"])
    events = events.assign(window_start=pd.to_datetime(events["event_ts"], utc=True)
                           .dt.floor("min")).sort_values("kafka_timestamp")
    events["rank"] = events.groupby(["car_id", "window_start"]).cumcount() + 1
    versions = kpis.assign(window_start=pd.to_datetime(kpis["window_start"], utc=True))
    versions = versions.sort_values("seen_at")
    versions["counted"] = versions.groupby(["car_id", "window_start"])["events"].cummax()
    seen = []
    grouped = dict(tuple(versions.groupby(["car_id", "window_start"])))
    for key, group in events.groupby(["car_id", "window_start"]):
        found = grouped.get(key)
        if found is None:
            continue
        at = np.searchsorted(found["counted"].to_numpy(), group["rank"].to_numpy())
        ok = at < len(found)
        seen.append(group[ok].assign(seen_at=found["seen_at"].to_numpy()[at[ok]]))
    rows = pd.concat(seen) if seen else events.iloc[0:0].assign(seen_at=None)
    return rows.assign(delay_ms=_ms(rows["seen_at"], rows["kafka_timestamp"]))


def freshness(alerts: pd.DataFrame, latest: pd.DataFrame, kpis: pd.DataFrame,
              events: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {"threshold": alert_freshness(alerts, events, THRESHOLD_ALERT_TYPES),
            "stateful": alert_freshness(alerts, events, STATEFUL_ALERT_TYPES),
            "device_latest": latest_freshness(latest),
            "kpis": kpi_freshness(kpis, events)}


def small_batches(progress: pd.DataFrame, since: pd.Timestamp) -> dict[str, dict]:
    """Durations (ms) of the batches of at most SMALL_BATCH_ROWS rows after `since`, per path."""
    started = pd.to_datetime(progress["batch_started_at"], utc=True)
    small = progress[(started >= since) & (progress["input_rows"] > 0)
                     & (progress["input_rows"] <= SMALL_BATCH_ROWS)]
    names = {"threshold": "fleetlake_hot", "stateful": "fleetlake_gold"}
    return {path: percentiles(small[small["query_name"] == name]["duration_ms"])
            for path, name in names.items()}


def machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "cpu_model": model, "os": platform.platform(), "python": platform.python_version()}


def plot(delays: dict[str, pd.DataFrame], start: pd.Timestamp, path: Path) -> Path:
    """Freshness over time: one point per row, seconds since the live run began."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(11, 5.5))
    for name, frame in delays.items():
        if frame.empty:
            continue
        x = (pd.to_datetime(frame["kafka_timestamp"], utc=True) - start).dt.total_seconds()
        axis.scatter(x, frame["delay_ms"] / 1000.0, s=3, alpha=0.5, label=name)
    axis.axhline(5, color="tab:red", linestyle="--", linewidth=1, label="5 s target")
    axis.axhline(30, color="tab:gray", linestyle="--", linewidth=1, label="30 s target")
    axis.set_xlabel("Kafka timestamp of the event (s since the live run began)")
    axis.set_ylabel("delay until visible in PostgreSQL (s)")
    axis.set_yscale("log")
    axis.legend(loc="upper right", markerscale=4)
    axis.set_title("fleetlake bench: freshness at the live rate")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path
