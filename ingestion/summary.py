"""What a produce run sent, by fault kind and by the outcome silver must give each message."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from ingestion.faults import CLEAN, DUPLICATE, QUARANTINED, VALID, Tag


@dataclass
class ProduceSummary:
    """One run's totals; `by_*` count sent messages (acked = sent - errors after the flush)."""

    topic: str
    partitions: int = 0
    processes: int = 1
    cars: int = 0
    seed: int = 0
    faults: str = "none"
    rate: float = 0.0
    sent: int = 0
    acked: int = 0
    errors: int = 0
    first_error: str | None = None
    interrupted: bool = False
    elapsed_s: float = 0.0
    first_event_time: str | None = None
    by_kind: dict[str, int] = field(default_factory=dict)
    by_outcome: dict[str, int] = field(default_factory=dict)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)  # code -> messages with it
    quarantine_reason_sets: dict[str, int] = field(default_factory=dict)  # "A,B" -> messages

    @property
    def events_per_s(self) -> float:
        """Acknowledged events per second of the run."""
        return self.acked / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def add_tags(self, tags: Mapping[Tag, int], clean: int) -> None:
        """Count `tags` (fault tag -> messages) and `clean` untagged messages."""
        counts = Counter(tags)
        if clean:
            counts[CLEAN] += clean
        by_kind, by_outcome = Counter(self.by_kind), Counter(self.by_outcome)
        reasons, sets = Counter(self.quarantine_reasons), Counter(self.quarantine_reason_sets)
        for tag, n in counts.items():
            by_kind[tag.kind] += n
            by_outcome[tag.outcome] += n
            if tag.outcome == QUARANTINED:
                sets[",".join(tag.reasons)] += n
                for code in tag.reasons:
                    reasons[code] += n
        for outcome in (VALID, QUARANTINED, DUPLICATE):
            by_outcome.setdefault(outcome, 0)
        self.by_kind, self.by_outcome = dict(sorted(by_kind.items())), dict(by_outcome)
        self.quarantine_reasons = dict(sorted(reasons.items()))
        self.quarantine_reason_sets = dict(sorted(sets.items()))

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["events_per_s"] = round(self.events_per_s, 1)
        data["elapsed_s"] = round(self.elapsed_s, 3)
        return data

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def to_table(self) -> str:
        """A human-readable report."""
        head = [("topic", f"{self.topic} ({self.partitions} partitions)"),
                ("sent", f"{self.sent:,}"), ("acked", f"{self.acked:,}"),
                ("errors", f"{self.errors:,}" + (f"  first: {self.first_error}"
                                                 if self.first_error else "")),
                ("elapsed", f"{self.elapsed_s:.2f} s"),
                ("rate", f"{self.events_per_s:,.0f} acknowledged events/s"),
                ("processes", str(self.processes)), ("cars", str(self.cars)),
                ("faults", self.faults), ("seed", str(self.seed))]
        if self.interrupted:
            head.append(("stopped", "interrupted (Ctrl-C); everything sent was flushed"))
        lines = [f"{k:<10} {v}" for k, v in head]
        lines += _section("by kind", self.by_kind)
        lines += _section("expected outcome in silver", self.by_outcome)
        lines += _section("quarantine reasons", self.quarantine_reasons)
        return "\n".join(lines)


def _section(title: str, counts: Mapping[str, int]) -> list[str]:
    if not counts:
        return []
    width = max(len(k) for k in counts)
    return ["", title] + [f"  {k:<{width}}  {v:>12,}" for k, v in counts.items()]


def merge(parts: list[ProduceSummary], into: ProduceSummary) -> ProduceSummary:
    """Add the per-process summaries `parts` into `into` (counts summed)."""
    for part in parts:
        into.sent += part.sent
        into.acked += part.acked
        into.errors += part.errors
        into.first_error = into.first_error or part.first_error
        into.interrupted = into.interrupted or part.interrupted
        for name in ("by_kind", "by_outcome", "quarantine_reasons", "quarantine_reason_sets"):
            total = Counter(getattr(into, name))
            total.update(getattr(part, name))
            setattr(into, name, dict(sorted(total.items())))
    return into
