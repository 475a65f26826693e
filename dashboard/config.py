"""What the Streamlit process is started with: the reader DSN and the [dashboard] settings.

`fleetlake dashboard` passes both after `--` (dashboard/serve.py); the app parses them once per
browser session and keeps them in Session State, where tests put theirs instead.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass

from infra.settings import DashboardSettings

CONFIG_KEY = "fleetlake_config"


@dataclass(frozen=True)
class AppConfig:
    """The reader DSN and the dashboard settings of one running app."""

    dsn: str
    settings: DashboardSettings


def dashboard_arguments(settings: DashboardSettings) -> list[str]:
    """The app's arguments (after Streamlit's `--`) that carry the [dashboard] settings."""
    return ["--dashboard", json.dumps(dataclasses.asdict(settings))]


def parse_arguments(argv: Sequence[str]) -> AppConfig | None:
    """AppConfig from the app's arguments; None when no --dsn was given."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--dsn")
    parser.add_argument("--dashboard", default="{}")
    args, _ = parser.parse_known_args(list(argv))
    if not args.dsn:
        return None
    return AppConfig(args.dsn, DashboardSettings(**json.loads(args.dashboard)))
