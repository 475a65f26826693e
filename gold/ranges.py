"""Event-time ranges an incremental gold update touches, as literal predicates Delta can prune on.

Spans are closed intervals [lo, hi] of microseconds since the epoch (UTC). They are merged and
capped in number, so a batch with events scattered over days still makes a short predicate
(capping only widens spans: recomputing more than needed is correct, just slower).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import reduce
from typing import Iterable

from pyspark.sql import Column
from pyspark.sql import functions as F

Span = tuple[int, int]
MINUTE_US = 60_000_000
MAX_SPANS = 32
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def to_datetime(micros: int) -> datetime:
    """An aware UTC datetime, exact to the microsecond (a literal Spark reads unambiguously)."""
    return _EPOCH + timedelta(microseconds=micros)


def micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def merge_spans(spans: Iterable[Span], max_spans: int = MAX_SPANS) -> list[Span]:
    """Sorted, disjoint spans covering `spans`; the closest ones joined until <= max_spans."""
    merged: list[list[int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    while len(merged) > max(max_spans, 1):
        gaps = [merged[i + 1][0] - merged[i][1] for i in range(len(merged) - 1)]
        i = gaps.index(min(gaps))
        merged[i:i + 2] = [[merged[i][0], max(merged[i][1], merged[i + 1][1])]]
    return [(lo, hi) for lo, hi in merged]


def affected_spans(touched: Iterable[Span], lookahead: timedelta) -> list[Span]:
    """Readings whose stateful alerts new readings in `touched` can change: [lo, hi + ahead]."""
    ahead = micros(lookahead)
    return merge_spans((lo, hi + ahead) for lo, hi in touched)


def history_spans(affected: Iterable[Span], lookback: timedelta) -> list[Span]:
    """History needed to recompute the readings of `affected`: [lo - lookback, hi]."""
    back = micros(lookback)
    return merge_spans((lo - back, hi) for lo, hi in affected)


def minute_spans(minutes: Iterable[int]) -> list[Span]:
    """Closed spans covering the given minute starts (each minute up to its last microsecond)."""
    return merge_spans(((m, m + MINUTE_US - 1) for m in minutes), max_spans=10 * MAX_SPANS)


def pruning_spans(spans: Iterable[Span], unit_us: int = MINUTE_US) -> list[Span]:
    """`spans` widened to whole `unit_us` (a minute) and merged: for a literal predicate that only
    lets Delta skip files (the exact rows are selected by a join). Its literals then change once
    a minute, not every batch: each distinct literal compiles its own code, and new classes
    keep the JVM's JIT compiler busy (measured: over a core at 2,000 events/s)."""
    return merge_spans(((lo // unit_us) * unit_us, -(-(hi + 1) // unit_us) * unit_us - 1)
                       for lo, hi in spans)


def in_spans(column: str, spans: list[Span]) -> Column:
    """`column` (a timestamp) inside one of `spans`; a plain range predicate for data skipping."""
    if not spans:
        return F.lit(False)
    col = F.col(column)
    ranges = [(col >= F.lit(to_datetime(lo))) & (col <= F.lit(to_datetime(hi)))
              for lo, hi in spans]
    return reduce(lambda a, b: a | b, ranges)


def sql_spans(column: str, spans: list[Span]) -> str:
    """SQL text of `column` within `spans` (timestamps as exact UTC literals), for a MERGE
    condition or a replaceWhere."""
    def lit(us: int) -> str:
        return f"TIMESTAMP '{to_datetime(us).strftime('%Y-%m-%d %H:%M:%S.%f')}+00:00'"
    return " OR ".join(f"({column} BETWEEN {lit(lo)} AND {lit(hi)})" for lo, hi in spans) or "false"
