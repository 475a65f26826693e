"""Typed settings: embedded defaults <- fleetlake.toml (FLEETLAKE_CONFIG) <- environment.

Built once at the entry point (`load_settings`) and passed down; library code never reads the
environment itself.
"""
from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from infra import dsn as dsns

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names it and the fix."""


@dataclass(frozen=True)
class LocalServices:
    """Ports and sizes of the embedded single-node Kafka and PostgreSQL (under `.local/`)."""

    home: str = str(PROJECT_ROOT / ".local")
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    kafka_heap: str = "1g"
    pg_port: int = 15432
    pg_database: str = "fleetlake"
    pg_user: str = "fleetlake"
    pg_reader: str = "fleetlake_reader"

    @property
    def pg_passfile(self) -> str:
        """The pgpass file (mode 0600) with the embedded cluster's generated passwords."""
        return str(Path(self.home).absolute() / "pg" / "pgpass")


@dataclass(frozen=True)
class SparkSettings:
    """Spark session sizing; defaults fit a 2-core, 24 GiB machine next to Kafka and PostgreSQL."""

    driver_memory: str = "2g"
    shuffle_partitions: int = 4
    hot_shuffle_partitions: int = 2
    max_offsets_per_trigger: int = 500_000
    trigger_interval: str = "250 milliseconds"  # the hot query's (Kafka -> PostgreSQL first)
    # the gold query's (staging -> silver, gold): a batch has a fixed cost of a few seconds, so
    # a longer interval leaves the cores to the hot query between gold batches
    gold_trigger_interval: str = "10 seconds"
    ui_enabled: bool = False


@dataclass(frozen=True)
class ValidationRules:
    """Silver validation ranges (docs/contracts.md "Validation"): the one source of these numbers."""

    speed_min: float = 0.0
    speed_max: float = 400.0
    fuel_min: float = 0.0
    fuel_max: float = 100.0
    engine_temp_min: float = -60.0
    engine_temp_max: float = 250.0
    future_tolerance_seconds: int = 300
    max_payload_bytes: int = 65_536


@dataclass(frozen=True)
class AlertRules:
    """Gold alert thresholds (docs/contracts.md "Alerts") and the stateful rules' parameters."""

    overspeed_kmph: float = 140.0
    overheat_c: float = 110.0
    low_fuel_pct: float = 10.0
    sustained_overheat_enabled: bool = True
    sustained_overheat_c: float = 105.0
    sustained_overheat_readings: int = 5
    fuel_drop_enabled: bool = True
    fuel_drop_points: float = 15.0
    fuel_drop_minutes: float = 10.0
    gps_jump_enabled: bool = True
    gps_jump_kmph: float = 300.0
    speed_anomaly_enabled: bool = True
    speed_anomaly_zscore: float = 4.0
    speed_anomaly_min_readings: int = 30
    # Stateful rules are bounded in event time so a late event recomputes a bounded range:
    # a gap longer than this between two consecutive readings ends a sustained-overheat run,
    sustained_overheat_max_gap_seconds: float = 60.0
    # consecutive valid fixes further apart than this are not compared (GPS_JUMP),
    gps_jump_max_gap_seconds: float = 60.0
    # and the implied speed divides by at least this many seconds (sub-second fixes are noise);
    gps_jump_min_seconds: float = 1.0
    # SPEED_ANOMALY's baseline (previous speed_anomaly_min_readings readings) must lie within
    # this window; its standard deviation is floored at speed_anomaly_min_std_kmph.
    speed_anomaly_window_seconds: float = 300.0
    speed_anomaly_min_std_kmph: float = 2.0
    # No longer read: gold carries each car's context between batches (gold/carry.py). Kept
    # so that config files that set it stay valid (contracts are extended, never renamed).
    stateful_recent_seconds: float = 10.0


@dataclass(frozen=True)
class ProducerSettings:
    """Defaults of `fleetlake produce`."""

    cars: int = 50
    rate: float = 1000.0
    events: int = 10_000
    faults: str = "default"
    seed: int = 42
    region: str = "eastern_province"
    interval_s: float = 1.0  # simulated seconds between two readings of a car (--rate 0)
    processes: int = 0  # producer processes; 0 = auto (1 for paced rates <= 10k/s, else 2)
    linger_ms: int = 10
    batch_size: int = 1_000_000  # bytes; < the broker default message.max.bytes (1 MiB)
    compression: str = "none"  # none | gzip (lz4/snappy/zstd codecs are not installed)
    speeding_per_hour: float = 3.0  # anomaly episodes per car per simulated driving hour
    overheat_per_hour: float = 0.5
    gps_dropout_per_hour: float = 3.0
    low_fuel_skip_rate: float = 0.3  # share of needed refuels a driver skips (LOW_FUEL alerts)


@dataclass(frozen=True)
class DashboardSettings:
    """The dashboard's refresh, staleness and paging knobs (`[dashboard]` in fleetlake.toml)."""

    refresh_s: float = 5.0  # auto-refresh interval of the live parts (changeable on the page)
    stale_after_s: float = 60.0  # newest event in gold older than this: stale-data banner
    # A minute is complete once the newest event in gold is this far past its end (KPIs reach
    # PostgreSQL up to ~30 s after the readings); younger minutes are drawn as partial.
    partial_grace_s: float = 30.0
    recent_alert_minutes: int = 15  # the fleet map colours a car by its worst alert this recent
    page_size: int = 50  # alerts per page


@dataclass(frozen=True)
class RetentionSettings:
    """How far back time-travel audits reach: delta.logRetentionDuration and
    delta.deletedFileRetentionDuration of every lake table (VACUUM keeps files this long)."""

    days: float = 30.0


@dataclass(frozen=True)
class MaintainSettings:
    """`fleetlake maintain` (OPTIMIZE, clustering, VACUUM, log checkpoints) and its schedule."""

    every_minutes: float = 0.0  # `pipeline run` maintains its tables this often; 0 = off
    vacuum: bool = True
    conflict_retries: int = 5  # attempts per table when a concurrent commit conflicts


@dataclass(frozen=True)
class DqSettings:
    """`fleetlake dq report` (Great Expectations) and its schedule."""

    report_every_minutes: float = 0.0  # `pipeline run` reports this often; 0 = off
    freshness_minutes: float = 60.0  # the newest silver event must be at most this old
    reports_dir: str = str(PROJECT_ROOT / ".local" / "reports")


@dataclass(frozen=True)
class Settings:
    """Everything a fleetlake process needs; built once by `load_settings`."""

    kafka_bootstrap: str | None = None  # None: the embedded local broker
    topic: str = "raw_telemetry"
    topic_partitions: int = 4
    lake_root: str = str(PROJECT_ROOT / ".local" / "lake")
    pg_dsn: str | None = None  # None: the embedded local PostgreSQL
    pg_reader_dsn: str | None = None  # the dashboard's read-only role; None: the embedded one
    spark_master: str = "local[*]"
    config_path: str | None = None
    local: LocalServices = field(default_factory=LocalServices)
    spark: SparkSettings = field(default_factory=SparkSettings)
    validation: ValidationRules = field(default_factory=ValidationRules)
    alerts: AlertRules = field(default_factory=AlertRules)
    producer: ProducerSettings = field(default_factory=ProducerSettings)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    maintain: MaintainSettings = field(default_factory=MaintainSettings)
    dq: DqSettings = field(default_factory=DqSettings)

    @property
    def uses_local_kafka(self) -> bool:
        return self.kafka_bootstrap is None

    @property
    def uses_local_pg(self) -> bool:
        return self.pg_dsn is None

    @property
    def effective_kafka_bootstrap(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.local.kafka_port}"

    @property
    def effective_pg_dsn(self) -> str:
        """The pipeline's (writer's) DSN; on the embedded cluster its password is in a passfile."""
        if self.pg_dsn:
            return self.pg_dsn
        return dsns.local_dsn(self.local.pg_user, self.local.pg_port, self.local.pg_database,
                              self.local.pg_passfile)

    @property
    def reader_pg_dsn(self) -> str | None:
        """The dashboard's read-only DSN; None when the database is external and none is set."""
        if self.pg_reader_dsn:
            return self.pg_reader_dsn
        if self.pg_dsn:
            return None  # never fall back to the writer: the dashboard refuses to start instead
        return dsns.local_dsn(self.local.pg_reader, self.local.pg_port, self.local.pg_database,
                              self.local.pg_passfile)

    @property
    def reader_role(self) -> str:
        """The role the migrations grant read access: the reader DSN's user, else the default."""
        params = dsns.parse(self.pg_reader_dsn) if self.pg_reader_dsn else None
        return (params or {}).get("user") or self.local.pg_reader

    def table_path(self, layer: str, name: str) -> str:
        return f"{self.lake_root.rstrip('/')}/{layer}/{name}"

    def checkpoint_path(self, name: str) -> str:
        return f"{self.lake_root.rstrip('/')}/_checkpoints/{name}"

    def internal_path(self, name: str) -> str:
        """An internal table of the pipeline (not a contract): `<lake_root>/_pipeline/<name>`."""
        return f"{self.lake_root.rstrip('/')}/_pipeline/{name}"


ENV_VARS = {
    "FLEETLAKE_KAFKA_BOOTSTRAP": "kafka_bootstrap",
    "FLEETLAKE_TOPIC": "topic",
    "FLEETLAKE_LAKE_ROOT": "lake_root",
    "FLEETLAKE_PG_DSN": "pg_dsn",
    "FLEETLAKE_PG_READER_DSN": "pg_reader_dsn",
    "FLEETLAKE_SPARK_MASTER": "spark_master",
}


def _coerce(section: Any, values: Mapping[str, Any], where: str) -> Any:
    """Return `section` with `values` applied, type-checked against the dataclass fields."""
    known = {f.name: f for f in fields(section)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown setting '{where}{key}': remove it or fix its name "
                              f"(known: {', '.join(sorted(known))})")
        current = getattr(section, key)
        if is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"setting '{where}{key}' must be a table [{where}{key}]")
            changes[key] = _coerce(current, value, f"{where}{key}.")
            continue
        changes[key] = _check_type(current, value, f"{where}{key}")
    return replace(section, **changes)


def _check_type(current: Any, value: Any, name: str) -> Any:
    if current is None or isinstance(current, str):
        if not isinstance(value, str):
            raise ConfigError(f"setting '{name}' must be a string, got {value!r}")
        return value
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"setting '{name}' must be true or false, got {value!r}")
        return value
    if isinstance(current, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"setting '{name}' must be an integer, got {value!r}")
        return value
    if isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"setting '{name}' must be a number, got {value!r}")
        return float(value)
    return value


def load_settings(env: Mapping[str, str] | None = None, config_path: str | None = None) -> Settings:
    """Build the settings: defaults <- TOML file <- environment variables."""
    env = os.environ if env is None else env
    settings = Settings()
    path = config_path or env.get("FLEETLAKE_CONFIG")
    if path is None and (PROJECT_ROOT / "fleetlake.toml").is_file():
        path = str(PROJECT_ROOT / "fleetlake.toml")
    if path:
        settings = _coerce(settings, _read_toml(path), "")
        settings = replace(settings, config_path=path)
    overrides = {attr: env[var] for var, attr in ENV_VARS.items() if env.get(var)}
    settings = replace(settings, **overrides)
    _validate(settings)
    return settings


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found: fix FLEETLAKE_CONFIG or create it") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML ({exc}): fix that line") from None


def _validate(settings: Settings) -> None:
    v = settings.validation
    for low, high, name in ((v.speed_min, v.speed_max, "speed"), (v.fuel_min, v.fuel_max, "fuel"),
                            (v.engine_temp_min, v.engine_temp_max, "engine_temp")):
        if low >= high:
            raise ConfigError(f"validation.{name}_min must be below validation.{name}_max")
    if settings.topic_partitions < 1:
        raise ConfigError("topic_partitions must be at least 1")
    if not settings.topic:
        raise ConfigError("topic must not be empty: set FLEETLAKE_TOPIC or remove it")
    d = settings.dashboard
    for name in ("refresh_s", "stale_after_s", "recent_alert_minutes", "page_size"):
        if getattr(d, name) <= 0:
            raise ConfigError(f"dashboard.{name} must be positive")
    if d.partial_grace_s < 0:
        raise ConfigError("dashboard.partial_grace_s must not be negative")
    if settings.retention.days <= 0:
        raise ConfigError("retention.days must be above 0 (30 keeps a month of table history)")
    for name, value in (("maintain.every_minutes", settings.maintain.every_minutes),
                        ("dq.report_every_minutes", settings.dq.report_every_minutes)):
        if value < 0:
            raise ConfigError(f"{name} must be 0 (off) or a positive number of minutes")
    _validate_postgres(settings)


# Names fleetlake itself creates on the embedded cluster: plain lower-case SQL identifiers.
_PG_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _validate_postgres(settings: Settings) -> None:
    """DSNs must parse (the message never echoes them: they may hold a password)."""
    for attr, var in (("pg_dsn", "FLEETLAKE_PG_DSN"), ("pg_reader_dsn", "FLEETLAKE_PG_READER_DSN")):
        value = getattr(settings, attr)
        if value and dsns.parse(value) is None:
            raise ConfigError(f"{var} (or {attr} in the TOML) is not a valid PostgreSQL "
                              "connection string: fix it (postgresql://user@host:port/dbname "
                              "or key=value pairs)")
    if settings.pg_reader_dsn and not dsns.parse(settings.pg_reader_dsn).get("user"):
        raise ConfigError("FLEETLAKE_PG_READER_DSN names no user: add the read-only role "
                          "(postgresql://ROLE@host:port/dbname); the pipeline grants it SELECT")
    for name in ("pg_user", "pg_reader", "pg_database"):
        value = getattr(settings.local, name)
        if not _PG_NAME.match(value):
            raise ConfigError(f"local.{name} must be a lower-case SQL name (letters, digits, _; "
                              f"at most 63), got {value!r}: fix it in fleetlake.toml")


def as_dict(settings: Settings) -> dict[str, Any]:
    return dataclasses.asdict(settings)
