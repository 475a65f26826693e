"""Shared fixtures: one Spark session (with Delta and the Kafka source) for the whole run."""
from __future__ import annotations

import dataclasses
import os

import pytest

from infra.settings import Settings, load_settings


# The tests' frames hold a few rows to a few thousand: generating and compiling code for each of
# their many small plans costs more than it saves, and so does AQE's job per shuffle stage (the
# pipeline's own query sessions turn AQE off anyway).
NO_CODEGEN_CONFS = {"spark.sql.codegen.wholeStage": "false",
                    "spark.sql.codegen.factoryMode": "NO_CODEGEN"}
TINY_DATA_CONFS = {**NO_CODEGEN_CONFS,
                   "spark.sql.adaptive.enabled": "false",
                   "spark.sql.shuffle.partitions": "2"}
# The pipelines and commands the tests start as processes (a fresh JVM each, a few hundred to a
# few thousand rows) compile code for every stage of their first batches: without it, the
# replay tests took 330 s instead of 382 s (restart and checkpoint repair: 255 s, 268 s). They
# inherit it through pyspark's own variable;
# tests/integration/test_bench.py clears it, so one test runs every layer with the product's
# settings, whole-stage code generation included.
os.environ.setdefault("PYSPARK_SUBMIT_ARGS", " ".join(
    f"--conf {key}={value}" for key, value in NO_CODEGEN_CONFS.items()) + " pyspark-shell")


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def spark(base_settings):
    from infra.spark import build_spark

    settings = dataclasses.replace(
        base_settings, spark=dataclasses.replace(base_settings.spark, driver_memory="2g"))
    session = build_spark(settings, app_name="fleetlake-tests", extra_confs=TINY_DATA_CONFS)
    yield session
    session.stop()


@pytest.fixture
def settings(base_settings, tmp_path) -> Settings:
    """Settings whose lake root (tables and checkpoints) lives in this test's tmp_path."""
    return dataclasses.replace(base_settings, lake_root=str(tmp_path / "lake"))
