"""How a synced row meets the row PostgreSQL already holds under its key (serving/sync.py).

Two queries write some gold tables in PostgreSQL (docs/architecture.md): the hot query first,
within seconds, and the gold query later with the rows of the Delta tables. Their policies make
the result the Delta table's once the gold query has caught up, whatever order they commit in.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Upsert:
    """`update=False` keeps the existing row (ON CONFLICT DO NOTHING); `only_if` is a fixed SQL
    condition over `t` (the existing row) and `EXCLUDED` (the incoming one): the row is updated
    only when it holds. Conditions are code, never user input."""

    update: bool = True
    only_if: str | None = None


# The gold query's rows: Delta's, as they are.
REPLACE = Upsert()
# Threshold alerts from the hot query: an alert id is (event, type), so an existing row is the
# same alert; the gold query replaces it with the Delta row if ever they differ.
KEEP_EXISTING = Upsert(update=False)
# device_latest from the hot query: only a later reading replaces a car's row (the order of
# gold/kpis.py LATEST_ORDER, ids compared bytewise as Spark does), and never a copy of the
# reading already there (a retransmission carries a later Kafka timestamp).
LATEST_IF_LATER = Upsert(only_if=(
    '(EXCLUDED.event_ts, EXCLUDED.kafka_timestamp, EXCLUDED.event_id COLLATE "C") > '
    '(t.event_ts, t.kafka_timestamp, t.event_id COLLATE "C") '
    "AND EXCLUDED.event_id <> t.event_id"))
# device_latest from the gold query: the latest new reading of each car in a batch. It replaces
# an earlier reading, and at the same event time a copy of the same event (the hot query may
# have served a retransmission's Kafka time) or a row it follows in the order above; a row
# the hot query stored that the gold query has not reached yet stays.
LATEST_UNLESS_AHEAD = Upsert(only_if=(
    "EXCLUDED.event_ts > t.event_ts OR (EXCLUDED.event_ts = t.event_ts AND ("
    "EXCLUDED.event_id = t.event_id OR "
    '(EXCLUDED.kafka_timestamp, EXCLUDED.event_id COLLATE "C") >= '
    '(t.kafka_timestamp, t.event_id COLLATE "C")))'))
