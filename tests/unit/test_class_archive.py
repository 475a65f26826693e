"""The Spark JVM's class archive: keyed by the JVM and jars, used only when recorded for that key;
the recording workload runs through on the test session."""
from __future__ import annotations

import os

from pyspark.sql import functions as F

from fleetlake.jvm_warmup import warm_up
from infra.class_archive import (archive_key, archive_path, record_options, stale_archives,
                                 use_options)


def fake_jvm(tmp_path):
    libjvm = tmp_path / "jdk" / "lib" / "server" / "libjvm.so"
    libjvm.parent.mkdir(parents=True)
    libjvm.write_bytes(b"jvm")
    return libjvm


def test_the_key_follows_the_jvm_and_every_jar(tmp_path, monkeypatch):
    libjvm = fake_jvm(tmp_path)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    jar = tmp_path / "delta-spark.jar"
    jar.write_bytes(b"v1")
    key = archive_key([str(jar)])

    assert key is not None and archive_key([str(jar)]) == key
    jar.write_bytes(b"v2!")  # another jar build
    assert archive_key([str(jar)]) not in (None, key)
    newer_jar = archive_key([str(jar)])
    os.utime(libjvm, ns=(1, 1))  # a JDK update
    assert archive_key([str(jar)]) not in (None, key, newer_jar)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    assert archive_key([str(jar)]) is None


def test_an_archive_is_mapped_only_when_recorded_for_the_key(tmp_path):
    assert use_options("k1", tmp_path) == ""
    assert use_options(None, tmp_path) == ""
    archive_path("k1", tmp_path).write_bytes(b"archive")
    assert use_options("k1", tmp_path) == (
        f"-XX:SharedArchiveFile={tmp_path}/spark-k1.jsa -Xlog:cds=off -Xlog:cds+dynamic=off")
    assert use_options("k2", tmp_path) == ""
    assert record_options(tmp_path / "x.partial") == f"-XX:ArchiveClassesAtExit={tmp_path}/x.partial"


def test_archives_of_other_keys_are_stale(tmp_path):
    for name in ("spark-k1.jsa", "spark-k0.jsa", "spark-k2.partial"):
        (tmp_path / name).write_bytes(b"")
    assert stale_archives("k1", tmp_path) == [tmp_path / "spark-k0.jsa"]


def test_the_recording_workload_runs_every_kind_of_work(spark, settings, tmp_path):
    warm_up(spark, settings, tmp_path / "warmup")

    def table(name):
        return spark.read.format("delta").load(str(tmp_path / "warmup" / name))

    assert sorted(r.event_id for r in table("silver").collect()) == sorted(
        f"w-{i}" for i in range(300))
    assert [r.reasons for r in table("quarantine").collect()] == [["MALFORMED_JSON"]]
    streamed = table("streamed").select("offset").collect()
    assert sorted(r.offset for r in streamed) == list(range(302))
    overspeed = table("alerts").where(F.col("alert_type") == "OVERSPEED").collect()
    assert sorted(r.event_id for r in overspeed) == sorted(
        f"w-{i}" for i in range(300) if 60 + i % 120 > settings.alerts.overspeed_kmph)
