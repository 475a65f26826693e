"""Security on the real PostgreSQL: password auth, reader grants, the dashboard's role, no
password in any output.

The cluster tests start scratch clusters of their own (under `.local/`, on a free port); the
others use the checkout's embedded cluster and read its generated passwords from the pgpass file.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg2
import pytest
from kafka import KafkaProducer
from psycopg2 import errors, extensions, sql

from fleetlake.runner import prepare
from infra import dsn as dsns
from infra.postgres_local import HBA, pg_home, start_postgres, stop_postgres
from infra.procs import ServiceError
from infra.settings import Settings
from ingestion.admin import ensure_topic
from serving.migrate import MigrationError, migrate
from serving.tables import LEDGER_TABLE, PROGRESS_TABLE, TABLES

from .lake_equality import pg_query
from .pipeline_proc import PipelineProcess, pipeline_env

pytestmark = pytest.mark.integration

GOLD_TABLES = [*TABLES, LEDGER_TABLE, PROGRESS_TABLE]
LEGACY_HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\n"


@pytest.fixture
def local_pg(base_settings: Settings) -> Settings:
    """The checkout's embedded cluster (these tests need its pgpass file)."""
    if not base_settings.uses_local_pg:
        pytest.skip("needs the embedded PostgreSQL (FLEETLAKE_PG_DSN is set)")
    return base_settings


@pytest.fixture
def passwords(local_pg: Settings) -> dict[str, str]:
    """Every generated password of the embedded cluster, by role."""
    found = dsns.read_passfile(Path(local_pg.local.pg_passfile))
    assert {"postgres", local_pg.local.pg_user, local_pg.local.pg_reader} <= found.keys()
    return found


@pytest.fixture(autouse=True)
def no_ambient_password(monkeypatch):
    """libpq must not find a password anywhere but where a test puts it."""
    for var in ("PGPASSWORD", "PGPASSFILE", "PGUSER", "PGHOST", "PGPORT"):
        monkeypatch.delenv(var, raising=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def scratch_cluster(local_pg: Settings):
    """Settings of a new, not yet created cluster under .local/ (the `postgres` system user
    cannot enter pytest's tmp_path); stopped and deleted after the test."""
    home = Path(local_pg.local.home) / f"test-cluster-{uuid.uuid4().hex[:8]}"
    settings = dataclasses.replace(local_pg, local=dataclasses.replace(
        local_pg.local, home=str(home), pg_port=free_port()))
    try:
        yield settings
    finally:
        if (pg_home(settings) / "data" / "postmaster.pid").exists():
            stop_postgres(settings)
        shutil.rmtree(home, ignore_errors=True)


def cli(args: list[str], env_extra: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETLAKE_")}
    return subprocess.run([sys.executable, "-m", "fleetlake.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env={**env, **(env_extra or {})})


def current_user(dsn: str) -> str:
    return pg_query(dsn, "SELECT current_user")[0][0]


def assert_password_required(settings: Settings, tmp_path: Path) -> None:
    """Every role, over TCP and over the Unix socket, is refused without its password."""
    empty = tmp_path / "empty_pgpass"
    empty.write_text("")
    loc = settings.local
    for host in ("127.0.0.1", str(pg_home(settings) / "run")):
        for role in ("postgres", loc.pg_user, loc.pg_reader):
            with pytest.raises(psycopg2.OperationalError, match="no password supplied"):
                psycopg2.connect(host=host, port=loc.pg_port, user=role, dbname="postgres",
                                 passfile=str(empty), connect_timeout=5)
    with pytest.raises(psycopg2.OperationalError,
                       match='password authentication failed for user "postgres"'):
        psycopg2.connect(host="127.0.0.1", port=loc.pg_port, user="postgres", dbname="postgres",
                         password="not-the-password", connect_timeout=5)


def assert_no_secret(text: str, secrets: list[str]) -> None:
    leaked = [s for s in secrets if s in text]
    assert not leaked, f"{len(leaked)} password(s) in the output:\n{text[-2000:]}"


# --- the embedded cluster's authentication ------------------------------------------------

def test_no_role_connects_without_its_password(local_pg, tmp_path):
    assert_password_required(local_pg, tmp_path)
    passfile = Path(local_pg.local.pg_passfile)
    assert oct(passfile.stat().st_mode & 0o777) == "0o600"
    assert (pg_home(local_pg) / "data" / "pg_hba.conf").read_text() == HBA


def test_status_dsns_work_as_printed_and_no_output_holds_a_password(local_pg, passwords):
    up, status = cli(["services", "up"]), cli(["services", "status", "--json"])
    assert up.returncode == 0 and status.returncode == 0, up.stderr + status.stderr
    printed = json.loads(status.stdout)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for key, role in (("pg_dsn", local_pg.local.pg_user),
                      ("pg_reader_dsn", local_pg.local.pg_reader)):
        dsn = printed[key]
        assert extensions.parse_dsn(dsn)["passfile"] == local_pg.local.pg_passfile
        assert current_user(dsn) == role
        psql = subprocess.run(["psql", "-w", "-X", dsn, "-Atc", "SELECT current_user"],
                              capture_output=True, text=True, timeout=30, env=env)
        assert (psql.returncode, psql.stdout.strip()) == (0, role), psql.stderr
    plain = cli(["services", "status"])
    text = up.stdout + up.stderr + status.stdout + status.stderr + plain.stdout + plain.stderr
    server_log = (pg_home(local_pg) / "postgres.log").read_text(errors="replace")
    assert_no_secret(text + server_log, list(passwords.values()))


def test_a_new_cluster_needs_passwords_from_its_first_start(scratch_cluster, tmp_path):
    said: list[str] = []
    start_postgres(scratch_cluster, log=said.append)
    assert said == []  # nothing to secure: initdb already required passwords
    assert (pg_home(scratch_cluster) / "data" / "pg_hba.conf").read_text() == HBA
    assert_password_required(scratch_cluster, tmp_path)
    assert current_user(scratch_cluster.effective_pg_dsn) == "fleetlake"
    assert current_user(scratch_cluster.reader_pg_dsn) == "fleetlake_reader"

    stop_postgres(scratch_cluster)
    passfile = Path(scratch_cluster.local.pg_passfile)
    kept = passfile.rename(passfile.with_name("kept"))
    with pytest.raises(ServiceError, match=r"needs its passwords file .*pgpass, which is missing "
                                           r"or incomplete: restore it, or delete .* to start"):
        start_postgres(scratch_cluster)
    kept.rename(passfile)
    start_postgres(scratch_cluster)
    assert current_user(scratch_cluster.effective_pg_dsn) == "fleetlake"


@pytest.mark.parametrize("running", [True, False], ids=["running", "stopped"])
def test_a_trust_cluster_of_an_earlier_version_is_secured_in_place(scratch_cluster, tmp_path,
                                                                   running):
    start_postgres(scratch_cluster)
    _make_legacy(scratch_cluster)  # what earlier versions left: trust, no passwords, no pgpass
    open_dsn = (f"host=127.0.0.1 port={scratch_cluster.local.pg_port} user=postgres "
                "dbname=postgres")
    assert current_user(open_dsn) == "postgres"  # anyone local was the superuser
    if not running:
        stop_postgres(scratch_cluster)
    said: list[str] = []
    start_postgres(scratch_cluster, log=said.append)
    assert len(said) == 1 and said[0].startswith("postgres: securing the cluster under ")
    assert (pg_home(scratch_cluster) / "data" / "pg_hba.conf").read_text() == HBA
    assert_password_required(scratch_cluster, tmp_path)
    assert current_user(scratch_cluster.effective_pg_dsn) == "fleetlake"
    assert current_user(scratch_cluster.reader_pg_dsn) == "fleetlake_reader"
    start_postgres(scratch_cluster, log=said.append)
    assert len(said) == 1  # secured once


def _make_legacy(settings: Settings) -> None:
    superuser = dsns.local_dsn("postgres", settings.local.pg_port, "postgres",
                               settings.local.pg_passfile)
    (pg_home(settings) / "data" / "pg_hba.conf").write_text(LEGACY_HBA)
    pg_query(superuser, "SELECT pg_reload_conf()")
    for role in ("postgres", settings.local.pg_user, settings.local.pg_reader):
        pg_query(superuser, sql.SQL("ALTER ROLE {} PASSWORD NULL").format(sql.Identifier(role)))
    Path(settings.local.pg_passfile).unlink()


# --- the reader role's grants --------------------------------------------------------------

def test_every_database_the_pipeline_sets_up_grants_the_reader_select_only(spark, e2e_settings):
    assert not e2e_settings.uses_local_pg  # an "external" database: no reader DSN configured
    prepare(spark, e2e_settings)
    writer = e2e_settings.effective_pg_dsn
    reader = extensions.make_dsn(writer, user=e2e_settings.local.pg_reader)
    forbidden = ["CREATE TABLE gold.evil (x int)", "CREATE TABLE public.evil (x int)",
                 "CREATE SCHEMA evil", "CREATE INDEX evil ON gold.alerts (message)"]
    for table in GOLD_TABLES:
        assert pg_query(reader, sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier("gold", table))) == [(0,)], table
        name = sql.Identifier("gold", table)
        column = sql.Identifier(pg_query(writer, "SELECT attname FROM pg_attribute WHERE "
                                         "attrelid = %s::regclass AND attnum = 1",
                                         (f"gold.{table}",))[0][0])
        forbidden += [sql.SQL("INSERT INTO {} DEFAULT VALUES").format(name),
                      sql.SQL("UPDATE {} SET {} = {}").format(name, column, column),
                      sql.SQL("DELETE FROM {}").format(name),
                      sql.SQL("TRUNCATE {}").format(name)]
    for statement in forbidden:
        with pytest.raises(errors.InsufficientPrivilege):
            pg_query(reader, statement)


def test_a_configured_reader_that_does_not_exist_is_refused_and_its_name_stays_a_name(
        e2e_settings):
    evil = 'x"; DROP TABLE gold.alerts; --'
    settings = dataclasses.replace(
        e2e_settings, pg_reader_dsn=extensions.make_dsn(e2e_settings.pg_dsn, user=evil))
    with pytest.raises(MigrationError, match=r"role 'x\"; DROP TABLE gold.alerts; --' does not "
                                             r"exist .*fix the user of FLEETLAKE_PG_READER_DSN"):
        migrate(settings)
    assert pg_query(e2e_settings.pg_dsn, "SELECT to_regclass('gold.alerts')::text") == [
        ("gold.alerts",)]


def test_a_missing_default_reader_on_an_external_database_is_a_warning(e2e_settings, caplog):
    settings = dataclasses.replace(e2e_settings, local=dataclasses.replace(
        e2e_settings.local, pg_reader="no_reader_here"))
    with caplog.at_level(logging.WARNING, logger="fleetlake.serving"):
        assert migrate(settings) != []
    assert any("has no role no_reader_here: the dashboard has no read-only role" in m
               for m in caplog.messages)


# --- the dashboard's role and its password -------------------------------------------------

def test_the_dashboard_refuses_a_role_that_can_write(local_pg):
    writer = extensions.make_dsn(local_pg.effective_pg_dsn, host="localhost")  # not the same text
    result = cli(["dashboard", "--port", str(free_port())],
                 {"FLEETLAKE_PG_READER_DSN": writer})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fleetlake: error: the dashboard's role 'fleetlake' can change the "
                               "database (may create schemas in the database")
    assert lines[0].endswith(": set FLEETLAKE_PG_READER_DSN to a role that may only SELECT from "
                             "schema gold (docs/security.md), or pass --allow-writer")


def test_a_reader_password_reaches_streamlit_but_no_command_line(local_pg, passwords):
    from dashboard.serve import dashboard_process

    secret = passwords[local_pg.local.pg_reader]
    loc = local_pg.local
    with_password = (f"postgresql://{loc.pg_reader}:{secret}@127.0.0.1:{loc.pg_port}/"
                     f"{loc.pg_database}")
    command, env = dashboard_process(with_password, free_port())
    probe = subprocess.run(
        [sys.executable, "-c", "import psycopg2, sys; c = psycopg2.connect(sys.argv[1]); "
         "cur = c.cursor(); cur.execute('SELECT current_user'); print(cur.fetchone()[0])",
         command[-1]], env=env, capture_output=True, text=True, timeout=60)
    assert (probe.returncode, probe.stdout.strip()) == (0, loc.pg_reader), probe.stderr
    port = int(command[command.index("--server.port") + 1])
    dashboard = subprocess.Popen(
        [sys.executable, "-m", "fleetlake.cli", "dashboard", "--port", str(port)],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("FLEETLAKE_")},
             "FLEETLAKE_PG_READER_DSN": with_password},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_port(port, dashboard)
        assert_no_secret("\n".join(_command_lines()), [secret])
    finally:
        dashboard.terminate()
        output = dashboard.communicate(timeout=30)[0]
    assert_no_secret(output, [secret])


def _wait_for_port(port: int, proc: subprocess.Popen, timeout_s: float = 90) -> None:
    import time

    from infra.procs import port_open

    deadline = time.monotonic() + timeout_s
    while not port_open("127.0.0.1", port):
        assert proc.poll() is None and time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.3)


def _command_lines() -> list[str]:
    """The command line of every process on the machine, as `ps` shows them to any user."""
    lines = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                         .decode(errors="replace"))
        except OSError:
            continue
    return lines


# --- the pipeline and the CLI with a password in the DSN -----------------------------------

def test_pipeline_and_cli_output_never_holds_the_dsn_password(e2e_settings, passwords, tmp_path):
    secret = passwords[e2e_settings.local.pg_user]
    params = extensions.parse_dsn(e2e_settings.pg_dsn)
    params.pop("passfile")
    good = extensions.make_dsn(**params, password=secret)
    wrong_secret = f"Wrong-{uuid.uuid4().hex}"
    wrong = extensions.make_dsn(**params, password=wrong_secret)
    settings = dataclasses.replace(e2e_settings, pg_dsn=good)
    ensure_topic(settings.effective_kafka_bootstrap, settings.topic, settings.topic_partitions)
    producer = KafkaProducer(bootstrap_servers=settings.effective_kafka_bootstrap)
    producer.send(settings.topic, key=b"A", value=json.dumps({
        "car_id": "A", "event_timestamp": "2026-01-01T00:00:00Z", "speed_kmph": 150.0,
        "fuel_level": 50.0, "engine_temp_c": 90.0, "latitude": 26.4, "longitude": 50.1}).encode())
    producer.flush()
    producer.close()
    config = tmp_path / "small.toml"
    config.write_text('[spark]\ndriver_memory = "1g"\n')

    ran = PipelineProcess(pipeline_env(settings, config))
    assert ran.finish() == 0, ran.tail()
    assert pg_query(e2e_settings.pg_dsn, "SELECT car_id FROM gold.device_latest") == [("A",)]
    failed = PipelineProcess(pipeline_env(dataclasses.replace(settings, pg_dsn=wrong), config))
    assert failed.finish() == 1, failed.tail()
    assert failed.lines[-1].startswith("fleetlake: error: PostgreSQL refused the connection (")
    assert 'password authentication failed for user "fleetlake"' in failed.lines[-1]
    assert not any("Traceback" in line for line in failed.lines)

    env = {"FLEETLAKE_KAFKA_BOOTSTRAP": settings.effective_kafka_bootstrap}
    up = cli(["services", "up"], {**env, "FLEETLAKE_PG_DSN": wrong})
    assert up.returncode == 1 and "password authentication failed" in up.stderr
    status = cli(["services", "status", "--json"], {**env, "FLEETLAKE_PG_DSN": good,
                                                   "FLEETLAKE_PG_READER_DSN": wrong})
    assert json.loads(status.stdout)["pg_dsn"] == extensions.make_dsn(**params)
    garbled = cli(["services", "status"], {"FLEETLAKE_PG_DSN": f"{good} junk"})
    assert garbled.returncode == 1 and "not a valid PostgreSQL connection string" in garbled.stderr
    outputs = [*ran.lines, *failed.lines, up.stdout, up.stderr, status.stdout, status.stderr,
               garbled.stdout, garbled.stderr]
    assert_no_secret("\n".join(outputs), [secret, wrong_secret])
