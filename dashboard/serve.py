"""`fleetlake dashboard`: run the Streamlit app headless on loopback, as a read-only role."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from dashboard.config import dashboard_arguments
from infra import dsn as dsns
from infra.procs import ServiceError, require_free_port, stop_process
from infra.settings import ConfigError, Settings

APP = Path(__file__).with_name("app.py")
FIX = ("set FLEETLAKE_PG_READER_DSN to a role that may only SELECT from schema gold "
       "(docs/security.md), or pass --allow-writer")


def dashboard_dsn(settings: Settings, allow_writer: bool) -> str:
    """The DSN the dashboard reads with: a read-only role's; a writer's only with --allow-writer."""
    reader = settings.reader_pg_dsn
    if reader is None:
        if allow_writer:
            return settings.effective_pg_dsn
        raise ConfigError(f"FLEETLAKE_PG_DSN is set but FLEETLAKE_PG_READER_DSN is not, and the "
                          f"dashboard never reads as the pipeline's writer: {FIX}")
    if allow_writer:
        return reader
    if _same_role(reader, settings.effective_pg_dsn):
        raise ConfigError(f"the dashboard's DSN connects as the pipeline's writer role: {FIX}")
    role, access = _write_access(reader)
    if access:
        raise ConfigError(f"the dashboard's role {role!r} can change the database "
                          f"({'; '.join(access)}): {FIX}")
    return reader


def _same_role(a: str, b: str) -> bool:
    """Both DSNs name the same role on the same server (libpq defaults left unresolved)."""
    first, second = dsns.parse(a) or {}, dsns.parse(b) or {}
    return all(first.get(k) == second.get(k) for k in ("user", "host", "hostaddr", "port"))


def _write_access(dsn: str) -> tuple[str, list[str]]:
    import psycopg2

    from serving.db import endpoint
    from serving.roles import write_access

    try:
        return write_access(dsn)
    except psycopg2.Error as exc:
        raise ServiceError(f"cannot check the dashboard's role: PostgreSQL at {endpoint(dsn)} "
                           f"refused or did not answer ({dsns.error_line(exc, dsn)}): start it "
                           "with `fleetlake services up` or fix FLEETLAKE_PG_READER_DSN") from None


def dashboard_process(dsn: str, port: int, app_arguments: Sequence[str] = ()
                      ) -> tuple[list[str], dict[str, str]]:
    """Streamlit's command line and environment (`app_arguments`: the app's settings).

    A password in the DSN travels in the environment (PGPASSWORD: readable by the same user
    only), never on the command line, which every local user sees in `ps`.
    """
    env = dict(os.environ)
    password = dsns.password_of(dsn)
    if password:
        env["PGPASSWORD"] = password
    command = [sys.executable, "-m", "streamlit", "run", str(APP),
               "--server.headless", "true", "--server.address", "127.0.0.1",
               "--server.port", str(port), "--browser.gatherUsageStats", "false",
               "--global.developmentMode", "false", "--client.toolbarMode", "viewer",
               "--", "--dsn", dsns.without_password(dsn), *app_arguments]
    return command, env


def dashboard_command(settings: Settings, port: int) -> list[str]:
    """Streamlit's command line for the settings' reader DSN and dashboard settings."""
    dsn = settings.reader_pg_dsn or settings.effective_pg_dsn
    return dashboard_process(dsn, port, dashboard_arguments(settings.dashboard))[0]


def serve_dashboard(settings: Settings, port: int, allow_writer: bool = False) -> int:
    require_free_port(port, "the dashboard", "pass another --port")
    command, env = dashboard_process(dashboard_dsn(settings, allow_writer), port,
                                     dashboard_arguments(settings.dashboard))
    print(f"dashboard: http://127.0.0.1:{port}", file=sys.stderr, flush=True)
    child = subprocess.Popen(command, env=env)
    # Stopping `fleetlake dashboard` (SIGTERM, Ctrl-C) must stop Streamlit too: left alone it
    # outlived its parent, and it does not always exit on SIGTERM, so it is killed after 10 s.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        return child.wait()
    except KeyboardInterrupt:
        return 130
    finally:
        stop_process(child, grace_s=10.0)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)
