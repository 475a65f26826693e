"""`fleetlake services up|down|status`: the embedded Kafka and PostgreSQL, or the external ones."""
from __future__ import annotations

from typing import Any

from infra import dsn as dsns
from infra.kafka_local import kafka_running, start_kafka, stop_kafka
from infra.postgres_local import pg_running, start_postgres, stop_postgres
from infra.procs import ServiceError, port_open
from infra.settings import Settings


def services_up(settings: Settings, log=print) -> dict[str, Any]:
    """Start what is local (idempotent) and check what is external; return the status."""
    if settings.uses_local_kafka:
        log(f"kafka: starting on {settings.effective_kafka_bootstrap} ...")
        start_kafka(settings)
    else:
        _require_reachable_kafka(settings.effective_kafka_bootstrap)
    if settings.uses_local_pg:
        log(f"postgres: starting on 127.0.0.1:{settings.local.pg_port} ...")
        start_postgres(settings, log=log)
    else:
        _require_reachable_pg(settings.effective_pg_dsn)
    return services_status(settings)


def services_down(settings: Settings, log=print) -> None:
    if settings.uses_local_kafka:
        log("kafka: " + ("stopped" if stop_kafka(settings) else "was not running"))
    if settings.uses_local_pg:
        log("postgres: " + ("stopped" if stop_postgres(settings) else "was not running"))


def services_status(settings: Settings) -> dict[str, Any]:
    """What runs where; DSNs are printed without any password (the local ones need none)."""
    def state(local: bool, running: bool) -> str:
        return ("running" if running else "stopped") if local else "external"

    reader = settings.reader_pg_dsn
    return {
        "kafka_bootstrap": settings.effective_kafka_bootstrap,
        "pg_dsn": dsns.without_password(settings.effective_pg_dsn),
        "pg_reader_dsn": None if reader is None else dsns.without_password(reader),
        "lake_root": settings.lake_root,
        "topic": settings.topic,
        "kafka": state(settings.uses_local_kafka, kafka_running(settings)),
        "postgres": state(settings.uses_local_pg, pg_running(settings)),
    }


def _require_reachable_kafka(bootstrap: str) -> None:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    if not port.isdigit() or not port_open(host, int(port), timeout_s=3):
        raise ServiceError(f"Kafka is not reachable at {bootstrap}: start it or fix "
                           "FLEETLAKE_KAFKA_BOOTSTRAP (unset it to use the embedded broker)")


def _require_reachable_pg(dsn: str) -> None:
    import psycopg2

    try:
        psycopg2.connect(dsn, connect_timeout=5).close()
    except psycopg2.OperationalError as exc:
        reason = dsns.error_line(exc, dsn)
        raise ServiceError(f"PostgreSQL is not reachable ({reason}): start it or fix "
                           "FLEETLAKE_PG_DSN (unset it to use the embedded cluster)") from None


def ensure_services(settings: Settings, log=print) -> None:
    """Used by commands that need the services: start local ones if they are down."""
    status = services_status(settings)
    if status["kafka"] == "running" and status["postgres"] == "running":
        return
    services_up(settings, log=log)
