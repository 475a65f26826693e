"""device_latest kept up to date on the driver: the latest of (held rows, a batch's rows) per car.

Grain: one row per car. The order is gold/kpis.device_latest's (the recomputation from silver,
in Spark): the greatest (event_ts, kafka_timestamp, event_id, then the other columns), a null
below any value, as Spark orders the struct it takes the max of. In Arrow, because a gold batch
holds at most one row per car from each side (a few thousand rows): as a Spark job it cost a
batch about a second (a local relation, a plan, a job) after PostgreSQL was served.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from gold.kpis import LATEST_ORDER
from gold.schema import DEVICE_LATEST_SCHEMA
from infra.local_frames import arrow_schema

_LATEST = arrow_schema(DEVICE_LATEST_SCHEMA)
_ORDER = (*LATEST_ORDER, *[c for c in _LATEST.names if c != "car_id" and c not in LATEST_ORDER])


def latest_per_car(*tables: pa.Table) -> pa.Table:
    """DEVICE_LATEST rows: per car, the greatest of its rows in `tables` (device_latest rows)."""
    rows = pa.concat_tables([t.select(_LATEST.names).cast(_LATEST) for t in tables])
    if rows.num_rows == 0:
        return rows
    order = pc.sort_indices(rows, sort_keys=[("car_id", "ascending", "at_end"), *[
        (c, "descending", "at_end") for c in _ORDER]])  # descending, a null last: the least
    ranked = rows.take(order)
    cars = ranked.column("car_id").combine_chunks()
    first_of_car = pc.not_equal(cars[1:], cars[:-1])
    keep = pa.concat_arrays([pa.array([True]), first_of_car.cast(pa.bool_())])
    return ranked.filter(keep)
