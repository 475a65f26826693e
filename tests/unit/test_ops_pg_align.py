"""The JDBC connection of `replay`'s PostgreSQL alignment (Spark's reader does not read pgpass)."""
from __future__ import annotations

from infra.dsn import local_dsn
from ops.pg_align import jdbc_url


def test_a_passfile_dsn_gets_its_password_from_the_file_and_never_in_the_url(tmp_path):
    passfile = tmp_path / "pgpass"
    passfile.write_text("*:*:*:fleetlake:s3cr\\:et\n*:*:*:fleetlake_reader:other\n")
    url, props = jdbc_url(local_dsn("fleetlake", 15432, "lake_db", str(passfile)))
    assert url == "jdbc:postgresql://127.0.0.1:15432/lake_db"
    assert (props["user"], props["password"]) == ("fleetlake", "s3cr:et")


def test_a_password_in_the_dsn_is_used_as_is():
    url, props = jdbc_url("host=db.example port=5433 dbname=g user=w password=pw sslmode=require")
    assert url == "jdbc:postgresql://db.example:5433/g"
    assert (props["password"], props["sslmode"]) == ("pw", "require")
