"""The three checks the fault campaign runs after each fault, on a quiet pipeline.

1. Bronze covers exactly the Kafka offsets: every offset of every partition once.
2. The accounting identity: bronze rows = silver rows + quarantine rows + duplicates (the sum of
   gold/dq_batch_metrics.duplicate_rows), and each batch's rows_in = valid + quarantined.
3. PostgreSQL equals Delta for every gold table (serving/mirror_check.py).
Silver holding an event id twice also counts as a duplicate.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kafka import KafkaConsumer, TopicPartition
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from infra.settings import Settings
from serving.mirror_check import mirror_differences


@dataclass(frozen=True)
class CheckResult:
    """What the checks found, cumulative since the topic's first record."""

    kafka_records: int
    lost: int  # Kafka offsets without a bronze row
    duplicated: int  # extra bronze copies of an offset + extra silver copies of an event id
    identity: str  # "" when bronze = silver + quarantine + duplicates, else the numbers
    mirror: dict[str, str] = field(default_factory=dict)  # gold table -> how PostgreSQL differs

    @property
    def passed(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and not self.identity and not self.mirror

    def problems(self) -> list[str]:
        found = [f"{self.lost} Kafka offset(s) missing from bronze"] if self.lost else []
        if self.duplicated:
            found.append(f"{self.duplicated} duplicated row(s) in bronze or silver")
        if self.identity:
            found.append(f"accounting identity broken: {self.identity}")
        found += [f"PostgreSQL gold.{name} differs from Delta: {diff}"
                  for name, diff in self.mirror.items()]
        return found


def kafka_offsets(bootstrap: str, topic: str) -> dict[int, tuple[int, int]]:
    """partition -> (first offset, end offset) of the topic."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        first, end = consumer.beginning_offsets(partitions), consumer.end_offsets(partitions)
        return {tp.partition: (first[tp], end[tp]) for tp in partitions}
    finally:
        consumer.close()


def kafka_records(bootstrap: str, topic: str) -> int:
    """Records the topic holds, over all partitions."""
    return sum(end - first for first, end in kafka_offsets(bootstrap, topic).values())


def _bronze_coverage(spark: SparkSession, settings: Settings,
                     offsets: dict[int, tuple[int, int]]) -> tuple[int, int, int]:
    """(bronze rows, Kafka offsets missing from bronze, extra copies of an offset)."""
    bronze = spark.read.format("delta").load(settings.table_path("bronze", "telemetry_raw"))
    per_partition = {row[0]: row[1:] for row in bronze.where(F.col("topic") == settings.topic)
                     .groupBy("partition").agg(F.count("*"), F.countDistinct("offset"),
                                               F.min("offset"), F.max("offset")).collect()}
    rows = missing = extra = 0
    for partition, (first, end) in offsets.items():
        count, distinct, low, high = per_partition.pop(partition, (0, 0, None, None))
        rows, extra = rows + count, extra + count - distinct
        in_range = distinct if distinct == 0 or (low >= first and high < end) else -1
        if in_range < 0:  # rows outside the topic's offsets: count them as not covering
            in_range = (bronze.where((F.col("partition") == partition)
                                     & F.col("offset").between(first, end - 1))
                        .select("offset").distinct().count())
        missing += (end - first) - in_range
    for count, distinct, _, _ in per_partition.values():  # partitions Kafka does not have
        rows, extra = rows + count, extra + count - distinct
    return rows, missing, extra


def _identity(spark: SparkSession, settings: Settings, bronze_rows: int) -> tuple[str, int]:
    """("" or what breaks the identity, extra silver copies of an event id)."""
    def table(layer: str, name: str):
        return spark.read.format("delta").load(settings.table_path(layer, name))

    silver = table("silver", "telemetry").agg(F.count("*"), F.countDistinct("event_id")).first()
    quarantined = table("silver", "quarantine").count()
    dq = table("gold", "dq_batch_metrics").agg(
        F.coalesce(F.sum("duplicate_rows"), F.lit(0)),
        F.coalesce(F.sum(F.when(F.col("rows_in") != F.col("valid_rows")
                                + F.col("quarantined_rows"), 1)), F.lit(0))).first()
    duplicates, unbalanced = int(dq[0]), int(dq[1])
    problems = []
    if bronze_rows != silver[0] + quarantined + duplicates:
        problems.append(f"bronze {bronze_rows:,} != silver {silver[0]:,} + quarantine "
                        f"{quarantined:,} + duplicates {duplicates:,}")
    if unbalanced:
        problems.append(f"{unbalanced} batch(es) with rows_in != valid + quarantined")
    return "; ".join(problems), silver[0] - silver[1]


def run_checks(spark: SparkSession, settings: Settings) -> CheckResult:
    """All three checks on the campaign's topic, lake and database."""
    offsets = kafka_offsets(settings.effective_kafka_bootstrap, settings.topic)
    bronze_rows, missing, extra = _bronze_coverage(spark, settings, offsets)
    identity, silver_extra = _identity(spark, settings, bronze_rows)
    return CheckResult(kafka_records=sum(end - first for first, end in offsets.values()),
                       lost=missing, duplicated=extra + silver_extra, identity=identity,
                       mirror=mirror_differences(spark, settings))
