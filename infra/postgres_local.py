"""The embedded PostgreSQL cluster (Debian's `postgresql` package) under `.local/pg/`.

initdb/postgres refuse to run as root, so as root they run as the `postgres` system user on a
data directory it owns. Every connection, over TCP (127.0.0.1 only) or the Unix socket in
`.local/pg/run`, must give its role's password (scram-sha-256). The passwords are generated at
first start into `.local/pg/pgpass` (mode 0600, readable by the user who ran `services up`
only), and the DSNs name that file (`passfile=`) instead of carrying a password. A cluster that
an earlier version created with `trust` is secured in place by the next `services up`.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from infra import dsn as dsns
from infra.procs import ServiceError, port_open, require_free_port
from infra.settings import Settings

PG_SYSTEM_USER = "postgres"
SUPERUSER = "postgres"
HBA = """\
# Written by fleetlake (infra/postgres_local.py); `fleetlake services up` rewrites any change.
# Every role must give its password (scram-sha-256); they are in ../pgpass (mode 0600).
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 scram-sha-256
host    all       all   127.0.0.1/32  scram-sha-256
"""


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


def _run(cmd: list[str], what: str, see: Path) -> None:
    result = subprocess.run(_as_pg_user(cmd), capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["?"]
        raise ServiceError(f"PostgreSQL {what} failed ({detail[0]}): see {see} "
                           "or remove .local/pg and retry `fleetlake services up`")


def _init_cluster(home: Path, superuser_password: str) -> None:
    """initdb with password authentication only; the superuser's password comes from a file."""
    data = home / "data"
    if (data / "PG_VERSION").exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    for sub in ("data", "run"):
        (home / sub).mkdir(exist_ok=True)
        _chown_to_pg(home / sub)
    os.chmod(home / "data", 0o700)
    pwfile = home / "run" / "initdb-password"  # initdb runs as `postgres`: it must read it
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(superuser_password + "\n")
    _chown_to_pg(pwfile)
    try:
        _run([pg_bin("initdb"), "-D", str(data), "-A", "scram-sha-256", "-U", SUPERUSER,
              f"--pwfile={pwfile}", "-E", "UTF8", "--no-locale"], "initdb", data)
    finally:
        pwfile.unlink(missing_ok=True)
    (data / "pg_hba.conf").write_text(HBA)


def _hba_is_fleetlakes(home: Path) -> bool:
    try:
        return (home / "data" / "pg_hba.conf").read_text() == HBA
    except FileNotFoundError:
        return False


def _load_passwords(settings: Settings) -> dict[str, str]:
    """The roles' passwords from the pgpass file, generating the missing ones (first start)."""
    home, passfile = pg_home(settings), Path(settings.local.pg_passfile)
    secured = (home / "data" / "PG_VERSION").exists() and _hba_is_fleetlakes(home)
    if secured and SUPERUSER not in dsns.read_passfile(passfile):
        raise ServiceError(f"the PostgreSQL cluster under {home} needs its passwords file "
                           f"{passfile}, which is missing or incomplete: restore it, or delete "
                           f"{home} to start from zero (its data is lost)")
    loc = settings.local
    return dsns.ensure_passfile(passfile, [SUPERUSER, loc.pg_user, loc.pg_reader])


def start_postgres(settings: Settings, timeout_s: float = 60.0,
                   log: Callable[[str], None] = lambda _msg: None) -> str:
    """Start the cluster unless it runs, secure it, create roles and database; the owner DSN."""
    home = pg_home(settings)
    port = settings.local.pg_port
    passwords = _load_passwords(settings)
    if not pg_running(settings):
        require_free_port(port, "PostgreSQL", "set pg_port under [local] in fleetlake.toml")
        _init_cluster(home, passwords[SUPERUSER])
        log_file = home / "postgres.log"
        if not log_file.exists():
            log_file.touch()
            _chown_to_pg(log_file)
        opts = (f"-p {port} -k {home / 'run'} -c listen_addresses=127.0.0.1 "
                "-c max_connections=100 -c shared_buffers=256MB -c synchronous_commit=on "
                "-c timezone=UTC")
        _run([pg_bin("pg_ctl"), "-D", str(home / "data"), "-o", opts, "-l", str(log_file),
              "-w", "-t", str(int(timeout_s)), "start"], "start", log_file)
    _wait_ready(port, timeout_s)
    if not _hba_is_fleetlakes(home):
        log(f"postgres: securing the cluster under {home}: passwords (scram-sha-256) "
            f"instead of `trust`, kept in {settings.local.pg_passfile}")
        _secure_in_place(settings, passwords[SUPERUSER])
    _ensure_roles(settings, passwords)
    return settings.effective_pg_dsn


def _wait_ready(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_open("127.0.0.1", port):
            return
        time.sleep(0.3)
    raise ServiceError(f"PostgreSQL did not answer on 127.0.0.1:{port} within {timeout_s:.0f}s: "
                       "see .local/pg/postgres.log")


def _superuser(settings: Settings):
    """An autocommit connection as the superuser, authenticated through the pgpass file."""
    import psycopg2

    loc = settings.local
    try:
        conn = psycopg2.connect(dsns.local_dsn(SUPERUSER, loc.pg_port, "postgres", loc.pg_passfile),
                                connect_timeout=10)
    except psycopg2.OperationalError as exc:
        raise ServiceError(f"PostgreSQL on 127.0.0.1:{loc.pg_port} refused fleetlake's superuser "
                           f"({dsns.error_line(exc)}): restore {loc.pg_passfile}, or delete "
                           f"{Path(loc.home) / 'pg'} to start from zero") from None
    conn.autocommit = True
    return conn


def _set_password(cur, role: str, password: str) -> None:
    """Store only the SCRAM verifier (computed here): the password never reaches the server."""
    from psycopg2 import extensions, sql

    verifier = extensions.encrypt_password(password, role, cur, "scram-sha-256")
    cur.execute(sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(role)), (verifier,))


def _secure_in_place(settings: Settings, superuser_password: str) -> None:
    """A cluster created with `trust`: give the superuser its password, then require passwords."""
    conn = _superuser(settings)  # still `trust`: no password is asked yet
    try:
        with conn.cursor() as cur:
            _set_password(cur, SUPERUSER, superuser_password)
            (pg_home(settings) / "data" / "pg_hba.conf").write_text(HBA)
            cur.execute("SELECT pg_reload_conf()")
    finally:
        conn.close()


def _ensure_roles(settings: Settings, passwords: dict[str, str]) -> None:
    """The writer (owns the database) and the read-only reader, with the pgpass passwords."""
    from psycopg2 import sql

    loc = settings.local
    conn = _superuser(settings)
    try:
        with conn.cursor() as cur:
            for role, extra in ((loc.pg_user, sql.SQL("LOGIN CREATEDB")),
                                (loc.pg_reader, sql.SQL("LOGIN"))):
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL("CREATE ROLE {} ").format(sql.Identifier(role)) + extra)
                _set_password(cur, role, passwords[role])
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
    _run([pg_bin("pg_ctl"), "-D", str(home / "data"), "-m", "fast", "-w", "stop"], "stop",
         home / "postgres.log")
    return True


def pg_running(settings: Settings) -> bool:
    data = pg_home(settings) / "data"
    pidfile = data / "postmaster.pid"
    if not pidfile.exists():
        return False
    return port_open("127.0.0.1", settings.local.pg_port)
