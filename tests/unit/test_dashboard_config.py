"""The [dashboard] settings and how `fleetlake dashboard` hands them to the Streamlit app."""
from __future__ import annotations

import pytest

from dashboard.config import AppConfig, dashboard_arguments, parse_arguments
from dashboard.serve import dashboard_command
from infra.settings import ConfigError, DashboardSettings, load_settings


def test_dashboard_settings_from_toml(tmp_path):
    config = tmp_path / "f.toml"
    config.write_text("[dashboard]\nrefresh_s = 2\nstale_after_s = 600\npage_size = 100\n")
    settings = load_settings(env={}, config_path=str(config))
    assert settings.dashboard == DashboardSettings(refresh_s=2.0, stale_after_s=600.0,
                                                   page_size=100)


@pytest.mark.parametrize("text, message", [
    ("[dashboard]\nrefresh_s = 0\n", "dashboard.refresh_s must be positive"),
    ("[dashboard]\npartial_grace_s = -1\n", "dashboard.partial_grace_s must not be negative"),
    ("[dashboard]\nrefresh = 5\n", "unknown setting 'dashboard.refresh'"),
])
def test_bad_dashboard_settings_are_one_clear_error(tmp_path, text, message):
    config = tmp_path / "f.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(env={}, config_path=str(config))


def test_the_app_gets_the_reader_dsn_and_the_settings(tmp_path):
    config = tmp_path / "f.toml"
    config.write_text('[local]\npg_port = 5999\n[dashboard]\nrecent_alert_minutes = 5\n')
    settings = load_settings(env={}, config_path=str(config))
    command = dashboard_command(settings, 8600)
    app_args = command[command.index("--") + 1:]
    assert parse_arguments(app_args) == AppConfig(
        settings.reader_pg_dsn, DashboardSettings(recent_alert_minutes=5))
    assert settings.reader_pg_dsn.startswith(
        "postgresql://fleetlake_reader@127.0.0.1:5999/fleetlake")
    assert parse_arguments(dashboard_arguments(DashboardSettings())) is None  # no --dsn
