"""What a replay changes, as row-level diffs per table (pure DataFrame functions).

Silver and quarantine are recomputed from the bronze rows in range with the stream's own pure
transforms (`validate`, `valid_rows`, `quarantine_rows`, `first_copies`) and the current rules.
A replay range is a suffix of bronze in arrival order (all of it, rows ingested since T, or rows
added since bronze version V), so an event whose first copy arrived before the range keeps the
silver row it has; every other event of the range gets its first copy of the range. Rows of the
current tables that came from bronze rows in range (matched by Kafka coordinates) are the ones
compared and replaced.

Gold is recomputed from the whole resulting silver with `gold_from_silver` (the reference the
stream's incremental gold must equal) and compared with the whole current gold table: after a
replay, gold equals a batch recomputation from silver under the current rules.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from gold.rebuild import gold_from_silver
from gold.schema import GOLD_KEYS
from infra.settings import AlertRules, ValidationRules
from ops.catalog import KAFKA_COORDINATES
from ops.diff import diff_by_key
from silver.dedup import first_copies
from silver.validate import quarantine_rows, valid_rows, validate

QUARANTINE_IGNORED = ("quarantined_at",)  # when a row was quarantined is not a change


@dataclass(frozen=True)
class SilverPlan:
    """Diffs of silver/telemetry (by event_id) and silver/quarantine (by Kafka coordinates), and
    the silver table the replay leaves (input of the gold plan)."""

    silver_diff: DataFrame
    quarantine_diff: DataFrame
    silver_after: DataFrame


def _coordinates(frame: DataFrame) -> DataFrame:
    return frame.select(*KAFKA_COORDINATES).distinct()


def plan_silver(bronze_in_range: DataFrame, silver: DataFrame, quarantine: DataFrame,
                rules: ValidationRules, quarantined_at: Column) -> SilverPlan:
    """Silver and quarantine as the current rules make them for `bronze_in_range`."""
    validated = validate(bronze_in_range, rules)
    in_range = _coordinates(bronze_in_range)
    silver_in_range = silver.join(in_range, list(KAFKA_COORDINATES), "left_semi")
    silver_kept = silver.join(in_range, list(KAFKA_COORDINATES), "left_anti")
    candidates = first_copies(valid_rows(validated))
    new_silver = (candidates.join(silver_kept.select("event_id"), "event_id", "left_anti")
                  .select(*silver.columns))
    new_quarantine = quarantine_rows(validated, quarantined_at).select(*quarantine.columns)
    quarantine_in_range = quarantine.join(in_range, list(KAFKA_COORDINATES), "left_semi")
    return SilverPlan(
        silver_diff=diff_by_key(silver_in_range, new_silver, ["event_id"]),
        quarantine_diff=diff_by_key(quarantine_in_range, new_quarantine,
                                    list(KAFKA_COORDINATES), ignore=QUARANTINE_IGNORED),
        silver_after=silver_kept.unionByName(new_silver))


def plan_gold(silver_after: DataFrame, gold: dict[str, DataFrame],
              rules: AlertRules) -> dict[str, DataFrame]:
    """Per gold table recomputed by `gold_from_silver`: its diff with the current table."""
    desired = gold_from_silver(silver_after, rules)
    return {name: diff_by_key(gold[name], frame.select(*gold[name].columns), GOLD_KEYS[name])
            for name, frame in desired.items()}


def bronze_since(bronze: DataFrame, moment: Column) -> DataFrame:
    """Bronze rows ingested at or after `moment`."""
    return bronze.where(F.col("ingested_at") >= moment)


def bronze_added_after(bronze: DataFrame, bronze_before: DataFrame) -> DataFrame:
    """Bronze rows not in an earlier version of the table (bronze is append-only)."""
    return bronze.join(_coordinates(bronze_before), list(KAFKA_COORDINATES), "left_anti")
