"""Fault injection: each kind at its own rate, each message tagged with what silver must do.

A tag (kind, outcome, reasons) travels with a message inside the producer only (never on the
wire): outcome is `valid`, `quarantined` (with the reason codes of docs/contracts.md) or `duplicate`.
Quarantine faults are built from the car's clean reading (decoded, altered, re-encoded), so
everything except the fault is a real reading.
"""
from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from typing import Callable

from ingestion.event import (NUMERIC_FIELDS, REQUIRED_FIELDS, SHAPE_COURSE, encode_json,
                             format_timestamp, to_course_shape)

VALID, QUARANTINED, DUPLICATE = "valid", "quarantined", "duplicate"


@dataclass(frozen=True)
class Tag:
    """What one produced message is, and what silver must make of it."""

    kind: str
    outcome: str
    reasons: tuple[str, ...] = ()


CLEAN = Tag("clean", VALID)
LATE = Tag("late", VALID)
COURSE = Tag("course_shape", VALID)
RETRANSMIT = Tag("duplicate", DUPLICATE)

# Strings Spark's try_to_timestamp (UTC) returns null for (checked on Spark 4.2).
BAD_TIMESTAMPS = ("not-a-timestamp", "2026-13-45T25:61:00Z", "yesterday at noon",
                  "28/11/2026 10:00:00", "2026-02-30T10:00:00Z", "Nov 28 2026 10:00")
MIN_FUTURE_S = 600.0  # future faults lie at least this far after the send time (contract: 300)
LATE_DELAY_S = (60.0, 3 * 3600.0)  # late events are held back this long (log-uniform)


def _with_reasons(kind: str) -> Callable[[tuple[str, ...]], Tag]:
    return lambda reasons: Tag(kind, QUARANTINED, tuple(sorted(reasons)))


class FaultContext:
    """What a quarantine fault needs: the clean reading, an rng, limits and the send clock."""

    def __init__(self, rng: random.Random, validation, now_ms: Callable[[], int]) -> None:
        self.rng, self.validation, self.now_ms = rng, validation, now_ms


def _malformed(ctx: FaultContext, clean: bytes) -> tuple[bytes | None, tuple[str, ...]]:
    rng, variant = ctx.rng, ctx.rng.randrange(6)
    if variant == 0:
        value = clean[:rng.randrange(1, len(clean) - 1)]  # truncated: the object never closes
    elif variant == 1:
        value = b"car_id=" + clean[11:19] + b";speed=87.5"
    elif variant == 2:
        value = clean[:12] + b"\xff\xfe" + clean[12:]  # not UTF-8 inside car_id
    elif variant == 3:
        value = clean.replace(b'","speed_kmph"', b'" "speed_kmph"', 1)  # missing comma
    else:
        value = b"" if variant == 4 else None  # empty and null (tombstone) values
    return value, ("MALFORMED_JSON",)


def _not_object(ctx: FaultContext, clean: bytes) -> tuple[bytes | None, tuple[str, ...]]:
    choices = (b"[" + clean + b"]", b'"' + clean[11:19] + b'"', b"42", b"null", b"true")
    return ctx.rng.choice(choices), ("MALFORMED_JSON",)


def _missing(ctx: FaultContext, event: dict) -> tuple[str, ...]:
    names = ctx.rng.sample(REQUIRED_FIELDS, ctx.rng.choice((1, 1, 2)))
    for name in names:
        variant = ctx.rng.randrange(3 if name == "car_id" else 2)
        if variant == 0:
            del event[name]
        else:
            event[name] = None if variant == 1 else ""
    return tuple(f"MISSING_FIELD:{n}" for n in names)


def _mistyped(ctx: FaultContext, event: dict) -> tuple[str, ...]:
    name = ctx.rng.choice(NUMERIC_FIELDS + ("car_id",))
    if name == "car_id":
        event[name] = int(event[name].rsplit("-", 1)[-1])
    else:
        event[name] = ctx.rng.choice((str(event[name]), True, False, "NaN"))
    return (f"TYPE_MISMATCH:{name}",)


def _bad_timestamp(ctx: FaultContext, event: dict) -> tuple[str, ...]:
    event["event_timestamp"] = ctx.rng.choice(BAD_TIMESTAMPS)
    return ("BAD_TIMESTAMP",)


def _future(ctx: FaultContext, event: dict) -> tuple[str, ...]:
    ahead_s = max(MIN_FUTURE_S, ctx.validation.future_tolerance_seconds * 2.0)
    ahead_ms = int(ctx.rng.uniform(ahead_s, 48 * 3600.0) * 1000)
    event["event_timestamp"] = format_timestamp(ctx.now_ms() + ahead_ms)
    return ("TIMESTAMP_IN_FUTURE",)


def _out_of_range(ctx: FaultContext, event: dict) -> tuple[str, ...]:
    v, rng = ctx.validation, ctx.rng
    bounds = {"speed_kmph": (v.speed_min, v.speed_max), "fuel_level": (v.fuel_min, v.fuel_max),
              "engine_temp_c": (v.engine_temp_min, v.engine_temp_max)}
    names = rng.sample(NUMERIC_FIELDS, rng.choice((1, 1, 2)))
    for name in names:
        low, high = bounds[name]
        below = rng.random() < 0.5
        outside = low - rng.uniform(1.0, 50.0) if below else high + rng.uniform(1.0, 100.0)
        event[name] = round(outside, 1)
    return tuple(f"OUT_OF_RANGE:{n}" for n in names)


def _nan(ctx: FaultContext, event: dict) -> tuple[str, ...]:
    event[ctx.rng.choice(NUMERIC_FIELDS)] = ctx.rng.choice((math.nan, math.inf, -math.inf))
    return ("MALFORMED_JSON",)  # NaN / Infinity tokens are not JSON


def _oversized(ctx: FaultContext, event: dict) -> tuple[str, ...]:
    size = len(encode_json(event)) + len(',"padding":""')
    event["padding"] = "x" * (ctx.validation.max_payload_bytes - size + ctx.rng.randint(1, 8192))
    return ("PAYLOAD_TOO_LARGE",)


RAW_FAULTS = {"malformed_json": _malformed, "not_object": _not_object}
FIELD_FAULTS = {"missing_field": _missing, "mistyped_field": _mistyped,
                "bad_timestamp": _bad_timestamp, "future_timestamp": _future,
                "out_of_range": _out_of_range, "nan_infinity": _nan, "oversized": _oversized}
STREAM_FAULTS = ("duplicate", "late", "course_shape")
FAULT_KINDS = tuple(RAW_FAULTS) + tuple(FIELD_FAULTS) + STREAM_FAULTS

PRESETS: dict[str, dict[str, float]] = {
    "none": {},
    "default": {  # 5.55 % of readings: 2.55 % quarantined, 1 % duplicates, 2 % late/course
        "malformed_json": 0.004, "not_object": 0.002, "missing_field": 0.004,
        "mistyped_field": 0.004, "bad_timestamp": 0.003, "future_timestamp": 0.002,
        "out_of_range": 0.004, "nan_infinity": 0.002, "oversized": 0.0005,
        "duplicate": 0.01, "late": 0.01, "course_shape": 0.01,
    },
}


def parse_faults(spec: str) -> dict[str, float]:
    """`none`, `default`, `kind=rate,...` or `default,kind=rate` (rate 0.01 or 1%) -> rates."""
    rates: dict[str, float] = {}
    for token in (t.strip() for t in spec.split(",") if t.strip()):
        if "=" not in token:
            if token not in PRESETS:
                raise ValueError(f"unknown fault preset {token!r}: use {' or '.join(PRESETS)} "
                                 "or kind=rate pairs")
            rates.update(PRESETS[token])
            continue
        kind, _, text = (p.strip() for p in token.partition("="))
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}: use {', '.join(FAULT_KINDS)}")
        try:
            rate = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            raise ValueError(f"fault rate {text!r} for {kind} is not a number "
                             "(write 0.01 or 1%)") from None
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate for {kind} must be within 0..1 (or 0%..100%)")
        rates[kind] = rate
    rates = {k: r for k, r in rates.items() if r > 0}
    if sum(rates.values()) > 1.0:
        raise ValueError(f"fault rates add up to {sum(rates.values()):.3f} > 1: lower them")
    return rates


def make_fault(kind: str, ctx: FaultContext, clean: bytes) -> tuple[bytes | None, Tag]:
    """A quarantine fault of `kind` made from the clean reading `clean`."""
    if kind in RAW_FAULTS:
        value, reasons = RAW_FAULTS[kind](ctx, clean)
        return value, _with_reasons(kind)(reasons)
    event = json.loads(clean)
    reasons = FIELD_FAULTS[kind](ctx, event)
    return encode_json(event), _with_reasons(kind)(reasons)


def course_shaped(clean: bytes) -> bytes:
    """The clean reading as the course pipeline's producer sent it."""
    return encode_json(to_course_shape(json.loads(clean)), SHAPE_COURSE)


def late_delay_ms(rng: random.Random) -> int:
    low, high = LATE_DELAY_S
    return int(math.exp(rng.uniform(math.log(low), math.log(high))) * 1000)
