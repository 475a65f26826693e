"""Stateful alerts: pure functions of each car's silver history ordered by (event_ts, event_id).

Every rule looks back a bounded span of event time (`required_lookback`), so the alerts of a
reading at t depend only on the car's readings in [t - lookback, t], and a reading inserted at t
(a late event) can only change the alerts of readings in [t, t + lookback]. That is what lets the
sink recompute exactly the affected range; any batching or arrival order gives the same alerts.

- SUSTAINED_OVERHEAT (HIGH): a run is a maximal sequence of a car's consecutive readings with
  engine_temp_c > sustained_overheat_c, each at most sustained_overheat_max_gap_seconds after the
  previous one. It fires once per run, at the run's sustained_overheat_readings-th reading (the
  reading completing it: the earliest moment the condition is known; a longer run does not fire
  again). Lookback: readings x max_gap.
- FUEL_DROP (HIGH): with ref = the earliest reading j within fuel_drop_minutes before reading i
  such that fuel never rises from j to i (a rise of any size is a refuel), the drop ref - fuel_i
  exceeds fuel_drop_points. It fires at the reading where that drop first exceeds the limit
  (the previous reading's drop, from the same ref, did not), so a continuing leak fires once.
  Lookback: fuel_drop_minutes.
- GPS_JUMP (MEDIUM): implied speed (haversine distance / elapsed time, the time floored at
  gps_jump_min_seconds) between a valid fix and the car's previous valid fix, if that one is at
  most gps_jump_max_gap_seconds earlier, is above gps_jump_kmph. Lookback: max_gap.
- SPEED_ANOMALY (LOW): |z| > speed_anomaly_zscore, z = (speed - mean) / max(std,
  speed_anomaly_min_std_kmph) over the car's previous N = speed_anomaly_min_readings readings,
  evaluated only when all N lie within speed_anomaly_window_seconds. Sums are exact integers of
  centi-km/h, so z is bit-identical whatever the history's start. Lookback: window.

Only O(1)-per-row window frames (offsets, running frames, one growing range frame) over one sort.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from gold.alerts import alerts_from, candidate, fmt_threshold
from gold.schema import ALERTS_COLUMNS
from infra.settings import AlertRules

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)
MICROS = 1_000_000


def rule_lookbacks(rules: AlertRules) -> dict[str, timedelta]:
    """Event-time span each enabled stateful rule depends on (and can change ahead of a reading)."""
    spans = {
        "SUSTAINED_OVERHEAT": (rules.sustained_overheat_enabled, rules.sustained_overheat_readings
                               * rules.sustained_overheat_max_gap_seconds),
        "FUEL_DROP": (rules.fuel_drop_enabled, rules.fuel_drop_minutes * 60.0),
        "GPS_JUMP": (rules.gps_jump_enabled, rules.gps_jump_max_gap_seconds),
        "SPEED_ANOMALY": (rules.speed_anomaly_enabled, rules.speed_anomaly_window_seconds),
    }
    return {name: timedelta(seconds=seconds) for name, (on, seconds) in spans.items() if on}


def required_lookback(rules: AlertRules) -> timedelta:
    """History a reading's stateful alerts need; also how far ahead a late reading changes them."""
    return max(rule_lookbacks(rules).values(), default=timedelta(0))


def stateful_alerts(history_df: DataFrame, rules: AlertRules) -> DataFrame:
    """ALERTS rows of the enabled stateful rules, per car over its ordered history."""
    return stateful_alerts_by(history_df, rules, ()).select(*ALERTS_COLUMNS)


def stateful_alerts_by(history_df: DataFrame, rules: AlertRules,
                       by: Sequence[str]) -> DataFrame:
    """ALERTS rows + `by` columns: the rules over each (car_id, *by) history separately."""
    part = ["car_id", *by]
    order = Window.partitionBy(*part).orderBy("_ts_us", "event_id")
    running = order.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    before = order.rowsBetween(Window.unboundedPreceding, -1)
    base = history_df.select(
        *part, "event_id", "event_ts", "speed_kmph", "fuel_level", "engine_temp_c", "latitude",
        "longitude", "gps_valid", F.unix_micros("event_ts").alias("_ts_us"))
    step1 = base.select("*", *_row_features(order, before, running, rules))
    step2 = step1.select("*", *_run_features(order, running, rules))
    step3 = step2.select("*", *_range_features(part, rules))
    candidates = []
    if rules.sustained_overheat_enabled:
        candidates.append(_sustained_overheat(rules))
    if rules.fuel_drop_enabled:
        candidates.append(_fuel_drop(rules))
    if rules.gps_jump_enabled:
        candidates.append(_gps_jump(rules))
    if rules.speed_anomaly_enabled:
        candidates.append(_speed_anomaly(rules))
    return alerts_from(step3, candidates, keep=tuple(by))


def _baseline_size(rules: AlertRules) -> int:
    return max(int(rules.speed_anomaly_min_readings), 2)


def _is_hot(rules: AlertRules) -> Column:
    return F.col("engine_temp_c") > F.lit(rules.sustained_overheat_c)


def _row_features(order: Window, before: Window, running: Window,
                  rules: AlertRules) -> list[Column]:
    """Offsets and running sums over the ordered history (one sort, O(1) per row)."""
    centi = F.round(F.col("speed_kmph") * 100).cast("long")
    fix = F.when(F.col("gps_valid"), F.struct("_ts_us", "latitude", "longitude"))
    return [
        F.row_number().over(order).alias("_rn"),
        F.lag("_ts_us").over(order).alias("_prev_ts_us"),
        F.lag(_is_hot(rules)).over(order).alias("_prev_hot"),
        F.lag("fuel_level").over(order).alias("_prev_fuel"),
        F.lead("fuel_level").over(order).alias("_next_fuel"),
        F.first("fuel_level").over(running).alias("_first_fuel"),
        F.last(fix, ignorenulls=True).over(before).alias("_prev_fix"),
        centi.alias("_centi"),
        F.sum(centi).over(running).alias("_sum"),
        F.sum(centi * centi).over(running).alias("_sumsq"),
        F.lag("_ts_us", _baseline_size(rules)).over(order).alias("_baseline_start_us"),
    ]


def _run_features(order: Window, running: Window, rules: AlertRules) -> list[Column]:
    """Run starts (sustained overheat, fuel non-increasing) and the speed baseline sums."""
    gap_us = F.col("_ts_us") - F.col("_prev_ts_us")
    max_gap_us = F.lit(int(round(rules.sustained_overheat_max_gap_seconds * MICROS)))
    starts_hot_run = _is_hot(rules) & (
        F.col("_prev_hot").isNull() | ~F.col("_prev_hot") | (gap_us > max_gap_us))
    is_refuel = F.col("_prev_fuel").isNull() | (F.col("fuel_level") > F.col("_prev_fuel"))
    n = _baseline_size(rules)
    return [
        F.last(F.when(starts_hot_run, F.col("_rn")), ignorenulls=True).over(running)
        .alias("_hot_start_rn"),
        F.last(F.when(is_refuel, F.col("_rn")), ignorenulls=True).over(running)
        .alias("_fuel_run_rn"),
        F.last(F.when(is_refuel, F.col("fuel_level")), ignorenulls=True).over(running)
        .alias("_fuel_run_fuel"),
        (F.col("_sum") - F.col("_centi")
         - F.coalesce(F.lag("_sum", n + 1).over(order), F.lit(0))).alias("_base_sum"),
        (F.col("_sumsq") - F.col("_centi") * F.col("_centi")
         - F.coalesce(F.lag("_sumsq", n + 1).over(order), F.lit(0))).alias("_base_sumsq"),
    ]


def _range_features(part: list[str], rules: AlertRules) -> list[Column]:
    """The first reading at or after t - fuel_drop_minutes: the reading after the last one before.

    A growing range frame (unbounded preceding .. t - window - 1us) is O(1) per row; its last
    row's `_next_fuel` is the fuel of the first reading inside the window.
    """
    window_us = int(round(rules.fuel_drop_minutes * 60.0 * MICROS))
    before_window = (Window.partitionBy(*part).orderBy("_ts_us")
                     .rangeBetween(Window.unboundedPreceding, -(window_us + 1)))
    return [
        F.last(F.col("_rn") + 1).over(before_window).alias("_win_rn"),
        F.last("_next_fuel").over(before_window).alias("_win_fuel"),
    ]


def _sustained_overheat(rules: AlertRules) -> Column:
    readings = rules.sustained_overheat_readings
    run_length = F.col("_rn") - F.col("_hot_start_rn") + 1
    completes_run = _is_hot(rules) & (run_length == F.lit(readings))
    limit = fmt_threshold(rules.sustained_overheat_c)
    message = F.concat(F.lit(f"Engine temperature above {limit} °C for {readings} consecutive "
                             f"readings (now "), F.col("engine_temp_c").cast("string"),
                       F.lit(" °C)"))
    return candidate(completes_run, "SUSTAINED_OVERHEAT", "HIGH", message, F.col("engine_temp_c"),
                     rules.sustained_overheat_c)


def _fuel_drop(rules: AlertRules) -> Column:
    win_rn = F.coalesce(F.col("_win_rn"), F.lit(1))
    win_fuel = F.coalesce(F.col("_win_fuel"), F.col("_first_fuel"))
    ref_fuel = F.when(F.col("_fuel_run_rn") >= win_rn, F.col("_fuel_run_fuel")).otherwise(win_fuel)
    drop = ref_fuel - F.col("fuel_level")
    previous_drop = ref_fuel - F.col("_prev_fuel")
    limit = F.lit(rules.fuel_drop_points)
    first_over_limit = (drop > limit) & (previous_drop <= limit)
    message = F.format_string(
        f"Fuel fell %.1f points (%.1f%% to %.1f%%) within {fmt_threshold(rules.fuel_drop_minutes)}"
        f" min without a refuel", drop, ref_fuel, F.col("fuel_level"))
    return candidate(first_over_limit, "FUEL_DROP", "HIGH", message, drop, rules.fuel_drop_points)


def _haversine_km(lat1: Column, lon1: Column, lat2: Column, lon2: Column) -> Column:
    dlat, dlon = F.radians(lat2 - lat1), F.radians(lon2 - lon1)
    a = (F.pow(F.sin(dlat / 2), 2)
         + F.cos(F.radians(lat1)) * F.cos(F.radians(lat2)) * F.pow(F.sin(dlon / 2), 2))
    return F.lit(2 * EARTH_RADIUS_KM) * F.asin(F.sqrt(F.least(a, F.lit(1.0))))


def _gps_jump(rules: AlertRules) -> Column:
    prev = F.col("_prev_fix")
    elapsed_s = (F.col("_ts_us") - prev["_ts_us"]) / F.lit(float(MICROS))
    distance_km = _haversine_km(prev["latitude"], prev["longitude"], F.col("latitude"),
                                F.col("longitude"))
    hours = F.greatest(elapsed_s, F.lit(rules.gps_jump_min_seconds)) / F.lit(3600.0)
    implied_kmph = F.try_divide(distance_km, hours)
    within_gap = elapsed_s <= F.lit(rules.gps_jump_max_gap_seconds)
    is_jump = F.col("gps_valid") & prev.isNotNull() & within_gap & (
        implied_kmph > F.lit(rules.gps_jump_kmph))
    message = F.format_string(
        f"GPS position jumped %.3f km in %.1f s (implied %.0f km/h, limit "
        f"{fmt_threshold(rules.gps_jump_kmph)} km/h)", distance_km, elapsed_s, implied_kmph)
    return candidate(is_jump, "GPS_JUMP", "MEDIUM", message, implied_kmph, rules.gps_jump_kmph)


def _speed_anomaly(rules: AlertRules) -> Column:
    n = _baseline_size(rules)
    window_us = int(round(rules.speed_anomaly_window_seconds * MICROS))
    has_baseline = F.col("_baseline_start_us").isNotNull() & (
        F.col("_baseline_start_us") >= F.col("_ts_us") - F.lit(window_us))
    base_sum, base_sumsq = F.col("_base_sum"), F.col("_base_sumsq")
    mean_kmph = base_sum.cast("double") / F.lit(100.0 * n)
    variance_centi = (F.lit(n) * base_sumsq - base_sum * base_sum).cast("double") / F.lit(
        float(n * (n - 1)))
    std_kmph = F.greatest(F.sqrt(F.greatest(variance_centi, F.lit(0.0))) / F.lit(100.0),
                          F.lit(rules.speed_anomaly_min_std_kmph))
    zscore = F.abs(F.col("_centi").cast("double") / F.lit(100.0) - mean_kmph) / std_kmph
    is_anomaly = has_baseline & (zscore > F.lit(rules.speed_anomaly_zscore))
    message = F.format_string(
        f"Speed %s km/h is %.1f standard deviations from the car's mean of %.1f km/h over its "
        f"previous {n} readings", F.col("speed_kmph").cast("string"), zscore, mean_kmph)
    return candidate(is_anomaly, "SPEED_ANOMALY", "LOW", message, zscore,
                     rules.speed_anomaly_zscore)
