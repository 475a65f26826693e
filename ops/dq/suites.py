"""Data-quality suites as data: one `Check` list per table, generated from the rule source.

Ranges, required fields and reason codes come from `silver/rules.py` + `ValidationRules`
(the same source silver validation uses), alert types and keys from `gold/schema.py`, so a
threshold lives in one place. Each check has a readable name (what a failure report says), a
severity (critical fails `dq report`), and builds its Great Expectations expectation.
SQL checks (`rows`) list the offending rows of `{batch}` (GX UnexpectedRowsExpectation).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import great_expectations.expectations as gxe

from gold.schema import ALERT_TYPES, SEVERITIES, alert_count_column
from infra.settings import Settings
from ops.catalog import LakeTable, lake_table
from silver import rules as R

CRITICAL, WARNING = "critical", "warning"
ACCOUNTING = "lake/accounting"  # a derived one-row table: counts of every layer
SILVER_VIEW = "fleetlake_dq_silver"  # silver/telemetry, registered for cross-table checks


@dataclass(frozen=True)
class Check:
    """One expectation: `kind` is a GX expectation class name, `kwargs` its arguments."""

    name: str
    kind: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    severity: str = CRITICAL

    def expectation(self) -> gxe.Expectation:
        return getattr(gxe, self.kind)(**self.kwargs, description=self.name,
                                       severity=self.severity, meta={"name": self.name})


def unique(*columns: str) -> Check:
    if len(columns) == 1:
        return Check(f"{columns[0]} is unique", "ExpectColumnValuesToBeUnique",
                     {"column": columns[0]})
    return Check(f"({', '.join(columns)}) is unique", "ExpectCompoundColumnsToBeUnique",
                 {"column_list": list(columns)})


def not_null(*columns: str) -> list[Check]:
    return [Check(f"{c} is not null", "ExpectColumnValuesToNotBeNull", {"column": c})
            for c in columns]


def between(column: str, low: float | None, high: float | None) -> Check:
    text = (f"{column} between {low:g} and {high:g}" if low is not None and high is not None
            else f"{column} >= {low:g}" if low is not None else f"{column} <= {high:g}")
    return Check(text, "ExpectColumnValuesToBeBetween",
                 {"column": column, "min_value": low, "max_value": high})


def in_set(column: str, values: tuple[str, ...]) -> Check:
    return Check(f"{column} in {{{', '.join(values)}}}", "ExpectColumnValuesToBeInSet",
                 {"column": column, "value_set": list(values)})


def query(name: str, sql: str, severity: str = CRITICAL) -> Check:
    """`sql` (over `{batch}`, the table) returns no row."""
    return Check(name, "UnexpectedRowsExpectation", {"unexpected_rows_query": sql}, severity)


def rows(name: str, where: str, severity: str = CRITICAL) -> Check:
    """No row of the table matches `where` (a Spark SQL condition)."""
    return query(name, f"SELECT * FROM {{batch}} WHERE {where}", severity)


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _ts(moment: datetime) -> str:
    return f"TIMESTAMP '{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S}'"


def _ranges(settings: Settings) -> list[Check]:
    return [between(r.field, r.min, r.max) for r in R.range_rules(settings.validation)]


def _silver_column(field_name: str) -> str:
    return "event_ts" if field_name == R.TIMESTAMP_FIELD else field_name


def silver_checks(settings: Settings, now: datetime) -> list[Check]:
    rules = settings.validation
    fresh = now - timedelta(minutes=settings.dq.freshness_minutes)
    gps = " AND ".join(f"{g.field} BETWEEN {g.min:g} AND {g.max:g}" for g in R.GPS_RANGES)
    blank = [_silver_column(f.name) for f in R.FIELDS if f.non_blank]
    return [
        unique("event_id"), unique("topic", "partition", "offset"),
        *not_null("event_id", *[_silver_column(n) for n in R.REQUIRED_FIELDS], "gps_valid"),
        *_ranges(settings),
        *[rows(f"{c} is not blank", f"trim({c}) = ''") for c in blank],
        rows(f"event_ts at most {rules.future_tolerance_seconds}s after kafka_timestamp",
             f"event_ts > kafka_timestamp + INTERVAL {rules.future_tolerance_seconds} SECONDS"),
        rows("gps_valid means a plausible fix",
             f"gps_valid AND NOT ({gps} AND NOT (latitude = 0 AND longitude = 0))"),
        query(f"newest event_ts at most {settings.dq.freshness_minutes:g} min old",
              "SELECT max(event_ts) AS newest FROM {batch} "
              f"HAVING coalesce(max(event_ts) < {_ts(fresh)}, true)", WARNING),
    ]


def quarantine_checks(settings: Settings) -> list[Check]:
    codes = R.all_reason_codes(settings.validation)
    return [
        unique("topic", "partition", "offset"), *not_null("reasons", "quarantined_at"),
        rows("every row has a reason", "size(reasons) = 0"),
        rows("every reason is a known code",
             f"exists(reasons, r -> NOT r IN ({_quoted(codes)}))"),
    ]


def _alert_counts_add_up() -> Check:
    total = " + ".join(alert_count_column(kind) for kind in ALERT_TYPES)
    return rows("alerts = the sum of the per-type counts", f"alerts != {total}")


def _kpi_ranges(settings: Settings) -> list[Check]:
    v = settings.validation
    return [between("avg_speed_kmph", v.speed_min, v.speed_max),
            between("max_speed_kmph", v.speed_min, v.speed_max),
            between("max_engine_temp_c", v.engine_temp_min, v.engine_temp_max),
            between("min_fuel_level", v.fuel_min, v.fuel_max)]


def gold_checks(settings: Settings, name: str) -> list[Check]:
    if name == "alerts":
        return [unique("alert_id"),
                *not_null("alert_id", "event_id", "car_id", "event_ts", "alert_type",
                          "severity"),
                in_set("alert_type", ALERT_TYPES), in_set("severity", SEVERITIES),
                rows("alert_id = sha256(event_id|alert_type)",
                     "alert_id != substring(sha2(concat(event_id, '|', alert_type), 256), 1, 32)"),
                query("every alert's event is in silver",
                      f"SELECT * FROM {{batch}} a LEFT ANTI JOIN {SILVER_VIEW} s "
                      f"ON a.event_id = s.event_id")]
    if name == "device_minute_kpis":
        return [unique("car_id", "window_start"), *not_null("car_id", "window_start"),
                between("events", 1, None), *_kpi_ranges(settings), _alert_counts_add_up(),
                rows("window_start is a minute", "window_start != date_trunc('minute', "
                                                 "window_start)")]
    if name == "fleet_minute_kpis":
        v = settings.validation
        return [unique("window_start"), *not_null("window_start"),
                between("active_cars", 1, None), rows("events >= active_cars",
                                                      "events < active_cars"),
                between("avg_speed_kmph", v.speed_min, v.speed_max), _alert_counts_add_up()]
    if name == "device_latest":
        return [unique("car_id"), *not_null("car_id", "event_id", "event_ts"),
                *_ranges(settings)]
    if name == "dq_batch_metrics":
        return [unique("query_id", "batch_id"),
                rows("rows_in = valid_rows + quarantined_rows per batch",
                     "rows_in != valid_rows + quarantined_rows"),
                rows("no negative count in a stream batch",
                     "NOT query_id LIKE 'replay:%' AND least(rows_in, valid_rows, "
                     "quarantined_rows, duplicate_rows) < 0"),
                rows("duplicate_rows <= valid_rows per stream batch",
                     "NOT query_id LIKE 'replay:%' AND duplicate_rows > valid_rows")]
    return []


def accounting_checks(pipeline_running: bool) -> list[Check]:
    """Checks of the one-row ACCOUNTING frame (see ops/dq/frames.py)."""
    return [
        Check("batches' rows_in = silver + quarantine + duplicates",
              "ExpectColumnPairValuesToBeEqual",
              {"column_A": "batch_rows_in", "column_B": "accounted_rows"}),
        Check("bronze rows = batches' rows_in (every bronze row processed once)",
              "ExpectColumnPairValuesToBeEqual",
              {"column_A": "bronze_rows", "column_B": "batch_rows_in"},
              WARNING if pipeline_running else CRITICAL),
    ]


def suites(settings: Settings, now: datetime,
           pipeline_running: bool) -> dict[str, list[Check]]:
    """Table name -> its checks, for every table a report covers (in report order)."""
    out = {"silver/telemetry": silver_checks(settings, now),
           "silver/quarantine": quarantine_checks(settings)}
    for name in ("alerts", "device_minute_kpis", "fleet_minute_kpis", "device_latest",
                 "dq_batch_metrics"):
        out[f"gold/{name}"] = gold_checks(settings, name)
    out[ACCOUNTING] = accounting_checks(pipeline_running)
    return out


def table_of(name: str) -> LakeTable | None:
    """The lake table a suite validates (None for derived frames such as ACCOUNTING)."""
    return None if name == ACCOUNTING else lake_table(name)
