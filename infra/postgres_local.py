"""The embedded PostgreSQL cluster (Debian's `postgresql` package) under `.local/pg/`.

initdb/postgres refuse to run as root, so as root they run as the `postgres` system user on a
data directory it owns. Authentication is `trust` on 127.0.0.1 only: no password exists anywhere.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from pathlib import Path

from infra.procs import ServiceError, port_open, require_free_port
from infra.settings import Settings

PG_SYSTEM_USER = "postgres"


def pg_home(settings: Settings) -> Path:
    return Path(settings.local.home) / "pg"


def pg_bin(name: str) -> str:
    """Path of a PostgreSQL server binary from Debian's packages (newest version)."""
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if candidates:
        return candidates[-1]
    found = shutil.which(name)
    if found:
        return found
    raise ServiceError("PostgreSQL server binaries not found: run `make setup` "
                       "(or `apt-get install -y postgresql`)")


def _as_pg_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", PG_SYSTEM_USER, "--", *cmd]


def _chown_to_pg(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, PG_SYSTEM_USER, PG_SYSTEM_USER)


def _run(cmd: list[str], what: str) -> None:
    result = subprocess.run(_as_pg_user(cmd), capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["?"]
        raise ServiceError(f"PostgreSQL {what} failed ({detail[0]}): see {cmd[-1]} "
                           "or remove .local/pg and retry `fleetlake services up`")


def _init_cluster(home: Path) -> None:
    data = home / "data"
    if (data / "PG_VERSION").exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    for sub in ("data", "run"):
        (home / sub).mkdir(exist_ok=True)
        _chown_to_pg(home / sub)
    os.chmod(home / "data", 0o700)
    _run([pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
          "--no-locale"], "initdb")


def start_postgres(settings: Settings, timeout_s: float = 60.0) -> str:
    """Start the cluster unless it runs, create roles and database; return the owner DSN."""
    home = pg_home(settings)
    port = settings.local.pg_port
    if not pg_running(settings):
        require_free_port(port, "PostgreSQL", "set pg_port under [local] in fleetlake.toml")
        _init_cluster(home)
        log = home / "postgres.log"
        if not log.exists():
            log.touch()
            _chown_to_pg(log)
        opts = (f"-p {port} -k {home / 'run'} -c listen_addresses=127.0.0.1 "
                "-c max_connections=100 -c shared_buffers=256MB -c synchronous_commit=on "
                "-c timezone=UTC")
        _run([pg_bin("pg_ctl"), "-D", str(home / "data"), "-o", opts, "-l", str(log),
              "-w", "-t", str(int(timeout_s)), "start"], "start")
    _wait_ready(port, timeout_s)
    _ensure_roles(settings)
    return settings.effective_pg_dsn


def _wait_ready(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_open("127.0.0.1", port):
            return
        time.sleep(0.3)
    raise ServiceError(f"PostgreSQL did not answer on 127.0.0.1:{port} within {timeout_s:.0f}s: "
                       "see .local/pg/postgres.log")


def _ensure_roles(settings: Settings) -> None:
    import psycopg2
    from psycopg2 import sql

    loc = settings.local
    conn = psycopg2.connect(host="127.0.0.1", port=loc.pg_port, user="postgres", dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for role, extra in ((loc.pg_user, sql.SQL("LOGIN CREATEDB")),
                                (loc.pg_reader, sql.SQL("LOGIN"))):
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL("CREATE ROLE {} ").format(sql.Identifier(role)) + extra)
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (loc.pg_database,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(loc.pg_database), sql.Identifier(loc.pg_user)))
    finally:
        conn.close()


def stop_postgres(settings: Settings) -> bool:
    home = pg_home(settings)
    if not pg_running(settings):
        return False
    _run([pg_bin("pg_ctl"), "-D", str(home / "data"), "-m", "fast", "-w", "stop"], "stop")
    return True


def pg_running(settings: Settings) -> bool:
    data = pg_home(settings) / "data"
    pidfile = data / "postmaster.pid"
    if not pidfile.exists():
        return False
    return port_open("127.0.0.1", settings.local.pg_port)
