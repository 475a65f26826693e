"""Per-car event-time ranges of one batch and the silver history their stateful alerts need.

Grain of `BatchRanges.cars`: one merged span per car and affected stretch. Ranges are per car,
not fleet-wide: a late reading of one car recomputes that car's readings near it, not every
car's readings of those minutes (measured at 2,000 events/s with 1 % late events: fleet-wide
spans read minutes of every car's history per batch, and grew with the lateness).

Exactness: a reading at t needs the readings of its car in [t - lookback, t]. Each car's
history is the union of its affected spans widened back by the lookback (merged where they
overlap), so every affected reading finds its whole lookback; the readings before a gap are
older than any affected reading's lookback and do not change its alerts (the rules' bounded
lookbacks, see gold/stateful.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Iterable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F, types as T

from gold import ranges
from gold.stateful import REFUEL_HINT
from infra.local_frames import local_frame

HISTORY = ("car_id", "event_id", "event_ts", "speed_kmph", "fuel_level", "engine_temp_c",
           "latitude", "longitude", "gps_valid")
# Column of `history_rows`: the reading lies in its car's affected spans, so this batch may
# change its stateful alerts (the others are only history they look back on).
AFFECTED = "_affected"
# Column of `fast_history`: the carried row that is its car's first known reading (gold/carry.py).
FIRST = "_first"
_GROUPS = T.StructType([T.StructField("_car", T.StringType()),
                        T.StructField("_a_lo", T.LongType()),
                        T.StructField("_h_lo", T.LongType()),
                        T.StructField("_h_hi", T.LongType())])


@dataclass(frozen=True)
class BatchRanges:
    """Minute -> [lo, hi] of the new rows (µs), and car -> its affected spans [lo, hi + ahead]."""

    minutes: dict[int, ranges.Span]
    cars: dict[str, list[ranges.Span]]

    @property
    def affected(self) -> list[ranges.Span]:
        """All cars' affected spans merged (capped: a literal predicate for pruning)."""
        return ranges.merge_spans(span for spans in self.cars.values() for span in spans)


def batch_ranges(new: DataFrame, lookahead: timedelta) -> BatchRanges:
    """The ranges of the new rows, from one small aggregate (one row per car and minute)."""
    ts_us = F.unix_micros("event_ts")
    rows = (new.groupBy("car_id", F.unix_micros(F.date_trunc("minute", "event_ts")).alias("m"))
            .agg(F.min(ts_us).alias("lo"), F.max(ts_us).alias("hi")).collect())
    return ranges_of(((r["car_id"], r["m"], r["lo"], r["hi"]) for r in rows), lookahead)


def ranges_of(car_minutes: Iterable[tuple], lookahead: timedelta | None = None) -> BatchRanges:
    """BatchRanges from (car_id, minute start, lo, hi) per car and minute of the new rows (µs);
    each car's affected spans reach `lookahead` past its readings (None: only the readings)."""
    minutes: dict[int, ranges.Span] = {}
    per_car: dict[str, list[ranges.Span]] = {}
    for car, minute, lo, hi in car_minutes:
        if minute is None or car is None:
            continue
        lo, hi = int(lo), int(hi)
        old = minutes.get(int(minute))
        minutes[int(minute)] = (min(lo, old[0]), max(hi, old[1])) if old else (lo, hi)
        per_car.setdefault(car, []).append((lo, hi))
    ahead = lookahead if lookahead is not None else timedelta(0)
    cars = {car: ranges.affected_spans(spans, ahead) for car, spans in per_car.items()}
    return BatchRanges(minutes, cars)


def history_rows(silver: DataFrame, batch: BatchRanges, lookback: timedelta) -> DataFrame:
    """HISTORY columns + AFFECTED: the silver readings of each car
    within its affected spans widened back by `lookback`."""
    groups = [(car, *group) for car, spans in batch.cars.items()
              for group in _history_groups(spans, lookback)]
    pruning = ranges.pruning_spans((lo, hi) for _, _, lo, hi in groups)
    spans_df = F.broadcast(local_frame(silver.sparkSession, groups, _GROUPS))
    ts_us = F.unix_micros("event_ts")
    in_group = ((F.col("car_id") == F.col("_car"))
                & (ts_us >= F.col("_h_lo")) & (ts_us <= F.col("_h_hi")))
    return (silver.where(ranges.in_spans("event_ts", pruning)).select(*HISTORY)
            .join(spans_df, in_group)
            .select(*HISTORY, (ts_us >= F.col("_a_lo")).alias(AFFECTED)))


def recomputed_spans(affected: list[ranges.Span], lookback: timedelta,
                     first_new_us: int) -> list[ranges.Span]:
    """The readings of a car whose stateful alerts `history_rows` recomputes (AFFECTED) from its
    first new reading on: its affected spans, joined across every gap its history spans close
    (two affected spans less than two lookbacks apart share one history, and the readings
    between them are recomputed too). A late car's held alerts must cover exactly these, or an
    unchanged alert in such a gap would look new (gold/changes.py)."""
    return [(max(a_lo, first_new_us), hi)
            for a_lo, _, hi in _history_groups(affected, lookback) if hi >= first_new_us]


def _history_groups(affected: list[ranges.Span],
                    lookback: timedelta) -> list[tuple[int, int, int]]:
    """Per history span of a car: (first recomputed reading, history start, end), in µs."""
    back = ranges.micros(lookback)
    return [(lo + back, lo, hi) for lo, hi in ranges.history_spans(affected, lookback)]


def slice_rows(silver: DataFrame, slices: list[tuple[str, int, int]]) -> DataFrame:
    """HISTORY rows of silver within each car's slice [lo, hi) (µs; gold/carry.slice_spans)."""
    spans_df = F.broadcast(local_frame(silver.sparkSession, slices, _SLICES))
    ts_us = F.unix_micros("event_ts")
    in_slice = ((F.col("car_id") == F.col("_car")) & (ts_us >= F.col("_lo"))
                & (ts_us < F.col("_hi")))
    pruning = ranges.pruning_spans((lo, hi) for _, lo, hi in slices)
    return (silver.where(ranges.in_spans("event_ts", pruning)).select(*HISTORY)
            .join(spans_df, in_slice).select(*HISTORY))


def fast_history(sliced: DataFrame | None, carried: DataFrame, new: DataFrame) -> DataFrame:
    """HISTORY + REFUEL_HINT + FIRST + AFFECTED of cars whose new readings all follow what
    silver held (gold/carry.py): their carried rows, their slice rows that are not carried, and
    the new readings (the only affected rows). All three hold the same cars."""
    no_hint = F.lit(None).cast("boolean").alias(REFUEL_HINT)
    not_first = F.lit(False).alias(FIRST)
    history = carried.select(*HISTORY, REFUEL_HINT, FIRST, F.lit(False).alias(AFFECTED))
    history = history.unionByName(new.select(*HISTORY, no_hint, not_first,
                                             F.lit(True).alias(AFFECTED)))
    if sliced is not None:
        fresh = sliced.join(F.broadcast(carried.select("event_id")), "event_id", "left_anti")
        history = history.unionByName(fresh.select(*HISTORY, no_hint, not_first,
                                                   F.lit(False).alias(AFFECTED)))
    return history


_SLICES = T.StructType([T.StructField("_car", T.StringType()), T.StructField("_lo", T.LongType()),
                        T.StructField("_hi", T.LongType())])
