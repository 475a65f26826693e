"""Threshold alerts (docs/contracts.md "Alerts"): every matching rule of a silver reading fires.

One pass, no Python UDF: rows matching no rule are filtered out first (the OR of the named
conditions), then each remaining row's array of rule structs (null where the rule does not
match) is compacted and `inline`d into alert rows. Measured on 2M generated readings (2 cores,
noop sink, 40% alerting): union of four filters 3.8-4.3 s (input evaluated once per rule),
array + inline 2.2-2.8 s, filter + array + inline 1.3-1.4 s (messages built for alerting rows only).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F, types as T

from gold.schema import ALERTS_COLUMNS
from infra.columns import per_context
from infra.settings import AlertRules

ALERT_ID_HEX_CHARS = 32


def alert_id(event_id: Column, alert_type: Column) -> Column:
    """Deterministic key of one (event_id, alert_type): first 32 hex of sha256("<id>|<type>")."""
    digest = F.sha2(F.concat(event_id, F.lit("|"), alert_type), 256)
    return F.substring(digest, 1, ALERT_ID_HEX_CHARS)


def fmt_threshold(value: float) -> str:
    """A threshold as people write it in a message: 140.0 -> '140', 10.5 -> '10.5'."""
    return f"{value:g}"


def reading_text(value: Column) -> Column:
    """A reading as received (Spark's shortest double text, e.g. 152.3)."""
    return value.cast(T.StringType())


@dataclass(frozen=True)
class Candidate:
    """One rule on one row: whether it fires, and its alert struct (null when it does not)."""

    fires: Column
    alert: Column


_ALERT_STRUCT = ("struct<alert_type:string,severity:string,message:string,"
                 "observed_value:double,threshold:double>")


def candidate(fires: Column, alert_type: str, severity: str, message: Column,
              observed: Column | None, threshold: float | None) -> Candidate:
    """The rule `alert_type` on a row: its alert when `fires` is true."""
    observed_col = observed if observed is not None else F.lit(None)
    threshold_col = F.lit(threshold) if threshold is not None else F.lit(None)
    return Candidate(fires, F.when(fires, F.struct(
        F.lit(alert_type).alias("alert_type"),
        F.lit(severity).alias("severity"),
        message.alias("message"),
        observed_col.cast(T.DoubleType()).alias("observed_value"),
        threshold_col.cast(T.DoubleType()).alias("threshold"),
    )))


@dataclass(frozen=True)
class Fired:
    """The firing test of a set of candidates: any of them fires, and their alert structs."""

    any_fires: Column
    alerts: Column  # array of the firing candidates' alert structs


def fired(candidates: list[Candidate]) -> Fired:
    """The combined test of `candidates` (a null alert struct where none is given)."""
    if not candidates:
        return Fired(F.lit(False), F.array_compact(F.array(F.lit(None).cast(_ALERT_STRUCT))))
    any_fires = reduce(lambda a, b: a | b, [F.coalesce(c.fires, F.lit(False))
                                            for c in candidates])
    return Fired(any_fires, F.array_compact(F.array(*[c.alert for c in candidates])))


def alerts_from(df: DataFrame, candidates: list[Candidate] | Fired,
                keep: tuple[str, ...] = ()) -> DataFrame:
    """ALERTS rows (+ `keep` columns): one per firing candidate of each input row."""
    test = candidates if isinstance(candidates, Fired) else fired(candidates)
    rows = df.where(test.any_fires).select(*keep, "event_id", "car_id", "event_ts",
                                           F.inline(test.alerts))
    return rows.select(*keep, *_alert_columns())


@per_context
def _alert_columns() -> tuple[Column, ...]:
    """ALERTS columns of an exploded alert row, alert_id computed."""
    return (alert_id(F.col("event_id"), F.col("alert_type")).alias("alert_id"),
            *[F.col(c) for c in ALERTS_COLUMNS if c != "alert_id"])


def threshold_alerts(silver_df: DataFrame, rules: AlertRules,
                     keep: tuple[str, ...] = ()) -> DataFrame:
    """ALERTS rows (+ `keep` columns), one per (silver reading, matching threshold rule)."""
    return alerts_from(silver_df, _threshold_rules(rules), keep)


@per_context
def _threshold_rules(rules: AlertRules) -> Fired:
    """The four threshold rules' test (built once per context: every hot batch applies it)."""
    speed, temp, fuel = F.col("speed_kmph"), F.col("engine_temp_c"), F.col("fuel_level")
    lat, lon = F.col("latitude"), F.col("longitude")
    is_overspeed = speed > F.lit(rules.overspeed_kmph)
    is_engine_overheat = temp > F.lit(rules.overheat_c)
    is_low_fuel = fuel < F.lit(rules.low_fuel_pct)
    is_gps_invalid = ~F.coalesce(F.col("gps_valid"), F.lit(False))  # silver decides validity
    is_gps_missing = lat.isNull() | lon.isNull()

    overspeed_msg = F.concat(F.lit("Speed "), reading_text(speed),
                             F.lit(f" km/h above {fmt_threshold(rules.overspeed_kmph)} km/h"))
    overheat_msg = F.concat(F.lit("Engine temperature "), reading_text(temp),
                            F.lit(f" °C above {fmt_threshold(rules.overheat_c)} °C"))
    low_fuel_msg = F.concat(F.lit("Fuel level "), reading_text(fuel),
                            F.lit(f"% below {fmt_threshold(rules.low_fuel_pct)}%"))
    gps_msg = F.when(is_gps_missing, F.lit("GPS position missing")).otherwise(F.concat(
        F.lit("GPS position invalid (lat "), reading_text(lat), F.lit(", lon "),
        reading_text(lon), F.lit(")")))

    candidates = [
        candidate(is_overspeed, "OVERSPEED", "MEDIUM", overspeed_msg, speed, rules.overspeed_kmph),
        candidate(is_engine_overheat, "ENGINE_OVERHEAT", "HIGH", overheat_msg, temp,
                  rules.overheat_c),
        candidate(is_low_fuel, "LOW_FUEL", "LOW", low_fuel_msg, fuel, rules.low_fuel_pct),
        candidate(is_gps_invalid, "GPS_INVALID", "LOW", gps_msg, None, None),
    ]
    return fired(candidates)
