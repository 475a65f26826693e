"""What is wrong with a query's streaming checkpoint, and how to repair it (pure: no I/O).

Grain: one Finding per damaged or missing file. The rules follow what Spark reads when a query
starts: the query id (`metadata`), the newest offsets entry (and the one before it when the
newest batch did not commit) and the newest commit. Continuing over a damaged file would go
wrong quietly: a lost query id makes a new one, so every write looks new (duplicates); a lost
offsets entry of a batch the sink already wrote makes Spark plan that batch again over a
different range, which the sink's per-batch idempotency then skips (loss). So every finding
stops the pipeline; `fleetlake pipeline repair` applies the actions:
- `set_aside`: move the file out of the checkpoint (into `_damaged/`, kept for inspection);
- `restore`: write the file back from the journal (infra/checkpoint_files.py), exactly;
- `write_metadata`: write the query id back.
A finding without actions cannot be repaired from what the lake holds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

SET_ASIDE, RESTORE, WRITE_METADATA = "set_aside", "restore", "write_metadata"


@dataclass(frozen=True)
class CheckpointView:
    """What one query's checkpoint, its journal and the lake say."""

    query: str
    exists: bool
    top_names: frozenset[str] = frozenset()  # names in the checkpoint's directory
    metadata_id: str | None = None  # None: missing or not whole
    offsets: Mapping[int, bool] = field(default_factory=dict)  # listed batch -> whole
    offsets_names: frozenset[str] = frozenset()
    commits: Mapping[int, bool] = field(default_factory=dict)
    commits_names: frozenset[str] = frozenset()
    journal_id: str | None = None
    journal_offsets: frozenset[int] = frozenset()  # batches the journal holds whole
    sink_batch: int | None = None  # newest batch the query's sink wrote (Delta tags, ledger)
    lake_id: str | None = None  # the query id on the sink's newest write


@dataclass(frozen=True)
class Finding:
    """One damaged or missing file and the actions that repair it (none: cannot repair)."""

    problem: str
    actions: tuple[tuple[str, str], ...] = ()

    @property
    def repairable(self) -> bool:
        return bool(self.actions)


def _crc(name: str) -> str:
    return f".{name}.crc"


def _set_aside(names: frozenset[str], log: str, name: str) -> tuple[tuple[str, str], ...]:
    """Set aside the file and its checksum, whichever of them is there."""
    prefix = f"{log}/" if log else ""
    return tuple((SET_ASIDE, prefix + n) for n in (name, _crc(name)) if n in names)


def _orphan_checksums(names: frozenset[str], log: str) -> list[Finding]:
    """A checksum left by a deleted entry makes Spark's next write of that entry fail
    ("Multiple streaming queries are concurrently using ...")."""
    found = []
    for name in sorted(names):
        entry = name[1:-4] if name.startswith(".") and name.endswith(".crc") else None
        # (a deleted `metadata` is _metadata's finding, its checksum included)
        if entry is not None and entry.isdigit() and entry not in names:
            where = f"{log}/{entry}" if log else entry
            found.append(Finding(f"{where} is deleted (its checksum {_crc(entry)} is left)",
                                 ((SET_ASIDE, f"{log}/{name}" if log else name),)))
    return found


def _metadata(view: CheckpointView) -> list[Finding]:
    if view.metadata_id is not None:
        if view.lake_id is not None and view.metadata_id != view.lake_id:
            return [Finding(f"metadata names query {view.metadata_id}, but the lake's newest "
                            f"batch was written by {view.lake_id}")]
        return []
    known = view.journal_id or view.lake_id
    state = ("truncated or unreadable" if "metadata" in view.top_names else "deleted")
    actions = _set_aside(view.top_names, "", "metadata")
    return [Finding(f"metadata (the query id) is {state}",
                    actions + ((WRITE_METADATA, known),) if known else ())]


def _offsets(view: CheckpointView) -> list[Finding]:
    """Unreadable entries are set aside (and restored when the journal has them); then the
    entries Spark reads at start must be whole or restored. A newest batch the sink never
    wrote may lose its entries instead: Spark plans it again."""
    journal, sink = view.journal_offsets, view.sink_batch
    by_batch: dict[int, Finding] = {}
    for batch, whole in sorted(view.offsets.items()):
        if not whole:
            restore = ((RESTORE, f"offsets/{batch}"),) if batch in journal else ()
            by_batch[batch] = Finding(f"offsets/{batch} is truncated or unreadable",
                                      _set_aside(view.offsets_names, "offsets", str(batch))
                                      + restore)
    findings = [Finding(f"commits/{batch} is truncated or unreadable",
                        _set_aside(view.commits_names, "commits", str(batch)))
                for batch, whole in sorted(view.commits.items()) if not whole]
    usable = {b for b, ok in view.offsets.items() if ok or b in journal}
    committed = {b for b, ok in view.commits.items() if ok}
    newest = max([*view.offsets, *view.commits, *([sink] if sink is not None else [])],
                 default=None)
    if newest is not None and newest not in usable and (sink is None or sink < newest):
        if str(newest) in view.commits_names:  # committed empty, or planned and unreadable
            findings.append(Finding(f"batch {newest} has no usable offsets entry (the sink "
                                    f"never wrote it: it is planned again)",
                                    _set_aside(view.commits_names, "commits", str(newest))))
        committed.discard(newest)
        newest = newest - 1 if newest > 0 else None
    needed = [] if newest is None else (
        [newest] if newest in committed else [b for b in (newest - 1, newest) if b >= 0])
    for batch in needed:
        if batch in usable:
            continue
        if batch not in view.offsets and batch in journal:
            by_batch[batch] = Finding(f"offsets/{batch} is deleted",
                                      ((RESTORE, f"offsets/{batch}"),))
        else:
            state = "deleted" if batch not in view.offsets else "truncated or unreadable"
            by_batch[batch] = Finding(f"offsets/{batch} is {state} and the journal has no "
                                      f"copy of it")
    return [*by_batch.values(), *findings]


def diagnose(view: CheckpointView) -> list[Finding]:
    """Every finding of the query's checkpoint; [] when the query may start from it."""
    if not view.exists:
        if view.sink_batch is None:
            return []  # a new query
        return [Finding(f"the checkpoint is missing, but the lake holds batch "
                        f"{view.sink_batch} of the query")]
    return [*_metadata(view), *_orphan_checksums(view.top_names, ""),
            *_orphan_checksums(view.offsets_names, "offsets"),
            *_orphan_checksums(view.commits_names, "commits"), *_offsets(view)]
