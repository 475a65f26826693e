"""Fault injection: each kind makes what it says, tagged with the reasons silver must give it."""
from __future__ import annotations

import json
from collections import Counter, defaultdict

import pytest

from infra.settings import ValidationRules
from ingestion.contract import dedup_key, parse_event_time_ms, parse_object, reasons_for
from ingestion.faults import (FAULT_KINDS, FIELD_FAULTS, PRESETS, RAW_FAULTS, parse_faults)
from ingestion.simulator import Fleet
from ingestion.stream import MessageStream, tag_of

T0 = 1_767_225_600_000
NOW = T0 + 10 * 3600 * 1000  # the "send time" of every message in these tests
RULES = ValidationRules()
QUARANTINE_KINDS = tuple(RAW_FAULTS) + tuple(FIELD_FAULTS)


def produce(rates: dict[str, float], n: int, seed: int = 5, cars: int = 8,
            rules: ValidationRules = RULES, chunk: int = 97) -> list:
    stream = MessageStream(Fleet(cars, seed, T0), rates, seed, rules, now_ms=lambda: NOW)
    out: list = []
    while len(out) + stream.pending < n:
        stream.fill(out, min(chunk, n - len(out) - stream.pending))
    stream.drain(out)
    return out


def test_parse_presets_and_pairs():
    assert parse_faults("none") == {}
    assert parse_faults("default") == PRESETS["default"]
    assert 0.02 < sum(PRESETS["default"].values()) < 0.08
    assert parse_faults("duplicate=1%, late=0.02") == {"duplicate": 0.01, "late": 0.02}
    custom = parse_faults("default,late=0,oversized=0.01")
    assert "late" not in custom and custom["oversized"] == 0.01
    assert set(PRESETS["default"]) == set(FAULT_KINDS)


@pytest.mark.parametrize("spec, message", [
    ("bogus", "unknown fault preset"), ("typo=0.1", "unknown fault kind"),
    ("late=lots", "not a number"), ("late=1.5", "within 0..1"),
    ("late=0.6,duplicate=0.6", "add up to"),
])
def test_parse_rejects_bad_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_faults(spec)


def test_no_faults_means_every_message_is_clean_and_valid():
    messages = produce({}, 2_000)
    assert len(messages) == 2_000
    assert all(m[2] is None and reasons_for(m[1], NOW, RULES) == () for m in messages)


@pytest.mark.parametrize("kind", QUARANTINE_KINDS)
def test_each_quarantine_fault_carries_exactly_the_reasons_silver_must_give(kind):
    messages = produce({kind: 1.0}, 300)
    assert all(tag_of(m).kind == kind and tag_of(m).outcome == "quarantined" for m in messages)
    for key, value, tag in messages:
        assert reasons_for(value, NOW, RULES) == tag.reasons, (kind, value and value[:300])
    # every kind yields its variety: several distinct reason sets or raw forms
    if kind in ("missing_field", "mistyped_field", "out_of_range"):
        assert len({tag.reasons for _, _, tag in messages}) >= 3


def test_malformed_covers_empty_null_truncated_and_not_utf8():
    values = [value for _, value, _ in produce({"malformed_json": 1.0}, 300)]
    assert None in values and b"" in values
    assert any(v and not v.endswith(b"}") for v in values)
    assert any(v and b"\xff" in v for v in values)
    not_objects = {value for _, value, _ in produce({"not_object": 1.0}, 100)}
    assert {b"42", b"null", b"true"} <= not_objects


def test_mistyped_values_are_strings_booleans_and_numbers():
    events = [json.loads(v) for _, v, _ in produce({"mistyped_field": 1.0}, 400)]
    kinds = {type(e[n]).__name__ for e in events for n in ("speed_kmph", "fuel_level",
                                                            "engine_temp_c", "car_id")}
    assert {"str", "bool", "int", "float"} <= kinds
    assert any(e.get("speed_kmph") == "NaN" or e.get("fuel_level") == "NaN" for e in events)


def test_nan_and_infinity_tokens_are_on_the_wire():
    raw = b" ".join(v for _, v, _ in produce({"nan_infinity": 1.0}, 200))
    assert b":NaN," in raw and b":Infinity," in raw and b":-Infinity," in raw


def test_limits_follow_the_validation_settings():
    rules = ValidationRules(speed_max=200.0, max_payload_bytes=4_096)
    for kind in ("out_of_range", "oversized"):
        for _, value, tag in produce({kind: 1.0}, 100, rules=rules):
            assert reasons_for(value, NOW, rules) == tag.reasons
    sizes = [len(v) for _, v, _ in produce({"oversized": 1.0}, 50, rules=rules)]
    assert min(sizes) > 4_096 and max(sizes) < 4_096 + 9_000


def test_future_timestamps_lie_beyond_the_tolerance_of_the_send_time():
    for _, value, _ in produce({"future_timestamp": 1.0}, 100):
        ts = parse_event_time_ms(json.loads(value)["event_timestamp"])
        assert ts > NOW + RULES.future_tolerance_seconds * 1000


def test_course_shape_is_the_course_producers_exact_shape():
    messages = produce({"course_shape": 0.5}, 2_000)
    course = [(k, v) for k, v, t in messages if tag_of((k, v, t)).kind == "course_shape"]
    assert len(course) > 500
    keys = set()
    for key, value in course:
        assert value.startswith(b'{"car_id": "') and b'", "event_timestamp": "' in value
        event = json.loads(value)
        assert "event_id" not in event and event["message_key"] == key.decode()
        assert len(event["event_timestamp"]) == 19 and event["event_timestamp"][10] == " "
        assert reasons_for(value, NOW, RULES) == ()
        keys.add(dedup_key(event))
    assert len(keys) == len(course)  # the derived ids never collide


def test_duplicates_resend_earlier_valid_bytes_of_the_same_car():
    messages = produce({"duplicate": 0.3, "course_shape": 0.1}, 3_000)
    seen: dict[bytes, set] = defaultdict(set)
    retransmits = 0
    for key, value, tag in messages:
        if tag_of((key, value, tag)).kind == "duplicate":
            retransmits += 1
            assert value in seen[key] and tag.outcome == "duplicate"
        seen[key].add(value)
    assert retransmits > 300
    assert outcome_counts(messages) == predicted_outcomes(messages)


def test_late_events_come_after_newer_readings_of_their_car():
    messages = produce({"late": 0.05}, 20_000, cars=4)
    latest: dict[bytes, int] = {}
    late = out_of_order = minutes_late = 0
    for key, value, tag in messages:
        ts = parse_event_time_ms(json.loads(value)["event_timestamp"])
        if tag_of((key, value, tag)).kind == "late":
            late += 1
            out_of_order += ts < latest[key]
            minutes_late += ts <= latest[key] - 60_000
            assert reasons_for(value, NOW, RULES) == ()
        latest[key] = max(latest.get(key, 0), ts)
    # held back at least a minute of the car's time; those still held when the run ends go last
    assert late > 500 and out_of_order >= late - 4 and minutes_late > late / 2


@pytest.mark.parametrize("n, chunk", [(1, 1), (999, 7), (5_000, 2_000)])
def test_exactly_n_messages_with_default_faults(n, chunk):
    messages = produce(PRESETS["default"], n, chunk=chunk)
    assert len(messages) == n
    assert outcome_counts(messages) == predicted_outcomes(messages)


def test_same_seed_same_stream_different_seed_different_stream():
    first = produce(PRESETS["default"], 3_000, seed=1)
    assert produce(PRESETS["default"], 3_000, seed=1) == first
    assert produce(PRESETS["default"], 3_000, seed=2) != first


def outcome_counts(messages) -> Counter:
    return Counter(tag_of(m).outcome for m in messages)


def predicted_outcomes(messages) -> Counter:
    """What the contract says silver does with this sequence (valid / quarantined / duplicate)."""
    seen, outcomes = set(), Counter()
    for _, value, _ in messages:
        if reasons_for(value, NOW, RULES):
            outcomes["quarantined"] += 1
            continue
        key = dedup_key(parse_object(value))
        outcomes["duplicate" if key in seen else "valid"] += 1
        seen.add(key)
    return outcomes
