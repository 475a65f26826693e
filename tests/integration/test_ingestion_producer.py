"""`run_produce` against the real broker: what the summary says is what the topic holds."""
from __future__ import annotations

import dataclasses
import json
import os
import uuid
from collections import Counter, defaultdict

import pytest
from kafka import KafkaConsumer, TopicPartition

from infra.settings import Settings, ValidationRules
from ingestion.admin import KafkaUnavailableError, admin_client
from ingestion.contract import dedup_key, parse_event_time_ms, parse_object, reasons_for
from ingestion.producer import run_produce

pytestmark = pytest.mark.integration
RULES = ValidationRules()

BOOTSTRAP = os.environ.get("FLEETLAKE_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
FAULTS = ("default,duplicate=3%,late=3%,course_shape=3%,oversized=0.5%,malformed_json=1%,"
          "missing_field=1%,mistyped_field=1%,future_timestamp=1%")


@pytest.fixture
def kafka_settings(base_settings) -> Settings:
    return dataclasses.replace(base_settings, kafka_bootstrap=BOOTSTRAP)


@pytest.fixture
def topic():
    name = f"test_ingestion_{uuid.uuid4().hex[:12]}"
    yield name
    client = admin_client(BOOTSTRAP)
    try:
        client.delete_topics([name])
    finally:
        client.close()


def read_topic(name: str) -> list:
    """Every record of the topic, ordered as silver ranks copies: (timestamp, partition, offset)."""
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=10_000)
    try:
        parts = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        records = []
        while any(consumer.position(tp) < end[tp] for tp in parts):
            for batch in consumer.poll(timeout_ms=2_000, max_records=50_000).values():
                records.extend(batch)
    finally:
        consumer.close()
    return sorted(records, key=lambda r: (r.timestamp, r.partition, r.offset))


def predict(records, rules) -> dict:
    """The contract's outcome for every record, counted like the producer's summary."""
    outcomes, reasons, reason_sets, kinds = Counter(), Counter(), Counter(), Counter()
    seen_ids, seen_values = set(), Counter()
    for r in records:
        codes = reasons_for(r.value, r.timestamp, rules)
        if codes:
            outcomes["quarantined"] += 1
            reason_sets[",".join(codes)] += 1
            reasons.update(codes)
            kinds["oversized"] += "PAYLOAD_TOO_LARGE" in codes
            continue
        event = parse_object(r.value)
        key = dedup_key(event)
        if key in seen_ids:
            outcomes["duplicate"] += 1
            assert seen_values[r.value] > 0  # a retransmission: the very same bytes again
        else:
            outcomes["valid"] += 1
            kinds["course_shape"] += "event_id" not in event
        seen_ids.add(key)
        seen_values[r.value] += 1
    return {"by_outcome": outcomes, "quarantine_reasons": reasons,
            "quarantine_reason_sets": reason_sets, "kinds": kinds}


def test_a_faulty_stream_lands_exactly_as_summarised(kafka_settings, topic):
    summary = run_produce(kafka_settings, events=8_000, duration_s=None, rate=0.0, faults=FAULTS,
                          seed=7, topic=topic, cars=20, progress=False)
    assert (summary.sent, summary.acked, summary.errors) == (8_000, 8_000, 0)
    assert summary.partitions == kafka_settings.topic_partitions
    records = read_topic(topic)
    assert len(records) == summary.sent

    expected = predict(records, kafka_settings.validation)
    assert Counter(summary.by_outcome) == expected["by_outcome"]
    assert Counter(summary.quarantine_reasons) == expected["quarantine_reasons"]
    assert Counter(summary.quarantine_reason_sets) == expected["quarantine_reason_sets"]
    for kind in ("oversized", "course_shape"):
        assert summary.by_kind[kind] == expected["kinds"][kind] > 0
    assert set(summary.by_kind) == {"clean", "duplicate", "late", "course_shape", "oversized",
                                    "malformed_json", "not_object", "missing_field",
                                    "mistyped_field", "bad_timestamp", "future_timestamp",
                                    "out_of_range", "nan_infinity"}
    assert_keys_stay_in_one_partition_and_in_order(records, summary.by_kind["late"], cars=20)


def assert_keys_stay_in_one_partition_and_in_order(records, late: int, cars: int) -> None:
    partitions, behind, newest = defaultdict(set), 0, {}
    seen = set()
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        partitions[r.key].add(r.partition)
        if reasons_for(r.value, r.timestamp, RULES) or r.value in seen:
            continue
        event = parse_object(r.value)
        if "event_id" not in event:
            continue
        seen.add(r.value)
        assert event["car_id"] == r.key.decode()
        seq = int(event["event_id"].rsplit("-", 1)[1])
        behind += seq < newest.get(r.key, 0)
        newest[r.key] = max(newest.get(r.key, 0), seq)
    assert len(partitions) == cars and all(len(p) == 1 for p in partitions.values())
    assert late - cars <= behind <= late  # only held-back late events come out of order


def test_two_processes_clean_stream_from_the_past_up_to_now(kafka_settings, topic):
    settings = dataclasses.replace(
        kafka_settings, producer=dataclasses.replace(kafka_settings.producer, processes=2))
    summary = run_produce(settings, events=40_000, duration_s=None, rate=0.0, faults="none",
                          seed=3, topic=topic, cars=30, progress=False)
    assert summary.processes == 2
    assert (summary.sent, summary.acked, summary.errors) == (40_000, 40_000, 0)
    assert summary.by_kind == {"clean": 40_000}
    records = read_topic(topic)
    events = [json.loads(r.value) for r in records]
    assert len({e["event_id"] for e in events}) == 40_000
    assert all(parse_event_time_ms(e["event_timestamp"]) <= r.timestamp
               for e, r in zip(events, records))
    assert_keys_stay_in_one_partition_and_in_order(records, late=0, cars=30)


def test_paced_events_are_never_ahead_of_their_kafka_timestamp(kafka_settings, topic):
    summary = run_produce(kafka_settings, events=1_500, duration_s=None, rate=3_000.0,
                          faults="none", seed=5, topic=topic, cars=10, progress=False)
    assert summary.acked == 1_500
    for r in read_topic(topic):
        assert parse_event_time_ms(json.loads(r.value)["event_timestamp"]) <= r.timestamp


def test_an_unreachable_broker_is_reported_with_the_fix(kafka_settings):
    settings = dataclasses.replace(kafka_settings, kafka_bootstrap="127.0.0.1:1")
    with pytest.raises(KafkaUnavailableError, match="fleetlake services up"):
        run_produce(settings, events=10, duration_s=None, rate=0.0, faults="none", seed=1,
                    topic="never_created", cars=1, progress=False)
