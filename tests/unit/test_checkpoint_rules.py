"""The start-up check's rules (fleetlake/checkpoint_rules.py): which damage refuses a start, and
the exact actions `fleetlake pipeline repair` takes for it."""
from __future__ import annotations

from fleetlake.checkpoint_rules import CheckpointView, Finding, diagnose

QUERY_ID, OTHER_ID = "11111111-aaaa", "22222222-bbbb"


def names(*batches: int, crcs: tuple[int, ...] | None = None) -> frozenset[str]:
    """A log directory's names: each batch with its checksum (or only `crcs`' checksums)."""
    with_crc = batches if crcs is None else crcs
    return frozenset([*map(str, batches), *(f".{b}.crc" for b in with_crc)])


def view(offsets: dict[int, bool], commits: dict[int, bool], sink: int | None,
         journal: tuple[int, ...] = (), offsets_names=None, commits_names=None,
         metadata_id: str | None = QUERY_ID, top=frozenset({"metadata", ".metadata.crc",
                                                            "offsets", "commits"}),
         lake_id: str | None = QUERY_ID, journal_id: str | None = QUERY_ID) -> CheckpointView:
    return CheckpointView(
        "q", True, top, metadata_id, offsets,
        names(*offsets) if offsets_names is None else offsets_names, commits,
        names(*commits) if commits_names is None else commits_names, journal_id,
        frozenset(journal), sink, lake_id)


def test_a_new_query_and_a_whole_checkpoint_may_start():
    assert diagnose(CheckpointView("q", False)) == []
    assert diagnose(view({0: True, 1: True, 2: True}, {0: True, 1: True, 2: True}, 2)) == []


def test_a_normal_crash_mid_batch_may_start_spark_redoes_the_batch():
    assert diagnose(view({3: True, 4: True}, {3: True}, sink=4, journal=(4,))) == []
    assert diagnose(view({3: True, 4: True}, {3: True}, sink=3, journal=(4,))) == []


def test_a_missing_checkpoint_of_a_query_that_wrote_cannot_be_repaired():
    assert diagnose(CheckpointView("q", False, sink_batch=7)) == [
        Finding("the checkpoint is missing, but the lake holds batch 7 of the query")]


def test_a_truncated_newest_offsets_entry_is_restored_from_the_journal():
    found = diagnose(view({3: True, 4: False}, {3: True, 4: True}, sink=4, journal=(3, 4)))
    assert found == [Finding("offsets/4 is truncated or unreadable", (
        ("set_aside", "offsets/4"), ("set_aside", "offsets/.4.crc"), ("restore", "offsets/4")))]


def test_a_truncated_entry_the_sink_wrote_without_a_journal_copy_is_beyond_repair():
    found = diagnose(view({3: True, 4: False}, {3: True}, sink=4, journal=(3,)))
    assert found == [Finding("offsets/4 is truncated or unreadable and the journal has no "
                             "copy of it")]
    assert not found[0].repairable


def test_a_truncated_entry_the_sink_never_wrote_is_set_aside_and_planned_again():
    found = diagnose(view({3: True, 4: False}, {3: True}, sink=3))
    assert found == [Finding("offsets/4 is truncated or unreadable", (
        ("set_aside", "offsets/4"), ("set_aside", "offsets/.4.crc")))]


def test_a_deleted_entry_the_sink_wrote_is_restored_and_its_stale_checksum_set_aside():
    found = diagnose(view({3: True}, {3: True}, sink=4, journal=(3, 4),
                          offsets_names=names(3, crcs=(3, 4))))
    assert found == [
        Finding("offsets/4 is deleted (its checksum .4.crc is left)",
                (("set_aside", "offsets/.4.crc"),)),
        Finding("offsets/4 is deleted", (("restore", "offsets/4"),))]


def test_a_deleted_entry_the_sink_wrote_without_a_journal_copy_is_beyond_repair():
    found = diagnose(view({3: True}, {3: True}, sink=4, journal=(3,),
                          offsets_names=names(3)))
    assert found == [Finding("offsets/4 is deleted and the journal has no copy of it")]


def test_a_deleted_newest_commit_is_left_to_spark_but_its_checksum_is_set_aside():
    found = diagnose(view({3: True, 4: True}, {3: True}, sink=4,
                          commits_names=names(3, crcs=(3, 4))))
    assert found == [Finding("commits/4 is deleted (its checksum .4.crc is left)",
                             (("set_aside", "commits/.4.crc"),))]


def test_a_truncated_commit_is_set_aside_and_the_batch_redone_from_whole_offsets():
    found = diagnose(view({3: True, 4: True}, {3: True, 4: False}, sink=4))
    assert found == [Finding("commits/4 is truncated or unreadable",
                             (("set_aside", "commits/4"), ("set_aside", "commits/.4.crc")))]


def test_an_empty_committed_batch_without_offsets_is_planned_again():
    found = diagnose(view({3: True}, {3: True, 4: True}, sink=3, offsets_names=names(3)))
    assert found == [Finding("batch 4 has no usable offsets entry (the sink never wrote it: "
                             "it is planned again)",
                             (("set_aside", "commits/4"), ("set_aside", "commits/.4.crc")))]


def test_a_deleted_query_id_is_written_back_from_the_journal_or_the_lake():
    top = frozenset({".metadata.crc", "offsets", "commits"})
    whole = ({0: True}, {0: True}, 0)
    assert diagnose(view(*whole, metadata_id=None, top=top)) == [Finding(
        "metadata (the query id) is deleted",
        (("set_aside", ".metadata.crc"), ("write_metadata", QUERY_ID)))]
    assert diagnose(view(*whole, metadata_id=None, top=top, journal_id=None)) == [Finding(
        "metadata (the query id) is deleted",
        (("set_aside", ".metadata.crc"), ("write_metadata", QUERY_ID)))]
    assert diagnose(view(*whole, metadata_id=None, top=top, journal_id=None,
                         lake_id=None)) == [Finding("metadata (the query id) is deleted")]


def test_a_query_id_that_is_not_the_lakes_is_beyond_repair():
    assert diagnose(view({0: True}, {0: True}, 0, metadata_id=OTHER_ID)) == [Finding(
        f"metadata names query {OTHER_ID}, but the lake's newest batch was written by "
        f"{QUERY_ID}")]
