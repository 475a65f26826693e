"""DSNs and passwords: the reader DSN setting, passfile DSNs, redaction, the dashboard's process."""
from __future__ import annotations

import json
import os
import stat

import pytest
from psycopg2 import extensions

from dashboard.serve import dashboard_dsn, dashboard_process
from fleetlake import cli
from infra import dsn as dsns
from infra.services import services_status
from infra.settings import ConfigError, load_settings

SECRET = "Pa:ss w@rd/%;'x"  # every character that needs quoting somewhere
URI = "postgresql://writer:Pa%3Ass%20w%40rd%2F%25%3B%27x@db.example:6543/gold"
KEYWORDS = "host=db.example port=6543 dbname=gold user=reader password='Pa:ss w@rd/%;\\'x'"
TOML = '[local]\nhome = "/srv/fl/.local"\npg_port = 25432\n'


def settings_from(tmp_path, env: dict[str, str]):
    config = tmp_path / "f.toml"
    config.write_text(TOML)
    return load_settings(env={"FLEETLAKE_CONFIG": str(config), **env})


def test_both_dsn_spellings_give_the_same_password():
    assert dsns.password_of(URI) == SECRET
    assert dsns.password_of(KEYWORDS) == SECRET
    assert dsns.password_of("postgresql://u@h/db") is None
    assert dsns.password_of(None) is None


def test_passwords_are_spotted_even_in_a_dsn_libpq_cannot_parse():
    assert dsns.parse("postgresql://u:hunter2@h/db?bogus=1") is None
    assert dsns.password_of("postgresql://u:hunter2@h/db?bogus=1") == "hunter2"
    assert dsns.password_of("host=h password=hunter2 junk") == "hunter2"
    assert dsns.password_of("postgresql://u@h/db?password=hunter2&bogus=1") == "hunter2"


def test_without_password_keeps_everything_else():
    stripped = dsns.without_password(URI)
    assert SECRET not in stripped and "Pa%3A" not in stripped
    assert extensions.parse_dsn(stripped) == {"user": "writer", "host": "db.example",
                                              "port": "6543", "dbname": "gold"}
    assert dsns.without_password("postgresql://u@h/db") == "postgresql://u@h/db"


def test_redact_hides_the_raw_and_url_encoded_password():
    text = f"failed for {SECRET} and {URI}"
    redacted = dsns.redact(text, URI, None)
    assert SECRET not in redacted and "Pa%3Ass%20w%40rd" not in redacted
    assert redacted.count(dsns.MASK) == 2


def test_local_dsns_use_the_passfile_and_hold_no_password(tmp_path):
    settings = settings_from(tmp_path, {})
    passfile = "/srv/fl/.local/pg/pgpass"
    assert settings.local.pg_passfile == passfile
    assert settings.effective_pg_dsn == (
        f"postgresql://fleetlake@127.0.0.1:25432/fleetlake?passfile={passfile}")
    assert extensions.parse_dsn(settings.reader_pg_dsn) == {
        "user": "fleetlake_reader", "host": "127.0.0.1", "port": "25432", "dbname": "fleetlake",
        "passfile": passfile}
    assert settings.reader_role == "fleetlake_reader"


def test_an_external_writer_dsn_is_never_the_readers(tmp_path):
    settings = settings_from(tmp_path, {"FLEETLAKE_PG_DSN": URI})
    assert settings.effective_pg_dsn == URI
    assert settings.reader_pg_dsn is None
    assert settings.reader_role == "fleetlake_reader"


def test_the_reader_dsn_comes_from_its_own_variable(tmp_path):
    settings = settings_from(tmp_path, {"FLEETLAKE_PG_DSN": URI,
                                        "FLEETLAKE_PG_READER_DSN": KEYWORDS})
    assert settings.reader_pg_dsn == KEYWORDS
    assert settings.reader_role == "reader"


@pytest.mark.parametrize("var", ["FLEETLAKE_PG_DSN", "FLEETLAKE_PG_READER_DSN"])
def test_an_unparsable_dsn_is_refused_without_echoing_it(tmp_path, var):
    with pytest.raises(ConfigError) as caught:
        settings_from(tmp_path, {var: "host=h password=hunter2 junk"})
    assert str(caught.value).startswith(f"{var} (or ")
    assert "hunter2" not in str(caught.value) and "junk" not in str(caught.value)


def test_a_reader_dsn_must_name_its_role(tmp_path):
    with pytest.raises(ConfigError, match="FLEETLAKE_PG_READER_DSN names no user"):
        settings_from(tmp_path, {"FLEETLAKE_PG_READER_DSN": "host=h dbname=d"})


@pytest.mark.parametrize("name, value", [
    ("pg_reader", 'x"; DROP DATABASE fleetlake; --'),
    ("pg_user", "Robert'); DROP TABLE students;--"),
    ("pg_database", "a b"),
    ("pg_user", "x" * 64),
])
def test_local_role_and_database_names_must_be_plain_identifiers(tmp_path, name, value):
    config = tmp_path / "f.toml"
    config.write_text(f"[local]\n{name} = {json.dumps(value)}\n")
    with pytest.raises(ConfigError, match=f"local.{name} must be a lower-case SQL name"):
        load_settings(env={"FLEETLAKE_CONFIG": str(config)})


def test_pgpass_is_generated_private_kept_and_escaped(tmp_path):
    path = tmp_path / "pg" / "pgpass"
    first = dsns.ensure_passfile(path, ["postgres", "fleetlake"])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(set(first.values())) == 2 and all(len(p) >= 32 for p in first.values())
    path.write_text(path.read_text() + "*:*:*:odd\\:role:pa\\:ss\\\\word\n")
    os.chmod(path, 0o644)
    second = dsns.ensure_passfile(path, ["postgres", "fleetlake", "fleetlake_reader"])
    assert {k: second[k] for k in first} == first
    assert second["odd:role"] == "pa:ss\\word"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert dsns.read_passfile(path) == second


def test_the_dashboard_password_travels_in_the_environment_not_the_command_line():
    command, env = dashboard_process(URI, 8501)
    assert not any(SECRET in arg or "Pa%3A" in arg for arg in command)
    assert extensions.parse_dsn(command[-1]) == extensions.parse_dsn(dsns.without_password(URI))
    assert env["PGPASSWORD"] == SECRET
    local_command, local_env = dashboard_process("postgresql://r@127.0.0.1/d?passfile=/p", 1)
    assert local_command[-1] == "postgresql://r@127.0.0.1/d?passfile=/p"
    assert local_env.get("PGPASSWORD") == os.environ.get("PGPASSWORD")


def test_the_dashboard_refuses_the_writer_dsn_before_connecting(tmp_path):
    external = settings_from(tmp_path, {"FLEETLAKE_PG_DSN": URI})
    with pytest.raises(ConfigError, match="FLEETLAKE_PG_READER_DSN is not.*--allow-writer"):
        dashboard_dsn(external, allow_writer=False)
    assert dashboard_dsn(external, allow_writer=True) == URI
    same = settings_from(tmp_path, {"FLEETLAKE_PG_DSN": URI,
                                    "FLEETLAKE_PG_READER_DSN": dsns.without_password(URI)})
    with pytest.raises(ConfigError, match="connects as the pipeline's writer role.*--allow-writer"):
        dashboard_dsn(same, allow_writer=False)


def test_status_prints_no_password(tmp_path):
    settings = settings_from(tmp_path, {"FLEETLAKE_PG_DSN": URI,
                                        "FLEETLAKE_PG_READER_DSN": KEYWORDS})
    status = services_status(settings)
    text = json.dumps(status)
    assert SECRET not in text and "Pa%3A" not in text and "hunter" not in text
    assert extensions.parse_dsn(status["pg_dsn"])["user"] == "writer"
    assert extensions.parse_dsn(status["pg_reader_dsn"])["user"] == "reader"


def test_cli_errors_and_tracebacks_never_show_the_password(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FLEETLAKE_CONFIG", str(tmp_path / "f.toml"))
    (tmp_path / "f.toml").write_text(TOML)
    monkeypatch.setenv("FLEETLAKE_PG_DSN", URI)

    def fails(settings, args):
        raise RuntimeError(f"boom with {settings.pg_dsn}")

    monkeypatch.setattr(cli, "_cmd_services", fails)
    assert cli.main(["services", "status"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "boom with" in err
    assert SECRET not in err and "Pa%3Ass%20w%40rd" not in err
