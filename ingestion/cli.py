"""`fleetlake produce`: arguments and command (wired into fleetlake/cli.py by the lead)."""
from __future__ import annotations

import argparse
import sys

from infra.settings import Settings
from ingestion.admin import KafkaUnavailableError
from ingestion.faults import FAULT_KINDS, PRESETS
from ingestion.producer import ProduceError, run_produce


def add_produce_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `produce` options; unset ones come from the [producer] settings."""
    parser.add_argument("--events", type=int, metavar="N",
                        help="messages to send (default: producer.events; with --duration, "
                             "whichever comes first)")
    parser.add_argument("--duration", type=float, metavar="S",
                        help="send for S seconds instead of a number of events")
    parser.add_argument("--forever", action="store_true",
                        help="send until Ctrl-C (ignores producer.events)")
    parser.add_argument("--rate", type=float, metavar="R",
                        help="events/s, steady (0 = as fast as possible; default: producer.rate)")
    parser.add_argument("--faults", metavar="SPEC",
                        help=f"{' | '.join(PRESETS)} | kind=rate,... (rate 0.01 or 1%%; kinds: "
                             f"{', '.join(FAULT_KINDS)}); default: producer.faults")
    parser.add_argument("--seed", type=int, help="random seed (default: producer.seed)")
    parser.add_argument("--topic", help="Kafka topic (default: the settings' topic)")
    parser.add_argument("--cars", type=int, metavar="N",
                        help="simulated cars (default: producer.cars)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def produce_command(settings: Settings, args: argparse.Namespace) -> int:
    """Run `produce`; prints the summary (table or JSON) on stdout, progress on stderr."""
    ps = settings.producer
    events, duration = args.events, args.duration
    if events is None and duration is None and not args.forever:
        events = ps.events
    try:
        summary = run_produce(
            settings, events=events, duration_s=duration,
            rate=ps.rate if args.rate is None else args.rate,
            faults=ps.faults if args.faults is None else args.faults,
            seed=ps.seed if args.seed is None else args.seed,
            topic=args.topic or settings.topic,
            cars=ps.cars if args.cars is None else args.cars,
            progress=not getattr(args, "quiet", False))
    except (KafkaUnavailableError, ValueError) as exc:
        print(f"produce: {exc}", file=sys.stderr)
        return 2
    except ProduceError as exc:
        print(f"produce: {exc}", file=sys.stderr)
        return 1
    print(summary.to_json() if args.json else summary.to_table())
    if summary.errors:
        print(f"produce: {summary.errors:,} messages were not acknowledged "
              f"({summary.first_error}); check the broker and rerun", file=sys.stderr)
        return 1
    return 0
