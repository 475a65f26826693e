"""The minutes a gold batch's KPI update rewrites, and their held rows read ahead of time.

A batch rewrites device_minute_kpis on the minutes of its readings and of its alert changes.
The alert changes are known only after the alerts step, but they all lie in the minutes of the
readings and of the late cars' recomputed readings (gold/history.recomputed_spans), which are
known before it: the held rows of those minutes are read while the alerts are computed, and the
touched minutes' rows taken from them afterwards (no read on the critical path).
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from gold import ranges

# Late stretches over more minutes than this (a day) are not read ahead: read when needed.
MAX_PREFETCH_MINUTES = 24 * 60


def prefetch_spans(reading_minutes: set[int],
                   late_spans: dict[str, list[ranges.Span]]) -> list[ranges.Span]:
    """Minute spans holding every minute a batch's KPI update can touch: its readings' minutes
    (starts, µs) and those of each late car's recomputed readings (`late_spans`, µs)."""
    late_minutes = {minute for spans in late_spans.values() for lo, hi in spans
                    for minute in range(lo // ranges.MINUTE_US * ranges.MINUTE_US, hi + 1,
                                        ranges.MINUTE_US)} - reading_minutes
    if len(late_minutes) > MAX_PREFETCH_MINUTES:
        late_minutes = set()
    return ranges.minute_spans(reading_minutes | late_minutes)


def held_in(rows: pa.Table, prefetched: list[ranges.Span],
            minutes: list[ranges.Span]) -> pa.Table | None:
    """The rows of `rows` (the held rows of the `prefetched` spans) whose window_start lies in
    `minutes`; None when part of `minutes` lies outside what was prefetched."""
    covered = all(any(p_lo <= lo and hi <= p_hi for p_lo, p_hi in prefetched)
                  for lo, hi in minutes)
    if not covered:
        return None
    starts = pc.cast(rows.column("window_start"), pa.int64())
    mask = pa.repeat(pa.scalar(False), rows.num_rows)
    for lo, hi in minutes:
        mask = pc.or_(mask, pc.and_(pc.greater_equal(starts, lo), pc.less_equal(starts, hi)))
    return rows.filter(mask)
