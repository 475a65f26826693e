"""A plain-Python reading of docs/contracts.md "Validation" for one Kafka record.

Not the pipeline's validator (that is silver, in Spark): a small independent reference that
tests and tools use to check that every injected fault carries the reason codes silver must
give it, and to predict silver's outcome for what a topic holds.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

from ingestion.event import NUMERIC_FIELDS, REQUIRED_FIELDS

_TS = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?")


class _Malformed(ValueError):
    pass


def _no_constants(token: str) -> Any:
    raise _Malformed(f"{token} is not JSON")


def parse_object(value: bytes | None) -> dict[str, Any] | None:
    """The record's JSON object, or None when silver must call it MALFORMED_JSON. A repeated
    key keeps its last value, as Spark's parsers do (never a reason)."""
    if not value:
        return None
    try:
        obj = json.loads(value.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def parse_event_time_ms(text: str) -> int | None:
    """Epoch ms of a contract timestamp (no zone = UTC), or None if it cannot be parsed."""
    if not _TS.fullmatch(text):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp() * 1000)


def reasons_for(value: bytes | None, kafka_ts_ms: int, rules) -> tuple[str, ...]:
    """Every reason code (sorted) silver must give this record; () means valid."""
    reasons: list[str] = []
    if value is not None and len(value) > rules.max_payload_bytes:
        reasons.append("PAYLOAD_TOO_LARGE")
    event = parse_object(value)
    if event is None:
        return tuple(sorted(reasons + ["MALFORMED_JSON"]))
    ranges = {"speed_kmph": (rules.speed_min, rules.speed_max),
              "fuel_level": (rules.fuel_min, rules.fuel_max),
              "engine_temp_c": (rules.engine_temp_min, rules.engine_temp_max)}
    for name in REQUIRED_FIELDS:
        field = event.get(name)
        if field is None or (name == "car_id" and field == ""):
            reasons.append(f"MISSING_FIELD:{name}")
        elif name in NUMERIC_FIELDS:
            if isinstance(field, bool) or not isinstance(field, (int, float)):
                reasons.append(f"TYPE_MISMATCH:{name}")
            elif not ranges[name][0] <= field <= ranges[name][1]:
                reasons.append(f"OUT_OF_RANGE:{name}")
        elif not isinstance(field, str):
            reasons.append(f"TYPE_MISMATCH:{name}")
        elif name == "event_timestamp":
            ts_ms = parse_event_time_ms(field)
            if ts_ms is None:
                reasons.append("BAD_TIMESTAMP")
            elif ts_ms > kafka_ts_ms + rules.future_tolerance_seconds * 1000:
                reasons.append("TIMESTAMP_IN_FUTURE")
    return tuple(sorted(reasons))


def dedup_key(event: dict[str, Any]) -> str:
    """What silver de-duplicates a valid event on: `event_id`, else (car, trip, timestamp)."""
    if event.get("event_id"):
        return str(event["event_id"])
    return f"{event['car_id']}|{event.get('trip_id')}|{event['event_timestamp']}"
