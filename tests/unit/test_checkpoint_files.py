"""Checkpoint entries read and parsed exactly, and the journal the sinks keep of them
(infra/checkpoint_files.py)."""
from __future__ import annotations

import json
import os

import pytest

from infra.checkpoint_files import (HadoopDir, journal_batch, journal_path, parse_entry,
                                    parse_metadata, parse_offsets)

BATCH = '{"batchWatermarkMs":0,"batchTimestampMs":1796594973802,"conf":{}}'
KAFKA = '{"t":{"0":2189,"1":1222}}'
OFFSETS = f"v1\n{BATCH}\n{KAFKA}"


def test_whole_entries_parse_and_every_torn_one_does_not():
    assert parse_offsets(OFFSETS) == [json.loads(BATCH), json.loads(KAFKA)]
    assert parse_entry('v1\n{"nextBatchWatermarkMs":0}') == [{"nextBatchWatermarkMs": 0}]
    assert parse_metadata('{"id":"b3d96e84"}\n') == "b3d96e84"
    for cut in range(len(OFFSETS)):  # a write torn at any byte
        assert parse_offsets(OFFSETS[:cut]) is None, cut
    assert [parse_metadata(t) for t in ("", '{"id":"b3d9', '{"id":""}', "[1]", None)] == \
        [None] * 5
    assert parse_entry("x1\n{}") is None and parse_offsets(f"v1\n{KAFKA}\n{KAFKA}") is None


def test_journal_path_sits_beside_the_checkpoints():
    assert journal_path("/lake/_checkpoints/fleetlake_hot/") == \
        "/lake/_checkpoints/_journal/fleetlake_hot"


@pytest.fixture
def checkpoint(spark, tmp_path):
    path = str(tmp_path / "_checkpoints" / "q")
    return path, HadoopDir(spark, path)


def test_a_batch_is_journaled_byte_for_byte_with_the_query_id(spark, checkpoint):
    path, directory = checkpoint
    directory.write("offsets/5", OFFSETS)
    assert journal_batch(spark, path, 5, query_id="id-1") == parse_offsets(OFFSETS)
    journal = HadoopDir(spark, journal_path(path))
    assert journal.read("offsets/5") == OFFSETS
    assert parse_metadata(journal.read("metadata")) == "id-1"
    assert journal.names("offsets") == [".5.crc", "5"]


def test_a_file_changed_behind_its_checksum_reads_as_unreadable(spark, checkpoint):
    path, directory = checkpoint
    directory.write("offsets/0", OFFSETS)
    os.truncate(f"{path}/offsets/0", 20)
    assert directory.read("offsets/0") is None
    assert directory.read("offsets/1") is None  # missing
    with pytest.raises(RuntimeError, match="offsets entry of batch 0 .* is unreadable"):
        journal_batch(spark, path, 0)


def test_the_journal_keeps_the_last_hundred_batches(spark, checkpoint):
    path, directory = checkpoint
    journal = HadoopDir(spark, journal_path(path))
    for batch in (0, 50, 99, 100, 150):
        journal.write(f"offsets/{batch}", OFFSETS)
    directory.write("offsets/200", OFFSETS)
    journal_batch(spark, path, 200)
    assert [n for n in journal.names("offsets") if n.isdigit()] == ["100", "150", "200"]


def test_a_set_aside_file_moves_with_its_checksum_name(spark, checkpoint, tmp_path):
    path, directory = checkpoint
    directory.write("commits/3", 'v1\n{"nextBatchWatermarkMs":0}')
    directory.move_to("commits/.3.crc", str(tmp_path / "aside" / "commits" / ".3.crc"))
    assert directory.names("commits") == ["3"]
    assert sorted(os.listdir(tmp_path / "aside" / "commits")) == [".3.crc"]
