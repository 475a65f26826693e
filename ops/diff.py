"""Row-level difference of two versions of a table, by its key (audit diff and replay).

Grain of `diff_by_key`: one row per key whose row was added, removed or changed, with the key
columns, `_change` ('added', 'removed', 'changed') and the whole row before (`_before`) and after
(`_after`) as structs (null on the side where the key is absent). Values compare null-safely;
maps compare by their sorted entries (Spark cannot compare maps).
"""
from __future__ import annotations

from typing import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F, types as T

CHANGE = "_change"
BEFORE, AFTER = "_before", "_after"
ADDED, REMOVED, CHANGED = "added", "removed", "changed"


def _comparable(name: str, dtype: T.DataType) -> Column:
    col = F.col(f"`{name}`")
    if isinstance(dtype, T.MapType):
        return F.array_sort(F.map_entries(col))
    return col


def _side(frame: DataFrame, keys: Sequence[str], compare: Sequence[str], tag: str) -> DataFrame:
    types = {f.name: f.dataType for f in frame.schema.fields}
    values = [c for c in frame.columns if c not in keys]
    return frame.select(
        *[F.col(f"`{k}`") for k in keys],
        F.struct(*[F.col(f"`{c}`") for c in values]).alias(f"_row{tag}"),
        F.struct(*[_comparable(c, types[c]).alias(c) for c in compare]).alias(f"_cmp{tag}"),
        F.lit(True).alias(f"_in{tag}"))


def diff_by_key(before: DataFrame, after: DataFrame, keys: Sequence[str],
                ignore: Sequence[str] = ()) -> DataFrame:
    """Rows whose key is only in `before` (removed), only in `after` (added), or in both with
    other values (changed). Columns in `ignore` do not count as a change."""
    if not keys:
        raise ValueError("a diff needs key columns")
    compare = [c for c in after.columns if c not in keys and c not in ignore]
    joined = _side(before, keys, compare, "_b").join(_side(after, keys, compare, "_a"),
                                                     list(keys), "full_outer")
    change = (F.when(F.col("_in_b").isNull(), F.lit(ADDED))
              .when(F.col("_in_a").isNull(), F.lit(REMOVED))
              .when(~F.col("_cmp_b").eqNullSafe(F.col("_cmp_a")), F.lit(CHANGED)))
    return (joined.select(*[F.col(f"`{k}`") for k in keys], change.alias(CHANGE),
                          F.col("_row_b").alias(BEFORE), F.col("_row_a").alias(AFTER))
            .where(F.col(CHANGE).isNotNull()))


def change_counts(diff: DataFrame) -> dict[str, int]:
    """{'added': n, 'removed': n, 'changed': n} of a `diff_by_key` result (one job)."""
    counts = {ADDED: 0, REMOVED: 0, CHANGED: 0}
    for row in diff.groupBy(CHANGE).count().collect():
        counts[row[CHANGE]] = int(row["count"])
    return counts


def changed_columns(before: dict, after: dict) -> list[str]:
    """Names of the fields that differ between two collected rows (as dicts)."""
    return [name for name in after if before.get(name) != after.get(name)]
