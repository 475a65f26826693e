"""Shared fixtures: one Spark session (with Delta and the Kafka source) for the whole run."""
from __future__ import annotations

import dataclasses

import pytest

from infra.settings import Settings, load_settings


# The tests' frames hold a few rows to a few thousand: generating and compiling code for each of
# their many small plans costs more than it saves, and so does AQE's job per shuffle stage (the
# pipeline's own query sessions turn AQE off anyway). Pipelines the tests start as processes
# run with the product's settings.
TINY_DATA_CONFS = {"spark.sql.codegen.wholeStage": "false",
                   "spark.sql.codegen.factoryMode": "NO_CODEGEN",
                   "spark.sql.adaptive.enabled": "false",
                   "spark.sql.shuffle.partitions": "2"}


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
