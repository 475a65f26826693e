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

observed_value / threshold: engine temp / sustained_overheat_c; drop / fuel_drop_points;
implied km/h / gps_jump_kmph; |z| / speed_anomaly_zscore.
Only O(1)-per-row window frames (offsets, running frames, one growing range frame) over one sort.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from gold.alerts import Candidate, Fired, alerts_from, candidate, fired, fmt_threshold
from gold.schema import ALERTS_COLUMNS
from infra.columns import per_context
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


def tail_size(rules: AlertRules) -> int:
    """Readings before a reading that its enabled rules look at by count (at least 1: the
    previous reading): a carried tail this long serves a car's next in-order readings
    (gold/carry.py)."""
    sizes = [1]
    if rules.sustained_overheat_enabled:
        sizes.append(int(rules.sustained_overheat_readings))
    if rules.speed_anomaly_enabled:
        sizes.append(_baseline_size(rules) + 1)
    return max(sizes)


def fuel_window(rules: AlertRules) -> timedelta | None:
    """FUEL_DROP's window (None when the rule is off)."""
    return timedelta(minutes=rules.fuel_drop_minutes) if rules.fuel_drop_enabled else None


# Optional column of a history: a reading's refuel flag as known from a longer history than
# the one given (gold/carry.py); null: derived from the previous reading of the history.
REFUEL_HINT = "_refuel_hint"


def refuel_flag(prev: Column) -> Column:
    """A reading starts a non-increasing fuel run: the first reading of the history does, and
    a rise of any size (a refuel), which REFUEL_HINT, where given, says instead."""
    return prev.isNull() | F.coalesce(F.col(REFUEL_HINT), F.col("fuel_level") > prev["fuel"])


def known_refuel_flag(prev: Column) -> Column:
    """The refuel flag to carry: REFUEL_HINT where given (known from a longer history), else
    the flag `refuel_flag` gives."""
    return F.coalesce(F.col(REFUEL_HINT), prev.isNull() | (F.col("fuel_level") > prev["fuel"]))


def stateful_alerts(history_df: DataFrame, rules: AlertRules) -> DataFrame:
    """ALERTS rows of the enabled stateful rules, per car over its ordered history."""
    return stateful_alerts_by(history_df, rules, ()).select(*ALERTS_COLUMNS)


def stateful_alerts_by(history_df: DataFrame, rules: AlertRules, by: Sequence[str],
                       carry: Sequence[str] = ()) -> DataFrame:
    """ALERTS rows + `by` + `carry` columns: the rules over each (car_id, *by) history
    separately; `carry` columns of the alerting reading are passed through."""
    plan = _stateful_plan(rules, tuple(by), tuple(carry))
    if REFUEL_HINT not in history_df.columns:
        history_df = history_df.withColumn(REFUEL_HINT, F.lit(None).cast("boolean"))
    frame = history_df.select(*plan.base)
    for columns in plan.steps:
        frame = frame.select("*", *columns)
    return alerts_from(frame, plan.fired, keep=(*by, *carry))


@dataclass(frozen=True)
class _StatefulPlan:
    """The rules' expressions: the input projection, the feature steps, the combined test."""

    base: tuple[Column, ...]
    steps: tuple[tuple[Column, ...], ...]
    fired: Fired


@per_context
def _stateful_plan(rules: AlertRules, by: tuple[str, ...],
                   carry: tuple[str, ...]) -> _StatefulPlan:
    """Built once per context and rule set: every gold batch applies it (infra/columns.py)."""
    part = ["car_id", *by]
    order = Window.partitionBy(*part).orderBy("_ts_us", "event_id")
    running = order.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    before = order.rowsBetween(Window.unboundedPreceding, -1)
    base = tuple(F.col(c) for c in (
        *part, "event_id", "event_ts", "speed_kmph", "fuel_level", "engine_temp_c", "latitude",
        "longitude", "gps_valid", REFUEL_HINT, *carry)) + (
        F.unix_micros("event_ts").alias("_ts_us"),)
    enabled = [(on, rule) for on, rule in (
        (rules.sustained_overheat_enabled, _sustained_overheat),
        (rules.fuel_drop_enabled, _fuel_drop),
        (rules.gps_jump_enabled, _gps_jump),
        (rules.speed_anomaly_enabled, _speed_anomaly)) if on]
    derived, candidates = [], []
    for _, rule in enabled:
        columns, fires = rule(rules)
        derived += columns
        candidates.append(fires)
    steps = (tuple(_row_features(order, before, running, rules)),
             tuple(_run_features(order, running, rules)),
             tuple(_range_features(part, rules)), tuple(derived))
    return _StatefulPlan(base, tuple(step for step in steps if step), fired(candidates))


def _baseline_size(rules: AlertRules) -> int:
    return max(int(rules.speed_anomaly_min_readings), 2)


def _is_hot(rules: AlertRules) -> Column:
    return F.col("engine_temp_c") > F.lit(rules.sustained_overheat_c)


def _row_features(order: Window, before: Window, running: Window,
                  rules: AlertRules) -> list[Column]:
    """Offsets and running sums over the ordered history (one sort, O(1) per row)."""
    prev = F.struct(F.col("_ts_us").alias("ts_us"), _is_hot(rules).alias("hot"),
                    F.col("fuel_level").alias("fuel"))
    features = [F.row_number().over(order).alias("_rn"), F.lag(prev).over(order).alias("_prev")]
    if rules.fuel_drop_enabled:
        features.append(F.lead("fuel_level").over(order).alias("_next_fuel"))
    if rules.gps_jump_enabled:
        fix = F.when(F.col("gps_valid"), F.struct("_ts_us", "latitude", "longitude"))
        features.append(F.last(fix, ignorenulls=True).over(before).alias("_prev_fix"))
    if rules.speed_anomaly_enabled:
        centi = F.round(F.col("speed_kmph") * 100).cast("long")
        features += [
            centi.alias("_centi"),
            F.sum(centi).over(running).alias("_sum"),
            F.sum(centi * centi).over(running).alias("_sumsq"),
            F.lag("_ts_us", _baseline_size(rules)).over(order).alias("_baseline_start_us"),
        ]
    return features


def _run_features(order: Window, running: Window, rules: AlertRules) -> list[Column]:
    """Run starts (sustained overheat, fuel non-increasing) and the speed baseline sums."""
    prev = F.col("_prev")
    features = []
    if rules.sustained_overheat_enabled:
        max_gap_us = F.lit(int(round(rules.sustained_overheat_max_gap_seconds * MICROS)))
        starts_hot_run = _is_hot(rules) & (
            prev.isNull() | ~prev["hot"] | (F.col("_ts_us") - prev["ts_us"] > max_gap_us))
        features.append(F.last(F.when(starts_hot_run, F.col("_rn")), ignorenulls=True)
                         .over(running).alias("_hot_start_rn"))
    if rules.fuel_drop_enabled:  # a rise (or the first row) starts a non-increasing run
        is_refuel = refuel_flag(prev)
        run_start = F.struct(F.col("_rn").alias("rn"), F.col("fuel_level").alias("fuel"))
        features.append(F.last(F.when(is_refuel, run_start), ignorenulls=True)
                        .over(running).alias("_fuel_run"))
    if rules.speed_anomaly_enabled:
        n = _baseline_size(rules)
        oldest = F.lag(F.struct(F.col("_sum").alias("sum"), F.col("_sumsq").alias("sumsq")),
                       n + 1).over(order)
        features += [
            (F.col("_sum") - F.col("_centi") - F.coalesce(oldest["sum"], F.lit(0)))
            .alias("_base_sum"),
            (F.col("_sumsq") - F.col("_centi") * F.col("_centi")
             - F.coalesce(oldest["sumsq"], F.lit(0))).alias("_base_sumsq"),
        ]
    return features


def _range_features(part: list[str], rules: AlertRules) -> list[Column]:
    """The first reading at or after t - fuel_drop_minutes: the reading after the last one before.

    A growing range frame (unbounded preceding .. t - window - 1us) is O(1) per row; its last
    row's `_next_fuel` is the fuel of the first reading inside the window. No row before the
    window: the first row of the history, always a run start, is the reference.
    """
    if not rules.fuel_drop_enabled:
        return []
    window_us = int(round(rules.fuel_drop_minutes * 60.0 * MICROS))
    before_window = (Window.partitionBy(*part).orderBy("_ts_us")
                     .rangeBetween(Window.unboundedPreceding, -(window_us + 1)))
    first_inside = F.struct((F.col("_rn") + 1).alias("rn"), F.col("_next_fuel").alias("fuel"))
    return [F.last(first_inside).over(before_window).alias("_win")]


Rule = tuple[list[Column], Candidate]  # values computed once per row, and the candidate


def _sustained_overheat(rules: AlertRules) -> Rule:
    readings = rules.sustained_overheat_readings
    run_length = F.col("_rn") - F.col("_hot_start_rn") + 1
    completes_run = _is_hot(rules) & (run_length == F.lit(readings))
    limit = fmt_threshold(rules.sustained_overheat_c)
    message = F.concat(F.lit(f"Engine temperature above {limit} °C for {readings} consecutive "
                             f"readings (now "), F.col("engine_temp_c").cast("string"),
                       F.lit(" °C)"))
    return [], candidate(completes_run, "SUSTAINED_OVERHEAT", "HIGH", message,
                         F.col("engine_temp_c"), rules.sustained_overheat_c)


def _fuel_drop(rules: AlertRules) -> Rule:
    run, window = F.col("_fuel_run"), F.col("_win")
    run_in_window = window.isNull() | (run["rn"] >= window["rn"])
    ref_fuel = F.when(run_in_window, run["fuel"]).otherwise(window["fuel"])
    ref, drop = F.col("_fd_ref"), F.col("_fd_drop")
    limit = F.lit(rules.fuel_drop_points)
    first_over_limit = (drop > limit) & (ref - F.col("_prev")["fuel"] <= limit)
    message = F.format_string(
        f"Fuel fell %.1f points (%.1f%% to %.1f%%) within {fmt_threshold(rules.fuel_drop_minutes)}"
        f" min without a refuel", drop, ref, F.col("fuel_level"))
    derived = [ref_fuel.alias("_fd_ref"), (ref_fuel - F.col("fuel_level")).alias("_fd_drop")]
    return derived, candidate(first_over_limit, "FUEL_DROP", "HIGH", message, drop,
                              rules.fuel_drop_points)


def _haversine_km(lat1: Column, lon1: Column, lat2: Column, lon2: Column) -> Column:
    dlat, dlon = F.radians(lat2 - lat1), F.radians(lon2 - lon1)
    a = (F.pow(F.sin(dlat / 2), 2)
         + F.cos(F.radians(lat1)) * F.cos(F.radians(lat2)) * F.pow(F.sin(dlon / 2), 2))
    return F.lit(2 * EARTH_RADIUS_KM) * F.asin(F.sqrt(F.least(a, F.lit(1.0))))


def _gps_jump(rules: AlertRules) -> Rule:
    prev = F.col("_prev_fix")
    elapsed_s = (F.col("_ts_us") - prev["_ts_us"]) / F.lit(float(MICROS))
    distance_km = _haversine_km(prev["latitude"], prev["longitude"], F.col("latitude"),
                                F.col("longitude"))
    hours = F.greatest(elapsed_s, F.lit(rules.gps_jump_min_seconds)) / F.lit(3600.0)
    seconds, km, implied = F.col("_gj_s"), F.col("_gj_km"), F.col("_gj_kmph")
    is_jump = (F.col("gps_valid") & prev.isNotNull()
               & (seconds <= F.lit(rules.gps_jump_max_gap_seconds))
               & (implied > F.lit(rules.gps_jump_kmph)))
    message = F.format_string(
        f"GPS position jumped %.3f km in %.1f s (implied %.0f km/h, limit "
        f"{fmt_threshold(rules.gps_jump_kmph)} km/h)", km, seconds, implied)
    derived = [elapsed_s.alias("_gj_s"), distance_km.alias("_gj_km"),
               F.try_divide(distance_km, hours).alias("_gj_kmph")]
    return derived, candidate(is_jump, "GPS_JUMP", "MEDIUM", message, implied,
                              rules.gps_jump_kmph)


def _speed_anomaly(rules: AlertRules) -> Rule:
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
    zscore = F.try_divide(F.abs(F.col("_centi").cast("double") / F.lit(100.0) - mean_kmph),
                          std_kmph)
    z, mean = F.col("_sa_z"), F.col("_sa_mean")
    is_anomaly = has_baseline & (z > F.lit(rules.speed_anomaly_zscore))
    message = F.format_string(
        f"Speed %s km/h is %.1f standard deviations from the car's mean of %.1f km/h over its "
        f"previous {n} readings", F.col("speed_kmph").cast("string"), z, mean)
    derived = [F.when(has_baseline, zscore).alias("_sa_z"),
               F.when(has_baseline, mean_kmph).alias("_sa_mean")]
    return derived, candidate(is_anomaly, "SPEED_ANOMALY", "LOW", message, z,
                              rules.speed_anomaly_zscore)
