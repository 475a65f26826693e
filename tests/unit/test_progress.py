"""Progress lines and gold.pipeline_progress rows from Spark's progress reports."""
from __future__ import annotations

from fleetlake.progress import progress_line, source_lag

KAFKA = {"batchId": 7, "durationMs": {"triggerExecution": 1250}, "sources": [{
    "endOffset": {"raw": {"0": 100, "1": 250}},
    "latestOffset": {"raw": {"0": 160, "1": 250}},
    "metrics": {"maxOffsetsBehindLatest": "60"}}]}
DELTA = {"batchId": 3, "durationMs": {"triggerExecution": 4000}, "sources": [{
    "endOffset": '{"sourceVersion":1,"reservoirVersion":12,"index":-1}',
    "latestOffset": None, "metrics": {"numFilesOutstanding": "5", "numBytesOutstanding": "900"}}]}


def test_kafka_lag_sums_every_partition():
    assert source_lag(KAFKA) == 60


def test_kafka_offsets_as_json_text_count_too():
    import json
    text = {**KAFKA, "sources": [{**KAFKA["sources"][0],
                                  "endOffset": json.dumps(KAFKA["sources"][0]["endOffset"]),
                                  "latestOffset": json.dumps(KAFKA["sources"][0]["latestOffset"])}]}
    assert source_lag(text) == 60


def test_delta_lag_is_the_files_not_read_yet():
    assert source_lag(DELTA) == 5


def test_unknown_lag_is_none():
    assert source_lag({"sources": [{"metrics": {}}]}) is None


def test_progress_lines():
    assert progress_line("fleetlake_hot", KAFKA) == \
        "fleetlake_hot batch 7: committed in 1.2s; 60 records behind"
    assert progress_line("fleetlake_gold", DELTA) == \
        "fleetlake_gold batch 3: committed in 4.0s; 5 files behind"
