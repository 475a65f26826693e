"""Settings: defaults <- TOML <- environment, and one clear error for bad config."""
from __future__ import annotations

import dataclasses
import tomllib

import pytest

from infra.settings import PROJECT_ROOT, ConfigError, Settings, as_dict, load_settings


def test_defaults_follow_the_contract(tmp_path):
    settings = load_settings(env={}, config_path=None)
    assert settings.topic == "raw_telemetry"
    assert settings.spark_master == "local[*]"
    assert settings.lake_root.endswith(".local/lake")
    assert settings.uses_local_kafka and settings.uses_local_pg
    assert settings.effective_kafka_bootstrap == "127.0.0.1:19092"
    assert settings.alerts.overspeed_kmph == 140.0


def test_toml_then_environment_override(tmp_path):
    config = tmp_path / "f.toml"
    config.write_text('topic = "from_toml"\n[alerts]\noverspeed_kmph = 120\n')
    env = {"FLEETLAKE_CONFIG": str(config), "FLEETLAKE_TOPIC": "from_env",
           "FLEETLAKE_KAFKA_BOOTSTRAP": "broker:9092", "FLEETLAKE_PG_DSN": "postgresql://x/y",
           "FLEETLAKE_LAKE_ROOT": "s3a://bucket/lake", "FLEETLAKE_SPARK_MASTER": "spark://m:7077"}
    settings = load_settings(env=env)
    assert settings.topic == "from_env"
    assert settings.alerts.overspeed_kmph == 120.0
    assert settings.effective_kafka_bootstrap == "broker:9092"
    assert not settings.uses_local_kafka and not settings.uses_local_pg
    assert settings.table_path("gold", "alerts") == "s3a://bucket/lake/gold/alerts"
    assert settings.spark_master == "spark://m:7077"


@pytest.mark.parametrize("text, message", [
    ("[alerts]\noverspeed = 1\n", "unknown setting 'alerts.overspeed'"),
    ("[alerts]\noverspeed_kmph = 'fast'\n", "'alerts.overspeed_kmph' must be a number"),
    ("[validation]\nspeed_min = 500.0\n", "validation.speed_min must be below"),
    ("topic = [\n", "is not valid TOML"),
])
def test_bad_config_is_one_clear_error(tmp_path, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        load_settings(env={"FLEETLAKE_CONFIG": str(config)})


def test_missing_config_file_names_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="not found: fix FLEETLAKE_CONFIG"):
        load_settings(env={"FLEETLAKE_CONFIG": str(tmp_path / "nope.toml")})


def test_the_example_config_lists_every_setting_with_its_default():
    example = PROJECT_ROOT / "fleetlake.example.toml"
    with open(example, "rb") as fh:
        listed = tomllib.load(fh)
    defaults = as_dict(Settings())
    for section, values in defaults.items():
        if isinstance(values, dict):
            # paths in the checkout: commented out in the example
            values.pop("home", None)
            values.pop("reports_dir", None)
            assert set(listed[section]) == set(values), section
            for key, value in listed[section].items():
                assert value == values[key], f"{section}.{key}"
        elif values is not None and section not in ("lake_root", "config_path"):
            assert listed[section] == values, section
    assert load_settings(env={}, config_path=str(example)) == dataclasses.replace(
        Settings(), config_path=str(example))
