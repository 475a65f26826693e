"""Pure pandas shaping of query results for the pages (unit-tested without Streamlit)."""
from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from dashboard.catalog import (ALERT_SEVERITY, COUNT_COLUMNS, NONE_COLOUR, SEVERITIES,
                               SEVERITY_COLOUR, SEVERITY_RANK, count_column)

MINUTE = timedelta(minutes=1)


def settled_through(newest_event_ts: datetime | None, grace_s: float) -> datetime | None:
    """Event time up to which minute KPIs are complete: the newest event minus the grace."""
    if newest_event_ts is None or pd.isna(newest_event_ts):
        return None
    return newest_event_ts - timedelta(seconds=grace_s)


def mark_partial(minutes: pd.DataFrame, column: str,
                 complete_until: datetime | None) -> pd.DataFrame:
    """Add `partial`: the minute in `column` ends after `complete_until` (or nothing is known)."""
    out = minutes.copy()
    starts = pd.to_datetime(out[column], utc=True)  # typed even when there are no rows
    if complete_until is None:
        out["partial"] = True
    else:
        out["partial"] = (starts + MINUTE) > pd.Timestamp(complete_until)
    return out


def last_complete(minutes: pd.DataFrame) -> pd.Series | None:
    """The newest row whose minute is complete, or None."""
    done = minutes[~minutes["partial"]]
    return None if done.empty else done.iloc[-1]


def alerts_by_type(minutes: pd.DataFrame, column: str) -> pd.DataFrame:
    """Long form (minute, alert_type, alerts) of the per-type count columns; zero counts dropped."""
    long = minutes[[column, "partial", *COUNT_COLUMNS]].melt(
        id_vars=[column, "partial"], var_name="count_column", value_name="alerts")
    names = {count_column(t): t for t in ALERT_SEVERITY}
    long["alert_type"] = long.pop("count_column").map(names)
    long["alerts"] = long["alerts"].astype("int64")
    return long[long["alerts"] > 0].reset_index(drop=True)


def alerts_by_severity(minutes: pd.DataFrame, column: str) -> pd.DataFrame:
    """Long form (minute, severity, alerts): per-type counts summed by the type's severity."""
    by_type = alerts_by_type(minutes, column)
    by_type["severity"] = by_type["alert_type"].map(ALERT_SEVERITY)
    grouped = by_type.groupby([column, "partial", "severity"], as_index=False)["alerts"].sum()
    return grouped.sort_values([column, "severity"]).reset_index(drop=True)


def worst_severity(counts: pd.DataFrame) -> pd.Series:
    """Per row of per-type count columns: the worst severity with a non-zero count, or None."""
    worst = pd.Series([None] * len(counts), index=counts.index, dtype="object")
    for severity in reversed(SEVERITIES):  # LOW first, so a worse one overwrites it
        columns = [count_column(t) for t, s in ALERT_SEVERITY.items() if s == severity]
        worst[counts[columns].fillna(0).sum(axis=1) > 0] = severity
    return worst


def has_valid_position(latest: pd.DataFrame) -> pd.Series:
    """The reading has a plottable GPS fix: valid per gold, in range, and not exactly (0, 0)."""
    lat, lon = latest["latitude"], latest["longitude"]
    return (latest["gps_valid"].eq(True) & lat.notna() & lon.notna()
            & lat.between(-90, 90) & lon.between(-180, 180) & ~((lat == 0) & (lon == 0)))


def fleet_positions(latest: pd.DataFrame,
                    recent: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cars to plot, coloured by worst recent alert; cars whose position is invalid)."""
    counts = recent.set_index("car_id")[list(COUNT_COLUMNS)] if len(recent) else None
    cars = latest.copy()
    if counts is None:
        cars["worst_alert"] = None
    else:
        worst = worst_severity(counts)
        cars["worst_alert"] = cars["car_id"].map(worst).where(cars["car_id"].isin(worst.index))
    cars["worst_alert"] = cars["worst_alert"].astype("object").where(cars["worst_alert"].notna(),
                                                                     None)
    colours = cars["worst_alert"].map(lambda s: list(SEVERITY_COLOUR.get(s, NONE_COLOUR)))
    cars["colour"] = colours
    valid = has_valid_position(cars)
    return cars[valid].reset_index(drop=True), cars[~valid].reset_index(drop=True)


def worst_first(cars: pd.DataFrame) -> pd.DataFrame:
    """Cars ordered by worst recent alert (HIGH first), then car_id."""
    rank = cars["worst_alert"].map(lambda s: SEVERITY_RANK.get(s, 0))
    return cars.assign(_rank=-rank).sort_values(["_rank", "car_id"]).drop(columns="_rank")


def driving_sessions(minutes: pd.DataFrame, gap_minutes: int) -> pd.DataFrame:
    """Runs of a car's active minutes split where no event came for `gap_minutes` minutes."""
    columns = ["started", "ended", "minutes", "events", "max_speed_kmph", "alerts"]
    if minutes.empty:
        return pd.DataFrame(columns=columns)
    starts = minutes["window_start"]
    new_session = (starts - starts.shift()) > pd.Timedelta(minutes=gap_minutes)
    session = new_session.cumsum()
    grouped = minutes.groupby(session)
    out = pd.DataFrame({
        "started": grouped["window_start"].min(),
        "ended": grouped["window_start"].max() + MINUTE,
        "minutes": grouped.size(),
        "events": grouped["events"].sum().astype("int64"),
        "max_speed_kmph": grouped["max_speed_kmph"].max(),
        "alerts": grouped["alerts"].sum().astype("int64"),
    })
    return out.sort_values("started", ascending=False).reset_index(drop=True)[columns]


def batch_identity(batches: pd.DataFrame) -> pd.DataFrame:
    """Per batch: rows added to silver (valid - duplicates) and whether the identity holds."""
    out = batches.copy()
    out["added_to_silver"] = out["valid_rows"] - out["duplicate_rows"]
    out["identity_holds"] = ((out["rows_in"] == out["valid_rows"] + out["quarantined_rows"])
                             & (out["added_to_silver"] >= 0))
    return out


def rate(part: float, whole: float) -> float | None:
    """part / whole, or None when whole is zero."""
    return None if not whole else float(part) / float(whole)
