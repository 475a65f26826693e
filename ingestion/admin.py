"""Kafka topic administration: create the telemetry topic idempotently."""
from __future__ import annotations

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaConnectionError, KafkaTimeoutError, TopicAlreadyExistsError


class KafkaUnavailableError(RuntimeError):
    """The Kafka bootstrap server does not answer."""


def _unavailable(bootstrap: str) -> KafkaUnavailableError:
    return KafkaUnavailableError(
        f"Kafka is not reachable at {bootstrap}: run `fleetlake services up` "
        "or fix FLEETLAKE_KAFKA_BOOTSTRAP")


def admin_client(bootstrap: str, timeout_s: float = 10.0) -> KafkaAdminClient:
    """An admin client bootstrapped within `timeout_s`, or KafkaUnavailableError."""
    timeout_ms = int(timeout_s * 1000)
    try:
        return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="fleetlake-admin",
                                request_timeout_ms=timeout_ms, bootstrap_timeout_ms=timeout_ms)
    except (KafkaTimeoutError, KafkaConnectionError):
        raise _unavailable(bootstrap) from None


def ensure_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Create `topic` with `partitions` partitions unless it exists (any partition count)."""
    client = admin_client(bootstrap)
    try:
        if topic in client.list_topics():
            return
        client.create_topics([NewTopic(name=topic, num_partitions=partitions,
                                       replication_factor=1)])
    except TopicAlreadyExistsError:
        pass
    except (KafkaTimeoutError, KafkaConnectionError):
        raise _unavailable(bootstrap) from None
    finally:
        client.close()
